"""KServe's V2 Open Inference Protocol for our models: the tensors a V2 request carries, read as
faces, and the answer's tensors. KServe's own routes (`/v2/models/<name>[/ready|/infer]`,
`/v2/health/*`, and V2 gRPC's `GRPCInferenceService`) call the servables with these.

A request has one input tensor of faces, as `face_requests.faces_from_tensor` reads them: FP32 or
UINT8 (or any other number type) pixels, or BYTES, one PNG or JPEG image a face.
"""

from __future__ import annotations

import numpy as np
from kserve.errors import InvalidInput, ModelNotFound
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from emotion_ai.serving.face_requests import check_input_names, faces_from_tensor
from emotion_ai.settings import RequestLimits

NUMBER_TYPES = {"FP32", "FP64", "FP16", "UINT8", "UINT16", "INT8", "INT16", "INT32", "INT64"}
VERSION_HEADER = "emotion-ai-model-version"
"""Carries the version of a versioned V2 REST route to the model (see `v2_lane`)."""
DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(object): "BYTES"}
"""The V2 datatype of each answer tensor's NumPy type."""


class VersionNotFound(ModelNotFound):
    """A V2 request for a version that is not served (HTTP 404)."""

    def __init__(self, model_name: str, version: str) -> None:
        super().__init__(model_name)
        self.reason = f"version {version} of model {model_name} is not served"


def tensor_type(name: str, datatype: str, shape: list[int]) -> dict:
    """A tensor's entry in V2 model metadata (unknown dimensions are -1)."""
    return {"name": name, "datatype": datatype, "shape": shape}


def faces_from_infer_request(
    request: InferRequest, input_name: str, limits: RequestLimits
) -> np.ndarray:
    """The faces (n, 96, 96, 1) float32 in 0..255 that a V2 request's one input tensor, named
    `input_name`, holds."""
    check_input_names([tensor.name for tensor in request.inputs], input_name)
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES" and tensor.datatype not in NUMBER_TYPES:
        raise InvalidInput(
            f"input {tensor.name!r} is {tensor.datatype}; faces are numbers or BYTES images"
        )
    return faces_from_tensor(tensor.name, tensor.as_numpy(), limits)


def infer_response(
    request: InferRequest, model_name: str, version: int, outputs: dict[str, np.ndarray]
) -> InferResponse:
    """The V2 answer holding `outputs`, in the request's encoding (REST JSON or binary, gRPC)."""
    tensors = []
    for name, values in outputs.items():
        tensor = InferOutput(name, list(values.shape), DATATYPES[values.dtype])
        tensor.set_data_from_numpy(values, binary_data=request.use_binary_outputs)
        tensors.append(tensor)
    return InferResponse(
        request.id or "",
        model_name,
        tensors,
        model_version=str(version),
        from_grpc=request.from_grpc,
        use_binary_outputs=request.use_binary_outputs,
    )
