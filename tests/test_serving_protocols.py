"""Every client the server claims: TF Serving's gRPC stubs (`tensorflow-serving-api`) and REST
formats, KServe's V2 Open Inference Protocol through `tritonclient` (REST) and KServe's own V2 gRPC
stubs, each checked against the model run in this process, errors with each protocol's codes, and
every protocol counted on /metrics."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
import tritonclient.http as triton
from google.protobuf import wrappers_pb2
from kserve.protocol.grpc import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc
from PIL import Image
from servers import free_port, running, serve_command
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tiny_networks import TINY
from tritonclient.utils import InferenceServerException

from emotion_ai.faces import EMOTIONS
from emotion_ai.modeling.networks import build_emotion_model, build_keypoint_model
from emotion_ai.release.model_repository import export_saved_model
from emotion_ai.release.warmup import warmup_faces
from emotion_ai.settings import COMBINED_MODEL, EMOTION_MODEL, KEYPOINT_MODEL

FACES = warmup_faces(3, seed=7)
PREDICT = lambda channel: prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict  # noqa: E731
INFER = lambda channel: grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer  # noqa: E731


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The served layout; the server's log is `server.log` in it."""
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="module")
def server(base):
    """A server on REST and gRPC ports of a layout holding version 1 of each model, and the Keras
    models it serves."""
    models = {KEYPOINT_MODEL: build_keypoint_model(TINY), EMOTION_MODEL: build_emotion_model(TINY)}
    for name, model in models.items():
        export_saved_model(model, base, name, 1)
    rest_port, grpc_port = free_port(), free_port()
    command = serve_command(base, rest_port, "--port", str(grpc_port))
    url = f"http://127.0.0.1:{rest_port}"
    with running(command, f"{url}/v1/models/{EMOTION_MODEL}", base / "server.log"):
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            yield url, channel, models


def expected(models: dict, name: str, faces: np.ndarray = FACES) -> np.ndarray:
    return models[name].predict(faces, verbose=0)


def predict_request(
    name: str, faces: np.ndarray, input_name: str = "face", **spec
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=name, **spec))
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(faces))
    return request


def test_tf_serving_grpc_predict_matches_the_model_for_float_and_uint8_faces(server):
    _, channel, models = server
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for faces in (FACES, FACES.astype(np.uint8), FACES[..., 0]):
        answer = stub.Predict(predict_request(EMOTION_MODEL, faces), timeout=30)
        assert answer.model_spec.version.value == 1
        np.testing.assert_allclose(
            tf.make_ndarray(answer.outputs["output_0"]), expected(models, EMOTION_MODEL), atol=1e-4
        )


def test_tf_serving_grpc_combined_model_has_int_versions_and_named_outputs(server):
    _, channel, models = server
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_request(COMBINED_MODEL, FACES, version=wrappers_pb2.Int64Value(value=1000001))
    answer = stub.Predict(request, timeout=30)
    assert answer.model_spec.version.value == 1000001
    probabilities = tf.make_ndarray(answer.outputs["probabilities"])
    np.testing.assert_allclose(probabilities, expected(models, EMOTION_MODEL), atol=1e-4)
    np.testing.assert_allclose(
        tf.make_ndarray(answer.outputs["keypoints"]), expected(models, KEYPOINT_MODEL), atol=1e-3
    )
    labels = [label.decode() for label in tf.make_ndarray(answer.outputs["emotion"])]
    assert labels == [EMOTIONS[i] for i in probabilities.argmax(axis=1)]


