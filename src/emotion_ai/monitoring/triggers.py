"""Retraining triggers: new or changed data, drift of served faces, a schedule. Each says whether it
fires and why; `watcher.Watcher` checks them and launches the run (`launchers`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import mlflow
from croniter import croniter

from emotion_ai.data.formats import TABLE_SUFFIXES
from emotion_ai.monitoring.drift import DriftReport
from emotion_ai.steps.tracking import TrackingSettings, use_tracking

KEYPOINTS_PREFIXES = ("training",)
FER_PREFIXES = ("fer2013", "icml_face_data")


@dataclass(frozen=True)
class Trigger:
    kind: str
    """new_data, drift or schedule."""
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)


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
