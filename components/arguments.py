"""Turns a component's flat KFP parameters (KFP passes only primitives and artifacts) into the
library's settings objects, so each component body is one library call."""

from __future__ import annotations

from pathlib import Path

from emotion_ai.logs import configure_logging
from emotion_ai.settings import TrainSettings
from emotion_ai.steps import model_steps
from emotion_ai.steps.supervision import end_with_supervisor
from emotion_ai.steps.tracking import StepContext, TrackingSettings


def step_context(arguments: dict) -> StepContext:
    """The tracking settings and parent run every component receives (and logging for the step's
    process)."""
    configure_logging()
    end_with_supervisor()
    tracking = TrackingSettings(
        arguments["tracking_uri"], arguments["experiment_name"], arguments["artifact_location"]
    )
    return StepContext(tracking, arguments["parent_run_id"])


def train(step: str, arguments: dict) -> None:
    """Both training components: `arguments` are the component's own parameters."""
    settings = TrainSettings.scaled(
        *(
            arguments[name]
            for name in ("epochs", "batch_size", "learning_rate", "seed", "width", "depth")
        )
    )
    control = model_steps.TrainControl(
        arguments["cache_root"], arguments["checkpoint_root"], arguments["resume"]
    )
    model_steps.train(
        step,
        Path(arguments["data"].path),
        Path(arguments["model"].path),
        settings,
        step_context(arguments),
        control,
    )