def test_tf_serving_grpc_metadata_and_status(server):
    _, channel, _ = server
    metadata = prediction_service_pb2_grpc.PredictionServiceStub(channel).GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=model_pb2.ModelSpec(name=KEYPOINT_MODEL), metadata_field=["signature_def"]
        ),
        timeout=30,
    )
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert [d.size for d in signature.inputs["face"].tensor_shape.dim] == [-1, 96, 96, 1]
    assert [d.size for d in signature.outputs["output_0"].tensor_shape.dim] == [-1, 30]
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(
            model_spec=model_pb2.ModelSpec(name=COMBINED_MODEL)
        ),
        timeout=30,
    )
    assert [(s.version, s.state) for s in status.model_version_status] == [
        (1000001, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]


def v2_infer_request(
    name: str, faces: np.ndarray, **fields
) -> grpc_predict_v2_pb2.ModelInferRequest:
    return grpc_predict_v2_pb2.ModelInferRequest(
        model_name=name,
        inputs=[
            grpc_predict_v2_pb2.ModelInferRequest.InferInputTensor(
                name="face",
                datatype="FP32",
                shape=list(faces.shape),
                contents=grpc_predict_v2_pb2.InferTensorContents(fp32_contents=faces.ravel()),
            )
        ],
        **fields,
    )


@pytest.mark.parametrize(
    "call, request_, code, words",
    [
        (
            PREDICT,
            predict_request("no-such-model", FACES),
            grpc.StatusCode.NOT_FOUND,
            "no-such-model",
        ),
        (
            PREDICT,
            predict_request(EMOTION_MODEL, FACES, version=wrappers_pb2.Int64Value(value=9)),
            grpc.StatusCode.NOT_FOUND,
            "Specific(emotion-ai-emotion, 9)",
        ),
        (
            PREDICT,
            predict_request(EMOTION_MODEL, np.zeros((2, 10, 10), np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "shape [2, 10, 10]",
        ),
        (
            PREDICT,
            predict_request(EMOTION_MODEL, np.full((1, 96, 96, 1), np.nan, np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "finite",
        ),
        (
            PREDICT,
            predict_request(EMOTION_MODEL, np.array([b"not an image"], dtype=object)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "not a PNG or JPEG",
        ),
        (
            PREDICT,
            predict_request(EMOTION_MODEL, FACES, input_name="image"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "the model's one input is 'face'",
        ),
        (
            PREDICT,
            predict_request(EMOTION_MODEL, FACES, signature_name="predict"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "signature_name 'predict' is not served",
        ),
        (
            INFER,
            v2_infer_request("no-such-model", FACES),
            grpc.StatusCode.NOT_FOUND,
            "no-such-model",
        ),
        (
            INFER,
            v2_infer_request(EMOTION_MODEL, FACES, model_version="9"),
            grpc.StatusCode.NOT_FOUND,
            "version 9",
        ),
        (
            INFER,
            v2_infer_request(EMOTION_MODEL, np.zeros((2, 10, 10), np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "shape [2, 10, 10]",
        ),
    ],
)
def test_grpc_errors_carry_their_status_codes(server, call, request_, code, words):
    """TF Serving's `Predict` and KServe's V2 `ModelInfer` alike."""
    _, channel, _ = server
    with pytest.raises(grpc.RpcError) as error:
        call(channel)(request_, timeout=30)
    assert error.value.code() == code and words in error.value.details()


def png_bytes(face: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(face[..., 0].astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_tritonclient_reads_v2_metadata_and_gets_predictions(server):
    url, _, models = server
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(EMOTION_MODEL)
    metadata = client.get_model_metadata(EMOTION_MODEL)
    assert metadata["inputs"] == [{"name": "face", "datatype": "FP32", "shape": [-1, 96, 96, 1]}]
    assert metadata["outputs"] == [{"name": "output_0", "datatype": "FP32", "shape": [-1, 5]}]
    for faces, datatype in ((FACES, "FP32"), (FACES.astype(np.uint8), "UINT8")):
        for binary in (False, True):
            tensor = triton.InferInput("face", list(faces.shape), datatype)
            tensor.set_data_from_numpy(faces, binary_data=binary)
            answer = client.infer(EMOTION_MODEL, [tensor])
            np.testing.assert_allclose(
                answer.as_numpy("output_0"), expected(models, EMOTION_MODEL), atol=1e-4
            )


def test_tritonclient_sends_encoded_images_to_the_combined_model(server):
    url, _, models = server
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    output_names = [o["name"] for o in client.get_model_metadata(COMBINED_MODEL)["outputs"]]
    assert output_names == ["keypoints", "probabilities", "emotion"]
    # KServe's V2 REST carries BYTES as UTF-8 strings only, so the images go base64-encoded.
    images = np.array([base64.b64encode(png_bytes(face)) for face in FACES], dtype=object)
    tensor = triton.InferInput("face", [len(images)], "BYTES")
    tensor.set_data_from_numpy(images, binary_data=False)
    answer = client.infer(COMBINED_MODEL, [tensor])
    np.testing.assert_allclose(
        answer.as_numpy("probabilities"),
        expected(models, EMOTION_MODEL, np.round(FACES)),
        atol=1e-4,
    )
    assert answer.get_response()["model_version"] == "1000001"


def test_a_bad_v2_request_gets_a_400_naming_the_problem(server):
    url, _, _ = server
    body = {"inputs": [{"name": "face", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    answer = requests.post(f"{url}/v2/models/{EMOTION_MODEL}/infer", json=body, timeout=30)
    assert answer.status_code == 400 and "shape [1, 3]" in answer.json()["error"]


def test_kserve_v2_grpc_gets_predictions_on_the_same_port(server):
    _, channel, models = server
    stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
    request = v2_infer_request(EMOTION_MODEL, FACES)
    answer = stub.ModelInfer(request, timeout=30)
    output = answer.outputs[0]
    values = np.asarray(
        output.contents.fp32_contents or np.frombuffer(answer.raw_output_contents[0], np.float32)
    )
    np.testing.assert_allclose(
        values.reshape(list(output.shape)), expected(models, EMOTION_MODEL), atol=1e-4
    )


def test_tf_serving_rest_takes_rows_and_columns_under_the_input_name(server):
    url, _, models = server
    predict = f"{url}/v1/models/{EMOTION_MODEL}:predict"
    faces = FACES.tolist()
    rows = requests.post(predict, json={"instances": [{"face": face} for face in faces]})
    columns = requests.post(predict, json={"inputs": {"face": faces}, "signature_name": ""})
    assert rows.status_code == 200, rows.text
    np.testing.assert_allclose(
        rows.json()["predictions"], expected(models, EMOTION_MODEL), atol=1e-4
    )
    assert columns.status_code == 400 and "signature_name ''" in columns.json()["error"]
    for body in ({"inputs": {"image": faces}}, {"instances": [{"images": faces[0]}]}):
        refused = requests.post(predict, json=body)
        assert refused.status_code == 400, body
        assert "the model's one input is 'face'" in refused.json()["error"]


def test_tritonclient_reaches_a_version_over_v2_rest(server):
    url, _, models = server
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_model_ready(EMOTION_MODEL, "1")
    assert client.get_model_metadata(EMOTION_MODEL, "1")["inputs"][0]["name"] == "face"
    tensor = triton.InferInput("face", list(FACES.shape), "FP32")
    tensor.set_data_from_numpy(FACES)
    answer = client.infer(EMOTION_MODEL, [tensor], model_version="1")
    assert answer.get_response()["model_version"] == "1"
    np.testing.assert_allclose(
        answer.as_numpy("output_0"), expected(models, EMOTION_MODEL), atol=1e-4
    )
    with pytest.raises(InferenceServerException, match="version 9"):
        client.infer(EMOTION_MODEL, [tensor], model_version="9")
    assert not client.is_model_ready(EMOTION_MODEL, "9")


def test_every_protocol_is_counted_and_errors_are_logged_as_one_line(server, base):
    url, channel, _ = server
    tensor = triton.InferInput("face", list(FACES.shape), "FP32")
    tensor.set_data_from_numpy(FACES)
    triton.InferenceServerClient(url.removeprefix("http://")).infer(EMOTION_MODEL, [tensor])
    prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        predict_request(EMOTION_MODEL, FACES), timeout=30
    )
    grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
        v2_infer_request(EMOTION_MODEL, FACES), timeout=30
    )
    requests.post(f"{url}/v2/models/{EMOTION_MODEL}/infer", json={"inputs": []}, timeout=30)
    metrics = requests.get(f"{url}/metrics", timeout=30).text
    for protocol, code in (("v2-rest", 200), ("grpc", 200), ("v2-grpc", 200), ("v2-rest", 400)):
        line = (
            f'emotion_ai_predict_requests_total{{code="{code}",model="{EMOTION_MODEL}",'
            f'protocol="{protocol}"}}'
        )
        assert line in metrics, (protocol, code)
    log = (base / "server.log").read_text()
    assert "kserve.trace" not in log and "Traceback" not in log
    assert "predict_ms" not in log
