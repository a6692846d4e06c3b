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
from tiny_networks import SMALL as TINY
from typer.testing import CliRunner

from emotion_ai.cli import app
from emotion_ai.data.datasets import TRAIN, VAL, FaceDataset
from emotion_ai.data.synthetic import MEAN_KEYPOINTS, synthetic_faces
from emotion_ai.faces import EMOTIONS
from emotion_ai.modeling.input_pipeline import emotion_augmentation, mixup
from emotion_ai.modeling.networks import (
    build_emotion_model,
    build_keypoint_model,
    mirror_keypoints,
    with_flip_averaging,
)
from emotion_ai.modeling.persistence import load_model, save_model
from emotion_ai.modeling.training import optimizer, train_emotion_model, train_keypoint_model
from emotion_ai.release.model_repository import export_saved_model
from emotion_ai.serving.engines import choose_engine
from emotion_ai.settings import AugmentSettings, TrainSettings
from emotion_ai.steps.tracking import local_tracking, use_tracking


def _flip_averaging_cases() -> dict:
    """Per model: the untrained model (seeded; keypoint head given random weights, so faces matter)
    and how its answer on a mirrored face maps back onto the face."""
    keras.utils.set_random_seed(0)
    keypoints = build_keypoint_model(TINY, MEAN_KEYPOINTS.reshape(-1))
    head = keypoints.get_layer("keypoints_centred")
    head.kernel.assign(np.random.default_rng(1).normal(0, 0.05, head.kernel.shape))
    return {
        "emotion": (build_emotion_model(TINY), lambda answer: answer),
        "keypoints": (keypoints, lambda answer: mirror_keypoints(answer).numpy()),
    }


def _lopsided_faces() -> np.ndarray:
    """Noise fading from the right edge to black at the left: a face unlike its mirror image
    (plain noise is as much like its mirror as an untrained network can tell)."""
    noise = np.random.default_rng(0).uniform(0, 255, (3, 96, 96, 1)).astype(np.float32)
    return noise * np.linspace(0, 1, 96, dtype=np.float32)[None, None, :, None]


@pytest.mark.parametrize("output", ["emotion", "keypoints"])
def test_flip_averaging_answers_the_mean_of_a_face_and_its_mirror_and_reloads_safely(
    tmp_path, output
):
    model, onto_face = _flip_averaging_cases()[output]
    averaged = with_flip_averaging(model)
    faces = _lopsided_faces()
    plain = model.predict(faces, verbose=0)
    expected = (plain + onto_face(model.predict(faces[:, :, ::-1], verbose=0))) / 2
    assert not np.allclose(expected, plain, atol=1e-3), "the mirror image changes the answer"
    np.testing.assert_allclose(averaged.predict(faces, verbose=0), expected, atol=1e-4)
    assert averaged.output_names == [output] and averaged.name == output
    reloaded = load_model(save_model(averaged, tmp_path / "model").parent)
    np.testing.assert_allclose(reloaded.predict(faces, verbose=0), expected, atol=1e-4)
    version = tmp_path / "serving" / f"emotion-ai-{output}" / "1"
    export_saved_model(averaged, tmp_path / "serving", f"emotion-ai-{output}", 1)
    served = tf.saved_model.load(str(version))
    answer = served.signatures["serving_default"](face=tf.constant(faces))
    np.testing.assert_allclose(answer["output_0"].numpy(), expected, atol=1e-4)
    engine = choose_engine("openvino", version, [faces])
    assert engine.engine.name == "openvino", engine.reason


def test_mixup_blends_faces_and_targets_by_the_same_weight():
    tf.random.set_seed(0)
    faces = tf.constant(np.stack([np.zeros((4, 4, 1)), np.full((4, 4, 1), 100.0)]), tf.float32)
    targets = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    blended, mixed = mixup(faces, targets, alpha=0.4)
    np.testing.assert_allclose(tf.reduce_sum(mixed, axis=1), [1.0, 1.0], atol=1e-6)
    share_of_second = blended.numpy().mean(axis=(1, 2, 3)) / 100
    np.testing.assert_allclose(share_of_second, mixed.numpy()[:, 1], atol=1e-5)


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_random_erasing_puts_a_noise_rectangle_on_its_share_of_faces(share):
    still = AugmentSettings(rotation_degrees=0, shift_px=0, scale=0, brightness=0, contrast=0)
    augment = emotion_augmentation(still, random_erasing=share)
    faces, _ = augment(tf.fill((16, 48, 48, 1), 100.0), tf.zeros(16, tf.int32))
    erased = (faces.numpy() != 100).reshape(16, -1).mean(axis=1)
    assert faces.shape == (16, 96, 96, 1)
    if share == 0:
        assert not erased.any()
    else:
        assert (erased > 0.01).all() and (erased < 0.45).all(), erased


def test_dropout_changes_answers_while_training_only():
    keras.utils.set_random_seed(0)
    model = build_emotion_model(TINY, head_dropout=0.5)
    faces = _lopsided_faces()
    served = model(faces, training=False).numpy()
    np.testing.assert_array_equal(model(faces, training=False).numpy(), served)
    assert not np.allclose(model(faces, training=True).numpy(), served, atol=1e-4)


def test_each_dropout_is_its_own_layer_at_its_own_rate():
    model = build_emotion_model(replace(TINY, feature_dropout=0.3), head_dropout=0.5)
    assert model.get_layer("feature_dropout").rate == 0.3
    assert model.get_layer("head_dropout").rate == 0.5
    assert build_keypoint_model(replace(TINY, feature_dropout=0.1)).get_layer(
        "feature_dropout"
    ).rate == pytest.approx(0.1)
    assert "head_dropout" not in [layer.name for layer in build_emotion_model(TINY).layers]


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


