"""Models logged to MLflow 3 as logged models: named tensors, metadata, an input example, and the
keras flavour's folder bug worked around."""

from __future__ import annotations

from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from tiny_networks import SMALL as TINY

from emotion_ai.faces import EMOTIONS
from emotion_ai.modeling.logged_models import OUTPUT_METADATA, log_keras_model, model_summary
from emotion_ai.modeling.networks import build_emotion_model
from emotion_ai.settings import EMOTION_MODEL
from emotion_ai.steps.tracking import local_tracking, use_tracking

FACE = np.zeros((1, 96, 96, 1), np.float32)


@pytest.fixture
def tracking(tmp_path):
    use_tracking(local_tracking(tmp_path / "state"))
    yield
    mlflow.set_tracking_uri(None)


def test_a_logged_model_keeps_its_signature_example_and_class_names(tracking):
    model = build_emotion_model(TINY)
    with mlflow.start_run():
        logged = log_keras_model(model, FACE, EMOTION_MODEL, OUTPUT_METADATA[EMOTION_MODEL])
    info = mlflow.models.get_model_info(logged.model_uri)
    assert info.signature.inputs.input_names() == ["face"]
    assert info.signature.outputs.input_names() == ["emotion"]
    assert info.metadata["class_names"] == list(EMOTIONS)
    local = mlflow.artifacts.download_artifacts(logged.model_uri)
    example = mlflow.models.Model.load(local).load_input_example(local)
    assert np.asarray(example["face"]).shape == FACE.shape, "the example names its tensor"
    reloaded = mlflow.keras.load_model(logged.model_uri)
    np.testing.assert_allclose(reloaded.predict(FACE, verbose=0), model.predict(FACE, verbose=0))
    requirements = (Path(local) / "requirements.txt").read_text().split()
    assert f"keras=={keras.__version__}" in requirements, requirements
    assert any(line.startswith("tensorflow") for line in requirements), requirements


def test_mlflow_still_writes_the_input_example_before_the_model_folder(tracking):
    """When this fails, MLflow fixed its keras flavour: `log_keras_model` can call
    `mlflow.keras.log_model` directly and drop `_save_into_existing_folder`."""
    with mlflow.start_run(), pytest.raises(FileNotFoundError, match="input_example"):
        mlflow.keras.log_model(build_emotion_model(TINY), name="model", input_example=FACE)


def test_the_model_summary_is_not_cut_at_80_columns():
    summary = model_summary(build_emotion_model(TINY))
    assert "Connected to" in summary and "Total params" in summary
    assert max(len(line) for line in summary.splitlines()) > 100
