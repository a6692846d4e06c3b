"""Training both models with Keras, logging params, per-epoch metrics, curves and the model to
MLflow."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow.models import infer_signature

from emotion_ai.data.datasets import TEST, TRAIN, VAL, FaceDataset
from emotion_ai.faces import EMOTIONS
from emotion_ai.modeling import plots
from emotion_ai.modeling.checkpoints import Checkpoints
from emotion_ai.modeling.input_pipeline import (
    as_model_input,
    emotion_augmentation,
    face_batches,
    keypoint_augmentation,
)
from emotion_ai.modeling.networks import (
    build_emotion_model,
    build_keypoint_model,
    masked_keypoint_loss,
    masked_rmse_px,
    precision_policy,
)
from emotion_ai.settings import TrainSettings

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
MLFLOW_MODEL_DIR = "model"
EXAMPLE_FACES = 12


@dataclass
class TrainedModel:
    model: keras.Model
    history: dict[str, list[float]]
    model_uri: str
    """Where MLflow logged the model (`runs:/<run id>/model`)."""


def _callbacks(settings: TrainSettings, has_validation: bool) -> list[keras.callbacks.Callback]:
    monitor = "val_loss" if has_validation else "loss"
    return [
        keras.callbacks.EarlyStopping(
            monitor=monitor, patience=settings.early_stopping_patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=max(1, settings.early_stopping_patience // 2)
        ),
        mlflow.keras.MlflowCallback(),
    ]


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint at the end of every epoch, history included (from `history` onwards)."""

    def __init__(
        self, checkpoints: Checkpoints, run_id: str, history: dict[str, list[float]]
    ) -> None:
        super().__init__()
        self.checkpoints, self.run_id = checkpoints, run_id
        self.history = {name: list(values) for name, values in history.items()}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        self.checkpoints.save(self.model, epoch + 1, self.history, self.run_id)


MAX_CLASS_WEIGHT = 5.0
"""Balanced weights are capped here: a class with a single face (Disgust in small FER samples) would
otherwise weigh ~100x and its one face would dominate every epoch."""


def balanced_class_weights(labels: np.ndarray) -> dict[int, float]:
    """Weights inversely proportional to class frequency (rare Disgust counts more), capped."""
    counts = np.bincount(labels, minlength=len(EMOTIONS))
    present = counts > 0
    weights = np.where(present, len(labels) / (present.sum() * np.maximum(counts, 1)), 0.0)
    weights = np.minimum(weights, MAX_CLASS_WEIGHT)
    return {index: float(weight) for index, weight in enumerate(weights)}


def _fit(
    model: keras.Model,
    dataset: FaceDataset,
    settings: TrainSettings,
    *,
    loss,
    metrics,
    augment=None,
    class_weight=None,
    checkpoints: Checkpoints | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Trains `model`, or the checkpointed one from its last finished epoch when `checkpoints` holds
    one; returns the model and its whole history."""
    keras.utils.set_random_seed(settings.seed)
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
        model.compile(
            optimizer=keras.optimizers.Adam(settings.learning_rate), loss=loss, metrics=metrics
        )
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
    callbacks = _callbacks(settings, validation is not None)
    if checkpoints:
        callbacks.append(
            EpochCheckpoint(checkpoints, mlflow.active_run().info.run_id, done_history)
        )
    mlflow.log_params(settings.as_params())
    history = model.fit(
        train,
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


def log_keras_model(model: keras.Model, example: np.ndarray) -> str:
    """Logs the model (signature + input example) to the active run; returns its `runs:/` URI.

    The model is saved into a directory made here and logged as artifacts, because
    `mlflow.keras.log_model(input_example=...)` writes the example before it creates its folder.
    """
    signature = infer_signature(example, model.predict(example, verbose=0))
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / MLFLOW_MODEL_DIR
        local.mkdir()
        mlflow.keras.save_model(model, str(local), signature=signature, input_example=example)
        mlflow.log_artifacts(str(local), MLFLOW_MODEL_DIR)
    return f"runs:/{mlflow.active_run().info.run_id}/{MLFLOW_MODEL_DIR}"


def _log_model(
    model: keras.Model, dataset: FaceDataset, title: str, history: dict[str, list[float]]
) -> str:
    mlflow.log_figure(plots.learning_curves(history, title), "plots/learning_curves.png")
    return log_keras_model(model, as_model_input(dataset.images[:1]))


def _held_out(dataset: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
    images, targets = dataset.part(TEST)
    return images[:EXAMPLE_FACES], targets[:EXAMPLE_FACES]


def _set_precision() -> None:
    """Mixed precision when TensorFlow sees a GPU; the policy is logged with the run."""
    policy = precision_policy(tf.config.list_physical_devices("GPU"))
    keras.mixed_precision.set_global_policy(policy)
    mlflow.log_param("precision", policy)


def train_keypoint_model(
    dataset: FaceDataset, settings: TrainSettings, checkpoints: Checkpoints | None = None
) -> TrainedModel:
    """Trains the keypoint ResNet on all rows (missing keypoints masked out of the loss), on faces
    mirrored, rotated, shifted, scaled and relit at random with their keypoints moved alike."""
    _set_precision()
    model = build_keypoint_model(settings.network, np.nanmean(dataset.part(TRAIN)[1], axis=0))
    model, history = _fit(
        model,
        dataset,
        settings,
        loss=masked_keypoint_loss,
        metrics=[masked_rmse_px],
        augment=keypoint_augmentation(settings.augment),
        checkpoints=checkpoints,
    )
    faces, truth = _held_out(dataset)
    predicted = model.predict(as_model_input(faces), verbose=0)
    mlflow.log_figure(
        plots.keypoints_on_faces(faces, truth, predicted), "plots/keypoints_on_faces.png"
    )
    return TrainedModel(model, history, _log_model(model, dataset, "keypoint model", history))


def train_emotion_model(
    dataset: FaceDataset, settings: TrainSettings, checkpoints: Checkpoints | None = None
) -> TrainedModel:
    """Trains the emotion ResNet (classes balanced by weights unless turned off) on randomly
    mirrored, moved and relit faces."""
    _set_precision()
    model = build_emotion_model(settings.network)
    weights = balanced_class_weights(dataset.part(TRAIN)[1]) if settings.balance_classes else None
    if weights:
        mlflow.log_params({f"class_weight.{EMOTIONS[i]}": round(w, 4) for i, w in weights.items()})
    model, history = _fit(
        model,
        dataset,
        settings,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        augment=emotion_augmentation(settings.augment),
        class_weight=weights,
        checkpoints=checkpoints,
    )
    faces, truth = _held_out(dataset)
    predicted = model.predict(as_model_input(faces), verbose=0).argmax(axis=1)
    mlflow.log_figure(
        plots.emotions_on_faces(faces, truth, predicted), "plots/emotions_on_faces.png"
    )
    return TrainedModel(model, history, _log_model(model, dataset, "emotion model", history))


def save_model(model: keras.Model, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    model.save(path)
    return path


def load_model(directory: Path) -> keras.Model:
    """Loads one of our own `.keras` models, in Keras safe mode (no arbitrary code)."""
    return keras.saving.load_model(directory / MODEL_FILE, compile=False, safe_mode=True)
