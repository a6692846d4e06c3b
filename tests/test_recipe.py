"""The training recipe's parts: test-time flip averaging, mixup, the warm-up + cosine schedule, EMA
and label smoothing, each doing what it says and training end to end."""

from __future__ import annotations

import re
from dataclasses import replace

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

from emotion_ai.cli import app
from emotion_ai.data.datasets import FaceDataset
from emotion_ai.data.synthetic import synthetic_faces
from emotion_ai.faces import EMOTIONS
from emotion_ai.modeling.input_pipeline import mixup
from emotion_ai.modeling.networks import build_emotion_model, with_flip_averaging
from emotion_ai.modeling.training import load_model, optimizer, save_model, train_emotion_model
from emotion_ai.release.model_repository import export_saved_model
from emotion_ai.settings import ResNetConfig, TrainSettings
from emotion_ai.steps.tracking import local_tracking, use_tracking

TINY = ResNetConfig(stem_filters=16, stage_filters=(16, 32), identity_blocks=1)


def test_flip_averaging_answers_the_mean_of_a_face_and_its_mirror_and_reloads_safely(tmp_path):
    model = build_emotion_model(TINY)
    averaged = with_flip_averaging(model)
    faces = np.random.default_rng(0).uniform(0, 255, (3, 96, 96, 1)).astype(np.float32)
    expected = (model.predict(faces, verbose=0) + model.predict(faces[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(averaged.predict(faces, verbose=0), expected, atol=1e-6)
    assert averaged.output_names == ["emotion"] and averaged.name == "emotion"
    reloaded = load_model(save_model(averaged, tmp_path / "model").parent)
    np.testing.assert_allclose(reloaded.predict(faces, verbose=0), expected, atol=1e-6)
    export_saved_model(averaged, tmp_path / "serving", "emotion-ai-emotion", 1)
    served = tf.saved_model.load(str(tmp_path / "serving" / "emotion-ai-emotion" / "1"))
    answer = served.signatures["serving_default"](face=tf.constant(faces))
    np.testing.assert_allclose(answer["output_0"].numpy(), expected, atol=1e-5)


def test_mixup_blends_faces_and_targets_by_the_same_weight():
    tf.random.set_seed(0)
    faces = tf.constant(np.stack([np.zeros((4, 4, 1)), np.full((4, 4, 1), 100.0)]), tf.float32)
    targets = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    blended, mixed = mixup(faces, targets, alpha=0.4)
    np.testing.assert_allclose(tf.reduce_sum(mixed, axis=1), [1.0, 1.0], atol=1e-6)
    share_of_second = blended.numpy().mean(axis=(1, 2, 3)) / 100
    np.testing.assert_allclose(share_of_second, mixed.numpy()[:, 1], atol=1e-5)


def test_the_cosine_schedule_warms_up_then_decays_to_zero():
    settings = TrainSettings(epochs=10, learning_rate=1e-2, lr_schedule="cosine", warmup_epochs=2)
    adam = optimizer(settings, steps_per_epoch=5)

    def rate_at(step: int) -> float:
        adam.iterations.assign(step)
        return float(adam.learning_rate)

    assert rate_at(0) == pytest.approx(0.0)
    assert rate_at(10) == pytest.approx(1e-2), "the peak at the end of the warm-up"
    assert rate_at(30) < 1e-2 and rate_at(50) == pytest.approx(0.0, abs=1e-9)
    assert optimizer(replace(settings, ema_momentum=0.99), 5).use_ema


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule 'linear'"):
        TrainSettings(lr_schedule="linear")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"label_smoothing": 1.0}, "label_smoothing 1.0 must be at least 0 and below 1"),
        ({"ema_momentum": -0.1}, "ema_momentum -0.1 must be"),
        ({"mixup_alpha": -1.0}, "mixup_alpha -1.0 must be 0 (off) or positive"),
        ({"warmup_epochs": -2}, "warmup_epochs -2"),
    ],
)
def test_recipe_values_out_of_range_are_refused_naming_them(change, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        TrainSettings(**change)


def test_the_whole_recipe_trains_and_keeps_probabilities(tmp_path):
    labels = np.arange(40) % len(EMOTIONS)
    faces, _ = synthetic_faces(labels, np.random.default_rng(0))
    split = np.where(np.arange(40) < 30, 0, np.where(np.arange(40) < 35, 1, 2))
    dataset = FaceDataset(faces, labels, split, {"kind": "emotion"})
    settings = TrainSettings(
        epochs=2,
        batch_size=8,
        network=TINY,
        lr_schedule="cosine",
        warmup_epochs=1,
        ema_momentum=0.9,
        label_smoothing=0.1,
        mixup_alpha=0.2,
        flip_test_time=True,
    )
    use_tracking(local_tracking(tmp_path))
    try:
        with mlflow.start_run():
            trained = train_emotion_model(dataset, settings)
    finally:
        mlflow.set_tracking_uri(None)
    assert len(trained.history["val_accuracy"]) == 2
    assert "mirror" in [layer.name for layer in trained.model.layers], "flip averaging kept"
    probabilities = trained.model.predict(faces[:4, :, :, None].astype(np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert isinstance(trained.model.get_layer("mirror"), keras.layers.Layer)


def test_the_cli_refuses_an_unknown_schedule_before_running_anything(tmp_path):
    result = CliRunner().invoke(app, ["run", "--lr-schedule", "linear", "--state-dir", tmp_path])
    assert result.exit_code == 2 and "'linear' is not one of plateau, cosine" in result.output
    assert not (tmp_path / "mlflow.db").exists()


def test_run_refuses_a_bad_recipe_before_any_step_starts(tmp_path):
    result = CliRunner().invoke(
        app, ["run", "--label-smoothing", "1.5", "--state-dir", str(tmp_path / "state")]
    )
    assert result.exit_code == 2
    assert "label_smoothing 1.5 must be at least 0 and below 1" in result.output
    assert not (tmp_path / "state").exists(), "no MLflow run, no step"
