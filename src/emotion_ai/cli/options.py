"""Command-line options shared by the command groups, and the console they print to. Defaults are
never stated here: each command takes its default from `emotion_ai.settings`."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from emotion_ai.settings import ReleaseSettings, SourceSettings, TrainSettings

DEFAULT_STATE_DIR = Path(".state")
DEFAULT_REST_PORT = 8501
DEFAULT_GRPC_PORT = 8500
DEFAULT_UI_PORT = 5000
LOOPBACK = "127.0.0.1"
RICH_HELP_MIN_COLUMNS = 100
"""Narrower than this, rich's four-column option tables cut option names short."""
console = Console()
"""Only the CLI prints; the library logs."""

StateDir = Annotated[
    Path,
    typer.Option(
        help="Project-local state: MLflow database, artifacts, served models.",
        envvar="EMOTION_AI_STATE_DIR",
    ),
]


def help_markup() -> str | None:
    """Rich help panels on a terminal wide enough for them; else click's plain help (None), which
    puts a long option's text on the next line and never cuts a name ($COLUMNS counts)."""
    return "rich" if shutil.get_terminal_size().columns >= RICH_HELP_MIN_COLUMNS else None


def field_help(cls: type, name: str) -> str:
    """The help text a settings field states for its option."""
    return next(item.metadata["help"] for item in fields(cls) if item.name == name)


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """An option callback that refuses values other than `choices`, naming them."""

    def check(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return check


Epochs = Annotated[int, typer.Option(help=field_help(TrainSettings, "epochs"))]
BatchSize = Annotated[int, typer.Option(help=field_help(TrainSettings, "batch_size"))]
Seed = Annotated[int, typer.Option(help=field_help(SourceSettings, "seed"))]
KeepVersions = Annotated[int, typer.Option(help=field_help(ReleaseSettings, "keep_versions"))]
ModelBasePath = Annotated[
    Optional[str],
    typer.Option(
        help="TF Serving layout <path>/<model>/<version>/, a "
        "folder or s3://bucket/prefix (default: STATE_DIR/serving)."
    ),
]

KfpHost = Annotated[
    str,
    typer.Option(
        help="Kubeflow Pipelines endpoint, e.g. http://ml-pipeline-ui.kubeflow:80",
        envvar="KFP_HOST",
    ),
]
PipelineParams = Annotated[
    Optional[list[str]],
    typer.Option(
        "--param",
        "-p",
        help="Pipeline parameter name=value, repeatable; tracking_uri and model_base_path are "
        "required (see `emotion-ai pipeline compile` output for all names).",
    ),
]
KfpExperiment = Annotated[str, typer.Option(help="KFP experiment the run belongs to.")]
KfpNamespace = Annotated[Optional[str], typer.Option(help="Kubernetes namespace (multi-user KFP).")]
TrainingGpus = Annotated[
    int, typer.Option(help="GPUs each training task asks for (use the GPU image).")
]


def absolute_source(source: str | None) -> str:
    """Local paths made absolute (steps run elsewhere); URLs and empty sources kept."""
    if not source or "://" in source:
        return source or ""
    return str(Path(source).resolve())


def local_sources(sources: SourceSettings) -> SourceSettings:
    """The sources with local paths made absolute (the steps run in other folders)."""
    return replace(
        sources,
        keypoints_source=absolute_source(sources.keypoints_source),
        fer_source=absolute_source(sources.fer_source),
    )


def serving_dir(state_dir: Path) -> str:
    return str((state_dir / "serving").resolve())


def default_request_log(state_dir: Path) -> Path:
    """Where `emotion-ai serve` samples requests to and `emotion-ai watch` reads them from."""
    return state_dir.resolve() / "requests" / "requests.jsonl"


def tracking_settings(state_dir: Path, create: bool = False):
    """MLFLOW_TRACKING_URI when set, else MLflow on SQLite under STATE_DIR. A state folder that is
    not there is made only by the commands that start work (`create`: run, the steps, tune, watch),
    saying so; any other stops in one line instead of reading an empty new one."""
    from emotion_ai.steps.tracking import tracking_from_environment

    if not os.environ.get("MLFLOW_TRACKING_URI") and not state_dir.is_dir():
        if not create:
            console.print(
                f"[red]no state folder at {state_dir.resolve()}: run `emotion-ai run` there first, "
                "or point --state-dir (or EMOTION_AI_STATE_DIR) at the one you use[/]",
                soft_wrap=True,
            )
            raise typer.Exit(1)
        console.print(f"created the state folder {state_dir.resolve()}", soft_wrap=True)
    with registry_errors("reaching the tracking server"):  # for the experiment `mlflow run` chose
        return tracking_from_environment(state_dir)


@contextmanager
def registry_errors(action: str) -> Iterator[None]:
    """A registry that cannot be reached, or that refuses the change, ends the command with one
    clear line (passwords in URIs hidden) and exit status 1 instead of a trace; a fault of the
    state folder itself (`state_faults`) is named as such."""
    from mlflow.exceptions import MlflowException

    from emotion_ai.cli.state_faults import state_dir_of_command, state_fault
    from emotion_ai.logs import redact

    try:
        yield
    except (MlflowException, ValueError, RuntimeError, OSError) as error:
        fault = state_fault(error, state_dir_of_command(sys.argv))
        line = fault or f"{action} failed: {redact(str(error))}"
        console.print(f"[red]{line}[/]", soft_wrap=True)
        raise typer.Exit(1) from error
