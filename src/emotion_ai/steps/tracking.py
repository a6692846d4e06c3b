"""MLflow set-up: where runs and models go, one parent run per pipeline run, a nested run per
step."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from emotion_ai.settings import DEFAULT_EXPERIMENT

STEP_TAG = "emotion_ai.step"
TRIGGER_TAG = "emotion_ai.trigger"
"""Why a pipeline run started: manual, new data, drift, schedule."""


@dataclass(frozen=True)
class TrackingSettings:
    """An MLflow tracking + registry URI, the experiment, and where its artifacts go."""

    tracking_uri: str
    experiment_name: str = DEFAULT_EXPERIMENT
    artifact_location: str = ""
    """Empty: the tracking server's default (e.g. its `--default-artifact-root`)."""


@dataclass(frozen=True)
class StepContext:
    """Where a step records: the tracking settings, and the pipeline's parent run it nests under."""

    tracking: TrackingSettings
    parent_run_id: str = ""


def local_tracking(state_dir: Path, experiment_name: str = DEFAULT_EXPERIMENT) -> TrackingSettings:
    """The embedded default: SQLite tracking and registry, artifacts on local disk."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    return TrackingSettings(
        f"sqlite:///{state_dir / 'mlflow.db'}",
        experiment_name,
        (state_dir / "mlartifacts").as_uri(),
    )


def use_tracking(settings: TrackingSettings) -> str:
    """Points MLflow at `settings` and returns the experiment id (created if new)."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is None:
        experiment_id = MlflowClient().create_experiment(
            settings.experiment_name, artifact_location=settings.artifact_location or None
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def source_commit() -> str:
    """The git commit of the code that runs (env EMOTION_AI_GIT_COMMIT in containers)."""
    if commit := os.environ.get("EMOTION_AI_GIT_COMMIT"):
        return commit
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def start_parent_run(
    settings: TrackingSettings, run_name: str, tags: dict[str, str] | None = None
) -> str:
    """Creates the pipeline's parent run, left RUNNING for the steps to nest under."""
    experiment_id = use_tracking(settings)
    run = MlflowClient().create_run(
        experiment_id,
        run_name=run_name,
        tags={"emotion_ai.git_commit": source_commit(), **(tags or {})},
    )
    return run.info.run_id


def end_parent_run(settings: TrackingSettings, run_id: str, succeeded: bool) -> None:
    use_tracking(settings)
    status = RunStatus.to_string(RunStatus.FINISHED if succeeded else RunStatus.FAILED)
    MlflowClient().set_terminated(run_id, status=status)


PROJECT_RUN_ENV = "MLFLOW_RUN_ID"
"""Set by `mlflow run` to the run it created for an MLproject entry point."""


@contextmanager
def parent_run(
    settings: TrackingSettings, run_name: str, tags: dict[str, str] | None = None
) -> Iterator[str]:
    """The run steps nest under: the `mlflow run` entry point's own run when there is one (its owner
    ends it), else a new parent run that ends FINISHED, or FAILED if the body raises."""
    if project_run_id := os.environ.pop(PROJECT_RUN_ENV, ""):
        use_tracking(settings)
        for key, value in (tags or {}).items():
            MlflowClient().set_tag(project_run_id, key, value)
        yield project_run_id
        return
    run_id = start_parent_run(settings, run_name, tags)
    succeeded = False
    try:
        yield run_id
        succeeded = True
    finally:
        end_parent_run(settings, run_id, succeeded)


def tracking_from_environment(state_dir: Path) -> TrackingSettings:
    """MLFLOW_TRACKING_URI and the experiment `mlflow run` chose, when set; else the embedded
    default."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return local_tracking(state_dir)
    experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "")
    if not experiment_name and (experiment_id := os.environ.get("MLFLOW_EXPERIMENT_ID")):
        mlflow.set_tracking_uri(uri)
        experiment_name = MlflowClient().get_experiment(experiment_id).name
    return TrackingSettings(uri, experiment_name or DEFAULT_EXPERIMENT)


@contextmanager
def step_run(
    settings: TrackingSettings, parent_run_id: str, step: str, run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """A nested MLflow run for one pipeline step (or, with `run_id`, that earlier run continued);
    it ends FAILED if the step raises."""
    use_tracking(settings)
    if run_id:
        with mlflow.start_run(run_id=run_id) as run:
            yield run
        return
    with mlflow.start_run(
        run_name=step, parent_run_id=parent_run_id or None, tags={STEP_TAG: step}
    ) as run:
        yield run
