"""Training both models with Keras, logging params, per-epoch metrics, curves and the model to
MLflow."""

from __future__ import annotations

import logging
import math
import os
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

import keras
import mlflow
import numpy as np
import tensorflow as tf
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import Schema, TensorSpec

from emotion_ai.data.datasets import TEST, TRAIN, VAL, FaceDataset
from emotion_ai.faces import EMOTIONS, KEYPOINT_COLUMNS
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
    cpu_computes_bfloat16,
    masked_keypoint_loss,
    masked_rmse_px,
    precision_policy,
    with_flip_averaging,
)
from emotion_ai.progress import Progress, write_progress
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL, TrainSettings

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
EXAMPLE_FACES = 12
PREDICT_BATCH = 256


@dataclass(frozen=True)
class LoggedModel:
    """A model logged to MLflow 3: its id and its `models:/<id>` URI."""

    model_id: str
    model_uri: str


@dataclass
class TrainedModel:
    model: keras.Model
    history: dict[str, list[float]]
    """Keras's own names (`loss`, `val_accuracy`); MLflow gets them as `metric_name` says."""
    logged: LoggedModel


def metric_name(keras_name: str) -> str:
    """The MLflow name of a Keras history metric, grouped by split: `val_accuracy` is
    `val/accuracy`, `masked_rmse_px` is `train/rmse_px`, the learning rate `optimizer/learning_rate`
    (its start value is the `learning_rate` param)."""
    if keras_name == "learning_rate":
        return "optimizer/learning_rate"
    split = "val" if keras_name.startswith("val_") else "train"
    return f"{split}/{keras_name.removeprefix('val_').removeprefix('masked_')}"


class EpochMetricsToMlflow(keras.callbacks.Callback):
    """Logs each epoch's metrics and the learning rate it ended at to the active run under
    `metric_name`s, at step = epoch (replaces `mlflow.keras.MlflowCallback`, which logged optimizer
    settings as params and validation figures again at step 0)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {metric_name(name): float(value) for name, value in (logs or {}).items()}
        metrics[metric_name("learning_rate")] = float(self.model.optimizer.learning_rate)
        mlflow.log_metrics(metrics, step=epoch)


def _callbacks(settings: TrainSettings, has_validation: bool) -> list[keras.callbacks.Callback]:
    """Early stopping on the validation loss, and the learning rate halved on a plateau unless a
    schedule sets it; with EMA, the averaged weights are the ones validated, kept and restored."""
    monitor = "val_loss" if has_validation else "loss"
    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if settings.ema_momentum else []
    plateau = [
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=0.5, patience=max(1, settings.early_stopping_patience // 2)
        )
    ]
    return [
        *swap,
        keras.callbacks.EarlyStopping(
            monitor=monitor, patience=settings.early_stopping_patience, restore_best_weights=True
        ),
        *(plateau if settings.lr_schedule == "plateau" else []),
        EpochMetricsToMlflow(),
    ]


def optimizer(settings: TrainSettings, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam at the settings' learning rate: constant (the plateau callback halves it) or warmed up
    and cosine-decayed to zero at the last epoch; averaging its weights with `ema_momentum`."""
    rate: float | keras.optimizers.schedules.LearningRateSchedule = settings.learning_rate
    if settings.lr_schedule == "cosine":
        total = max(2, settings.epochs * steps_per_epoch)
        warmup = min(settings.warmup_epochs * steps_per_epoch, total - 1)
        rate = keras.optimizers.schedules.CosineDecay(
            0.0, total - warmup, warmup_target=settings.learning_rate, warmup_steps=warmup
        )
    if not settings.ema_momentum:
        return keras.optimizers.Adam(rate)
    return keras.optimizers.Adam(rate, use_ema=True, ema_momentum=settings.ema_momentum)


