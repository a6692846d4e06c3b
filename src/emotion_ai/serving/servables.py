"""Servables and their version policy: the models served from TF Serving's layout
`<model_base_path>/<model_name>/<version>/`.

Three models are served: the keypoint model, the emotion model, and `emotion-ai`, which answers both
for one face. Each keeps its newest `num_versions` versions loaded, plus every version a label names
(`labels.json`, e.g. `{"stable": 3, "canary": 4}`). A request that names no version gets `stable`
when that label is set, else the newest version. Concurrent requests are batched (see `batching`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from emotion_ai.faces import EMOTIONS, FACE_SIZE, KEYPOINT_NAMES, N_COORDINATES
from emotion_ai.monitoring.request_log import RequestSampler
from emotion_ai.release import model_repository
from emotion_ai.release.model_repository import STABLE, version_number
from emotion_ai.serving.batching import Batcher
from emotion_ai.serving.face_requests import (
    FaceRequest,
    describe_face,
    faces_from_request,
)
from emotion_ai.serving.kserve_bridge import Model
from emotion_ai.serving.metrics import LAST_REFRESH, SERVED_VERSION
from emotion_ai.settings import (
    COMBINED_MODEL,
    EMOTION_MODEL,
    KEYPOINT_MODEL,
    BatchSettings,
    ServingOptions,
)

logger = logging.getLogger(__name__)


class LoadedVersion:
    """One loaded SavedModel version, with its own batcher."""

    def __init__(
        self, model_name: str, version: int, saved_model, batching: BatchSettings | None
    ) -> None:
        self.version, self.saved_model = version, saved_model
        self._batcher = Batcher(self.infer_now, batching, model_name) if batching else None

    def infer_now(self, faces: np.ndarray) -> np.ndarray:
        return self.saved_model.serve(tf.constant(faces)).numpy()

    def warm_up(self, max_batch_size: int) -> None:
        """Calls the model once at each batch size a request or batch may have (powers of two up to
        `max_batch_size`): the first call at a size does Python-side work that would otherwise
        stall the event loop while real requests wait."""
        size = 1
        while size <= max_batch_size:
            self.infer_now(np.zeros((size, *FACE_BATCH), np.float32))
            size *= 2

    async def infer(self, faces: np.ndarray) -> np.ndarray:
        if self._batcher is None:
            return await asyncio.to_thread(self.infer_now, faces)
        return await self._batcher(faces)

    def signature(self) -> dict:
        """TF Serving's `signature_def` of this version's `serving_default`."""
        function = self.saved_model.signatures["serving_default"]
        return {
            "serving_default": {
                "inputs": {
                    name: _tensor_info(spec)
                    for name, spec in function.structured_input_signature[1].items()
                },
                "outputs": {
                    name: _tensor_info(spec) for name, spec in function.structured_outputs.items()
                },
                "method_name": "tensorflow/serving/predict",
            }
        }


OUTPUT_SIZES = {KEYPOINT_MODEL: N_COORDINATES, EMOTION_MODEL: len(EMOTIONS)}
"""Each model's contract: `serve` takes one float32 (n, 96, 96, 1) face batch and returns one
float32 (n, size) tensor."""
FACE_BATCH = [FACE_SIZE, FACE_SIZE, 1]
"""One face's shape, after the batch dimension."""


def _is_one_float32(specs: list, shape: list) -> bool:
    """Whether `specs` is a single float32 tensor of `shape` after its batch dimension."""
    return (
        len(specs) == 1 and specs[0].dtype == tf.float32 and specs[0].shape.as_list()[1:] == shape
    )


def _described(specs: list) -> list[str]:
    return [f"{spec.dtype.name} {spec.shape.as_list()}" for spec in specs]


def contract_violation(model_name: str, saved_model) -> str | None:
    """How a loaded SavedModel breaks its model's contract, or None when it keeps it."""
    if not hasattr(saved_model, "serve") or "serving_default" not in saved_model.signatures:
        return "it has no `serve` endpoint and `serving_default` signature"
    function = saved_model.signatures["serving_default"]
    inputs = list(function.structured_input_signature[1].values())
    outputs = list(function.structured_outputs.values())
    if not _is_one_float32(inputs, FACE_BATCH):
        return f"it takes {_described(inputs)}, not one float32 {[None, *FACE_BATCH]} face batch"
    size = OUTPUT_SIZES[model_name]
    if not _is_one_float32(outputs, [size]):
        return f"it returns {_described(outputs)}, not one float32 [None, {size}]"
    return None


def _tensor_info(spec) -> dict:
    """TF Serving's `TensorInfo` of one tensor spec (unknown dimensions are -1)."""
    return {
        "dtype": f"DT_{spec.dtype.name.upper()}",
        "tensor_shape": {"dim": [{"size": str(-1 if d is None else d)} for d in spec.shape]},
    }


