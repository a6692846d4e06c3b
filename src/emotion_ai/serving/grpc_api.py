"""TF Serving's gRPC API, with the protos of `tensorflow-serving-api`: `PredictionService.Predict`
and `GetModelMetadata`, and `ModelService.GetModelStatus`. KServe's V2 `GRPCInferenceService` is
served on the same port.

A request picks a version as in REST (`model_spec.version` or `model_spec.version_label`, else the
model's default) and is batched with the REST requests to the same version. Errors carry the codes
`errors.STATUSES` gives them, as TF Serving's would: NOT_FOUND for a model, version or label not
served, INVALID_ARGUMENT for an unknown signature or input name or a request that holds no faces,
RESOURCE_EXHAUSTED for one over a limit.
"""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import wrappers_pb2
from kserve.errors import InvalidInput
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from emotion_ai.serving.errors import RestOnly, answered, unserved
from emotion_ai.serving.face_requests import (
    SIGNATURE,
    check_input_names,
    check_signature,
    faces_from_tensor,
)
from emotion_ai.serving.kserve_bridge import add_open_inference_service
from emotion_ai.serving.metrics import counted_predict
from emotion_ai.serving.model_status import status_response
from emotion_ai.settings import RequestLimits

TF_DTYPES = {"FP32": types_pb2.DT_FLOAT, "BYTES": types_pb2.DT_STRING}
"""The TensorFlow dtype of each V2 datatype our models' tensors have."""


def _target(repository, spec: model_pb2.ModelSpec):
    """The model and the version a request's model spec names (None when either is not served)."""
    model = repository.get_model(spec.name)
    version = str(spec.version.value) if spec.HasField("version") else None
    label = spec.version_label or None
    return model, model.find(version, label) if model else None, version, label


def _located(repository, spec: model_pb2.ModelSpec):
    """The model and version a request names; raises what the client is told otherwise."""
    model, target, version, label = _target(repository, spec)
    if target is None:
        raise unserved(model, spec.name, version, label)
    if not model.takes_faces:
        raise RestOnly(f"{spec.name} answers REST only")
    check_signature(spec.signature_name or SIGNATURE)
    return model, target


def _answer_spec(name: str, version: int) -> model_pb2.ModelSpec:
    return model_pb2.ModelSpec(
        name=name, version=wrappers_pb2.Int64Value(value=int(version)), signature_name=SIGNATURE
    )


def _tensor_info(entry: dict) -> meta_graph_pb2.TensorInfo:
    """A V2 tensor type (see `open_inference.tensor_type`) as TF's TensorInfo."""
    return meta_graph_pb2.TensorInfo(
        name=entry["name"],
        dtype=TF_DTYPES[entry["datatype"]],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in entry["shape"]]
        ),
    )


def signature_def_map(model, target) -> get_model_metadata_pb2.SignatureDefMap:
    inputs, outputs = model.tensor_types(target)
    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for entry in inputs:
        signature.inputs[entry["name"]].CopyFrom(_tensor_info(entry))
    for entry in outputs:
        signature.outputs[entry["name"]].CopyFrom(_tensor_info(entry))
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    signature_map.signature_def[SIGNATURE].CopyFrom(signature)
    return signature_map


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, repository, limits: RequestLimits) -> None:
        self.repository, self.limits = repository, limits

    async def Predict(
        self, request: predict_pb2.PredictRequest, context
    ) -> predict_pb2.PredictResponse:
        name = request.model_spec.name
        return await answered(context, f"gRPC predict on {name}", self._counted_predict(request))

    async def _counted_predict(
        self, request: predict_pb2.PredictRequest
    ) -> predict_pb2.PredictResponse:
        with counted_predict(request.model_spec.name, "grpc"):
            return await self._predict(request)

    async def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        model, target = _located(self.repository, request.model_spec)
        input_name = model.input_name(target)
        check_input_names(list(request.inputs), input_name)
        outputs = await model.run(self._faces(input_name, request.inputs[input_name]), target)
        wanted = set(request.output_filter) or set(outputs)
        if unknown := wanted - set(outputs):
            raise InvalidInput(
                f"output_filter names {sorted(unknown)}; the outputs are {sorted(outputs)}"
            )
        response = predict_pb2.PredictResponse(model_spec=_answer_spec(model.name, target.version))
        for output_name in wanted:
            values = outputs[output_name]
            if values.dtype == object:
                values = values.astype(bytes)
            response.outputs[output_name].CopyFrom(tf.make_tensor_proto(values))
        return response

    def _faces(self, input_name: str, proto) -> np.ndarray:
        """The faces of the request's tensor; a tensor TensorFlow cannot read is invalid input."""
        try:
            values = tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise InvalidInput(
                f"input {input_name!r} is not a readable tensor ({error})"
            ) from error
        return faces_from_tensor(input_name, values, self.limits)

    async def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        return await answered(context, "gRPC metadata", self._metadata(request))

    async def _metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if list(request.metadata_field) != ["signature_def"]:
            raise InvalidInput('metadata_field must be ["signature_def"]')
        model, target = _located(self.repository, request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse(
            model_spec=_answer_spec(model.name, target.version)
        )
        response.metadata["signature_def"].Pack(signature_def_map(model, target))
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, repository) -> None:
        self.repository = repository

    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context
    ) -> get_model_status_pb2.GetModelStatusResponse:
        return await answered(context, "gRPC status", self._status(request))

    async def _status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        model, target = _located(self.repository, request.model_spec)
        spec = request.model_spec
        named = spec.HasField("version") or spec.version_label
        return status_response(model, target if named else None)


def grpc_server(host: str, port: int, model_server, limits: RequestLimits) -> grpc.aio.Server:
    """A gRPC server (not started) for TF Serving's and KServe's V2 services on `host:port`."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limits.max_body_bytes),
            ("grpc.max_send_message_length", limits.max_body_bytes),
        ]
    )
    repository = model_server.registered_models
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(repository, limits), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(repository), server)
    add_open_inference_service(model_server, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot bind the gRPC port {host}:{port}")
    return server
