"""`emotion-ai run` (the whole pipeline on this machine) and `emotion-ai pipeline ...` (Kubeflow
clusters)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from emotion_ai.cli.options import (
    DEFAULT_REST_PORT,
    DEFAULT_STATE_DIR,
    DEFAULT_UI_PORT,
    LOOPBACK,
    KfpExperiment,
    KfpHost,
    KfpNamespace,
    ModelBasePath,
    PipelineParams,
    StateDir,
    TrainingGpus,
    console,
    help_markup,
    local_sources,
    registry_errors,
    serving_dir,
    tracking_settings,
)
from emotion_ai.cli.settings_options import takes_settings
from emotion_ai.cli.step_console import ANSI_ESCAPE
from emotion_ai.cli.tracking import experiment_runs_url, models
from emotion_ai.settings import (
    DEFAULT_EXPERIMENT,
    GateSettings,
    ReleaseSettings,
    SourceSettings,
    SplitSettings,
    TrainSettings,
    ValidationSettings,
)
from emotion_ai.tensorflow_startup import LOG_LEVEL_VARIABLE

pipeline_app = typer.Typer(
    help="The KFP pipeline for Kubeflow clusters.",
    no_args_is_help=True,
    rich_markup_mode=help_markup(),
)


@takes_settings
def run(
    sources: SourceSettings,
    split: SplitSettings,
    validation: ValidationSettings,
    training: TrainSettings,
    gate: GateSettings,
    release: ReleaseSettings,
    model_base_path: ModelBasePath = None,
    cache: Annotated[
        bool,
        typer.Option(
            help="Reuse validate/train outputs when their inputs, parameters and "
            "code are unchanged."
        ),
    ] = True,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue training from the last epoch checkpoints of an "
            "interrupted run (STATE_DIR/checkpoints)."
        ),
    ] = False,
    trigger: Annotated[
        str, typer.Option(help="Why this run started (tagged on the MLflow run).")
    ] = "manual",
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Print every line of every step, not only a line per step, TensorFlow's "
            "informational lines included (the full logs are in STATE_DIR/logs/<run>/<step>.log "
            "either way).",
        ),
    ] = False,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Run the whole pipeline on this machine (kfp.local, MLflow on SQLite)."""
    from emotion_ai.cli.step_console import step_console
    from emotion_ai.settings_json import settings_to_json
    from emotion_ai.steps.supervision import supervise_steps
    from emotion_ai.steps.tracking import (
        TRIGGER_TAG,
        fail_abandoned_runs,
        parent_run,
        use_tracking,
    )
    from pipelines.local_runner import run_local
    from pipelines.pipeline import task_policies

    settings = {
        "sources": local_sources(sources),
        "split": split,
        "validation": validation,
        "training": training,
        "gate": gate,
        "release": release,
    }
    tracking = tracking_settings(state_dir, create=True)
    with registry_errors("reaching the tracking server"):
        abandoned = fail_abandoned_runs(tracking)
    for run_id in abandoned:
        console.print(f"[yellow]marked MLflow run {run_id} FAILED: its process had ended[/]")
    supervise_steps()
    if verbose:
        os.environ[LOG_LEVEL_VARIABLE] = "0"
    run_name = f"pipeline-{uuid.uuid4().hex[:8]}"
    tags = {"emotion_ai.orchestrator": "kfp.local", TRIGGER_TAG: trigger}
    log_dir = state_dir.resolve() / "logs" / run_name
    with parent_run(tracking, run_name, tags) as parent_run_id:
        console.print(
            f"[bold]emotion-ai[/] pipeline run [cyan]{run_name}[/] (MLflow run {parent_run_id}, "
            f"trigger: {trigger})\nstep logs: {log_dir}",
            soft_wrap=True,
        )
        with (
            _logged_to(parent_run_id, log_dir),
            _pipeline_failure(),
            step_console(list(task_policies()), log_dir, console, verbose),
        ):
            run_local(
                state_dir.resolve() / "kfp",
                tracking_uri=tracking.tracking_uri,
                experiment_name=tracking.experiment_name,
                artifact_location=tracking.artifact_location,
                parent_run_id=parent_run_id,
                model_base_path=model_base_path or serving_dir(state_dir),
                **{name: settings_to_json(value) for name, value in settings.items()},
                cache_root=str(state_dir.resolve() / "cache") if cache else "",
                trigger=trigger,
                checkpoint_root=str(state_dir.resolve() / "checkpoints"),
                resume=resume,
            )
    _print_next_steps(state_dir, use_tracking(tracking))