class EpochProgress(keras.callbacks.Callback):
    """Records after each epoch how far `step` is (`emotion_ai.progress`): epoch k/N, the latest
    validation figure, and the time left at the pace so far."""

    def __init__(self, step: str, epochs: int) -> None:
        super().__init__()
        self.step, self.epochs = step, epochs

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._started, self._first_epoch = time.monotonic(), None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._first_epoch is None:
            self._first_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        done = epoch + 1 - self._first_epoch
        pace = (time.monotonic() - self._started) / done
        figure = progress_figure(logs or {})
        write_progress(
            self.step, Progress(epoch + 1, self.epochs, figure, pace * (self.epochs - epoch - 1))
        )


def progress_figure(logs: dict) -> str:
    """The epoch's headline figure in words: validation accuracy or RMSE where there is one."""
    for name, label, unit, digits in (
        ("val_accuracy", "val accuracy", "", 3),
        ("val_masked_rmse_px", "val RMSE", " px", 2),
        ("accuracy", "train accuracy", "", 3),
        ("masked_rmse_px", "train RMSE", " px", 2),
    ):
        if name in logs:
            return f"{label} {float(logs[name]):.{digits}f}{unit}"
    return f"loss {float(logs.get('loss', float('nan'))):.4f}"


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
        *_callbacks(settings, validation is not None),
        EpochProgress(step, settings.epochs),
    ]
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
    )
    return LoggedModel(info.model_id, info.model_uri)


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
    with mock.patch.dict(os.environ, {"COLUMNS": str(SUMMARY_WIDTH)}):
        model.summary(line_length=SUMMARY_WIDTH, print_fn=lambda line, *_, **__: lines.append(line))
    return "\n".join(lines)


def _log_model(
    model: keras.Model,
    dataset: FaceDataset,
    name: str,
    history: dict[str, list[float]],
    settings: TrainSettings,
) -> LoggedModel:
    mlflow.log_figure(plots.learning_curves(history, name), "plots/learning_curves.png")
    mlflow.log_text(model_summary(model), "model_summary.txt")
    return log_keras_model(
        model,
        as_model_input(dataset.images[:1]),
        name,
        OUTPUT_METADATA[name],
        settings.as_params(),
    )


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
    model, history = _fit(
        build_keypoint_model(settings.network, mean_face),
        dataset,
        settings,
        step="train_keypoints",
        loss=masked_keypoint_loss,
        metrics=[masked_rmse_px],
        augment=keypoint_augmentation(settings.augment),
        checkpoints=checkpoints,
    )
    model = _in_float32(model, lambda: build_keypoint_model(settings.network, mean_face))
    if settings.flip_test_time:
        model = with_flip_averaging(model)
    faces, truth = _held_out(dataset)
    predicted = model.predict(as_model_input(faces), verbose=0)
    mlflow.log_figure(
        plots.keypoints_on_faces(faces, truth, predicted), "plots/keypoints_on_faces.png"
    )
    return TrainedModel(
        model, history, _log_model(model, dataset, KEYPOINT_MODEL, history, settings)
    )


def train_emotion_model(
    dataset: FaceDataset, settings: TrainSettings, checkpoints: Checkpoints | None = None
) -> TrainedModel:
    """Trains the emotion ResNet (classes balanced by weights unless turned off) on randomly
    mirrored, moved and relit faces."""
    _seed(settings)
    augment = emotion_augmentation(settings.augment, settings.mixup_alpha, settings.random_erasing)
    _use_precision(settings)  # after the augmentation: its layers compute in float32 regardless
    weights = balanced_class_weights(dataset.part(TRAIN)[1]) if settings.balance_classes else None
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
        model, history, _log_model(model, dataset, EMOTION_MODEL, history, settings)
    )


def _one_hot(dataset: FaceDataset) -> FaceDataset:
    """The same faces with one-hot float targets (label smoothing and mixup blend targets)."""
    return replace(dataset, targets=np.eye(len(EMOTIONS), dtype=np.float32)[dataset.targets])


def save_model(model: keras.Model, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    model.save(path)
    return path


def load_model(directory: Path) -> keras.Model:
    """Loads one of our own `.keras` models, in Keras safe mode (no arbitrary code)."""
    return keras.saving.load_model(directory / MODEL_FILE, compile=False, safe_mode=True)
