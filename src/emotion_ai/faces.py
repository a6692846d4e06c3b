"""What a face is to this project: image sizes, the 15 named keypoints and the 5 emotions."""

from __future__ import annotations

FACE_SIZE = 96
"""Both models take one 96x96 grayscale face (FER's 48x48 faces are upsampled)."""

FKD_PIXELS = FACE_SIZE * FACE_SIZE
FER_SIZE = 48
FER_PIXELS = FER_SIZE * FER_SIZE

KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)
"""The Kaggle Facial Keypoints Detection keypoints, in the column order of `training.csv`."""

KEYPOINT_COLUMNS: tuple[str, ...] = tuple(
    f"{name}_{axis}" for name in KEYPOINT_NAMES for axis in ("x", "y")
)
N_COORDINATES = len(KEYPOINT_COLUMNS)
ALWAYS_LABELLED: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "nose_tip",
    "mouth_center_bottom_lip",
)
"""The keypoints of nearly every Kaggle row: its about 4900 incomplete rows hold only these."""


def _mirror_partner(name: str) -> str:
    return name.replace("left", "@").replace("right", "left").replace("@", "right")


MIRRORED_KEYPOINTS: tuple[int, ...] = tuple(
    KEYPOINT_NAMES.index(_mirror_partner(name)) for name in KEYPOINT_NAMES
)
"""For each keypoint, the one it becomes in a mirrored face (left and right swap; nose and lips
stay)."""

EMOTIONS: tuple[str, ...] = ("Angry", "Disgust", "Sad", "Happy", "Surprise")
"""Our 5 classes; a label is the index into this tuple."""

FER_CODE_TO_CLASS: dict[int, int] = {0: 0, 1: 1, 4: 2, 3: 3, 5: 4}
"""FER2013's 7 codes (0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral)
mapped to our 5 classes; Fear (2) and Neutral (6) are dropped."""

FER_DROPPED_CODES: frozenset[int] = frozenset({2, 6})
FER_CODES: frozenset[int] = frozenset(FER_CODE_TO_CLASS) | FER_DROPPED_CODES
