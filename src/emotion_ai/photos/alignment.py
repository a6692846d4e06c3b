"""Alignment: each face rotated so its eyes are level, scaled and cropped to the framing of the
training data, as a 96x96 grayscale face; and the way back, from crop to photo pixels.

The framing is Kaggle FKD's (its mean eye centres in `training.csv`), which the keypoint model
learnt; FER2013's crops are close to it, and bench/faces measures what the difference costs the
emotion model.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from emotion_ai.faces import FACE_SIZE
from emotion_ai.photos.detection import DetectedFace

RIGHT_EYE_IN_CROP = np.array([30.31, 37.81])
"""The subject's right eye (image left) in a 96x96 Kaggle face: its mean position in training.csv
(the y of both eyes averaged, so that eyes are level)."""
LEFT_EYE_IN_CROP = np.array([66.36, 37.81])


@dataclass(frozen=True)
class AlignedFace:
    pixels: np.ndarray
    """(96, 96, 1) float32 grayscale, 0..255."""
    to_photo: np.ndarray
    """2x3 affine matrix from crop to photo pixels."""
    detected: DetectedFace

    def points_in_photo(self, coordinates: np.ndarray) -> np.ndarray:
        """Crop coordinates (x1, y1, x2, y2, ...) mapped into the photo, in the same layout."""
        points = coordinates.reshape(-1, 2)
        mapped = points @ self.to_photo[:, :2].T + self.to_photo[:, 2]
        return mapped.reshape(coordinates.shape)


def photo_to_crop(face: DetectedFace) -> np.ndarray:
    """The similarity transform (2x3) that puts the face's eyes on the crop's eye positions."""
    source = np.array([face.right_eye, face.left_eye], dtype=np.float64)
    target = np.array([RIGHT_EYE_IN_CROP, LEFT_EYE_IN_CROP])
    source_vector, target_vector = source[1] - source[0], target[1] - target[0]
    scale = np.linalg.norm(target_vector) / max(np.linalg.norm(source_vector), 1e-6)
    angle = np.arctan2(target_vector[1], target_vector[0]) - np.arctan2(
        source_vector[1], source_vector[0]
    )
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shift = target[0] - rotation @ source[0]
    return np.hstack([rotation, shift[:, np.newaxis]])


def align(gray: np.ndarray, face: DetectedFace) -> AlignedFace:
    """The 96x96 face of a grayscale photo (h, w) uint8, eyes level."""
    forward = photo_to_crop(face)
    pixels = cv2.warpAffine(
        gray, forward, (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    return AlignedFace(
        pixels.astype(np.float32)[..., np.newaxis], cv2.invertAffineTransform(forward), face
    )
