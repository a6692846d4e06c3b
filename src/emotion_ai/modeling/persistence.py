"""Our own trained models on disk: one `.keras` file a folder, loaded in Keras safe mode."""

from __future__ import annotations

from pathlib import Path

import keras

import emotion_ai.modeling.networks  # noqa: F401 - registers our layers, which loading needs

MODEL_FILE = "model.keras"


def save_model(model: keras.Model, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    model.save(path)
    return path


def load_model(directory: Path) -> keras.Model:
    """Loads one of our own `.keras` models, in Keras safe mode (no arbitrary code)."""
    return keras.saving.load_model(directory / MODEL_FILE, compile=False, safe_mode=True)
