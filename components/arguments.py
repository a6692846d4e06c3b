"""What every component shares: its flat KFP parameters (KFP passes only primitives and artifacts)
turned into the library's settings objects, so each component body is one library call, and the
set-up of the step's process."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TypeVar

from emotion_ai.logs import configure_logging
from emotion_ai.settings import TrainSettings
from emotion_ai.settings_json import settings_from_json
from emotion_ai.steps.supervision import end_with_supervisor
from emotion_ai.steps.tracking import StepContext, TrackingSettings

Settings = TypeVar("Settings")


def settings(cls: type[Settings], text: str) -> Settings:
    """The settings object a settings parameter carries (every field required, each of its
    type)."""
    return settings_from_json(cls, text)


def step_context(arguments: dict) -> StepContext:
    """The tracking settings and parent run every component receives (and logging for the step's
    process)."""
    configure_logging()
    end_with_supervisor()
    tracking = TrackingSettings(
        arguments["tracking_uri"], arguments["experiment_name"], arguments["artifact_location"]
    )
    return StepContext(tracking, arguments["parent_run_id"])


def remove_program_folder_at_exit() -> None:
    """KFP's lightweight command writes the component to `$(mktemp -d)/ephemeral_component.py` and
    never removes that folder: this process removes it when it exits."""
    if "--component_module_path" not in sys.argv[:-1]:
        return
    module = Path(sys.argv[sys.argv.index("--component_module_path") + 1])
    folder = module.parent
    if folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith("tmp."):
        atexit.register(shutil.rmtree, folder, True)


def train(step: str, arguments: dict) -> None:
    """Both training components: `arguments` are the component's own parameters. TensorFlow is
    imported here, not with this module: the data steps' processes start 4 s sooner without it."""
    from emotion_ai.steps import train as train_step

    training = settings(TrainSettings, arguments["training"])
    control = train_step.TrainControl(
        arguments["cache_root"], arguments["checkpoint_root"], arguments["resume"]
    )
    train_step.train(
        step,
        Path(arguments["data"].path),
        Path(arguments["model"].path),
        training,
        step_context(arguments),
        control,
    )
