"""A training (or data, gate, release) option is one settings field: every field, set to a value
other than its default, must reach the settings the step receives through every hop: the CLI, the
compiled pipeline YAML and the component. Defaults are stated once, in emotion_ai.settings."""

from __future__ import annotations

import json
from dataclasses import Field, fields, is_dataclass, replace
from pathlib import Path
from typing import get_type_hints

import pytest
import yaml
from typer.testing import CliRunner

from components.evaluate import evaluate
from components.ingest import ingest
from components.register import register
from components.train_emotion import train_emotion
from components.train_keypoints import train_keypoints
from components.validate import validate
from emotion_ai.cli import app
from emotion_ai.cli.mlproject import mlproject
from emotion_ai.cli.settings_options import flag, unique_option_fields
from emotion_ai.settings import (
    PIPELINE_SETTINGS,
    RequestLimits,
    ServingOptions,
    TrainSettings,
)
from emotion_ai.settings_json import SettingsError, settings_from_json, settings_to_json
from pipelines.compile import compile_pipeline


def _changed(value: object, item: Field) -> object:
    """A valid value other than `value` for the field `item`."""
    name, choices = item.name, item.metadata.get("choices")
    if isinstance(value, bool):
        return not value
    if choices:
        return next(choice for choice in choices if choice != value)
    if isinstance(value, str):
        return f"/data/{name}.csv"
    if isinstance(value, int):
        return value + 1
    return round(value - 0.01 if value >= 1 else value + 0.01, 6)  # 1.0 may be a bound


def non_default(cls: type) -> object:
    """`cls` with every option field changed from its default (nested settings alike)."""
    hints = get_type_hints(cls)
    values = {}
    for item in fields(cls):
        if is_dataclass(hints[item.name]):
            values[item.name] = non_default(hints[item.name])
        elif "help" in item.metadata:
            values[item.name] = _changed(getattr(cls(), item.name), item)
    return cls(**values)


CHANGED = {name: non_default(cls) for name, cls in PIPELINE_SETTINGS.items()}
"""Every pipeline settings object with every field changed. The options `--seed` sets several
fields alike; they are changed alike here."""


def _leaves(settings: object) -> dict[str, object]:
    """Field name -> value over a settings object and its nested settings."""
    leaves = {}
    for item in fields(settings):
        value = getattr(settings, item.name)
        leaves.update(_leaves(value) if is_dataclass(value) else {item.name: value})
    return leaves


def _command_line(changed: dict[str, object]) -> list[str]:
    """The options that set every field of the `changed` settings objects to its value there."""
    values = {k: v for settings in changed.values() for k, v in _leaves(settings).items()}
    arguments = []
    for item, hint, _ in unique_option_fields(*(type(settings) for settings in changed.values())):
        value = values[item.name]
        if hint is bool:
            arguments.append(flag(item) if value else f"--no-{flag(item)[2:]}")
        else:
            arguments += [flag(item), str(value)]
    return arguments


def test_every_field_is_an_option_or_says_why_not():
    """Adding a field with help text (`settings.option`) makes it an option everywhere; a field
    without help would silently stay at its default."""
    for cls in PIPELINE_SETTINGS.values():
        hints = get_type_hints(cls)
        for item in fields(cls):
            assert is_dataclass(hints[item.name]) or "help" in item.metadata, item.name


def test_the_cli_hands_every_field_to_the_pipeline(monkeypatch, tmp_path):
    captured = {}

    class Captured(Exception):
        pass

    def run_local(pipeline_root, **arguments):
        captured.update(arguments)
        raise Captured

    monkeypatch.setattr("pipelines.local_runner.run_local", run_local)
    result = CliRunner().invoke(
        app, ["run", *_command_line(CHANGED), "--state-dir", str(tmp_path / "state")]
    )
    assert isinstance(result.exception, Captured), result.output
    for name, cls in PIPELINE_SETTINGS.items():
        assert settings_from_json(cls, captured[name]) == CHANGED[name], name


def test_serve_hands_every_serving_option_to_the_server(monkeypatch, tmp_path):
    changed = {"options": non_default(ServingOptions), "limits": non_default(RequestLimits)}
    captured = {}

    class Captured(Exception):
        pass

    def serve_models(base_path, host, rest_api_port, **arguments):
        captured.update(arguments)
        raise Captured

    monkeypatch.setattr("emotion_ai.serving.server.serve_models", serve_models)
    result = CliRunner().invoke(
        app,
        ["serve", *_command_line(changed), "--rest-api-port", "0", "--port", "0"]
        + ["--state-dir", str(tmp_path / "state")],
    )
    assert isinstance(result.exception, Captured), result.output
    assert {name: captured[name] for name in changed} == changed


def test_the_compiled_pipeline_declares_and_passes_every_settings_parameter(tmp_path):
    package = yaml.safe_load(compile_pipeline(tmp_path / "pipeline.yaml").read_text())
    declared = package["root"]["inputDefinitions"]["parameters"]
    tasks = package["root"]["dag"]["tasks"]
    consumers = {
        "sources": ["ingest"],
        "split": ["validate"],
        "validation": ["validate"],
        "training": ["train-keypoints", "train-emotion"],
        "gate": ["evaluate"],
        "release": ["register"],
    }
    for name, cls in PIPELINE_SETTINGS.items():
        assert settings_from_json(cls, declared[name]["defaultValue"]) == cls(), name
        for task in consumers[name]:
            given = tasks[task]["inputs"]["parameters"][name]
            assert given == {"componentInputParameter": name}, (task, name)


