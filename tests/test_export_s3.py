"""The serving layout on real S3 (SeaweedFS): complete versions only, withdrawals, a server reading
s3://."""

from __future__ import annotations

import os

import boto3
import requests
from servers import free_port, running, serve_command
from tiny_networks import TINY

from emotion_ai.modeling.networks import build_emotion_model, build_keypoint_model
from emotion_ai.release.model_repository import (
    export_saved_model,
    prune_versions,
    read_labels,
    remove_version,
    set_label,
    versions,
)
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL


def test_versions_on_s3_are_complete_or_invisible(s3_endpoint, tmp_path):
    boto3.client("s3").create_bucket(Bucket="models")
    base = "s3://models/serving"
    model = build_emotion_model(TINY)
    for version in (1, 2, 3):
        export_saved_model(model, base, EMOTION_MODEL, version)
    assert versions(base, EMOTION_MODEL) == [1, 2, 3]
    boto3.client("s3").put_object(
        Bucket="models",
        Key=f"serving/{EMOTION_MODEL}/4/variables/variables.index",
        Body=b"half uploaded",
    )
    assert versions(base, EMOTION_MODEL) == [1, 2, 3], (
        "a version without saved_model.pb is not visible"
    )
    remove_version(base, EMOTION_MODEL, 3)
    assert prune_versions(base, EMOTION_MODEL, keep=1, protected=set()) == [1]
    assert versions(base, EMOTION_MODEL) == [2]
    keys = [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket="models")["Contents"]]
    assert not [
        key for key in keys if f"/{EMOTION_MODEL}/3/" in key or f"/{EMOTION_MODEL}/1/" in key
    ]
    assert read_labels(base, EMOTION_MODEL) == {}
    assert (
        set_label(base, EMOTION_MODEL, "stable", 2)
        == {"stable": 2}
        == read_labels(base, EMOTION_MODEL)
    )
    assert versions(base, EMOTION_MODEL) == [2], "the labels file is not a version"


def test_server_serves_from_s3(s3_endpoint, tmp_path):
    boto3.client("s3").create_bucket(Bucket="served")
    base = "s3://served/models"
    export_saved_model(build_keypoint_model(TINY), base, KEYPOINT_MODEL, 5)
    for version in (8, 9):
        export_saved_model(build_emotion_model(TINY), base, EMOTION_MODEL, version)
    set_label(base, EMOTION_MODEL, "stable", 8)
    port = free_port()
    command = serve_command(base, port, "--access-log")
    url = f"http://127.0.0.1:{port}/v1/models"
    with running(command, f"{url}/emotion-ai", tmp_path / "server.log", dict(os.environ)):
        status = requests.get(f"{url}/{EMOTION_MODEL}").json()["model_version_status"][0]
        assert status["version"] == "8", (
            "the stable label, read from S3, takes unversioned requests"
        )
        assert requests.get(f"{url}/{EMOTION_MODEL}/versions/9").status_code == 200
        answer = requests.post(f"{url}/emotion-ai:predict", json={"instances": [[0] * 9216]}).json()
        assert len(answer["predictions"][0]["keypoints"]) == 15
    assert (
        '"POST /v1/models/emotion-ai%3Apredict HTTP/1.1" 200'
        in (tmp_path / "server.log").read_text()
    ), "--access-log logs every request"
