"""MLflow set-up: where runs and models go, one parent run per pipeline run, a nested run per step."""

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

DEFAULT_EXPERIMENT = "emotion-ai"
STEP_TAG = "emotion_ai.step"


@dataclass(frozen=True)
class TrackingSettings:
    """An MLflow tracking + registry URI, the experiment, and where its artifacts go."""

    tracking_uri: str
    experiment_name: str = DEFAULT_EXPERIMENT
    artifact_location: str = ""
    """Empty: the tracking server's default (e.g. its `--default-artifact-root`)."""


def local_tracking(state_dir: Path, experiment_name: str = DEFAULT_EXPERIMENT) -> TrackingSettings:
    """The embedded default: SQLite tracking and registry, artifacts on local disk."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    return TrackingSettings(f"sqlite:///{state_dir / 'mlflow.db'}", experiment_name,
                            (state_dir / "mlartifacts").as_uri())


def use_tracking(settings: TrackingSettings) -> str:
    """Points MLflow at `settings` and returns the experiment id (created if new)."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is None:
        experiment_id = MlflowClient().create_experiment(
            settings.experiment_name, artifact_location=settings.artifact_location or None)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def source_commit() -> str:
    """The git commit of the code that runs (env EMOTION_AI_GIT_COMMIT in containers)."""
    if commit := os.environ.get("EMOTION_AI_GIT_COMMIT"):
        return commit
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def start_parent_run(settings: TrackingSettings, run_name: str, tags: dict[str, str] | None = None) -> str:
    """Creates the pipeline's parent run, left RUNNING for the steps to nest under."""
    experiment_id = use_tracking(settings)
    run = MlflowClient().create_run(experiment_id, run_name=run_name,
                                    tags={"emotion_ai.git_commit": source_commit(), **(tags or {})})
    return run.info.run_id


def end_parent_run(settings: TrackingSettings, run_id: str, succeeded: bool) -> None:
    use_tracking(settings)
    status = RunStatus.to_string(RunStatus.FINISHED if succeeded else RunStatus.FAILED)
    MlflowClient().set_terminated(run_id, status=status)


@contextmanager
def step_run(settings: TrackingSettings, parent_run_id: str, step: str) -> Iterator[mlflow.ActiveRun]:
    """A nested MLflow run for one pipeline step; it ends FAILED if the step raises."""
    use_tracking(settings)
    with mlflow.start_run(run_name=step, parent_run_id=parent_run_id or None,
                          tags={STEP_TAG: step}) as run:
        yield run
