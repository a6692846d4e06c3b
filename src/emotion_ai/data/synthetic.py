"""Synthetic faces written in the exact Kaggle formats, so the demo and the tests need no download.

Each face is drawn from its 15 keypoints (so the keypoints are geometrically true) and its
expression (brows, eye opening, mouth curve and opening) follows the emotion label, so
both models can really learn from it.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotion_ai.data.formats import pixel_string
from emotion_ai.faces import (
    ALWAYS_LABELLED,
    EMOTIONS,
    FACE_SIZE,
    FER_CODE_TO_CLASS,
    FER_DROPPED_CODES,
    KEYPOINT_COLUMNS,
    KEYPOINT_NAMES,
)

MEAN_KEYPOINTS = np.array(
    [
        (66.4, 37.7),
        (30.3, 37.6),
        (59.2, 37.9),
        (73.1, 38.0),
        (36.7, 37.9),
        (22.4, 38.0),
        (56.1, 29.3),
        (79.5, 29.9),
        (39.3, 29.6),
        (15.9, 30.4),
        (48.4, 62.7),
        (63.3, 76.0),
        (33.0, 76.2),
        (48.0, 73.4),
        (48.6, 76.4),
    ],
    dtype=np.float32,
)
"""Average FKD keypoints (x, y) in pixels, in KEYPOINT_NAMES order."""

_INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
_ALWAYS_LABELLED_COLUMNS = np.repeat(np.isin(KEYPOINT_NAMES, ALWAYS_LABELLED), 2)
_BROW_INNER = [_INDEX["left_eyebrow_inner_end"], _INDEX["right_eyebrow_inner_end"]]
_BROW_OUTER = [_INDEX["left_eyebrow_outer_end"], _INDEX["right_eyebrow_outer_end"]]
_MOUTH_CORNERS = [_INDEX["mouth_left_corner"], _INDEX["mouth_right_corner"]]


@dataclass(frozen=True)
class Expression:
    """How an emotion moves a face, in pixels (positive y is down)."""

    brow_drop: float
    brow_inner_drop: float
    eye_open: float
    smile: float
    mouth_open: float


EXPRESSIONS: dict[str, Expression] = {
    "Angry": Expression(
        brow_drop=3.0, brow_inner_drop=4.0, eye_open=1.6, smile=-1.0, mouth_open=0.0
    ),
    "Disgust": Expression(
        brow_drop=2.0, brow_inner_drop=1.0, eye_open=1.2, smile=-3.0, mouth_open=3.0
    ),
    "Sad": Expression(
        brow_drop=-1.0, brow_inner_drop=-4.0, eye_open=2.2, smile=-5.0, mouth_open=0.0
    ),
    "Happy": Expression(
        brow_drop=0.0, brow_inner_drop=0.0, eye_open=2.4, smile=6.0, mouth_open=1.5
    ),
    "Surprise": Expression(
        brow_drop=-6.0, brow_inner_drop=0.0, eye_open=4.5, smile=0.0, mouth_open=8.0
    ),
}
_EXPRESSION_TABLE = np.array(
    [
        [
            getattr(EXPRESSIONS[name], field)
            for field in ("brow_drop", "brow_inner_drop", "eye_open", "smile", "mouth_open")
        ]
        for name in EMOTIONS
    ],
    dtype=np.float32,
)


def expression_keypoints(
    labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (n, 15, 2) moved by each label's expression, and the expressions (n, 5)."""
    n = len(labels)
    expression = _EXPRESSION_TABLE[labels] * rng.uniform(0.7, 1.3, size=(n, 5)).astype(np.float32)
    points = np.repeat(MEAN_KEYPOINTS[None], n, axis=0)
    brow_drop, brow_inner_drop, _, smile, mouth_open = expression.T
    points[:, _BROW_INNER + _BROW_OUTER, 1] += brow_drop[:, None]
    points[:, _BROW_INNER, 1] += brow_inner_drop[:, None]
    points[:, _MOUTH_CORNERS, 1] -= smile[:, None]
    points[:, _INDEX["mouth_center_top_lip"], 1] -= mouth_open / 2
    points[:, _INDEX["mouth_center_bottom_lip"], 1] += mouth_open / 2
    return points, expression


