"""Video monitoring: frames sampled at a chosen rate (OpenCV), faces followed across frames with
stable ids (an IoU tracker), and each face's emotion timeline as CSV, JSON and a PNG plot."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from emotion_ai.faces import EMOTIONS
from emotion_ai.storage import atomic_path

logger = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


class VideoError(ValueError):
    """A file OpenCV cannot read as a video."""


def sample_frames(path: Path, fps: float) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB frame) about `fps` times a second of the video."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: not a video OpenCV can read")
    try:
        native = capture.get(cv2.CAP_PROP_FPS) or fps
        step = max(1, round(native / fps))
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            if index % step == 0:
                yield index / native, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    overlap = max(0.0, right - left) * max(0.0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - overlap
    return overlap / union if union > 0 else 0.0


@dataclass
class IouTracker:
    """Gives each face the id of the track whose last box it overlaps most (at least `min_iou`);
    a track unseen for `max_missed` samples ends, and a new face starts a new id."""

    min_iou: float = 0.3
    max_missed: int = 5
    _tracks: dict[int, tuple[list[float], int]] = field(default_factory=dict)
    _next_id: int = 1

    def assign(self, boxes: list[list[float]]) -> list[int]:
        pairs = sorted(
            (
                (iou(box, last), face, track)
                for face, box in enumerate(boxes)
                for track, (last, _) in self._tracks.items()
            ),
            reverse=True,
        )
        ids: dict[int, int] = {}
        for overlap, face, track in pairs:
            if overlap >= self.min_iou and face not in ids and track not in ids.values():
                ids[face] = track
        for face in range(len(boxes)):
            if face not in ids:
                ids[face], self._next_id = self._next_id, self._next_id + 1
        seen = {ids[face]: (boxes[face], 0) for face in range(len(boxes))}
        for track, (last, missed) in self._tracks.items():
            if track not in seen and missed < self.max_missed:
                seen[track] = (last, missed + 1)
        self._tracks = seen
        return [ids[face] for face in range(len(boxes))]


TIMELINE_COLUMNS = ["time_s", "face_id", "emotion", *[f"p_{label}" for label in EMOTIONS]]


def timeline_rows(time_s: float, ids: list[int], faces: list[dict]) -> list[dict]:
    return [
        {
            "time_s": round(time_s, 3),
            "face_id": face_id,
            "emotion": face["emotion"],
            **{f"p_{label}": p for label, p in zip(EMOTIONS, face["probabilities"], strict=True)},
        }
        for face_id, face in zip(ids, faces, strict=True)
    ]


def monitor(
    path: Path,
    fps: float,
    analyze_frame: Callable[[np.ndarray], list[dict]],
    on_frame: Callable[[np.ndarray, list[dict], list[int]], None] | None = None,
) -> list[dict]:
    """The emotion timeline of every face in a video: one row per face per sampled frame.
    `on_frame(rgb, faces, ids)` sees each sampled frame (to write an annotated video, say)."""
    tracker, rows = IouTracker(), []
    for time_s, rgb in sample_frames(path, fps):
        faces = analyze_frame(rgb)
        ids = tracker.assign([face["box"] for face in faces])
        rows += timeline_rows(time_s, ids, faces)
        if on_frame is not None:
            on_frame(rgb, faces, ids)
    return rows


def write_timeline(rows: list[dict], csv_path: Path) -> tuple[Path, Path, Path]:
    """The timeline as CSV, as JSON beside it, and as a PNG plot of each face's probabilities."""
    with atomic_path(csv_path) as partial, open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, TIMELINE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    json_path, png_path = csv_path.with_suffix(".json"), csv_path.with_suffix(".png")
    with atomic_path(json_path) as partial:
        partial.write_text(json.dumps(rows, indent=1) + "\n")
    with atomic_path(png_path) as partial:
        plot_timeline(rows).savefig(partial, format="png", dpi=100)
    return csv_path, json_path, png_path


def plot_timeline(rows: list[dict]):
    """A figure with one panel per face: its 5 emotion probabilities over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    face_ids = sorted({row["face_id"] for row in rows}) or [0]
    figure, axes = plt.subplots(
        len(face_ids), 1, figsize=(9, 2.4 * len(face_ids)), sharex=True, squeeze=False
    )
    for axis, face_id in zip(axes[:, 0], face_ids, strict=True):
        mine = [row for row in rows if row["face_id"] == face_id]
        times = [row["time_s"] for row in mine]
        for label in EMOTIONS:
            axis.plot(times, [row[f"p_{label}"] for row in mine], marker=".", label=label)
        axis.set_ylim(0, 1)
        axis.set_ylabel(f"face {face_id}")
    axes[0, 0].legend(loc="upper right", ncol=len(EMOTIONS), fontsize="small")
    axes[0, 0].set_title("Emotion probabilities over time")
    axes[-1, 0].set_xlabel("seconds")
    figure.tight_layout()
    return figure


class AnnotatedVideo:
    """Writes annotated frames as an MP4 (OpenCV's mp4v) at the sampling rate."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps, self._writer = path, fps, None

    def write(self, annotated_rgb: np.ndarray) -> None:
        if self._writer is None:
            height, width = annotated_rgb.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
        self._writer.write(cv2.cvtColor(annotated_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