@dataclass(frozen=True)
class ServedVersions:
    """What one model serves: its loaded versions and the labels that point at them (replaced
    whole)."""

    loaded: dict[int, LoadedVersion] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def default(self) -> int | None:
        """`stable` when that label is set, else the newest version."""
        return self.labels.get(STABLE, max(self.loaded, default=None))

    def find(self, version: str | None = None, label: str | None = None) -> LoadedVersion | None:
        if label is not None:
            number = self.labels.get(label)
        else:
            number = self.default if version is None else version_number(version)
        return self.loaded.get(number)


class SavedModelServable(Model):
    """One model under `<base_path>/<name>/`, following its versions and labels as they change."""

    def __init__(
        self,
        name: str,
        base_path: str | Path,
        options: ServingOptions = ServingOptions(),
        sampler: RequestSampler | None = None,
    ) -> None:
        super().__init__(name)
        self.base_path, self.options, self.sampler = base_path, options, sampler
        self.layout = model_repository.layout(base_path)
        self.served = ServedVersions()
        self.refreshed_at = 0.0
        """When the layout was last read without an error (Unix time)."""
        self._refused: dict[int, object] = {}
        """Versions that failed to load, with the marker of their files then (see `_load`)."""

    @property
    def version(self) -> int | None:
        return self.served.default

    def load(self) -> bool:
        if not self.refresh() and not self.served.loaded:
            raise FileNotFoundError(
                f"no loadable version of {self.name} under {self.base_path}/{self.name}"
            )
        self.ready = True
        return self.ready

    def refresh(self) -> bool:
        """Loads the versions the policy and labels want and drops the others; True if anything
        changed. Raises when the layout cannot be read (the versions served stay)."""
        changed = self._swap_versions()
        self.refreshed_at = time.time()
        LAST_REFRESH.labels(self.name).set(self.refreshed_at)
        return changed

    def stale(self) -> bool:
        """Whether looking at the layout has failed for longer than the options allow."""
        return time.time() - self.refreshed_at > self.options.max_refresh_failure_seconds

    def _swap_versions(self) -> bool:
        """A version that fails to load is refused (logged, and retried once its files change) and
        the next older one is wanted in its place. When nothing is left to serve, the versions
        served stay."""
        listed, labels = self.layout.versions(self.name), self._labels()
        self._forget_changed_refusals(listed)
        loaded = dict(self.served.loaded)
        while True:
            available = [v for v in listed if v not in self._refused]
            wanted = set(available[-self.options.num_versions :]) | (
                set(labels.values()) & set(available)
            )
            missing = wanted - loaded.keys()
            if not missing:
                break
            loaded.update(
                {v: lv for v in sorted(missing, reverse=True) if (lv := self._load(v)) is not None}
            )
        served = ServedVersions(
            {v: loaded[v] for v in sorted(wanted)},
            {label: v for label, v in labels.items() if v in wanted},
        )
        if not wanted or (served.loaded.keys(), served.labels) == (
            self.served.loaded.keys(),
            self.served.labels,
        ):
            return False
        self.served = served
        SERVED_VERSION.labels(self.name).set(served.default)
        logger.info(
            "serving %s versions %s, labels %s, default %s",
            self.name,
            sorted(served.loaded),
            served.labels,
            served.default,
        )
        return True

    def _labels(self) -> dict[str, int]:
        """The labels file as it is now; a broken one is logged and the labels served stay."""
        try:
            return model_repository.read_labels(self.base_path, self.name)
        except ValueError as error:
            logger.error("ignored the labels of %s: %s", self.name, error)
            return self.served.labels

    def _forget_changed_refusals(self, listed: list[int]) -> None:
        """A refused version whose files changed since (one still being written, say) is tried
        again."""
        for version, marker in list(self._refused.items()):
            if version in listed and self.layout.marker(self.name, version) != marker:
                del self._refused[version]

    def _load(self, version: int) -> LoadedVersion | None:
        marker = self.layout.marker(self.name, version)
        try:
            saved_model = tf.saved_model.load(str(self.layout.local_copy(self.name, version)))
            if violation := contract_violation(self.name, saved_model):
                raise ValueError(f"it breaks the {self.name} contract: {violation}")
            loaded = LoadedVersion(self.name, version, saved_model, self.options.batching)
            batching = self.options.batching
            loaded.warm_up(batching.max_batch_size if batching else 1)
            return loaded
        except Exception as error:  # noqa: BLE001 - any unloadable version is refused the same way
            self._refused[version] = marker
            logger.error("refused %s version %s: %s", self.name, version, error)
            return None

    def find(self, version: str | None = None, label: str | None = None) -> LoadedVersion | None:
        return self.served.find(version, label)

    def versions(self) -> list[str]:
        """Loaded versions, the default first."""
        served = self.served
        return [str(v) for v in sorted(served.loaded, key=lambda v: (v != served.default, -v))]

    async def predict(self, payload: dict, headers: dict | None = None) -> dict:
        return await self.answer(faces_from_request(payload), self.find())

    async def answer(self, request: FaceRequest, target: LoadedVersion) -> dict:
        outputs = await target.infer(request.faces)
        if self.sampler:
            classes = outputs.argmax(axis=1) if outputs.shape[1] == len(EMOTIONS) else None
            self.sampler.record(self.name, request.faces, classes)
        return request.answer(outputs.tolist())

    def signature(self, target: LoadedVersion) -> dict:
        return target.signature()


