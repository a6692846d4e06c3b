"""One photo's answer: its faces found and aligned, the models run on the crops, and each face
described in photo pixels (box, score, the 15 named keypoints, the emotion and its probabilities).
The models are given as one function, so the server (batched, async) and `emotion-ai predict`
(in-process) share it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from emotion_ai.data.formats import DataFormatError
from emotion_ai.faces import EMOTIONS, FER_SIZE, KEYPOINT_NAMES
from emotion_ai.photos.alignment import AlignedFace, align
from emotion_ai.photos.detection import FaceDetector
from emotion_ai.photos.images import PhotoError, gray, read_photo

Models = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""(n, 96, 96, 1) faces -> keypoint coordinates (n, 30) and emotion probabilities (n, 5)."""


def find_faces(rgb: np.ndarray, detector: FaceDetector) -> list[AlignedFace]:
    """Every face of an RGB photo, aligned (best score first)."""
    photo_gray = gray(rgb)
    return [align(photo_gray, face) for face in detector.detect(rgb)]


def crops(faces: list[AlignedFace]) -> np.ndarray:
    """The faces' 96x96 crops, stacked (0 faces: an empty (0, 96, 96, 1) batch)."""
    return np.stack([face.pixels for face in faces]) if faces else np.zeros((0, 96, 96, 1))


def describe(face: AlignedFace, coordinates: np.ndarray, probabilities: np.ndarray) -> dict:
    """One face's answer, in photo pixels."""
    points = face.points_in_photo(np.asarray(coordinates, np.float64))
    best = int(np.argmax(probabilities))
    return {
        "box": [round(v, 1) for v in face.detected.box],
        "score": round(face.detected.score, 4),
        "keypoints": {
            name: [round(float(points[2 * i]), 1), round(float(points[2 * i + 1]), 1)]
            for i, name in enumerate(KEYPOINT_NAMES)
        },
        "emotion": EMOTIONS[best],
        "emotion_id": best,
        "probabilities": [round(float(p), 4) for p in probabilities],
        "labels": list(EMOTIONS),
    }


def fer_faces_of(detector: FaceDetector) -> Callable[[Path], list[np.ndarray]]:
    """The faces of a photo file, each aligned and cropped as a 48x48 FER face (for building FER
    data from ordinary photos: see `emotion_ai.data.image_folders`)."""

    def faces_of(path: Path) -> list[np.ndarray]:
        try:
            rgb = read_photo(path.read_bytes())
        except PhotoError as error:
            raise DataFormatError(path, str(error)) from error
        return [
            cv2.resize(face.pixels[..., 0], (FER_SIZE, FER_SIZE), interpolation=cv2.INTER_AREA)
            .round()
            .astype(np.uint8)
            for face in find_faces(rgb, detector)
        ]

    return faces_of


def analyze(rgb: np.ndarray, detector: FaceDetector, models: Models) -> list[dict]:
    """Every face of a photo, described ([] when it has none)."""
    faces = find_faces(rgb, detector)
    if not faces:
        return []
    coordinates, probabilities = models(crops(faces))
    return [describe(f, c, p) for f, c, p in zip(faces, coordinates, probabilities, strict=True)]
