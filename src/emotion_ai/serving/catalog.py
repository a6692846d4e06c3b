"""The models one server serves: the keypoint and emotion models, `emotion-ai` (both, for one face)
and `emotion-ai-faces` (photos), or only the one TF Serving's --model_name names."""

from __future__ import annotations

from pathlib import Path

from emotion_ai.monitoring.request_log import RequestSampler
from emotion_ai.serving.photo_servable import load_photo_servable
from emotion_ai.serving.servables import FaceModel, FaceServable, SavedModelServable
from emotion_ai.settings import (
    COMBINED_MODEL,
    EMOTION_MODEL,
    KEYPOINT_MODEL,
    PHOTO_MODEL,
    RequestLimits,
    ServingOptions,
)

SERVABLE_MODELS = (KEYPOINT_MODEL, EMOTION_MODEL, COMBINED_MODEL, PHOTO_MODEL)


def load_servables(
    base_path: str | Path,
    model_name: str | None = None,
    options: ServingOptions = ServingOptions(),
    sampler: RequestSampler | None = None,
    limits: RequestLimits = RequestLimits(),
) -> list[FaceModel]:
    """All four models, or only `model_name` (TF Serving's --model_name), with the versions
    `options` keep."""
    if model_name is not None and model_name not in SERVABLE_MODELS:
        raise ValueError(
            f"unknown model {model_name!r}; choose one of {', '.join(SERVABLE_MODELS)}"
        )
    parts = {
        name: SavedModelServable(name, base_path, options, sampler, limits)
        for name in (KEYPOINT_MODEL, EMOTION_MODEL)
        if model_name in (None, name, COMBINED_MODEL, PHOTO_MODEL)
    }
    for part in parts.values():
        part.load()
    servables: list[FaceModel] = list(parts.values())
    if model_name in (None, COMBINED_MODEL, PHOTO_MODEL):
        servables.append(FaceServable(parts[KEYPOINT_MODEL], parts[EMOTION_MODEL], sampler))
    if model_name in (None, PHOTO_MODEL):
        servables.append(load_photo_servable(servables[-1], options.detector))
    return [servable for servable in servables if model_name in (None, servable.name)]


def versioned_parts(models: list[FaceModel]) -> list[SavedModelServable]:
    """The SavedModel servables behind `models` (those of `emotion-ai` and `emotion-ai-faces`
    included), each once: the ones whose versions the server follows."""
    parts = [part for model in models for part in model.parts()]
    return list({id(part): part for part in parts}.values())
