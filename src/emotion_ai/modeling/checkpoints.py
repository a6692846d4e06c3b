"""A checkpoint after every epoch (model with optimizer state, epochs done, history, MLflow run id
and
the fingerprint of the data, settings and code it was trained on), so training killed at any point
(even `kill -9`) resumes from its last finished epoch, and only the same training resumes from
it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import keras

from emotion_ai.storage import atomic_path, read_json, write_json

STATE_FILE = "state.json"
MODEL_FILE = "last.keras"


@dataclass(frozen=True)
class Checkpoints:
    """The checkpoint folder of one training step."""

    folder: Path
    fingerprint: str = ""
    """What the training is (see `steps.cache.cache_key`): recorded with every checkpoint."""

    def saved(self) -> dict | None:
        """`{"epoch", "history", "run_id", "fingerprint"}` of the last finished epoch, or None."""
        state = self.folder / STATE_FILE
        return (
            read_json(state) if state.is_file() and (self.folder / MODEL_FILE).is_file() else None
        )

    def load_model(self) -> keras.Model:
        """The checkpointed model, compiled with its optimizer state, in Keras safe mode."""
        return keras.saving.load_model(self.folder / MODEL_FILE, safe_mode=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def save(
        self, model: keras.Model, epoch: int, history: dict[str, list[float]], run_id: str
    ) -> None:
        """Model first, then the state naming it, each replaced atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / MODEL_FILE) as partial:
            model.save(partial)
        state = {
            "epoch": epoch,
            "history": history,
            "run_id": run_id,
            "fingerprint": self.fingerprint,
        }
        write_json(self.folder / STATE_FILE, state)


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
