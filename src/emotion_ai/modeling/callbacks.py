"""The Keras callbacks of a training: early stopping and the learning-rate plateau, each epoch's
metrics to MLflow, the step's progress, and epoch checkpoints."""

from __future__ import annotations

import time

import keras
import mlflow

from emotion_ai.modeling.checkpoints import Checkpoints
from emotion_ai.progress import Progress, write_progress
from emotion_ai.settings import TrainSettings


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


def training_callbacks(
    settings: TrainSettings, has_validation: bool
) -> list[keras.callbacks.Callback]:
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
