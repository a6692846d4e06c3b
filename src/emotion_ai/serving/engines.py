"""Inference engines: what runs a served SavedModel. The SavedModel stays the artifact (TF Serving
and KServe read the same layout); the engine only decides what computes its answers.

`tensorflow` calls the SavedModel's `serve` function. `openvino` converts the same SavedModel with
OpenVINO's TensorFlow front end (or reads the converted model the pre-promotion check shipped in
the export) and compiles it for the CPU in full float32 precision (CPUs with AMX would otherwise
compute in bfloat16, about 5e-3 off on the probabilities); each calling thread gets its own infer
request, as OpenVINO's requests are not thread-safe. An OpenVINO model is used only when it agrees
with TensorFlow's answers on the version's warm-up faces within `AGREEMENT_TOLERANCE`.
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
        if not hasattr(saved_model, "serve"):
            raise ValueError("it has no `serve` endpoint")
        self.saved_model = saved_model

    @classmethod
    def load(cls, saved_model_dir: Path) -> TensorFlowEngine:
        return cls(tf.saved_model.load(str(saved_model_dir)))

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

    def __init__(self, model) -> None:
        """Compiles `model` (an `openvino.Model`) for the CPU."""
        import openvino

        self.model = model
        self.compiled = openvino.Core().compile_model(
            model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        )
        self._requests = threading.local()

    @classmethod
    def converted(cls, saved_model_dir: Path) -> OpenVinoEngine:
        """The SavedModel converted by OpenVINO's TensorFlow front end."""
        import openvino

        with root_logger_kept():
            return cls(openvino.convert_model(str(saved_model_dir)))

    def infer(self, faces: np.ndarray) -> np.ndarray:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        return request.infer({0: faces})[0].copy()


@dataclass(frozen=True)
class Agreement:
    """TensorFlow's answers to faces: what an OpenVINO model must agree with."""

    faces: list[np.ndarray]
    answers: list[np.ndarray]


@dataclass(frozen=True)
class EngineChoice:
    engine: Engine
    reason: str
    """Why this engine runs the version (logged once it is loaded)."""
    agreement: Agreement | None = None
    """For an OpenVINO model converted here, TensorFlow's answers it agreed with."""


SHIPPED_OPENVINO_DIR = "assets.extra/openvino"
"""Where the pre-promotion check leaves, inside the export, the OpenVINO model it checked and
TensorFlow's answers it agreed with (`model.xml`, `model.bin`, `agreement.npz`). A server loads
that model without TensorFlow or a conversion, both of which hold Python's GIL for up to half a
second at a time, stalling every request (and /healthz) while a new version loads."""


def ship_openvino(export_dir: Path, engine: OpenVinoEngine, agreement: Agreement) -> None:
    """Writes the checked OpenVINO model and its agreement into the export."""
    import openvino

    folder = export_dir / SHIPPED_OPENVINO_DIR
    folder.mkdir(parents=True, exist_ok=True)
    openvino.save_model(engine.model, folder / "model.xml", compress_to_fp16=False)
    np.savez(
        folder / "agreement.npz",
        **{f"faces_{i}": faces for i, faces in enumerate(agreement.faces)},
        **{f"answers_{i}": answers for i, answers in enumerate(agreement.answers)},
    )


def _shipped_openvino(export_dir: Path) -> EngineChoice | None:
    """The OpenVINO model shipped in the export, when there is one and it still agrees with the
    TensorFlow answers shipped beside it (on this machine's CPU); else None."""
    import openvino

    folder = export_dir / SHIPPED_OPENVINO_DIR
    if not (folder / "model.xml").is_file():
        return None
    try:
        engine = OpenVinoEngine(openvino.Core().read_model(folder / "model.xml"))
        with np.load(folder / "agreement.npz", allow_pickle=False) as stored:
            count = len(stored.files) // 2
            agreement = Agreement(
                [stored[f"faces_{i}"] for i in range(count)],
                [stored[f"answers_{i}"] for i in range(count)],
            )
    except Exception as error:  # noqa: BLE001 - a broken shipped model is converted again
        logger.warning("the OpenVINO model shipped in %s does not load: %s", export_dir, error)
        return None
    difference = largest_disagreement(engine, agreement)
    if difference is None or difference > 1.0 or not agreement.faces:
        logger.warning("the OpenVINO model shipped in %s disagrees with its answers", export_dir)
        return None
    return EngineChoice(
        engine,
        f"shipped in the export; agrees with TensorFlow's answers within {difference:.2g} of the "
        f"tolerance {AGREEMENT_TOLERANCE:g} on {sum(map(len, agreement.faces))} faces",
    )


def choose_engine(
    wanted: str, saved_model_dir: Path, check_faces: list[np.ndarray]
) -> EngineChoice:
    """`wanted` when it loads and, for OpenVINO, agrees with TensorFlow on `check_faces` (or the
    export ships an OpenVINO model that agrees with TensorFlow's shipped answers); else
    TensorFlow, with the reason. Raises when TensorFlow cannot load the SavedModel either."""
    if wanted == OpenVinoEngine.name and (shipped := _shipped_openvino(saved_model_dir)):
        return shipped
    reference = TensorFlowEngine.load(saved_model_dir)
    if wanted == reference.name:
        return EngineChoice(reference, "chosen")
    try:
        candidate = OpenVinoEngine.converted(saved_model_dir)
    except Exception as error:  # noqa: BLE001 - any conversion failure falls back the same way
        return EngineChoice(reference, f"OpenVINO could not load it ({error})")
    agreement = Agreement(check_faces, [reference.infer(faces) for faces in check_faces])
    difference = largest_disagreement(candidate, agreement)
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
        agreement,
    )


def largest_disagreement(candidate: Engine, agreement: Agreement) -> float | None:
    """The largest |candidate - TensorFlow| over the agreement's faces, as a share of what the
    tolerance allows there (None when the shapes differ; NaN anywhere counts as infinitely
    off)."""
    worst = 0.0
    for faces, theirs in zip(agreement.faces, agreement.answers, strict=True):
        ours = candidate.infer(faces)
        if ours.shape != theirs.shape:
            return None
        allowed = AGREEMENT_TOLERANCE * (1 + np.abs(theirs))
        share = np.nan_to_num(np.abs(ours - theirs) / allowed, nan=np.inf)
        worst = max(worst, float(share.max(initial=0.0)))
    return worst