class _Artifact:
    def __init__(self, path: Path) -> None:
        self.path = str(path)


def _run_component(component, monkeypatch, tmp_path, module: str, step: str, **settings_json):
    """Calls the component's Python function as KFP's executor would; returns the settings objects
    its library call received."""
    received = []

    def capture(*arguments, **keywords):
        received.extend(a for a in [*arguments, *keywords.values()] if is_dataclass(a))
        return "run-id"

    monkeypatch.setattr(f"emotion_ai.steps.{module}.{step}", capture)
    monkeypatch.setattr("components.arguments.step_context", lambda arguments: None)
    function = component.python_func
    given = {
        **dict.fromkeys(("tracking_uri", "experiment_name", "artifact_location"), ""),
        **{"parent_run_id": "", "cache_root": "", "trigger": "manual", "model_base_path": ""},
        **{"checkpoint_root": "", "resume": False},
        **settings_json,
    }
    names = function.__code__.co_varnames[: function.__code__.co_argcount]
    function(**{name: given.get(name, _Artifact(tmp_path / name)) for name in names})
    return [r for r in received if type(r) in PIPELINE_SETTINGS.values()]


@pytest.mark.parametrize(
    "component, module, step, names",
    [
        (ingest, "data_steps", "ingest", ["sources"]),
        (validate, "data_steps", "validate", ["split", "validation"]),
        (train_keypoints, "train", "train", ["training"]),
        (train_emotion, "train", "train", ["training"]),
        (evaluate, "evaluate", "evaluate", ["gate"]),
        (register, "register", "register", ["release"]),
    ],
)
def test_each_component_hands_its_step_every_field(
    component, module, step, names, monkeypatch, tmp_path
):
    settings_json = {name: settings_to_json(CHANGED[name]) for name in names}
    received = _run_component(component, monkeypatch, tmp_path, module, step, **settings_json)
    assert received == [CHANGED[name] for name in names]


def test_a_settings_parameter_missing_a_field_is_an_error_naming_it():
    complete = json.loads(settings_to_json(TrainSettings()))
    del complete["network"]["input_pool"]
    with pytest.raises(
        SettingsError, match=r"TrainSettings\.network: missing field\(s\) \['input_pool'\]"
    ):
        settings_from_json(TrainSettings, json.dumps(complete))
    with pytest.raises(SettingsError, match="epochs"):
        settings_from_json(
            TrainSettings, settings_to_json(TrainSettings()).replace('"epochs": 5', '"epochs": "5"')
        )
    with pytest.raises(SettingsError, match="unknown field"):
        settings_from_json(
            TrainSettings,
            json.dumps({**json.loads(settings_to_json(TrainSettings())), "dropout": 0.5}),
        )


def test_a_value_the_settings_refuse_is_a_usage_error_naming_it(tmp_path):
    result = CliRunner().invoke(
        app, ["run", "--head-dropout", "1.5", "--state-dir", str(tmp_path / "state")]
    )
    assert result.exit_code == 2 and "head_dropout 1.5" in result.output


def test_the_committed_mlproject_is_the_one_generated_from_the_settings():
    committed = (Path(__file__).resolve().parent.parent / "MLproject").read_text()
    assert committed == mlproject(), "run `make mlproject`"
    entry_points = yaml.safe_load(committed)["entry_points"]
    training = entry_points["train_emotion"]["parameters"]
    assert {item.name for item, _, _ in unique_option_fields(TrainSettings)} <= set(training)
    assert (
        yaml.safe_load(training["input_pool"]["default"])
        == replace(TrainSettings()).network.input_pool
    )


def test_each_model_takes_the_training_settings_less_the_other_models_own_fields():
    settings = TrainSettings(label_smoothing=0.1, keypoint_head="heatmap", epochs=7)
    keypoints, emotion = settings.for_model("keypoints"), settings.for_model("emotion")
    assert (keypoints.label_smoothing, keypoints.keypoint_head, keypoints.epochs) == (
        0.0,
        "heatmap",
        7,
    )
    assert (emotion.label_smoothing, emotion.keypoint_head, emotion.epochs) == (0.1, "pooled", 7)
    with pytest.raises(ValueError, match="'emotions' is not one of"):
        settings.for_model("emotions")


def test_the_keypoint_model_trains_its_own_epochs_when_given():
    settings = TrainSettings(epochs=7, keypoint_epochs=12)
    keypoints, emotion = settings.for_model("keypoints"), settings.for_model("emotion")
    assert (keypoints.epochs, keypoints.keypoint_epochs) == (12, 0)
    assert (emotion.epochs, emotion.keypoint_epochs) == (7, 0)
    assert TrainSettings(epochs=7).for_model("keypoints") == replace(keypoints, epochs=7)
    with pytest.raises(ValueError, match="keypoint_epochs -1 must be 0"):
        TrainSettings(keypoint_epochs=-1)
