"""Warm-up requests in TF Serving's format, written into every export.

`<version>/assets.extra/tf_serving_warmup_requests` is a TFRecord file of `PredictionLog` protos
(from `tensorflow-serving-api`): TF Serving replays them before it serves the version, and so do our
server and the pre-promotion check. They hold synthetic faces at each batch size a batched call
may have, so that the first call at a size (oneDNN's primitive creation, OpenVINO's shape
inference) happens before any real request waits on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from emotion_ai.data.synthetic import synthetic_faces
from emotion_ai.faces import EMOTIONS

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 2, 4, 8, 16, 32)
"""One request per size: the sizes our batcher's calls take (powers of two up to its default
`max_batch_size`). TF Serving reads at most 1,000 records."""
SIGNATURE = "serving_default"


def warmup_faces(batch_size: int, seed: int = 0) -> np.ndarray:
    """`batch_size` synthetic faces (n, 96, 96, 1) float32 in 0..255, the same for each seed."""
    rng = np.random.default_rng(seed)
    faces, _ = synthetic_faces(rng.integers(0, len(EMOTIONS), batch_size), rng)
    return faces[..., np.newaxis].astype(np.float32)


def predict_request(
    model_name: str, input_name: str, faces: np.ndarray
) -> predict_pb2.PredictRequest:
    """TF Serving's gRPC PredictRequest for `faces` on the default signature."""
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SIGNATURE)
    )
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(faces))
    return request


def write_warmup_requests(export_dir: Path, model_name: str, input_name: str) -> Path:
    """Writes one warm-up request per size of WARMUP_BATCH_SIZES into an export."""
    path = export_dir / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for seed, size in enumerate(WARMUP_BATCH_SIZES):
            request = predict_request(model_name, input_name, warmup_faces(size, seed))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_faces(export_dir: Path) -> list[np.ndarray]:
    """The face batches of an export's warm-up requests ([] when it has none): float32
    (n, 96, 96, 1) each. Raises ValueError when the file is not TF Serving's format."""
    path = export_dir / WARMUP_FILE
    if not path.is_file():
        return []
    batches = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        inputs = log.predict_log.request.inputs
        if len(inputs) != 1:
            raise ValueError(f"{path}: a warm-up request has {len(inputs)} inputs, not one")
        batches.append(tf.make_ndarray(next(iter(inputs.values()))).astype(np.float32))
    return batches