@dataclass(frozen=True)
class FaceVersion:
    """The keypoint and emotion versions that answer one `emotion-ai` request; its version is
    `k.e`."""

    keypoints: LoadedVersion
    emotion: LoadedVersion

    @property
    def version(self) -> str:
        return f"{self.keypoints.version}.{self.emotion.version}"


class FaceServable(Model):
    """`emotion-ai`: 15 named keypoints and the emotion with its 5 probabilities, per face."""

    def __init__(
        self,
        keypoints: SavedModelServable,
        emotion: SavedModelServable,
        sampler: RequestSampler | None = None,
    ) -> None:
        super().__init__(COMBINED_MODEL)
        self.keypoints, self.emotion, self.sampler = keypoints, emotion, sampler
        self.ready = keypoints.ready and emotion.ready

    @property
    def version(self) -> str:
        return f"{self.keypoints.version}.{self.emotion.version}"

    @property
    def refreshed_at(self) -> float:
        return min(self.keypoints.refreshed_at, self.emotion.refreshed_at)

    def stale(self) -> bool:
        return self.keypoints.stale() or self.emotion.stale()

    def find(self, version: str | None = None, label: str | None = None) -> FaceVersion | None:
        """`version` is `k.e`; a label must be set on both models."""
        keypoint_version, _, emotion_version = (version or "").partition(".")
        if version is not None and not emotion_version:
            return None
        keypoints = self.keypoints.find(keypoint_version or None, label)
        emotion = self.emotion.find(emotion_version or None, label)
        return FaceVersion(keypoints, emotion) if keypoints and emotion else None

    def versions(self) -> list[str]:
        return [self.version]

    async def predict(self, payload: dict, headers: dict | None = None) -> dict:
        return await self.answer(faces_from_request(payload), self.find())

    async def answer(self, request: FaceRequest, target: FaceVersion) -> dict:
        coordinates, probabilities = await asyncio.gather(
            target.keypoints.infer(request.faces), target.emotion.infer(request.faces)
        )
        if self.sampler:
            self.sampler.record(self.name, request.faces, probabilities.argmax(axis=1))
        return request.answer(
            [describe_face(c, p) for c, p in zip(coordinates, probabilities, strict=False)]
        )

    def signature(self, target: FaceVersion) -> dict:
        face = target.keypoints.signature()["serving_default"]["inputs"]
        return {
            "serving_default": {
                "inputs": face,
                "outputs": {
                    "keypoints": {"names": list(KEYPOINT_NAMES), "unit": "pixels (x, y)"},
                    "emotion": {"labels": list(EMOTIONS)},
                    "probabilities": {"dtype": "DT_FLOAT", "size": len(EMOTIONS)},
                },
                "method_name": "tensorflow/serving/predict",
            }
        }


SERVABLE_MODELS = (KEYPOINT_MODEL, EMOTION_MODEL, COMBINED_MODEL)


def load_servables(
    base_path: str | Path,
    model_name: str | None = None,
    options: ServingOptions = ServingOptions(),
    sampler: RequestSampler | None = None,
) -> list[Model]:
    """All three models, or only `model_name` (TF Serving's --model_name), with the versions
    `options` keep."""
    if model_name is not None and model_name not in SERVABLE_MODELS:
        raise ValueError(
            f"unknown model {model_name!r}; choose one of {', '.join(SERVABLE_MODELS)}"
        )
    parts = {
        name: SavedModelServable(name, base_path, options, sampler)
        for name in (KEYPOINT_MODEL, EMOTION_MODEL)
        if model_name in (None, name, COMBINED_MODEL)
    }
    for part in parts.values():
        part.load()
    servables: list[Model] = list(parts.values())
    if model_name in (None, COMBINED_MODEL):
        servables.append(FaceServable(parts[KEYPOINT_MODEL], parts[EMOTION_MODEL], sampler))
    return [servable for servable in servables if model_name in (None, servable.name)]


def versioned_parts(models: list[Model]) -> list[SavedModelServable]:
    """The SavedModel servables behind `models` (the combined model's two included), each once."""
    parts = [
        part
        for model in models
        for part in (
            (model.keypoints, model.emotion) if isinstance(model, FaceServable) else (model,)
        )
    ]
    return list({id(part): part for part in parts}.values())