def random_pose(points: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Applies a random similarity transform about the image centre; returns points and scales."""
    n = len(points)
    scale = rng.uniform(0.9, 1.1, n).astype(np.float32)
    angle = np.deg2rad(rng.uniform(-6, 6, n)).astype(np.float32)
    shift = rng.uniform(-3, 3, (n, 1, 2)).astype(np.float32)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    centre = FACE_SIZE / 2
    moved = np.einsum("nij,nkj->nki", rotation, points - centre) + centre + shift
    return moved.astype(np.float32), scale


def render_faces(
    points: np.ndarray, expression: np.ndarray, scale: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draws (n, 96, 96) uint8 faces from keypoints and expressions."""
    n = len(points)
    grid_y, grid_x = np.mgrid[0:FACE_SIZE, 0:FACE_SIZE].astype(np.float32)
    grid = (grid_x[None], grid_y[None])
    column = lambda values: values.reshape(n, 1, 1)  # noqa: E731 - broadcast per face
    background = column(rng.uniform(20, 80, n)) + grid_x[None] * column(rng.uniform(-0.3, 0.3, n))
    skin = column(rng.uniform(140, 200, n))
    image = background.copy()

    eyes = points[:, [_INDEX["left_eye_center"], _INDEX["right_eye_center"]]]
    mouth = points[:, [_INDEX["mouth_center_top_lip"], _INDEX["mouth_center_bottom_lip"]]].mean(1)
    face_centre = (eyes.mean(1) + mouth) / 2
    image = np.where(_inside_ellipse(grid, face_centre, 36 * scale, 46 * scale), skin, image)

    for eye in (_INDEX["left_eye_center"], _INDEX["right_eye_center"]):
        eye_open = expression[:, 2] * scale
        image = np.where(
            _inside_ellipse(grid, points[:, eye], 6.5 * scale, eye_open), skin - 90, image
        )
        image = np.where(
            _inside_ellipse(grid, points[:, eye], 1.8 * scale, np.minimum(eye_open, 1.8)),
            skin - 130,
            image,
        )
    for inner, outer in zip(_BROW_INNER, _BROW_OUTER, strict=False):
        near = _distance_to_segment(grid, points[:, inner], points[:, outer]) < 1.6 * column(scale)
        image = np.where(near, skin - 100, image)
    image = np.where(
        _inside_ellipse(grid, points[:, _INDEX["nose_tip"]], 3 * scale, 2 * scale), skin - 50, image
    )
    image = _draw_mouth(image, grid, points, skin, scale)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _draw_mouth(
    image: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    points: np.ndarray,
    skin: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Draws the lips as a curve through both corners and an open mouth between the lips."""
    left, right = points[:, _INDEX["mouth_left_corner"]], points[:, _INDEX["mouth_right_corner"]]
    top, bottom = (
        points[:, _INDEX["mouth_center_top_lip"]],
        points[:, _INDEX["mouth_center_bottom_lip"]],
    )
    middle = (top + bottom) / 2
    control = 2 * middle - (left + right) / 2
    near = np.zeros(image.shape, dtype=bool)
    t_values = np.linspace(0, 1, 13, dtype=np.float32)
    for start_t, end_t in zip(t_values[:-1], t_values[1:], strict=False):
        start = _bezier(right, control, left, start_t)
        end = _bezier(right, control, left, end_t)
        near |= _distance_to_segment(grid, start, end) < 1.5 * scale.reshape(-1, 1, 1)
    image = np.where(near, skin - 110, image)
    half_open = np.maximum((bottom[:, 1] - top[:, 1]) / 2, 0.01)
    width = np.abs(left[:, 0] - right[:, 0]) * 0.3
    return np.where(_inside_ellipse(grid, middle, width, half_open), skin - 140, image)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) ** 2 * p0 + 2 * t * (1 - t) * p1 + t**2 * p2


def _inside_ellipse(
    grid: tuple[np.ndarray, np.ndarray],
    centre: np.ndarray,
    half_width: np.ndarray,
    half_height: np.ndarray,
) -> np.ndarray:
    grid_x, grid_y = grid
    dx = (grid_x - centre[:, 0, None, None]) / np.reshape(half_width, (-1, 1, 1))
    dy = (grid_y - centre[:, 1, None, None]) / np.reshape(half_height, (-1, 1, 1))
    return dx**2 + dy**2 <= 1


def _distance_to_segment(
    grid: tuple[np.ndarray, np.ndarray], start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    grid_x, grid_y = grid
    sx, sy = start[:, 0, None, None], start[:, 1, None, None]
    ex, ey = end[:, 0, None, None], end[:, 1, None, None]
    length_sq = np.maximum((ex - sx) ** 2 + (ey - sy) ** 2, 1e-6)
    t = np.clip(((grid_x - sx) * (ex - sx) + (grid_y - sy) * (ey - sy)) / length_sq, 0, 1)
    return np.hypot(grid_x - (sx + t * (ex - sx)), grid_y - (sy + t * (ey - sy)))


def synthetic_faces(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Faces (n, 96, 96) uint8 showing `labels`, and their keypoints (n, 30) in pixels."""
    points, expression = expression_keypoints(labels, rng)
    points, scale = random_pose(points, rng)
    return render_faces(points, expression, scale, rng), points.reshape(len(labels), -1)


def _batches(n_rows: int, batch: int = 256) -> list[tuple[int, int]]:
    return [(start, min(start + batch, n_rows)) for start in range(0, n_rows, batch)]


def _open_for_writing(path: Path):
    return (
        gzip.open(path, "wt", newline="") if path.suffix == ".gz" else open(path, "w", newline="")
    )


def write_keypoints_csv(
    path: Path, n_rows: int, seed: int = 0, missing_fraction: float = 0.3
) -> Path:
    """Writes an FKD `training.csv`; `missing_fraction` of rows hold only the `ALWAYS_LABELLED`
    keypoints, as Kaggle's incomplete rows do."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open_for_writing(path) as handle:
        writer = csv.writer(handle)
        writer.writerow([*KEYPOINT_COLUMNS, "Image"])
        for start, end in _batches(n_rows):
            images, keypoints = synthetic_faces(rng.integers(0, len(EMOTIONS), end - start), rng)
            partial = rng.random(end - start) < missing_fraction
            keypoints[np.ix_(partial, ~_ALWAYS_LABELLED_COLUMNS)] = np.nan
            for image, row in zip(images, keypoints, strict=False):
                writer.writerow(
                    [*("" if np.isnan(v) else f"{v:.4f}" for v in row), pixel_string(image)]
                )
    return path


FER_USAGE = ("Training", "PublicTest", "PrivateTest")
_CLASS_TO_FER_CODE = {label: code for code, label in FER_CODE_TO_CLASS.items()}


def write_fer_csv(path: Path, n_rows: int, seed: int = 0, dropped_fraction: float = 0.1) -> Path:
    """Writes a FER2013 `fer2013.csv` (48x48 faces, 7 FER codes incl. Fear/Neutral to be
    dropped)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open_for_writing(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for start, end in _batches(n_rows):
            labels = rng.integers(0, len(EMOTIONS), end - start)
            images, _ = synthetic_faces(labels, rng)
            small = images.reshape(-1, 48, 2, 48, 2).mean(axis=(2, 4)).round().astype(np.uint8)
            codes = np.array([_CLASS_TO_FER_CODE[label] for label in labels])
            dropped = rng.random(end - start) < dropped_fraction
            codes[dropped] = rng.choice(sorted(FER_DROPPED_CODES), dropped.sum())
            usage = rng.choice(FER_USAGE, end - start, p=(0.8, 0.1, 0.1))
            for code, image, use in zip(codes, small, usage, strict=False):
                writer.writerow([code, pixel_string(image), use])
    return path