@contextmanager
def _logged_to(parent_run_id: str, log_dir: Path) -> Iterator[None]:
    """The step logs go to the parent run's `logs/` artifacts as well, whatever the outcome."""
    from mlflow.tracking import MlflowClient

    try:
        yield
    finally:
        if log_dir.is_dir():
            MlflowClient().log_artifacts(parent_run_id, str(log_dir), "logs")


@contextmanager
def _pipeline_failure() -> Iterator[None]:
    """A failed step ends the command with its status and one line, not kfp's traceback (the
    step's own lines were shown)."""
    try:
        yield
    except RuntimeError as error:
        console.print(Text(ANSI_ESCAPE.sub("", str(error)), style="red"), soft_wrap=True)
        raise typer.Exit(1) from error


def _print_next_steps(state_dir: Path, experiment_id: str) -> None:
    console.print("\n[bold green]Pipeline finished.[/]")
    models(state_dir)
    runs = experiment_runs_url(f"http://{LOOPBACK}:{DEFAULT_UI_PORT}", experiment_id)
    rest = f"http://{LOOPBACK}:{DEFAULT_REST_PORT}"
    console.print(
        f"\nMLflow UI:   [cyan]make ui[/]  (or: emotion-ai ui)  then open {runs}\nServe:       "
        f"[cyan]make serve[/]  (or: emotion-ai serve)  TF Serving REST API on {rest}\nQuery:      "
        f" curl {rest}/v1/models/emotion-ai  and see README 'Query the served model'\nDemo:       "
        f" {rest}/ (with the server up): upload a photo or use the webcam\nPhotos:     "
        f" [cyan]emotion-ai predict photo.jpg --annotate annotated.png[/]  (every face, no server)",
        soft_wrap=True,
    )


@pipeline_app.command("compile")
def compile_(
    output: Annotated[Path, typer.Argument()] = Path("emotion-ai-pipeline.yaml"),
    training_gpus: TrainingGpus = 0,
) -> None:
    """Write the KFP IR YAML of the pipeline."""
    from pipelines.compile import compile_pipeline

    console.print(compile_pipeline(output, training_gpus))


def _cluster(host: str, namespace: str | None, training_gpus: int):
    from pipelines.remote import Cluster

    return Cluster(host, namespace, training_gpus)


def _refuse_bad_parameters(action) -> str:
    try:
        return action()
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error


@pipeline_app.command("submit")
def submit(
    host: KfpHost,
    param: PipelineParams = None,
    experiment: KfpExperiment = DEFAULT_EXPERIMENT,
    run_name: Annotated[Optional[str], typer.Option()] = None,
    namespace: KfpNamespace = None,
    training_gpus: TrainingGpus = 0,
) -> None:
    """Compile the pipeline and start one run of it on Kubeflow Pipelines."""
    cluster = _cluster(host, namespace, training_gpus)
    run_id = _refuse_bad_parameters(lambda: cluster.submit(param or [], experiment, run_name))
    console.print(f"KFP run {run_id} started in experiment {experiment}")


@pipeline_app.command("schedule")
def schedule(
    host: KfpHost,
    cron: Annotated[
        str, typer.Option(help='Crontab line, e.g. "0 3 * * *" (5 fields, or 6 with seconds).')
    ],
    param: PipelineParams = None,
    name: Annotated[str, typer.Option(help="Recurring run name.")] = "emotion-ai-retrain",
    experiment: KfpExperiment = DEFAULT_EXPERIMENT,
    namespace: KfpNamespace = None,
    training_gpus: TrainingGpus = 0,
) -> None:
    """Create a KFP recurring run of the pipeline (one run at a time, no catch-up)."""
    cluster = _cluster(host, namespace, training_gpus)
    recurring_id = _refuse_bad_parameters(
        lambda: cluster.schedule(param or [], cron, name, experiment)
    )
    console.print(f"KFP recurring run {recurring_id} ({cron}) created in experiment {experiment}")
