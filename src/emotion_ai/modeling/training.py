"""Fitting both models with Keras: the optimizer and its schedule, class weights, precision,
resuming from a checkpoint, and the trained model in float32 logged to MLflow (`logged_models`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import keras
import mlflow
import numpy as np
import tensorflow as tf

from emotion_ai.data.datasets import TEST, TRAIN, VAL, FaceDataset
from emotion_ai.faces import EMOTIONS
from emotion_ai.modeling import plots
from emotion_ai.modeling.callbacks import EpochCheckpoint, EpochProgress, training_callbacks
from emotion_ai.modeling.checkpoints import Checkpoints
from emotion_ai.modeling.input_pipeline import (
    as_model_input,
    emotion_augmentation,
    face_batches,
    keypoint_augmentation,
)
from emotion_ai.modeling.logged_models import LoggedModel, log_trained_model
from emotion_ai.modeling.networks import (
    build_emotion_model,
    build_keypoint_model,
    cpu_computes_bfloat16,
    masked_keypoint_loss,
    masked_rmse_px,
    precision_policy,
    with_flip_averaging,
)
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL, TrainSettings

logger = logging.getLogger(__name__)

EXAMPLE_FACES = 12
PREDICT_BATCH = 256


@dataclass
class TrainedModel:
    model: keras.Model
    history: dict[str, list[float]]
    """Keras's own names (`loss`, `val_accuracy`); MLflow gets them as `metric_name` says."""
    logged: LoggedModel


