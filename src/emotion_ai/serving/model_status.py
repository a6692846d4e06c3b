"""A model's version statuses as TF Serving's `GetModelStatusResponse`, for gRPC and REST alike:
served versions AVAILABLE (LOADING until the model is ready), versions that failed to load END
with the reason, as TF Serving lists them. REST answers the proto's JSON mapping, as TF Serving
does."""

from __future__ import annotations

from google.protobuf import json_format
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_status_pb2, status_pb2

Status = get_model_status_pb2.ModelVersionStatus


def status_response(model, target=None) -> get_model_status_pb2.GetModelStatusResponse:
    """Every version of `model` (served and refused), or only `target` when a request names one."""
    served = model.versions() if target is None else [target.version]
    refused = model.refused() if target is None else {}
    state = Status.AVAILABLE if model.ready else Status.LOADING
    return get_model_status_pb2.GetModelStatusResponse(
        model_version_status=[
            *(Status(version=int(v), state=state, status=status_pb2.StatusProto()) for v in served),
            *(_refused(int(version), reason) for version, reason in refused.items()),
        ]
    )


def status_json(response: get_model_status_pb2.GetModelStatusResponse) -> dict:
    """TF Serving's `GET /v1/models/<name>` answer: the proto in JSON, defaults included."""
    return json_format.MessageToDict(
        response, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )


def _refused(version: int, reason: str) -> get_model_status_pb2.ModelVersionStatus:
    error = status_pb2.StatusProto(error_code=error_codes_pb2.UNKNOWN, error_message=reason)
    return Status(version=version, state=Status.END, status=error)