def test_weight_decay_shrinks_each_weight_by_the_rate_times_the_decay():
    settings = TrainSettings(learning_rate=1e-2, lr_schedule="plateau", weight_decay=0.5)
    weight = keras.Variable(np.full((3,), 2.0, dtype="float32"))
    optimizer(settings, steps_per_epoch=5).apply_gradients([(np.zeros(3, "float32"), weight)])
    assert np.allclose(weight.numpy(), 2.0 * (1 - 1e-2 * 0.5)), "a zero gradient still decays"


def test_an_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule 'linear'"):
        TrainSettings(lr_schedule="linear")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"label_smoothing": 1.0}, "label_smoothing 1.0 must be at least 0 and below 1"),
        ({"ema_momentum": -0.1}, "ema_momentum -0.1 must be"),
        ({"mixup_alpha": -1.0}, "mixup_alpha -1.0 must be 0 (off) or positive"),
        ({"weight_decay": -0.1}, "weight_decay -0.1 must be 0 (off) or positive"),
        ({"random_erasing": 1.5}, "random_erasing 1.5 must be a share from 0 to 1"),
        ({"class_weight_power": 2.0}, "class_weight_power 2.0 must be from 0 to 1"),
        ({"head_dropout": 1.0}, "head_dropout 1.0 must be at least 0 and below 1"),
        ({"precision": "float8"}, "precision 'float8' is not one of"),
        ({"keypoint_head": "dense"}, "keypoint_head 'dense' is not one of"),
        ({"warmup_epochs": -2}, "warmup_epochs -2"),
    ],
)
def test_recipe_values_out_of_range_are_refused_naming_them(change, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        TrainSettings(**change)


SPLIT = np.where(np.arange(40) < 30, 0, np.where(np.arange(40) < 35, 1, 2))
"""30 training, 5 validation and 5 test faces."""


def _train_tracked(train, dataset: FaceDataset, settings: TrainSettings, tmp_path):
    use_tracking(local_tracking(tmp_path))
    try:
        with mlflow.start_run():
            return train(dataset, settings)
    finally:
        mlflow.set_tracking_uri(None)


def test_the_whole_recipe_trains_keeps_probabilities_and_trains_the_same_model_again(tmp_path):
    """Trained twice on one seed: the first weights follow the seed, and every random draw of the
    augmentation, mixup and erasing comes in the same order (tests/test_input_pipeline.py)."""
    labels = np.arange(40) % len(EMOTIONS)
    faces, _ = synthetic_faces(labels, np.random.default_rng(0))
    dataset = FaceDataset(faces, labels, SPLIT, {"kind": "emotion"})
    settings = TrainSettings(
        epochs=2,
        batch_size=8,
        network=TINY,
        lr_schedule="cosine",
        warmup_epochs=1,
        ema_momentum=0.9,
        label_smoothing=0.1,
        mixup_alpha=0.2,
        random_erasing=0.5,
        head_dropout=0.5,
        flip_test_time=True,
    )
    trained = _train_tracked(train_emotion_model, dataset, settings, tmp_path)
    assert len(trained.history["val_accuracy"]) == 2
    assert "mirror" in [layer.name for layer in trained.model.layers], "flip averaging kept"
    probabilities = trained.model.predict(faces[:4, :, :, None].astype(np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert isinstance(trained.model.get_layer("mirror"), keras.layers.Layer)
    again = _train_tracked(train_emotion_model, dataset, settings, tmp_path).model
    np.testing.assert_array_equal(
        again.predict(faces[:4, :, :, None].astype(np.float32), verbose=0), probabilities
    )


def test_without_validation_faces_the_recipe_trains_every_epoch_on_the_rest(tmp_path):
    """`--val-fraction 0`, the advice for small data sets: the validation faces are trained on,
    and the schedule, not a validation loss, says when training ends."""
    labels = np.arange(40) % len(EMOTIONS)
    faces, _ = synthetic_faces(labels, np.random.default_rng(0))
    split = np.where(SPLIT == VAL, TRAIN, SPLIT)
    dataset = FaceDataset(faces, labels, split, {"kind": "emotion"})
    settings = TrainSettings(
        epochs=3, batch_size=8, network=TINY, lr_schedule="cosine", warmup_epochs=1
    )
    trained = _train_tracked(train_emotion_model, dataset, settings, tmp_path)
    assert len(trained.history["loss"]) == 3
    assert not [name for name in trained.history if name.startswith("val_")]


@pytest.mark.parametrize("head", ["pooled", "heatmap"])
def test_the_keypoint_model_trains_with_the_recipe_and_keeps_flip_averaging(tmp_path, head):
    faces, keypoints = synthetic_faces(np.arange(40) % len(EMOTIONS), np.random.default_rng(0))
    dataset = FaceDataset(faces, keypoints, SPLIT, {"kind": "keypoints"})
    settings = TrainSettings(
        epochs=1,
        batch_size=8,
        network=TINY,
        ema_momentum=0.9,
        flip_test_time=True,
        keypoint_head=head,
    )
    trained = _train_tracked(train_keypoint_model, dataset, settings, tmp_path)
    assert "mirror_back" in [layer.name for layer in trained.model.layers], "flip averaging kept"
    single = trained.model.get_layer("keypoints_single")
    assert ("heatmaps" in [layer.name for layer in single.layers]) == (head == "heatmap")
    answer = trained.model.predict(faces[:4, :, :, None].astype(np.float32), verbose=0)
    assert answer.shape == (4, 30) and np.isfinite(answer).all()


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
