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
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from emotion_ai.faces import EMOTIONS, FACE_SIZE, N_COORDINATES
from emotion_ai.release.warmup import read_warmup_faces
from emotion_ai.serving.batching import Batcher
from emotion_ai.serving.engines import Engine, EngineChoice, choose_engine
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL, BatchSettings, ServingOptions

logger = logging.getLogger(__name__)


class LoadedVersion:
    """One loaded SavedModel version: the engine that answers it, with its own batcher."""

    def __init__(
        self,
        model_name: str,
        version: int,
        serving_signature: meta_graph_pb2.SignatureDef,
        choice: EngineChoice,
        batching: BatchSettings | None,
    ) -> None:
        self.version, self.serving_signature, self.choice = version, serving_signature, choice
        self._batcher = Batcher(self.infer_now, batching, model_name) if batching else None

    @property
    def engine(self) -> Engine:
        return self.choice.engine

    def infer_now(self, faces: np.ndarray) -> np.ndarray:
        return self.engine.infer(faces)

    async def infer(self, faces: np.ndarray) -> np.ndarray:
        if self._batcher is None:
            return await asyncio.to_thread(self.infer_now, faces)
        return await self._batcher(faces)

    def signature(self) -> dict:
        """TF Serving's `signature_def` of this version's `serving_default`."""
        signature = self.serving_signature
        return {
            "serving_default": {
                "inputs": {name: _tensor_info(info) for name, info in signature.inputs.items()},
                "outputs": {name: _tensor_info(info) for name, info in signature.outputs.items()},
                "method_name": "tensorflow/serving/predict",
            }
        }

    def tensor_names(self) -> tuple[str, str]:
        """The names of the signature's one input and one output."""
        return next(iter(self.serving_signature.inputs)), next(iter(self.serving_signature.outputs))


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


def serving_signature(export_dir: Path) -> meta_graph_pb2.SignatureDef | None:
    """The export's `serving_default` signature, read from its saved_model.pb (without loading
    the model), or None when it has none."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((export_dir / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serving_default" in meta_graph.signature_def:
            return meta_graph.signature_def["serving_default"]
    return None


def _shape(info: meta_graph_pb2.TensorInfo) -> list[int | None] | None:
    """A tensor's shape, None for an unknown dimension; None when even its rank is unknown."""
    if info.tensor_shape.unknown_rank:
        return None
    return [None if dim.size < 0 else dim.size for dim in info.tensor_shape.dim]


def _is_one_float32(infos: list[meta_graph_pb2.TensorInfo], shape: list) -> bool:
    """Whether `infos` is a single float32 tensor of `shape` after its batch dimension."""
    return (
        len(infos) == 1
        and infos[0].dtype == types_pb2.DT_FLOAT
        and (_shape(infos[0]) or [None])[1:] == shape
    )


def _described(infos: list[meta_graph_pb2.TensorInfo]) -> list[str]:
    return [f"{tf.dtypes.as_dtype(info.dtype).name} {_shape(info)}" for info in infos]


def contract_violation(
    model_name: str, signature: meta_graph_pb2.SignatureDef | None
) -> str | None:
    """How an export's serving signature breaks its model's contract, or None when it keeps it."""
    if signature is None:
        return "it has no `serving_default` signature"
    inputs, outputs = list(signature.inputs.values()), list(signature.outputs.values())
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


def _tensor_info(info: meta_graph_pb2.TensorInfo) -> dict:
    """The REST form of one tensor of a SavedModel signature."""
    return tensor_info(types_pb2.DataType.Name(info.dtype), _shape(info) or [])


def load_version(
    model_name: str, version: int, export_dir: Path, options: ServingOptions = ServingOptions()
) -> LoadedVersion:
    """Loads an export, checks its contract, picks its engine and replays its warm-up requests
    (when `options.warmup`) before it answers anything; raises when it cannot serve."""
    signature = serving_signature(export_dir)
    if violation := contract_violation(model_name, signature):
        raise ValueError(f"it breaks the {model_name} contract: {violation}")
    batching = options.batches
    batches = warmup_batches(export_dir, batching.max_batch_size if batching else 1)
    checked = batches if options.warmup else batches[:1]
    choice = choose_engine(options.engine, export_dir, checked)
    log = logger.info if options.engine == choice.engine.name else logger.warning
    log("%s version %s runs on %s: %s", model_name, version, choice.engine.name, choice.reason)
    loaded = LoadedVersion(model_name, version, signature, choice, batching)
    if options.warmup:
        for faces in batches:
            loaded.infer_now(faces)
    return loaded
