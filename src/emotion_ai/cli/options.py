"""Command-line options shared by the command groups, and the console they print to. Defaults are
never stated here: each command takes its default from `emotion_ai.settings`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from emotion_ai.settings import LR_SCHEDULES

DEFAULT_STATE_DIR = Path(".state")
DEFAULT_REST_PORT = 8501
DEFAULT_GRPC_PORT = 8500
DEFAULT_UI_PORT = 5000
LOOPBACK = "127.0.0.1"
console = Console()
"""Only the CLI prints; the library logs."""

StateDir = Annotated[
    Path,
    typer.Option(
        help="Project-local state: MLflow database, artifacts, served models.",
        envvar="EMOTION_AI_STATE_DIR",
    ),
]
KeypointsCsv = Annotated[
    Optional[str],
    typer.Option(help="FKD training.csv: path, s3:// or https:// (default: synthetic faces)"),
]
FerCsv = Annotated[
    Optional[str],
    typer.Option(
        help="fer2013.csv (emotion,pixels,Usage): path, s3:// or https:// "
        "(default: synthetic faces)"
    ),
]
Epochs = Annotated[int, typer.Option(help="Training epochs of each model.")]
BatchSize = Annotated[int, typer.Option()]
LearningRate = Annotated[float, typer.Option()]
Width = Annotated[int, typer.Option(help="Filters of the first ResNet stage (doubling per stage).")]
Depth = Annotated[int, typer.Option(help="Identity blocks per ResNet stage.")]
Seed = Annotated[
    int,
    typer.Option(
        help="Random seed of whatever the command draws (generated data, the split, first weights, "
        "shuffling, augmentation): on the same machine the same seed gives the same result."
    ),
]


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """An option callback that refuses values other than `choices`, naming them."""

    def check(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return check


LrSchedule = Annotated[
    str,
    typer.Option(
        callback=one_of(LR_SCHEDULES),
        help="plateau: halve the learning rate when validation stalls; cosine: warm up, then "
        "decay to zero at the last epoch.",
    ),
]
EmaMomentum = Annotated[
    float, typer.Option(help="Keep a moving average of the weights (e.g. 0.99; 0: off).")
]
LabelSmoothing = Annotated[float, typer.Option(help="Emotion: label smoothing (0: off).")]
MixupAlpha = Annotated[float, typer.Option(help="Emotion: mixup's Beta(alpha, alpha) (0: off).")]
RandomErasing = Annotated[
    float,
    typer.Option(
        help="Emotion: the share of training faces given a random noise rectangle (0: off)."
    ),
]
Dropout = Annotated[
    float,
    typer.Option(
        help="Emotion: the share of the pooled features dropped before the classifier (0: off)."
    ),
]
FlipTestTime = Annotated[
    bool,
    typer.Option(
        help="Both models average each face's answer with its mirror image's (keypoints "
        "mirrored back; evaluation and serving; twice the compute per face)."
    ),
]
SyntheticRows = Annotated[
    int, typer.Option(help="Rows of each synthetic data set, when no CSV is given.")
]
DetectFaces = Annotated[
    bool,
    typer.Option(
        help="The FER image folder holds ordinary photos: find, align and crop each one's face "
        "(photos with no face or several are left out and reported in the ingest run)."
    ),
]
ValFraction = Annotated[
    float,
    typer.Option(
        help="Share of rows held out for validation (early stopping, tuning); 0 trains on them "
        "too, for all --epochs: on small data sets that pays (bench/README.md)."
    ),
]
TestFraction = Annotated[float, typer.Option(help="Share of rows held out for the test figures.")]
SplitByUsage = Annotated[bool, typer.Option(help="Split FER rows by their Usage column instead.")]
MinRowsPerClass = Annotated[int, typer.Option(help="Fewest rows any emotion may have.")]
MaxDuplicateRate = Annotated[float, typer.Option(help="Largest share of byte-identical images.")]
MaxKeypointRmse = Annotated[float, typer.Option(help="Promotion floor: keypoint test RMSE.")]
MinEmotionAccuracy = Annotated[float, typer.Option(help="Promotion floor: emotion test accuracy.")]
Significance = Annotated[float, typer.Option(help="Level of the paired test against the champion.")]
KeepVersions = Annotated[
    int, typer.Option(help="Exported versions kept per model (the champion always).")
]
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


def serving_dir(state_dir: Path) -> str:
    return str((state_dir / "serving").resolve())


def default_request_log(state_dir: Path) -> Path:
    """Where `emotion-ai serve` samples requests to and `emotion-ai watch` reads them from."""
    return state_dir.resolve() / "requests" / "requests.jsonl"


def tracking_settings(state_dir: Path):
    """MLFLOW_TRACKING_URI when set, else MLflow on SQLite under STATE_DIR."""
    from emotion_ai.steps.tracking import tracking_from_environment

    return tracking_from_environment(state_dir)


@contextmanager
def registry_errors(action: str) -> Iterator[None]:
    """A registry that cannot be reached, or that refuses the change, ends the command with one
    clear line (passwords in URIs hidden) and exit status 1 instead of a trace."""
    from mlflow.exceptions import MlflowException

    from emotion_ai.logs import redact

    try:
        yield
    except (MlflowException, ValueError, RuntimeError, OSError) as error:
        console.print(f"[red]{action} failed: {redact(str(error))}[/]")
        raise typer.Exit(1) from error
