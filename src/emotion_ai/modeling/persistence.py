"""Our own trained models on disk: one `.keras` file a folder, loaded in Keras safe mode."""

from __future__ import annotations

from pathlib import Path

import keras

import emotion_ai.modeling.networks  # noqa: F401 - registers our layers, which loading needs

MODEL_FILE = "model.keras"
LOAD_OPTIONS = {"compile": False, "safe_mode": True}
"""How our own models load for inference, from a folder or from the registry: in Keras safe mode (no
arbitrary code), our layers known through the import above."""


def save_model(model: keras.Model, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    model.save(path)
    return path


def load_model(directory: Path) -> keras.Model:
    """Loads one of our own `.keras` models, in Keras safe mode (no arbitrary code)."""
    return keras.saving.load_model(directory / MODEL_FILE, **LOAD_OPTIONS)
