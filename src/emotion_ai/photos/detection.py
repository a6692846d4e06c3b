"""Face detection with MTCNN (PyPI `mtcnn`: TensorFlow, its weights inside its wheel): a box, a
score and five landmarks per face, of which the eyes align the face (see `alignment`).

Chosen over OpenCV's Haar cascades, which find no eyes and miss turned faces (see bench/faces for
recall and speed). Photos are detected at most `DETECTION_MAX_SIDE` pixels on their longer side
(boxes and eyes scaled back): MTCNN's time grows with the pixels, and faces smaller than a 1024th of
the photo are below any useful size anyway.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from emotion_ai.settings import DetectorSettings

logger = logging.getLogger(__name__)
DETECTION_MAX_SIDE = 1024
MTCNN_SMALLEST_SIDE = 24
"""MTCNN's first network looks at 12x12 windows; a photo smaller than twice that holds no face it
can find (and its pyramid breaks on it)."""


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[float, float, float, float]
    """x, y, width, height in photo pixels."""
    score: float
    right_eye: tuple[float, float]
    """The subject's right eye (on the image's left), x and y in photo pixels."""
    left_eye: tuple[float, float]


class FaceDetector:
    """MTCNN, loaded once; `detect` may be called from several threads."""

    def __init__(self, settings: DetectorSettings = DetectorSettings()) -> None:
        from mtcnn import MTCNN

        self.settings = settings
        self._mtcnn = MTCNN(device="CPU:0")
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in an RGB uint8 photo (h, w, 3), best score first."""
        scale = min(1.0, DETECTION_MAX_SIDE / max(rgb.shape[:2]))
        small = _resized(rgb, scale)
        if min(small.shape[:2]) < MTCNN_SMALLEST_SIDE:
            return []
        with self._lock:  # MTCNN is not documented as thread-safe
            found = self._mtcnn.detect_faces(small)
        faces = [_face(item, scale) for item in found]
        kept = [
            face
            for face in faces
            if face.score >= self.settings.min_score
            and min(face.box[2:]) >= self.settings.min_face_size
        ]
        return sorted(kept, key=lambda face: -face.score)


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def _face(item: dict, scale: float) -> DetectedFace:
    """One MTCNN result in photo pixels (MTCNN's `left_eye` is the image's left: the subject's
    right)."""
    x, y, width, height = (float(v) / scale for v in item["box"])
    points = item["keypoints"]
    return DetectedFace(
        box=(x, y, width, height),
        score=float(item["confidence"]),
        right_eye=tuple(float(v) / scale for v in points["left_eye"]),
        left_eye=tuple(float(v) / scale for v in points["right_eye"]),
    )
