"""Servables and their version policy: the models served from TF Serving's layout
`<model_base_path>/<model_name>/<version>/`.

The SavedModel servables are the keypoint model and the emotion model; `emotion-ai` answers both
for one face (and `emotion-ai-faces`, in `photo_servable`, for every face of a photo). Each keeps
its newest `num_versions` versions loaded, plus every version a label names (`labels.json`, e.g.
`{"stable": 3, "canary": 4}`). A request that names no version gets `stable` when that label is
set, else the newest version. Concurrent requests are batched (see `batching`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emotion_ai.faces import EMOTIONS, N_COORDINATES
from emotion_ai.monitoring.request_log import RequestSampler
from emotion_ai.release import model_repository
from emotion_ai.release.model_repository import STABLE, version_number
from emotion_ai.serving.errors import NoVersionYet
from emotion_ai.serving.face_requests import (
    FaceRequest,
    describe_face,
    faces_from_request,
    json_face_request,
)
from emotion_ai.serving.kserve_bridge import InferRequest, InferResponse, Model
from emotion_ai.serving.metrics import LAST_REFRESH, SERVED_VERSION, counted_predict
from emotion_ai.serving.open_inference import (
    VERSION_HEADER,
    VersionNotFound,
    faces_from_infer_request,
    infer_response,
    tensor_type,
)
from emotion_ai.serving.versions import (
    FACE_BATCH,
    OUTPUT_SIZES,
    LoadedVersion,
    load_version,
    tensor_info,
)
from emotion_ai.settings import (
    COMBINED_MODEL,
    RequestLimits,
    ServingOptions,
)

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Refusal:
    """A version that failed to load: the marker of its files then (it is retried once they
    change), and the error."""

    marker: object
    reason: str


class FaceModel(Model):
    """What every served model shares: TF Serving REST (`predict` with a dict), the V2 Open
    Inference Protocol (`predict` with an `InferRequest`, metadata from `tensor_types`), and
    `answer` for the REST predict lane. Subclasses give `find`, `run`, `rest_answer` and
    `tensor_types`."""

    takes_faces = True
    """Whether requests hold 96x96 faces (else photos: see `photo_servable`)."""

    def __init__(self, name: str, limits: RequestLimits) -> None:
        super().__init__(name)
        self.limits = limits

    @staticmethod
    def read_body(body: bytes, input_name: str, limits: RequestLimits) -> FaceRequest:
        """A REST predict body that is not a plain pixel array (JSON parsing: off the loop)."""
        return json_face_request(body, input_name, limits)

    def input_name(self, target) -> str:
        """The name of the one input of version `target`'s signature."""
        return self.tensor_types(target)[0][0]["name"]

    async def predict(self, payload, headers: dict | None = None):
        if isinstance(payload, InferRequest):
            protocol = "v2-grpc" if payload.from_grpc else "v2-rest"
            with counted_predict(self.name, protocol):
                return await self._infer(payload, headers or {})
        target = self.find()
        request = faces_from_request(payload, self.input_name(target), self.limits)
        return await self.answer(request, target)

    async def _infer(self, request: InferRequest, headers: dict) -> InferResponse:
        """KServe's V2 infer, on the version the request (or `v2_lane`'s header) names."""
        version = request.model_version or headers.get(VERSION_HEADER) or None
        target = self.find(version)
        if target is None:
            raise (
                VersionNotFound(self.name, version)
                if version
                else NoVersionYet(self.missing_message())
            )
        faces = faces_from_infer_request(request, self.input_name(target), self.limits)
        return infer_response(request, self.name, target.version, await self.run(faces, target))

    async def answer(self, request: FaceRequest, target) -> dict:
        """TF Serving's REST answer to `request` on version `target`."""
        return self.rest_answer(request, await self.run(request.faces, target))

    def parts(self) -> tuple[SavedModelServable, ...]:
        """The SavedModel servables this model answers with."""
        raise NotImplementedError

    def refused(self) -> dict[int, str]:
        """Versions that failed to load, and why (none for a model made of others)."""
        return {}

    def get_input_types(self) -> list[dict]:
        return self.tensor_types(self.find())[0]

    def get_output_types(self) -> list[dict]:
        return self.tensor_types(self.find())[1]


