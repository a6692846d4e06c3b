"""Retraining triggers: new or changed data, drift of served faces, a schedule.

`Watcher.check_once` looks at all three, and when any fires it launches one pipeline run for
all of them, holding a file lock for the whole launch so that two watchers (or two triggers at
once) never start two runs; a run launched less than `debounce_seconds` ago defers new
triggers without consuming them. Drift is judged on the faces served since the last judgement,
once at least `min_faces` of them were sampled. Every fired check is logged to MLflow with its
reason.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import mlflow
from croniter import croniter
from filelock import FileLock, Timeout

from emotion_ai.data.formats import TABLE_SUFFIXES
from emotion_ai.monitoring.drift import DriftReport, DriftThresholds, detect_drift
from emotion_ai.monitoring.request_log import read_samples
from emotion_ai.steps.tracking import TRIGGER_TAG, TrackingSettings, use_tracking
from emotion_ai.storage import (
    Scheme,
    read_json,
    s3_client,
    scheme,
    split_s3_uri,
    write_json,
)

STATE_FILE = "state.json"
LOCK_FILE = "launch.lock"
KEYPOINTS_PREFIXES = ("training",)
FER_PREFIXES = ("fer2013", "icml_face_data")


@dataclass(frozen=True)
class Trigger:
    kind: str
    """new_data, drift or schedule."""
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class WatchState:
    """What the watcher has already acted on, kept as JSON between checks."""

    fingerprints: dict[str, str] = field(default_factory=dict)
    request_log_offset: int = 0
    last_launch: float = 0.0
    schedule_anchor: float = 0.0

    @classmethod
    def load(cls, path: Path) -> WatchState:
        return cls(**read_json(path)) if path.is_file() else cls()

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))


def latest_reference_profile(tracking: TrackingSettings) -> dict | None:
    """The emotion data profile of the newest successful validate step in MLflow, if any."""
    use_tracking(tracking)
    runs = mlflow.search_runs(
        filter_string="tags.emotion_ai.step = 'validate' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        return None
    return mlflow.artifacts.load_dict(f"runs:/{runs[0].info.run_id}/data_profile.json")["emotion"]


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def data_fingerprints(uri: str) -> dict[str, str]:
    """Every file under a folder (sha256 of its bytes) or an s3:// prefix (its ETag, which S3
    computes from the bytes), keyed by the URI that fetches it."""
    if scheme(uri) is Scheme.S3:
        bucket, prefix = split_s3_uri(uri)
        pages = (
            s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "")
        )
        return {
            f"s3://{bucket}/{item['Key']}": item["ETag"].strip('"')
            for page in pages
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/")
        }
    root = Path(uri)
    if not root.is_dir():
        raise FileNotFoundError(f"watched data folder {uri} does not exist")
    return {
        str(path.resolve()): _sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def data_sources(fingerprints: dict[str, str]) -> tuple[str, str]:
    """The FKD and FER files among the watched ones (by their Kaggle names, among the files a run
    can read: a `fer2013-report.html` is no source); '' where absent."""
    tables = sorted(uri for uri in fingerprints if uri.endswith(TABLE_SUFFIXES))

    def named(prefixes: tuple[str, ...]) -> str:
        return next((uri for uri in tables if uri.rsplit("/", 1)[-1].startswith(prefixes)), "")

    return named(KEYPOINTS_PREFIXES), named(FER_PREFIXES)


def new_data_trigger(current: dict[str, str], seen: dict[str, str]) -> Trigger | None:
    changed = sorted(uri for uri, fingerprint in current.items() if seen.get(uri) != fingerprint)
    if not changed:
        return None
    names = ", ".join(uri.rsplit("/", 1)[-1] for uri in changed)
    return Trigger("new_data", f"new data: {names}", {"changed_files": float(len(changed))})


def drift_trigger(report: DriftReport | None) -> Trigger | None:
    if report is None or not report.drifted:
        return None
    metrics = {
        "drift.pixel_psi": report.pixel_psi,
        "drift.brightness_ks": report.brightness_ks,
        "drift.class_mix_psi": report.class_mix_psi,
        "drift.faces": float(report.faces),
    }
    return Trigger(
        "drift",
        f"drift of served faces ({report.faces} sampled): {', '.join(report.reasons)}",
        metrics,
    )


def schedule_trigger(cron: str, anchor: float, now: float) -> Trigger | None:
    """Fires when a cron time has passed since `anchor` (the last fire, or when watching began)."""
    due = croniter(cron, anchor).get_next(float)
    return (
        Trigger(
            "schedule",
            f"schedule: {cron} was due at {time.strftime('%Y-%m-%d %H:%M', time.localtime(due))}",
        )
        if due <= now
        else None
    )


class Launcher(Protocol):
    def launch(self, reason: str, keypoints_source: str, fer_source: str) -> str:
        """Starts a pipeline run; returns what was started. Raises if it could not."""


@dataclass(frozen=True)
class LocalLauncher:
    """`emotion-ai run` on this machine, waiting for it to finish."""

    state_dir: Path
    run_arguments: tuple[str, ...] = ()

    def launch(self, reason: str, keypoints_source: str, fer_source: str) -> str:
        command = [
            sys.executable,
            "-m",
            "emotion_ai",
            "run",
            "--state-dir",
            str(self.state_dir),
            "--trigger",
            reason,
            "--keypoints-csv",
            keypoints_source,
            "--fer-csv",
            fer_source,
            *self.run_arguments,
        ]
        subprocess.run(command, check=True)
        return "local pipeline run finished"


@dataclass(frozen=True)
class KfpLauncher:
    """One run on Kubeflow Pipelines (the cluster runs it; this returns once it is submitted)."""

    submit: Callable[[list[str]], str]
    """Submits one run with these `name=value` parameters and returns its id
    (`pipelines.remote.Cluster.submit`,
    handed in by the CLI: the library never imports the top-level `pipelines`)."""
    parameters: tuple[str, ...]

    def launch(self, reason: str, keypoints_source: str, fer_source: str) -> str:
        sources = [f"keypoints_source={keypoints_source}", f"fer_source={fer_source}"]
        run_id = self.submit([*self.parameters, *sources, f"trigger={reason}"])
        return f"KFP run {run_id}"


@dataclass(frozen=True)
class CommandLauncher:
    """Any shell command, told the reason and sources in EMOTION_AI_* environment variables."""

    command: str

    def launch(self, reason: str, keypoints_source: str, fer_source: str) -> str:
        environment = {
            **os.environ,
            "EMOTION_AI_TRIGGER": reason,
            "EMOTION_AI_KEYPOINTS_CSV": keypoints_source,
            "EMOTION_AI_FER_CSV": fer_source,
        }
        subprocess.run(self.command, shell=True, check=True, env=environment)
        return f"command finished: {self.command}"


@dataclass(frozen=True)
class WatchSettings:
    state_dir: Path
    """The watcher's state and lock live in STATE_DIR/watch."""
    data_uri: str = ""
    request_log: Path | None = None
    reference_profile: dict | None = None
    """The emotion data profile written at ingestion; drift is not checked without one."""
    schedule: str = ""
    debounce_seconds: float = 600.0
    thresholds: DriftThresholds = DriftThresholds()

    def __post_init__(self) -> None:
        if not self.data_uri or scheme(self.data_uri) is Scheme.S3:
            return
        if self.state_dir.resolve().is_relative_to(Path(self.data_uri).resolve()):
            raise ValueError(
                f"the state folder {self.state_dir} is inside the watched data folder "
                f"{self.data_uri}: every run's own files would look like new data and start the "
                "next run; keep the state folder (--state-dir) outside it"
            )


