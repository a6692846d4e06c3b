"""infra/'s production topology, for real on 127.0.0.1: MLflow's tracking server on PostgreSQL with
its artifacts in S3 (SeaweedFS), started as infra/docker-compose.yaml starts it (a bare
`postgresql://` URI included); the pipeline run twice against it, publishing to `s3://` (the second
run reuses the first one's data and models from the tracking server's cache records, and its emotion
model, no better, is kept out); the server serving from `s3://` and following the registry's
champion. (tests/test_end_to_end.py keeps out a second model that differs, on the embedded
store.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from databases import postgresql
from mlflow.tracking import MlflowClient
from servers import (
    S3_ENVIRONMENT,
    free_port,
    running,
    s3_client,
    seaweedfs_s3,
    serve_command,
    served_version,
)
from tiny_networks import TINY_RUN

from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL

SERVING = "s3://emotion-ai/serving"
RUN = ["run", *TINY_RUN, f"--model-base-path={SERVING}"]


@dataclass(frozen=True)
class Stack:
    tracking_uri: str
    environment: dict[str, str]
    """What every client process gets: the tracking server and the S3 endpoint."""
    root: Path
    s3: object


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Stack:
    root = tmp_path_factory.mktemp("topology")
    (root / "s3").mkdir()
    with postgresql() as database, seaweedfs_s3(root / "s3") as endpoint:
        # Not this worker's MLflow settings (an earlier test's MLFLOW_EXPERIMENT_ID, say).
        own = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        environment = {**own, **S3_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint}
        s3 = s3_client(endpoint)
        for bucket in ("mlflow", "emotion-ai"):
            s3.create_bucket(Bucket=bucket)
        port = free_port()
        command = [
            sys.executable, "-m", "emotion_ai", "tracking-server", "--port", str(port),
            "--backend-store-uri", database, "--artifacts-destination", "s3://mlflow/artifacts",
        ]  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        with running(command, f"{url}/health", root / "mlflow.log", environment):
            yield Stack(url, {**environment, "MLFLOW_TRACKING_URI": url}, root, s3)


def _emotion_ai(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "emotion_ai", *args, "--state-dir", str(stack.root / "state")]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**stack.environment, "COLUMNS": "200"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _served_keys(stack: Stack, model: str) -> set[str]:
    listing = stack.s3.list_objects_v2(Bucket="emotion-ai", Prefix=f"serving/{model}/")
    return {item["Key"] for item in listing.get("Contents", [])}


def test_a_second_run_keeps_an_emotion_model_no_better_out_and_the_server_follows_the_champion(
    stack,
):
    first = _emotion_ai(stack, *RUN)
    assert "keypoints v1 (champion), emotion v1 (champion)" in first.stdout, first.stdout
    second = _emotion_ai(stack, *RUN, "--significance=1e-9")
    for step in ("validate", "train_keypoints", "train_emotion"):
        assert re.search(rf"✓ {step} .*\(cached\)", second.stdout), second.stdout
    assert "emotion v2 (champion)" not in second.stdout and "emotion v2" in second.stdout
    client = MlflowClient(stack.tracking_uri, registry_uri=stack.tracking_uri)
    rejected = client.get_model_version(EMOTION_MODEL, "2")
    assert rejected.tags["decision"] == "reject", rejected.tags
    assert client.get_model_version_by_alias(EMOTION_MODEL, "champion").version == "1"
    emotion_files = _served_keys(stack, EMOTION_MODEL)
    assert f"serving/{EMOTION_MODEL}/1/saved_model.pb" in emotion_files
    assert not [key for key in emotion_files if key.startswith(f"serving/{EMOTION_MODEL}/2/")]
    assert _served_keys(stack, KEYPOINT_MODEL), "the keypoint champion is on S3 too"

    port = free_port()
    command = serve_command(
        SERVING, port, "--follow-champion", "--state-dir", str(stack.root / "state")
    )
    url = f"http://127.0.0.1:{port}/v1/models"
    with running(command, f"{url}/{EMOTION_MODEL}", stack.root / "server.log", stack.environment):
        assert served_version(f"{url}/{EMOTION_MODEL}") == "1"
        face = [[[128.0] * 96] * 96]
        answer = requests.post(f"{url}/{EMOTION_MODEL}:predict", json={"instances": face})
        assert answer.status_code == 200 and len(answer.json()["predictions"][0]) == 5