class SavedModelServable(FaceModel):
    """One model under `<base_path>/<name>/`, following its versions and labels as they change."""

    def __init__(
        self,
        name: str,
        base_path: str | Path,
        options: ServingOptions = ServingOptions(),
        sampler: RequestSampler | None = None,
        limits: RequestLimits = RequestLimits(),
    ) -> None:
        super().__init__(name, limits)
        self.base_path, self.options, self.sampler = base_path, options, sampler
        self.layout = model_repository.layout(base_path)
        self.served = ServedVersions()
        self.refreshed_at = 0.0
        """When the layout was last read without an error (Unix time)."""
        self._refused: dict[int, Refusal] = {}
        """Versions that failed to load, with why and the marker of their files then."""

    @property
    def version(self) -> int | None:
        return self.served.default

    def load(self) -> bool:
        """Loads what the layout holds. A model with no loadable version yet is not ready (the
        server serves the others, says so, and serves it as soon as a version appears)."""
        self.refresh()
        if not self.ready:
            logger.warning("%s", self.missing_message())
        return self.ready

    def missing_message(self) -> str:
        """Why this model answers nothing yet, and how to give it a version."""
        return (
            f"{self.name} has no loadable version under {self.base_path}/{self.name} yet: run the "
            f"pipeline (emotion-ai run) or promote a registered version (emotion-ai promote "
            f"{self.name} VERSION); it is served as soon as one appears"
        )

    def refresh(self) -> bool:
        """Loads the versions the policy and labels want and drops the others; True if anything
        changed. Raises when the layout cannot be read (the versions served stay)."""
        changed = self._swap_versions()
        self.refreshed_at = time.time()
        LAST_REFRESH.labels(self.name).set(self.refreshed_at)
        if changed and self.served.loaded and not self.ready:
            logger.info("%s now serves version %s", self.name, self.version)
        self.ready = bool(self.served.loaded)
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
        for version, refusal in list(self._refused.items()):
            if version in listed and self.layout.marker(self.name, version) != refusal.marker:
                del self._refused[version]

    def _load(self, version: int) -> LoadedVersion | None:
        marker = self.layout.marker(self.name, version)
        try:
            return load_version(
                self.name, version, self.layout.local_copy(self.name, version), self.options
            )
        except Exception as error:  # noqa: BLE001 - any unloadable version is refused the same way
            self._refused[version] = Refusal(marker, f"{type(error).__name__}: {error}")
            logger.error("refused %s version %s: %s", self.name, version, error)
            return None

    def refused(self) -> dict[int, str]:
        """Versions in the layout that failed to load, and why."""
        return {version: refusal.reason for version, refusal in sorted(self._refused.items())}

    def find(self, version: str | None = None, label: str | None = None) -> LoadedVersion | None:
        return self.served.find(version, label)

    def versions(self) -> list[str]:
        """Loaded versions, the default first."""
        served = self.served
        return [str(v) for v in sorted(served.loaded, key=lambda v: (v != served.default, -v))]

    async def run(self, faces: np.ndarray, target: LoadedVersion) -> dict[str, np.ndarray]:
        """The model's named output for `faces` on version `target`."""
        outputs = await target.infer(faces)
        if self.sampler:
            classes = outputs.argmax(axis=1) if outputs.shape[1] == len(EMOTIONS) else None
            self.sampler.record(self.name, faces, classes)
        return {target.tensor_names()[1]: outputs}

    def rest_answer(self, request: FaceRequest, outputs: dict[str, np.ndarray]) -> dict:
        return request.answer(next(iter(outputs.values())).tolist())

    def signature(self, target: LoadedVersion) -> dict:
        return target.signature()

    def parts(self) -> tuple[SavedModelServable, ...]:
        return (self,)

    def tensor_types(self, target: LoadedVersion) -> tuple[list[dict], list[dict]]:
        input_name, output_name = target.tensor_names()
        return [tensor_type(input_name, "FP32", [-1, *FACE_BATCH])], [
            tensor_type(output_name, "FP32", [-1, OUTPUT_SIZES[self.name]])
        ]


COMBINED_VERSION_FACTOR = 10**6
"""`emotion-ai`'s version is one int64, as TF Serving clients parse it: keypoint version x 10**6 +
emotion version (3000004 is keypoints 3 with emotion 4). It grows whenever either model's does."""


