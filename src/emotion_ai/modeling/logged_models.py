"""Trained Keras models as MLflow 3 logged models: signature, input example, what the outputs
are, the run's source, the learning curves and the layer table."""

from __future__ import annotations

import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version

import keras
import mlflow
import numpy as np
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import Schema, TensorSpec

from emotion_ai.data.datasets import FaceDataset
from emotion_ai.faces import EMOTIONS, KEYPOINT_COLUMNS
from emotion_ai.modeling import plots
from emotion_ai.modeling.input_pipeline import as_model_input
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL, TrainSettings


@dataclass(frozen=True)
class LoggedModel:
    """A model logged to MLflow 3: its id and its `models:/<id>` URI."""

    model_id: str
    model_uri: str


def _save_into_existing_folder(path: str, **arguments) -> None:
    """`mlflow.keras.save_model`, with its folder made first: MLflow 3.17's keras flavour writes the
    input example into the folder before it creates it (FileNotFoundError);
    tests/test_logged_models.py tells when MLflow fixes it."""
    os.makedirs(path, exist_ok=True)
    mlflow.keras.save_model(path=path, **arguments)


KERAS_FLAVOR = types.SimpleNamespace(
    __name__=mlflow.keras.__name__, save_model=_save_into_existing_folder
)


def model_signature(model: keras.Model) -> ModelSignature:
    """Named float32 tensors: the input `face` (n, 96, 96, 1) and the model's named output."""
    inputs = [(tensor.name, tensor.shape) for tensor in model.inputs]
    outputs = [
        (name, tensor.shape) for tensor, name in zip(model.outputs, model.output_names, strict=True)
    ]
    return ModelSignature(_tensor_schema(inputs), _tensor_schema(outputs))


def _tensor_schema(tensors: list[tuple[str, tuple]]) -> Schema:
    return Schema(
        [TensorSpec(np.dtype("float32"), (-1, *shape[1:]), name) for name, shape in tensors]
    )


def log_keras_model(
    model: keras.Model,
    example: np.ndarray,
    name: str,
    metadata: dict | None = None,
    params: dict | None = None,
) -> LoggedModel:
    """Logs `model` to the active run as an MLflow logged model named `name`, with its signature,
    an input example and `metadata` (e.g. the class names of its output)."""
    info = Model.log(
        artifact_path=None,
        name=name,
        flavor=KERAS_FLAVOR,
        model=model,
        signature=model_signature(model),
        input_example=example,
        metadata=metadata,
        params=params,
        tags=_source_of_active_run(),
        pip_requirements=model_requirements(),
    )
    return LoggedModel(info.model_id, info.model_uri)


TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu")


@cache
def model_requirements() -> list[str]:
    """What a logged model needs to load: Keras and TensorFlow, pinned to the versions that made
    it. Given rather than inferred: MLflow infers them by loading the model in a process of its own,
    5 s for each model logged."""
    installed = [name for name in TENSORFLOW_DISTRIBUTIONS if _installed(name)]
    return [f"{name}=={version(name)}" for name in ("keras", *installed[:1])]


def _installed(distribution: str) -> bool:
    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


SOURCE_TAGS = ("mlflow.source.name", "mlflow.source.type", "mlflow.source.git.commit")


def _source_of_active_run() -> dict[str, str]:
    """The run's source and commit, so the Models tab says where a model came from (else the
    process's script, `executor_main.py` under KFP)."""
    tags = mlflow.active_run().data.tags
    return {key: tags[key] for key in SOURCE_TAGS if key in tags}


OUTPUT_METADATA = {
    KEYPOINT_MODEL: {
        "output": "keypoints",
        "coordinate_names": list(KEYPOINT_COLUMNS),
        "unit": "px",
    },
    EMOTION_MODEL: {"output": "emotion", "class_names": list(EMOTIONS)},
}
"""What the output's columns are, stored in each logged model's MLmodel file."""


SUMMARY_WIDTH = 140
"""Columns of `model_summary.txt`: wide enough for Keras's 'Connected to' column."""


def model_summary(model: keras.Model) -> str:
    """Keras's layer table, whole: Keras draws it with rich, which cuts it at the terminal width
    (80 columns when there is no terminal) unless COLUMNS says otherwise."""
    lines: list[str] = []
    with _environment("COLUMNS", str(SUMMARY_WIDTH)):
        model.summary(line_length=SUMMARY_WIDTH, print_fn=lambda line, *_, **__: lines.append(line))
    return "\n".join(lines)


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """The environment variable `name` set to `value` for the block, as it was afterwards."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved


def log_trained_model(
    model: keras.Model,
    dataset: FaceDataset,
    name: str,
    history: dict[str, list[float]],
    settings: TrainSettings,
) -> LoggedModel:
    """Logs a trained model with its learning curves and layer table to the active run."""
    mlflow.log_figure(plots.learning_curves(history, name), "plots/learning_curves.png")
    mlflow.log_text(model_summary(model), "model_summary.txt")
    return log_keras_model(
        model,
        as_model_input(dataset.images[:1]),
        name,
        OUTPUT_METADATA[name],
        settings.as_params(),
    )