def optimizer(settings: TrainSettings, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam at the settings' learning rate: constant (the plateau callback halves it) or warmed up
    and cosine-decayed to zero at the last epoch; with decoupled `weight_decay` on every weight
    (AdamW), and averaging its weights with `ema_momentum`."""
    rate: float | keras.optimizers.schedules.LearningRateSchedule = settings.learning_rate
    if settings.lr_schedule == "cosine":
        total = max(2, settings.epochs * steps_per_epoch)
        warmup = min(settings.warmup_epochs * steps_per_epoch, total - 1)
        rate = keras.optimizers.schedules.CosineDecay(
            0.0, total - warmup, warmup_target=settings.learning_rate, warmup_steps=warmup
        )
    decay = settings.weight_decay or None
    if not settings.ema_momentum:
        return keras.optimizers.Adam(rate, weight_decay=decay)
    return keras.optimizers.Adam(
        rate, weight_decay=decay, use_ema=True, ema_momentum=settings.ema_momentum
    )


MAX_CLASS_WEIGHT = 5.0
"""Balanced weights are capped here: a class with a single face (Disgust in small FER samples) would
otherwise weigh ~100x and its one face would dominate every epoch."""


def balanced_class_weights(labels: np.ndarray, power: float = 1.0) -> dict[int, float]:
    """Weights inversely proportional to class frequency (rare Disgust counts more), to `power`,
    capped."""
    counts = np.bincount(labels, minlength=len(EMOTIONS))
    present = counts > 0
    balanced = len(labels) / (present.sum() * np.maximum(counts, 1))
    weights = np.where(present, np.minimum(balanced**power, MAX_CLASS_WEIGHT), 0.0)
    return {index: float(weight) for index, weight in enumerate(weights)}


def _fit(
    model: keras.Model,
    dataset: FaceDataset,
    settings: TrainSettings,
    *,
    step: str,
    loss,
    metrics,
    augment=None,
    class_weight=None,
    checkpoints: Checkpoints | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Trains `model`, or the checkpointed one from its last finished epoch when `checkpoints` holds
    one; returns the model and its whole history."""
    saved = checkpoints.saved() if checkpoints else None
    if saved and saved["epoch"] >= settings.epochs:
        logger.info("the checkpoint holds all %s epochs: finishing the step", settings.epochs)
        return checkpoints.load_model(), saved["history"]
    if saved:
        model = checkpoints.load_model()
        logger.info(
            "resuming from the checkpoint after epoch %s of %s", saved["epoch"], settings.epochs
        )
    else:
        steps_per_epoch = math.ceil(len(dataset.part(TRAIN)[0]) / settings.batch_size)
        model.compile(optimizer=optimizer(settings, steps_per_epoch), loss=loss, metrics=metrics)
    train = face_batches(
        *dataset.part(TRAIN), settings.batch_size, shuffle=True, seed=settings.seed, augment=augment
    )
    val_images, val_targets = dataset.part(VAL)
    validation = (
        face_batches(val_images, val_targets, settings.batch_size, shuffle=False, seed=0)
        if len(val_images)
        else None
    )
    done_history = saved["history"] if saved else {}
    callbacks = [
        *training_callbacks(settings, validation is not None),
        EpochProgress(step, settings.epochs),
    ]
    if checkpoints:
        callbacks.append(
            EpochCheckpoint(checkpoints, mlflow.active_run().info.run_id, done_history)
        )
    mlflow.log_params(settings.as_params())
    history = model.fit(
        train,
        shuffle=False,  # face_batches shuffles; fit would only warn that it ignores its own
        validation_data=validation,
        epochs=settings.epochs,
        verbose=2,
        class_weight=class_weight,
        callbacks=callbacks,
        initial_epoch=saved["epoch"] if saved else 0,
    )
    return model, {
        name: done_history.get(name, []) + [float(v) for v in values]
        for name, values in history.history.items()
    }


def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return model.predict(as_model_input(images), batch_size=PREDICT_BATCH, verbose=0)


def _held_out(dataset: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
    images, targets = dataset.part(TEST)
    return images[:EXAMPLE_FACES], targets[:EXAMPLE_FACES]


def _seed(settings: TrainSettings) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras before anything random is built, so the first
    weights and every random draw of training follow the settings' seed."""
    keras.utils.set_random_seed(settings.seed)


def _use_precision(settings: TrainSettings) -> None:
    """The precision policy of the layers built from here on (mixed where the hardware computes
    it, see `precision_policy`), logged with the run."""
    policy = precision_policy(
        settings.precision, tf.config.list_physical_devices("GPU"), cpu_computes_bfloat16()
    )
    keras.mixed_precision.set_global_policy(policy)
    mlflow.log_param("precision_policy", policy)


def _in_float32(model: keras.Model, build: Callable[[], keras.Model]) -> keras.Model:
    """The trained network as a float32 model (`build` makes its architecture afresh): what is
    saved and served computes in float32 on any machine, whatever precision trained it."""
    if keras.mixed_precision.global_policy().name == "float32":
        return model
    keras.mixed_precision.set_global_policy("float32")
    copy = build()
    copy.set_weights(model.get_weights())
    return copy


def train_keypoint_model(
    dataset: FaceDataset, settings: TrainSettings, checkpoints: Checkpoints | None = None
) -> TrainedModel:
    """Trains the keypoint ResNet on all rows (missing keypoints masked out of the loss), on faces
    mirrored, rotated, shifted, scaled and relit at random with their keypoints moved alike."""
    _seed(settings)
    _use_precision(settings)
    mean_face = np.nanmean(dataset.part(TRAIN)[1], axis=0)

    def build() -> keras.Model:
        return build_keypoint_model(settings.network, mean_face, settings.keypoint_head)

    model, history = _fit(
        build(),
        dataset,
        settings,
        step="train_keypoints",
        loss=masked_keypoint_loss,
        metrics=[masked_rmse_px],
        augment=keypoint_augmentation(settings.augment),
        checkpoints=checkpoints,
    )
    model = _in_float32(model, build)
    if settings.flip_test_time:
        model = with_flip_averaging(model)
    faces, truth = _held_out(dataset)
    predicted = model.predict(as_model_input(faces), verbose=0)
    mlflow.log_figure(
        plots.keypoints_on_faces(faces, truth, predicted), "plots/keypoints_on_faces.png"
    )
    return TrainedModel(
        model, history, log_trained_model(model, dataset, KEYPOINT_MODEL, history, settings)
    )


def train_emotion_model(
    dataset: FaceDataset, settings: TrainSettings, checkpoints: Checkpoints | None = None
) -> TrainedModel:
    """Trains the emotion ResNet (classes balanced by weights unless turned off) on randomly
    mirrored, moved and relit faces."""
    _seed(settings)
    augment = emotion_augmentation(settings.augment, settings.mixup_alpha, settings.random_erasing)
    _use_precision(settings)  # after the augmentation: its layers compute in float32 regardless
    weights = (
        balanced_class_weights(dataset.part(TRAIN)[1], settings.class_weight_power)
        if settings.balance_classes
        else None
    )
    if weights:
        mlflow.log_params({f"class_weight/{EMOTIONS[i]}": round(w, 4) for i, w in weights.items()})
    soft_targets = settings.label_smoothing > 0 or settings.mixup_alpha > 0
    model, history = _fit(
        build_emotion_model(settings.network, settings.head_dropout),
        _one_hot(dataset) if soft_targets else dataset,
        settings,
        step="train_emotion",
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing)
        if soft_targets
        else "sparse_categorical_crossentropy",
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")]
        if soft_targets
        else ["accuracy"],
        augment=augment,
        class_weight=weights,
        checkpoints=checkpoints,
    )
    model = _in_float32(model, lambda: build_emotion_model(settings.network, settings.head_dropout))
    if settings.flip_test_time:
        model = with_flip_averaging(model)
    faces, truth = _held_out(dataset)
    predicted = model.predict(as_model_input(faces), verbose=0).argmax(axis=1)
    mlflow.log_figure(
        plots.emotions_on_faces(faces, truth, predicted), "plots/emotions_on_faces.png"
    )
    return TrainedModel(
        model, history, log_trained_model(model, dataset, EMOTION_MODEL, history, settings)
    )


def _one_hot(dataset: FaceDataset) -> FaceDataset:
    """The same faces with one-hot float targets (label smoothing and mixup blend targets)."""
    return replace(dataset, targets=np.eye(len(EMOTIONS), dtype=np.float32)[dataset.targets])
