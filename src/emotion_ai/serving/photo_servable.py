"""`emotion-ai-faces`: photos in (TF Serving's REST row or columnar format, `{"b64": ...}` PNG or
JPEG of any size, colour or gray, EXIF orientation honoured), a list of faces per photo out (box,
score, the 15 named keypoints in photo pixels, the emotion and its 5 probabilities; [] for a photo
without faces).

Its versions are `emotion-ai`'s (the keypoint and emotion versions it runs). Detection and alignment
run in worker threads; the crops of concurrent requests go through the two models' batchers
together. It answers REST only: its answer is a list per photo, which no fixed tensor holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from kserve.errors import InvalidInput
from PIL import Image

from emotion_ai.photos.analysis import crops, describe, find_faces
from emotion_ai.photos.detection import FaceDetector
from emotion_ai.photos.images import PhotoError, read_photo
from emotion_ai.serving.errors import RequestTooLarge
from emotion_ai.serving.face_requests import (
    PixelBudget,
    b64_bytes,
    parse_json_body,
    request_instances,
)
from emotion_ai.serving.servables import (
    FaceModel,
    FaceServable,
    FaceVersion,
    SavedModelServable,
)
from emotion_ai.serving.versions import tensor_info
from emotion_ai.settings import PHOTO_MODEL, DetectorSettings, RequestLimits


@dataclass
class PhotoRequest:
    photos: list[np.ndarray]
    """RGB uint8 (h, w, 3), upright."""
    columnar: bool

    def answer(self, faces_per_photo: list[list[dict]]) -> dict:
        return {"outputs" if self.columnar else "predictions": faces_per_photo}


PHOTO_INPUT = "photo"


def photo_request(payload: object, limits: RequestLimits) -> PhotoRequest:
    """A REST request of photos, `{"instances": [{"b64": ...}, ...]}` or `{"inputs": [...]}` (rows
    and columns also under the input's name, `photo`)."""
    instances, columnar = request_instances(payload, PHOTO_INPUT, limits, "photos")
    budget = PixelBudget(limits)
    return PhotoRequest([_photo(item, budget) for item in instances], columnar)


def _photo(item: object, budget: PixelBudget) -> np.ndarray:
    if not isinstance(item, dict) or "b64" not in item:
        raise InvalidInput(f'{PHOTO_MODEL} takes photos as {{"b64": "<base64 PNG or JPEG>"}}')
    data = b64_bytes(item["b64"])
    try:
        return read_photo(data, budget.spend)
    except Image.DecompressionBombError as error:
        raise RequestTooLarge(f"the photo is larger than the server takes ({error})") from error
    except PhotoError as error:
        raise InvalidInput(f"the photo is {error}") from error


class PhotoServable(FaceModel):
    takes_faces = False

    def __init__(self, combined: FaceServable, detector: FaceDetector) -> None:
        self.combined = combined
        super().__init__(PHOTO_MODEL, combined.limits)
        self.detector = detector

    @property
    def ready(self) -> bool:
        """Ready while both models serve a version."""
        return self.combined.ready

    @ready.setter
    def ready(self, _value: bool) -> None:
        """Follows the models it runs (KServe's Model sets `ready` when it is made)."""

    def missing_message(self) -> str:
        return self.combined.missing_message()

    @property
    def version(self) -> int | None:
        return self.combined.version

    @property
    def refreshed_at(self) -> float:
        return self.combined.refreshed_at

    def stale(self) -> bool:
        return self.combined.stale()

    def find(self, version: str | None = None, label: str | None = None) -> FaceVersion | None:
        return self.combined.find(version, label)

    def versions(self) -> list[str]:
        return self.combined.versions()

    def parts(self) -> tuple[SavedModelServable, ...]:
        return self.combined.parts()

    @staticmethod
    def read_body(body: bytes, input_name: str, limits: RequestLimits) -> PhotoRequest:
        return photo_request(parse_json_body(body), limits)

    async def predict(self, payload, headers: dict | None = None) -> dict:
        if not isinstance(payload, dict):
            raise InvalidInput(f"{PHOTO_MODEL} answers TF Serving's REST predict only")
        return await self.answer(photo_request(payload, self.limits), self.find())

    async def answer(self, request: PhotoRequest, target: FaceVersion) -> dict:
        found = await asyncio.gather(
            *(asyncio.to_thread(find_faces, photo, self.detector) for photo in request.photos)
        )
        every_face = [face for faces in found for face in faces]
        if not every_face:
            return request.answer([[] for _ in found])
        outputs = await self.combined.run(crops(every_face), target)
        described = iter(
            describe(face, coordinates, probabilities)
            for face, coordinates, probabilities in zip(
                every_face, outputs["keypoints"], outputs["probabilities"], strict=True
            )
        )
        return request.answer([[next(described) for _ in faces] for faces in found])

    def signature(self, target: FaceVersion) -> dict:
        return {
            "serving_default": {
                "inputs": {PHOTO_INPUT: tensor_info("DT_STRING", [None])},
                "outputs": {"faces": tensor_info("DT_STRING", [None])},
                "method_name": "tensorflow/serving/predict",
            }
        }

    def tensor_types(self, target: FaceVersion) -> tuple[list[dict], list[dict]]:
        return [{"name": PHOTO_INPUT, "datatype": "BYTES", "shape": [-1]}], []


def load_photo_servable(combined: FaceServable, settings: DetectorSettings) -> PhotoServable:
    """`emotion-ai-faces` over `combined`, its detector loaded and warmed up (MTCNN's first call
    takes half a second)."""
    detector = FaceDetector(settings)
    detector.detect(np.full((240, 320, 3), 128, np.uint8))
    return PhotoServable(combined, detector)
