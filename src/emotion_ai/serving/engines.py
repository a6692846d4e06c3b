"""Inference engines: what runs a served SavedModel. The SavedModel stays the artifact (TF Serving
and KServe read the same layout); the engine only decides what computes its answers.

`tensorflow` calls the SavedModel's `serve` function. `openvino` converts the same SavedModel with
OpenVINO's TensorFlow front end and compiles it for the CPU in full float32 precision (CPUs with
AMX would otherwise compute in bfloat16, about 5e-3 off on the probabilities); each calling thread
gets its own infer request, as OpenVINO's requests are not thread-safe. An OpenVINO model is used
only when it agrees with TensorFlow on the version's warm-up faces within `AGREEMENT_TOLERANCE`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

AGREEMENT_TOLERANCE = 1e-4
"""Largest difference allowed between an OpenVINO answer and TensorFlow's, absolute plus relative:
|ov - tf| <= tol + tol * |tf| for every output value (keypoints in pixels, probabilities). Both run
float32; they differ by rounding only (about 1e-6)."""


class Engine(Protocol):
    name: str

    def infer(self, faces: np.ndarray) -> np.ndarray:
        """The model's one output for float32 faces (n, 96, 96, 1)."""


class TensorFlowEngine:
    name = "tensorflow"

    def __init__(self, saved_model) -> None:
        self.saved_model = saved_model

    def infer(self, faces: np.ndarray) -> np.ndarray:
        return self.saved_model.serve(tf.constant(faces)).numpy()


@contextmanager
def root_logger_kept() -> Iterator[None]:
    """Gives the root logger back its level, filters and handlers: `openvino.convert_model` sets it
    to ERROR and restores it only when the conversion succeeds, which would silence every other
    library's warnings in a server that falls back to TensorFlow."""
    root = logging.getLogger()
    level, filters, handlers = root.level, list(root.filters), list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.filters[:] = filters
        root.handlers[:] = handlers


class OpenVinoEngine:
    name = "openvino"

    def __init__(self, saved_model_dir: Path) -> None:
        import openvino

        with root_logger_kept():
            model = openvino.convert_model(str(saved_model_dir))
        self.compiled = openvino.Core().compile_model(
            model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        )
        self._requests = threading.local()

    def infer(self, faces: np.ndarray) -> np.ndarray:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        return request.infer({0: faces})[0].copy()


@dataclass(frozen=True)
class EngineChoice:
    engine: Engine
    reason: str
    """Why this engine runs the version (logged once it is loaded)."""


def choose_engine(
    wanted: str, saved_model, saved_model_dir: Path, check_faces: list[np.ndarray]
) -> EngineChoice:
    """`wanted` when it loads and, for OpenVINO, agrees with TensorFlow on `check_faces`; else
    TensorFlow, with the reason."""
    reference = TensorFlowEngine(saved_model)
    if wanted == reference.name:
        return EngineChoice(reference, "chosen")
    try:
        candidate = OpenVinoEngine(saved_model_dir)
    except Exception as error:  # noqa: BLE001 - any conversion failure falls back the same way
        return EngineChoice(reference, f"OpenVINO could not load it ({error})")
    difference = largest_disagreement(candidate, reference, check_faces)
    if difference is None:
        return EngineChoice(reference, "OpenVINO's answers disagree with TensorFlow's in shape")
    if difference > 1.0:
        return EngineChoice(
            reference,
            f"OpenVINO's answers are off TensorFlow's by up to {difference:.2g} of the tolerance "
            f"{AGREEMENT_TOLERANCE:g}",
        )
    return EngineChoice(
        candidate,
        f"agrees with TensorFlow within {difference:.2g} of the tolerance {AGREEMENT_TOLERANCE:g} "
        f"on {sum(map(len, check_faces))} warm-up faces",
    )


def largest_disagreement(
    candidate: Engine, reference: Engine, check_faces: list[np.ndarray]
) -> float | None:
    """The largest |candidate - reference| over the faces, as a share of what the tolerance allows
    there (None when the shapes differ; NaN anywhere counts as infinitely off)."""
    worst = 0.0
    for faces in check_faces:
        ours, theirs = candidate.infer(faces), reference.infer(faces)
        if ours.shape != theirs.shape:
            return None
        allowed = AGREEMENT_TOLERANCE * (1 + np.abs(theirs))
        share = np.nan_to_num(np.abs(ours - theirs) / allowed, nan=np.inf)
        worst = max(worst, float(share.max(initial=0.0)))
    return worst
