"""The watcher: checks every retraining trigger and launches at most one pipeline run for all that
fired.

`Watcher.check_once` holds a file lock for the whole launch, so that two watchers (or two triggers
at once) never start two runs; a run launched less than `debounce_seconds` ago defers new triggers
without consuming them. Drift is judged on the faces served since the last judgement. Every fired
check is logged to MLflow with its reason.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
from filelock import FileLock, Timeout

from emotion_ai.locations import location
from emotion_ai.monitoring.drift import DriftThresholds, detect_drift
from emotion_ai.monitoring.launchers import Launcher
from emotion_ai.monitoring.request_log import read_samples
from emotion_ai.monitoring.triggers import (
    Trigger,
    data_sources,
    drift_trigger,
    new_data_trigger,
    schedule_trigger,
)
from emotion_ai.steps.tracking import TRIGGER_TAG, TrackingSettings, use_tracking
from emotion_ai.storage import read_json, write_json

STATE_FILE = "state.json"
LOCK_FILE = "launch.lock"


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
        folder = location(self.data_uri).on_this_machine() if self.data_uri else None
        if folder is not None and self.state_dir.resolve().is_relative_to(folder.resolve()):
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
        data_uri = self.settings.data_uri
        fingerprints = location(data_uri).fingerprints() if data_uri else {}
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
