"""A checkpoint after every epoch (model with optimizer state, epochs done, history, MLflow run id
and the fingerprint of the data, settings and code it was trained on), so training killed at any
point (even `kill -9`) resumes from its last finished epoch, and only the same training resumes from
it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from emotion_ai.storage import atomic_path, read_json, write_json

if TYPE_CHECKING:
    import keras

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
        import keras

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