@dataclass(frozen=True)
class CheckOutcome:
    triggers: list[Trigger]
    launched: str = ""
    """What was started; empty when nothing fired, the run was deferred, or another one holds the
    lock."""
    note: str = ""


class Watcher:
    def __init__(
        self, settings: WatchSettings, launcher: Launcher, tracking: TrackingSettings
    ) -> None:
        self.settings, self.launcher, self.tracking = settings, launcher, tracking
        self.folder = settings.state_dir / "watch"
        self.folder.mkdir(parents=True, exist_ok=True)

    def check_once(self, now: float | None = None) -> CheckOutcome:
        """Checks every trigger and launches at most one run for all that fired."""
        try:
            with FileLock(self.folder / LOCK_FILE, timeout=0):
                return self._check(time.time() if now is None else now)
        except Timeout:
            return CheckOutcome([], note="another triggered run is in progress")

    def _check(self, now: float) -> CheckOutcome:
        state = WatchState.load(self.folder / STATE_FILE)
        state.schedule_anchor = state.schedule_anchor or now
        fingerprints = data_fingerprints(self.settings.data_uri) if self.settings.data_uri else {}
        samples = (
            read_samples(self.settings.request_log, state.request_log_offset)
            if self.settings.request_log
            else None
        )
        report = (
            detect_drift(self.settings.reference_profile, samples, self.settings.thresholds)
            if samples is not None and self.settings.reference_profile is not None
            else None
        )
        if report is not None:
            state.request_log_offset = samples.end_offset
        triggers = [
            trigger
            for trigger in (
                new_data_trigger(fingerprints, state.fingerprints),
                drift_trigger(report),
                schedule_trigger(self.settings.schedule, state.schedule_anchor, now)
                if self.settings.schedule
                else None,
            )
            if trigger
        ]
        if not triggers:
            state.save(self.folder / STATE_FILE)
            return CheckOutcome([])
        if now - state.last_launch < self.settings.debounce_seconds:
            return CheckOutcome(
                triggers,
                note=f"deferred: the last run started less than "
                f"{self.settings.debounce_seconds:.0f} s ago",
            )
        reason = "; ".join(trigger.reason for trigger in triggers)
        state.last_launch = now
        state.save(self.folder / STATE_FILE)
        launched = self._launch(triggers, reason, fingerprints)
        state.fingerprints = fingerprints
        if any(trigger.kind == "schedule" for trigger in triggers):
            state.schedule_anchor = now
        state.save(self.folder / STATE_FILE)
        return CheckOutcome(triggers, launched)

    def _launch(self, triggers: list[Trigger], reason: str, fingerprints: dict[str, str]) -> str:
        """Logs the trigger run to MLflow, then launches; the trigger run fails if the launch
        does."""
        keypoints_source, fer_source = data_sources(fingerprints)
        use_tracking(self.tracking)
        with mlflow.start_run(
            run_name=f"trigger: {', '.join(t.kind for t in triggers)}",
            tags={TRIGGER_TAG: reason, "emotion_ai.step": "watch"},
        ):
            mlflow.log_params(
                {
                    "kinds": ",".join(t.kind for t in triggers),
                    "keypoints_source": keypoints_source,
                    "fer_source": fer_source,
                }
            )
            mlflow.log_metrics(
                {name: value for trigger in triggers for name, value in trigger.metrics.items()}
            )
            launched = self.launcher.launch(reason, keypoints_source, fer_source)
            mlflow.set_tag("emotion_ai.launched", launched)
        return launched