def combined_version(keypoints: int, emotion: int) -> int:
    if emotion >= COMBINED_VERSION_FACTOR:
        raise ValueError(f"emotion version {emotion} does not fit the combined version")
    return keypoints * COMBINED_VERSION_FACTOR + emotion


@dataclass(frozen=True)
class FaceVersion:
    """The keypoint and emotion versions that answer one `emotion-ai` request."""

    keypoints: LoadedVersion
    emotion: LoadedVersion

    @property
    def version(self) -> int:
        return combined_version(self.keypoints.version, self.emotion.version)


class FaceServable(FaceModel):
    """`emotion-ai`: 15 named keypoints and the emotion with its 5 probabilities, per face."""

    def __init__(
        self,
        keypoints: SavedModelServable,
        emotion: SavedModelServable,
        sampler: RequestSampler | None = None,
    ) -> None:
        self.keypoints, self.emotion = keypoints, emotion
        super().__init__(COMBINED_MODEL, keypoints.limits)
        self.sampler = sampler

    @property
    def ready(self) -> bool:
        """Ready while both models serve a version."""
        return self.keypoints.ready and self.emotion.ready

    @ready.setter
    def ready(self, _value: bool) -> None:
        """Follows its parts (KServe's Model sets `ready` when it is made)."""

    def missing_message(self) -> str:
        return "; ".join(part.missing_message() for part in self.parts() if not part.ready)

    @property
    def version(self) -> int | None:
        if not self.ready:
            return None
        return combined_version(self.keypoints.version, self.emotion.version)

    @property
    def refreshed_at(self) -> float:
        return min(self.keypoints.refreshed_at, self.emotion.refreshed_at)

    def stale(self) -> bool:
        return self.keypoints.stale() or self.emotion.stale()

    def find(self, version: str | None = None, label: str | None = None) -> FaceVersion | None:
        """`version` is a combined version (see COMBINED_VERSION_FACTOR); a label must be set on
        both models."""
        if version is None:
            keypoint_version = emotion_version = None
        elif (number := version_number(version)) is None:
            return None
        else:
            keypoint_version, emotion_version = map(str, divmod(number, COMBINED_VERSION_FACTOR))
        keypoints = self.keypoints.find(keypoint_version, label)
        emotion = self.emotion.find(emotion_version, label)
        return FaceVersion(keypoints, emotion) if keypoints and emotion else None

    def versions(self) -> list[str]:
        return [str(self.version)] if self.ready else []

    def parts(self) -> tuple[SavedModelServable, ...]:
        return (self.keypoints, self.emotion)

    async def run(self, faces: np.ndarray, target: FaceVersion) -> dict[str, np.ndarray]:
        """Keypoints, probabilities and emotion labels for `faces` on `target`'s two versions."""
        coordinates, probabilities = await asyncio.gather(
            target.keypoints.infer(faces), target.emotion.infer(faces)
        )
        if self.sampler:
            self.sampler.record(self.name, faces, probabilities.argmax(axis=1))
        labels = np.array([EMOTIONS[i] for i in probabilities.argmax(axis=1)], dtype=object)
        return {"keypoints": coordinates, "probabilities": probabilities, "emotion": labels}

    def rest_answer(self, request: FaceRequest, outputs: dict[str, np.ndarray]) -> dict:
        return request.answer(
            [
                describe_face(c, p)
                for c, p in zip(outputs["keypoints"], outputs["probabilities"], strict=True)
            ]
        )

    def signature(self, target: FaceVersion) -> dict:
        face = target.keypoints.signature()["serving_default"]["inputs"]
        return {
            "serving_default": {
                "inputs": face,
                "outputs": {
                    "keypoints": tensor_info("DT_FLOAT", [None, N_COORDINATES]),
                    "probabilities": tensor_info("DT_FLOAT", [None, len(EMOTIONS)]),
                    "emotion": tensor_info("DT_STRING", [None]),
                },
                "method_name": "tensorflow/serving/predict",
            }
        }

    def tensor_types(self, target: FaceVersion) -> tuple[list[dict], list[dict]]:
        inputs, _ = target.keypoints.tensor_names()
        return [tensor_type(inputs, "FP32", [-1, *FACE_BATCH])], [
            tensor_type("keypoints", "FP32", [-1, N_COORDINATES]),
            tensor_type("probabilities", "FP32", [-1, len(EMOTIONS)]),
            tensor_type("emotion", "BYTES", [-1]),
        ]
