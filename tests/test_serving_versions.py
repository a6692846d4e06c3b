"""The server follows the served layout: new versions swap in, rollbacks swap back, corrupt ones are
refused."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
import requests
from google.protobuf import json_format
from servers import (
    free_port,
    running,
    serve_command,
    served_version,
    wait_for_status,
    wait_for_version,
)
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
)
from tiny_networks import TINY

from emotion_ai.modeling.networks import build_emotion_model, build_keypoint_model
from emotion_ai.release.model_repository import (
    export_saved_model,
    remove_version,
    set_label,
)
from emotion_ai.settings import COMBINED_MODEL, EMOTION_MODEL, KEYPOINT_MODEL, PHOTO_MODEL

FACE = [[0] * 9216]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    export_saved_model(build_keypoint_model(TINY), base, KEYPOINT_MODEL, 1)
    export_saved_model(build_emotion_model(TINY), base, EMOTION_MODEL, 1)
    port, grpc_port = free_port(), free_port()
    options = ("--port", str(grpc_port), "--file-system-poll-wait-seconds", "0.5")
    command = serve_command(base, port, *options)
    with running(
        command, f"http://127.0.0.1:{port}/v1/models/{EMOTION_MODEL}", base / "server.log"
    ):
        yield base, f"http://127.0.0.1:{port}/v1/models", f"127.0.0.1:{grpc_port}"


def test_new_version_swaps_in_and_rollback_swaps_back(served):
    base, url, _ = served
    assert served_version(f"{url}/{EMOTION_MODEL}") == "1"
    export_saved_model(build_emotion_model(TINY), base, EMOTION_MODEL, 2)
    wait_for_version(f"{url}/{EMOTION_MODEL}", "2")
    assert (
        requests.post(f"{url}/{EMOTION_MODEL}:predict", json={"instances": FACE}).status_code == 200
    )
    remove_version(base, EMOTION_MODEL, 2)
    wait_for_version(f"{url}/{EMOTION_MODEL}", "1")
    combined = requests.get(f"{url}/emotion-ai").json()["model_version_status"][0]["version"]
    assert combined == "1000001"


def test_a_corrupt_version_is_refused_and_the_old_one_keeps_serving(served):
    base, url, grpc_address = served
    corrupt = base / EMOTION_MODEL / "7"
    corrupt.mkdir()
    (corrupt / "saved_model.pb").write_bytes(b"not a saved model")
    refused = wait_for_status(f"{url}/{EMOTION_MODEL}", "7")
    assert refused["state"] == "END" and refused["status"]["error_message"], refused
    assert served_version(f"{url}/{EMOTION_MODEL}") == "1"
    response = requests.post(f"{url}/emotion-ai:predict", json={"instances": FACE})
    assert (
        response.status_code == 200 and len(response.json()["predictions"][0]["probabilities"]) == 5
    )
    assert "refused emotion-ai-emotion version 7" in (base / "server.log").read_text()
    with grpc.insecure_channel(grpc_address) as channel:
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(
                model_spec=model_pb2.ModelSpec(name=EMOTION_MODEL)
            ),
            timeout=30,
        )
    listed = {s.version: (s.state, s.status.error_message) for s in status.model_version_status}
    state, reason = listed[7]
    assert state == get_model_status_pb2.ModelVersionStatus.END and reason, listed
    assert listed[1] == (get_model_status_pb2.ModelVersionStatus.AVAILABLE, ""), listed


def test_version_routes_metadata_and_body_limit(served):
    _, url, _ = served
    version = served_version(f"{url}/{EMOTION_MODEL}")
    assert (
        requests.get(f"{url}/{EMOTION_MODEL}/versions/{version}").json()["model_version_status"][0][
            "state"
        ]
        == "AVAILABLE"
    )
    assert requests.get(f"{url}/{EMOTION_MODEL}/versions/99").status_code == 404
    answer = requests.post(
        f"{url}/{EMOTION_MODEL}/versions/{version}:predict", json={"inputs": FACE}
    )
    assert answer.status_code == 200 and len(answer.json()["outputs"][0]) == 5
    assert (
        requests.post(
            f"{url}/{EMOTION_MODEL}/versions/99:predict", json={"instances": FACE}
        ).status_code
        == 404
    )
    bad = requests.post(
        f"{url}/{EMOTION_MODEL}/versions/{version}:predict", json={"instances": [[1]]}
    )
    assert bad.status_code == 400 and "96x96" in bad.json()["error"]
    signature = requests.get(f"{url}/{EMOTION_MODEL}/metadata").json()["metadata"]["signature_def"][
        "signature_def"
    ]
    outputs = signature["serving_default"]["outputs"]
    assert [d["size"] for d in next(iter(outputs.values()))["tensor_shape"]["dim"]] == ["-1", "5"]
    for model in (KEYPOINT_MODEL, EMOTION_MODEL, COMBINED_MODEL, PHOTO_MODEL):
        metadata = requests.get(f"{url}/{model}/metadata").json()["metadata"]
        parsed = json_format.ParseDict(
            metadata["signature_def"], get_model_metadata_pb2.SignatureDefMap()
        )
        inputs = parsed.signature_def["serving_default"].inputs
        assert all(
            info.dtype in (types_pb2.DT_FLOAT, types_pb2.DT_STRING) for info in inputs.values()
        )
    huge = requests.post(
        f"{url}/{EMOTION_MODEL}:predict",
        data=b"0" * (17 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and "larger than" in huge.json()["error"]
    assert (
        _metric(
            url,
            f'emotion_ai_predict_requests_total{{code="413",model="{EMOTION_MODEL}",protocol="rest"}}',
        )
        == 1
    )


def test_no_request_fails_while_versions_swap_under_load(served):
    base, url, _ = served
    stop, codes = threading.Event(), []

    def client(model: str) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                codes.append(
                    session.post(
                        f"{url}/{model}:predict", json={"instances": FACE}, timeout=30
                    ).status_code
                )

    clients = [
        threading.Thread(target=client, args=(model,))
        for model in [EMOTION_MODEL, "emotion-ai"] * 4
    ]
    for thread in clients:
        thread.start()
    try:
        for version in ("3", "4"):
            export_saved_model(build_emotion_model(TINY), base, EMOTION_MODEL, int(version))
            wait_for_version(f"{url}/{EMOTION_MODEL}", version)
            time.sleep(1)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert len(codes) > 50 and set(codes) == {200}, {code: codes.count(code) for code in set(codes)}
    batches = _metric(url, f'emotion_ai_batch_size_count{{model="{EMOTION_MODEL}"}}')
    faces = _metric(url, f'emotion_ai_batch_size_sum{{model="{EMOTION_MODEL}"}}')
    assert faces > batches > 0, "concurrent requests were batched into fewer model calls"
    assert ":predict HTTP/1.1" not in (base / "server.log").read_text(), (
        "no access log unless asked for"
    )


def _metric(url: str, sample: str) -> float:
    metrics = requests.get(url.replace("/v1/models", "/metrics"), timeout=5).text
    return float(
        next(line.split()[-1] for line in metrics.splitlines() if line.startswith(sample + " "))
    )


def test_labels_route_requests_and_stable_takes_the_unversioned_ones(served):
    base, url, _ = served
    newest = served_version(f"{url}/{EMOTION_MODEL}")
    set_label(base, EMOTION_MODEL, "stable", 1)
    set_label(base, EMOTION_MODEL, "canary", int(newest))
    try:
        wait_for_version(f"{url}/{EMOTION_MODEL}", "1")
        statuses = requests.get(f"{url}/{EMOTION_MODEL}").json()["model_version_status"]
        served = [status["version"] for status in statuses if status["state"] == "AVAILABLE"]
        assert served == ["1", newest], "the refused version 7 is listed too, state END"
        assert (
            requests.get(f"{url}/{EMOTION_MODEL}/labels/canary").json()["model_version_status"][0][
                "version"
            ]
            == newest
        )
        canary = requests.post(
            f"{url}/{EMOTION_MODEL}/labels/canary:predict", json={"instances": FACE}
        )
        assert canary.status_code == 200 and len(canary.json()["predictions"][0]) == 5
        metadata = requests.get(f"{url}/{EMOTION_MODEL}/labels/stable/metadata").json()
        assert metadata["model_spec"]["version"] == "1"
        missing = requests.post(
            f"{url}/{EMOTION_MODEL}/labels/shadow:predict", json={"instances": FACE}
        )
        assert missing.status_code == 404 and "shadow" in missing.json()["error"]
        assert (
            requests.get(f"{url}/emotion-ai").json()["model_version_status"][0]["version"]
            == "1000001"
        )
    finally:
        set_label(base, EMOTION_MODEL, "stable", None)
        set_label(base, EMOTION_MODEL, "canary", None)
    wait_for_version(f"{url}/{EMOTION_MODEL}", newest)
    assert requests.get(f"{url}/{EMOTION_MODEL}/versions/1").status_code == 404, (
        "version 1 is unloaded again"
    )
