"""One served version: a SavedModel loaded, checked against its model's contract, put on its engine
and warmed up with its export's warm-up requests before it answers anything.

Kept apart from the servables (and from KServe) so that the pre-promotion check's process
(`infra_validation`) loads a candidate exactly as the server would, without KServe's import time.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from emotion_ai.faces import EMOTIONS, FACE_SIZE, N_COORDINATES
from emotion_ai.release.warmup import read_warmup_faces
from emotion_ai.serving.batching import Batcher
from emotion_ai.serving.engines import Engine, choose_engine
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL, BatchSettings, ServingOptions

logger = logging.getLogger(__name__)


class LoadedVersion:
    """One loaded SavedModel version: the engine that answers it, with its own batcher."""

    def __init__(
        self,
        model_name: str,
        version: int,
        saved_model,
        engine: Engine,
        batching: BatchSettings | None,
    ) -> None:
        self.version, self.saved_model, self.engine = version, saved_model, engine
        self._batcher = Batcher(self.infer_now, batching, model_name) if batching else None

    def infer_now(self, faces: np.ndarray) -> np.ndarray:
        return self.engine.infer(faces)

    async def infer(self, faces: np.ndarray) -> np.ndarray:
        if self._batcher is None:
            return await asyncio.to_thread(self.infer_now, faces)
        return await self._batcher(faces)

    def signature(self) -> dict:
        """TF Serving's `signature_def` of this version's `serving_default`."""
        function = self.saved_model.signatures["serving_default"]
        return {
            "serving_default": {
                "inputs": {
                    name: _tensor_info(spec)
                    for name, spec in function.structured_input_signature[1].items()
                },
                "outputs": {
                    name: _tensor_info(spec) for name, spec in function.structured_outputs.items()
                },
                "method_name": "tensorflow/serving/predict",
            }
        }

    def tensor_names(self) -> tuple[str, str]:
        """The names of the signature's one input and one output."""
        function = self.saved_model.signatures["serving_default"]
        return next(iter(function.structured_input_signature[1])), next(
            iter(function.structured_outputs)
        )


def warmup_batches(export_dir: Path, max_batch_size: int) -> list[np.ndarray]:
    """The export's warm-up faces; an export without them (older than the warm-up file) gets zeros
    at each power-of-two batch size up to `max_batch_size`."""
    batches = read_warmup_faces(export_dir)
    if batches:
        return batches
    sizes = [2**i for i in range(max_batch_size.bit_length()) if 2**i <= max_batch_size]
    return [np.zeros((size, *FACE_BATCH), np.float32) for size in sizes]


OUTPUT_SIZES = {KEYPOINT_MODEL: N_COORDINATES, EMOTION_MODEL: len(EMOTIONS)}
"""Each model's contract: `serve` takes one float32 (n, 96, 96, 1) face batch and returns one
float32 (n, size) tensor."""
FACE_BATCH = [FACE_SIZE, FACE_SIZE, 1]
"""One face's shape, after the batch dimension."""


def _is_one_float32(specs: list, shape: list) -> bool:
    """Whether `specs` is a single float32 tensor of `shape` after its batch dimension."""
    return (
        len(specs) == 1 and specs[0].dtype == tf.float32 and specs[0].shape.as_list()[1:] == shape
    )


def _described(specs: list) -> list[str]:
    return [f"{spec.dtype.name} {spec.shape.as_list()}" for spec in specs]


def contract_violation(model_name: str, saved_model) -> str | None:
    """How a loaded SavedModel breaks its model's contract, or None when it keeps it."""
    if not hasattr(saved_model, "serve") or "serving_default" not in saved_model.signatures:
        return "it has no `serve` endpoint and `serving_default` signature"
    function = saved_model.signatures["serving_default"]
    inputs = list(function.structured_input_signature[1].values())
    outputs = list(function.structured_outputs.values())
    if not _is_one_float32(inputs, FACE_BATCH):
        return f"it takes {_described(inputs)}, not one float32 {[None, *FACE_BATCH]} face batch"
    size = OUTPUT_SIZES[model_name]
    if not _is_one_float32(outputs, [size]):
        return f"it returns {_described(outputs)}, not one float32 [None, {size}]"
    return None


def tensor_info(dtype: str, shape: list[int | None]) -> dict:
    """TF Serving's `TensorInfo` as its REST API writes it (`json_format` of the proto): a
    `tensorflow.DataType` name such as DT_FLOAT, unknown dimensions as -1."""
    return {
        "dtype": dtype,
        "tensor_shape": {"dim": [{"size": str(-1 if d is None else d)} for d in shape]},
    }


def _tensor_info(spec) -> dict:
    """The `TensorInfo` of one tensor spec of a SavedModel signature."""
    return tensor_info(types_pb2.DataType.Name(spec.dtype.as_datatype_enum), list(spec.shape))


def load_version(
    model_name: str, version: int, export_dir: Path, options: ServingOptions = ServingOptions()
) -> LoadedVersion:
    """Loads an export, checks its contract, picks its engine and replays its warm-up requests
    (when `options.warmup`) before it answers anything; raises when it cannot serve."""
    saved_model = tf.saved_model.load(str(export_dir))
    if violation := contract_violation(model_name, saved_model):
        raise ValueError(f"it breaks the {model_name} contract: {violation}")
    batching = options.batches
    batches = warmup_batches(export_dir, batching.max_batch_size if batching else 1)
    checked = batches if options.warmup else batches[:1]
    choice = choose_engine(options.engine, saved_model, export_dir, checked)
    log = logger.info if options.engine == choice.engine.name else logger.warning
    log("%s version %s runs on %s: %s", model_name, version, choice.engine.name, choice.reason)
    loaded = LoadedVersion(model_name, version, saved_model, choice.engine, batching)
    if options.warmup:
        for faces in batches:
            loaded.infer_now(faces)
    return loaded
