"""MLflow set-up: where runs and models go, one parent run per pipeline run, a nested run per
step."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from filelock import FileLock
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from emotion_ai.settings import DEFAULT_EXPERIMENT
from emotion_ai.steps.supervision import alive

STEP_TAG = "emotion_ai.step"
GIT_COMMIT_TAG = "emotion_ai.git_commit"
PID_TAG, HOST_TAG = "emotion_ai.pid", "emotion_ai.host"
"""The process that runs a run: a RUNNING run whose process has ended was abandoned."""
FAILURE_REASON_TAG = "emotion_ai.failure_reason"
EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"
"""MLflow 3's UI opens an experiment of this kind on its runs (model training), not on its GenAI
traces; set on our experiment unless someone chose another kind."""
INTERRUPTED_TAG = "emotion_ai.interrupted"
"""On a resumed run: why it had stopped (its failure reason, moved here when it was reopened)."""
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


TRACKING_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
"""MLflow's own retry settings, bounded: a refused connection fails in about 7 s (waits of 1, 2 and
4 s), a server that hangs in about 2 minutes (4 tries of 30 s). MLflow's defaults (7 retries,
backoff
factor 2, 120 s timeouts) spent 12 to 16 minutes before a run failed. Set any of them to
override."""


def bound_tracking_retries() -> None:
    """Applies `TRACKING_RETRIES` where the environment sets nothing (step processes inherit
    them)."""
    for name, value in TRACKING_RETRIES.items():
        os.environ.setdefault(name, value)


SQLITE_PREFIX = "sqlite:///"


@contextmanager
def _store_set_up(tracking_uri: str) -> Iterator[None]:
    """One process at a time makes a SQLite store's tables and experiment: two runs started at
    once on a new state folder would otherwise both migrate the new database, and leave it half
    migrated (`_alembic_tmp_latest_metrics already exists`)."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        yield
        return
    with FileLock(tracking_uri.removeprefix(SQLITE_PREFIX) + ".lock"):
        yield


def use_tracking(settings: TrackingSettings) -> str:
    """Points MLflow at `settings` and returns the experiment id (created if new)."""
    bound_tracking_retries()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    with _store_set_up(settings.tracking_uri):
        return _experiment(settings)


def _experiment(settings: TrackingSettings) -> str:
    """The experiment's id, made (and tagged as model training) when it is new."""
    experiment = mlflow.get_experiment_by_name(settings.experiment_name)
    if experiment is None:
        experiment_id = MlflowClient().create_experiment(
            settings.experiment_name, artifact_location=settings.artifact_location or None
        )
    else:
        experiment_id = experiment.experiment_id
    if experiment is None or EXPERIMENT_KIND_TAG not in experiment.tags:
        MlflowClient().set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
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


PIPELINE_SOURCE = "pipelines/pipeline.py"


def start_parent_run(
    settings: TrackingSettings, run_name: str, tags: dict[str, str] | None = None
) -> str:
    """Creates the pipeline's parent run, left RUNNING for the steps to nest under."""
    experiment_id = use_tracking(settings)
    run = MlflowClient().create_run(
        experiment_id,
        run_name=run_name,
        tags={**source_tags(PIPELINE_SOURCE), **owner_tags(), **(tags or {})},
    )
    return run.info.run_id


def owner_tags() -> dict[str, str]:
    """This process, so that a run it leaves RUNNING when killed can be told apart and failed."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def fail_abandoned_runs(settings: TrackingSettings, repair: bool = True) -> list[str]:
    """Marks FAILED, with the reason, every RUNNING run of the experiment whose process on this host
    has ended (killed, say); returns their ids (only finds them unless `repair`). Runs of other
    hosts are left as they are."""
    experiment_id, host, client = use_tracking(settings), socket.gethostname(), MlflowClient()
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=10_000
    )
    abandoned = []
    for run in running:
        pid = run.data.tags.get(PID_TAG, "")
        if run.data.tags.get(HOST_TAG) == host and pid.isdigit() and not alive(int(pid)):
            abandoned.append(run.info.run_id)
            if repair:
                reason = f"its process {pid} on {host} ended without finishing the run"
                client.set_tag(run.info.run_id, FAILURE_REASON_TAG, reason)
                client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
    return abandoned


def run_status(run_id: str) -> str | None:
    """The run's status (RUNNING, FINISHED, FAILED, KILLED), or None when there is no such run."""
    try:
        return MlflowClient().get_run(run_id).info.status
    except MlflowException:
        return None


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


SYSTEM_METRICS_INTERVAL_ENV, SYSTEM_METRICS_INTERVAL_S = (
    "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL",
    "5",
)
"""Seconds between samples of CPU, memory and GPU use (MLflow's default, 10 s, leaves a short
training run with none)."""


def source_tags(source: str) -> dict[str, str]:
    """What the UI's Source column shows for a run (else KFP's `executor_main.py`), and the git
    commit of the code that ran it."""
    commit = source_commit()
    return {
        "mlflow.source.name": source,
        "mlflow.source.type": "JOB",
        "mlflow.source.git.commit": commit,
        GIT_COMMIT_TAG: commit,
    }


@contextmanager
def step_run(
    settings: TrackingSettings,
    parent_run_id: str,
    step: str,
    run_id: str | None = None,
    system_metrics: bool = False,
) -> Iterator[mlflow.ActiveRun]:
    """A nested MLflow run for one pipeline step (or, with `run_id`, that earlier run continued);
    it ends FAILED if the step raises. With `system_metrics`, MLflow samples CPU, memory (and GPU)
    use into it."""
    use_tracking(settings)
    if system_metrics:
        os.environ.setdefault(SYSTEM_METRICS_INTERVAL_ENV, SYSTEM_METRICS_INTERVAL_S)
    if run_id:
        with mlflow.start_run(run_id=run_id, log_system_metrics=system_metrics) as run:
            mlflow.set_tags(owner_tags())
            if reason := run.data.tags.get(FAILURE_REASON_TAG):
                mlflow.set_tag(INTERRUPTED_TAG, reason)
                MlflowClient().delete_tag(run_id, FAILURE_REASON_TAG)
            yield run
        return
    with mlflow.start_run(
        run_name=step,
        parent_run_id=parent_run_id or None,
        tags={STEP_TAG: step, **owner_tags(), **source_tags(f"components/{step}.py")},
        log_system_metrics=system_metrics,
    ) as run:
        yield run
