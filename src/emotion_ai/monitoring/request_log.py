"""A sample of served requests, appended as JSON lines, for drift detection to read.

Each sampled face is one line: when, which model, its per-face pixel histogram and mean
brightness, and the predicted emotion class where the model predicts one. Faces are never
stored, only these statistics.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emotion_ai.data.profiles import HISTOGRAM_BINS, pixel_histogram

DEFAULT_SAMPLE_RATE = 0.1


class RequestSampler:
    """Records about `rate` of the requests (all their faces) to `path`; thread-safe."""

    def __init__(
        self, path: Path, rate: float = DEFAULT_SAMPLE_RATE, seed: int | None = None
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"request sample rate must be within 0..1, not {rate}")
        self.path, self.rate = path, rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self, model: str, faces: np.ndarray, predicted_classes: np.ndarray | None = None
    ) -> bool:
        """Appends the request's faces with probability `rate`; True when it did."""
        if self._random.random() >= self.rate:
            return False
        pixels = np.clip(np.rint(faces), 0, 255).astype(np.uint8).reshape(len(faces), -1)
        lines = [
            json.dumps(
                {
                    "time": time.time(),
                    "model": model,
                    "mean": round(float(face.mean()), 3),
                    "histogram": pixel_histogram(face).round(5).tolist(),
                    **({} if predicted_classes is None else {"class": int(predicted_classes[i])}),
                }
            )
            for i, face in enumerate(pixels)
        ]
        with self._lock, open(self.path, "a") as log:
            log.write("\n".join(lines) + "\n")
        return True


@dataclass(frozen=True)
class SampledFaces:
    """Sampled faces read back from a request log, and the byte offset up to which it was read."""

    means: np.ndarray
    histograms: np.ndarray
    classes: np.ndarray
    """Predicted emotion class of the faces that have one."""
    end_offset: int


def read_samples(path: Path, since_offset: int = 0) -> SampledFaces:
    """The faces logged after byte `since_offset` (a half-written last line is left for next
    time)."""
    if not path.is_file():
        return SampledFaces(
            np.empty(0), np.empty((0, HISTOGRAM_BINS)), np.empty(0, dtype=int), since_offset
        )
    with open(path, "rb") as log:
        log.seek(since_offset)
        data = log.read()
    complete = data[: data.rfind(b"\n") + 1]
    records = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return SampledFaces(
        means=np.array([r["mean"] for r in records], dtype=float),
        histograms=np.array([r["histogram"] for r in records], dtype=float).reshape(
            len(records), HISTOGRAM_BINS
        ),
        classes=np.array([r["class"] for r in records if "class" in r], dtype=int),
        end_offset=since_offset + len(complete),
    )
