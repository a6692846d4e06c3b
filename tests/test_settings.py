"""Every default is stated once, in emotion_ai.settings: the CLI options, the KFP pipeline's
parameters and the MLproject entry points must all agree with it."""

import inspect

import pytest
import typer
import yaml

from emotion_ai.cli import app
from emotion_ai.cli.mlproject import mlproject
from emotion_ai.settings import (
    DEFAULT_DEPTH,
    DEFAULT_WIDTH,
    RECIPE_FIELDS,
    BatchSettings,
    GateSettings,
    ReleaseSettings,
    RequestLimits,
    ServingOptions,
    SourceSettings,
    SplitSettings,
    TrainSettings,
    ValidationSettings,
)
from pipelines.pipeline import emotion_ai_pipeline

DEFAULTS = {
    "epochs": TrainSettings.epochs,
    "batch_size": TrainSettings.batch_size,
    "learning_rate": TrainSettings.learning_rate,
    "width": DEFAULT_WIDTH,
    "depth": DEFAULT_DEPTH,
    **{name: getattr(TrainSettings, name) for name in RECIPE_FIELDS},
    "seed": SourceSettings.seed,
    "synthetic_rows": SourceSettings.synthetic_rows,
    "val_fraction": SplitSettings.val_fraction,
    "test_fraction": SplitSettings.test_fraction,
    "split_by_usage": SplitSettings.use_fer_usage,
    "min_rows_per_class": ValidationSettings.min_rows_per_class,
    "max_duplicate_rate": ValidationSettings.max_duplicate_rate,
    "max_keypoint_rmse_px": GateSettings.max_keypoint_rmse_px,
    "min_emotion_accuracy": GateSettings.min_emotion_accuracy,
    "significance": GateSettings.significance,
    "keep_versions": ReleaseSettings.keep_versions,
    "num_versions": ServingOptions.num_versions,
    "max_refresh_failure_seconds": ServingOptions.max_refresh_failure_seconds,
    "max_batch_size": BatchSettings.max_batch_size,
    "batch_timeout_micros": BatchSettings.batch_timeout_micros,
    "num_batch_threads": BatchSettings.num_batch_threads,
    **{
        name: getattr(RequestLimits, name)
        for name in (
            "max_body_bytes",
            "max_instances",
            "max_image_pixels",
            "max_request_pixels",
            "body_timeout_seconds",
        )
    },
}


def _commands(group, prefix=""):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_cli_option_takes_its_default_from_the_settings():
    checked = 0
    for name, command in _commands(typer.main.get_command(app)):
        for parameter in command.params:
            if parameter.name in DEFAULTS:
                assert parameter.default == DEFAULTS[parameter.name], f"{name} --{parameter.name}"
                checked += 1
    assert checked >= 40


def test_the_pipeline_parameters_take_their_defaults_from_the_settings():
    signature = inspect.signature(emotion_ai_pipeline.pipeline_func)
    shared = {name: p.default for name, p in signature.parameters.items() if name in DEFAULTS}
    assert len(shared) >= 15
    assert shared == {name: DEFAULTS[name] for name in shared}


def test_the_committed_mlproject_is_the_one_generated_from_the_settings():
    with open("MLproject") as handle:
        committed = handle.read()
    assert committed == mlproject(), "run `python -m emotion_ai.cli.mlproject > MLproject`"
    entry_points = yaml.safe_load(committed)["entry_points"]
    for entry_point in entry_points.values():
        for name, parameter in entry_point["parameters"].items():
            if name in DEFAULTS:
                assert yaml.safe_load(parameter["default"]) == pytest.approx(DEFAULTS[name]), name
