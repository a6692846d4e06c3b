"""The server never silently stops following its versions: odd folder names are ignored with one
warning, and a refresh that fails is logged and retried."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import pytest
from tiny_networks import TINY

from emotion_ai.modeling.networks import build_emotion_model
from emotion_ai.release.model_repository import (
    LocalLayout,
    export_saved_model,
    set_label,
    version_number,
)
from emotion_ai.release.publishing import check_published
from emotion_ai.serving.rest import TFServingEndpoints
from emotion_ai.serving.servables import SavedModelServable, ServedVersions
from emotion_ai.serving.server import watch_versions
from emotion_ai.settings import EMOTION_MODEL, ServingOptions


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_only_ascii_digit_folders_are_versions_and_odd_names_warn_once(tmp_path):
    model = tmp_path / "emotion-ai-emotion"
    odd = f"v{uuid.uuid4().hex[:6]}"
    for name in ("1", "12", "²", odd, ".staging-ab12"):
        (model / name).mkdir(parents=True)
    (model / "labels.json").write_text("{}")
    recorded = Recorded()
    logger = logging.getLogger("emotion_ai.release.model_repository")
    logger.addHandler(recorded)
    try:
        assert LocalLayout(tmp_path).versions(model.name) == [1, 12]
        assert LocalLayout(tmp_path).versions(model.name) == [1, 12]
    finally:
        logger.removeHandler(recorded)
    assert sum(odd in message for message in recorded.messages) == 1
    assert version_number("²") is None and version_number("007") == 7


def test_a_version_that_is_no_number_is_not_found_rather_than_an_error():
    assert ServedVersions().find("²") is None
    assert ServedVersions().find("3") is None


class FlakyServable:
    """Fails its first refresh, as a model base path on S3 does during an outage."""

    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    def refresh(self) -> bool:
        self.calls += 1
        if self.calls == 1:
            raise OSError("the S3 endpoint is unreachable")
        return False


def test_the_version_watcher_survives_a_failing_refresh_and_keeps_looking():
    flaky = FlakyServable()

    async def watch_for_a_while() -> None:
        watcher = asyncio.create_task(watch_versions([flaky], 0.01))
        await asyncio.sleep(0.5)
        assert not watcher.done(), "the watcher ended"
        watcher.cancel()

    asyncio.run(watch_for_a_while())
    assert flaky.calls >= 3


class Repository:
    def __init__(self, **models) -> None:
        self.models = models

    def get_models(self) -> dict:
        return self.models

    def get_model(self, name: str):
        return self.models.get(name)


def test_readiness_fails_once_reading_the_versions_has_failed_for_too_long(tmp_path, monkeypatch):
    export_saved_model(build_emotion_model(TINY), tmp_path, EMOTION_MODEL, 1)
    servable = SavedModelServable(
        EMOTION_MODEL, tmp_path, ServingOptions(max_refresh_failure_seconds=0.3)
    )
    servable.load()
    endpoints = TFServingEndpoints(Repository(**{EMOTION_MODEL: servable}))
    ready = asyncio.run(endpoints.readiness())
    assert ready.status_code == 200

    def unreachable(name):
        raise OSError("the S3 endpoint is unreachable")

    monkeypatch.setattr(servable.layout, "versions", unreachable)
    with pytest.raises(OSError):
        servable.refresh()
    assert servable.find().version == 1, "the loaded version keeps serving"
    time.sleep(0.4)
    stale = asyncio.run(endpoints.readiness())
    body = json.loads(stale.body)
    assert stale.status_code == 503 and body["last_refresh_seconds_ago"][EMOTION_MODEL] >= 0.3


def test_publishing_reads_the_layout_back_before_it_says_so(tmp_path):
    export_saved_model(build_emotion_model(TINY), tmp_path, EMOTION_MODEL, 1)
    set_label(tmp_path, EMOTION_MODEL, "stable", 1)
    check_published(EMOTION_MODEL, 1, tmp_path)
    with pytest.raises(RuntimeError, match="not published"):
        check_published(EMOTION_MODEL, 2, tmp_path)


def test_a_model_without_a_version_is_reported_and_served_once_one_appears(tmp_path, caplog):
    from emotion_ai.modeling.networks import build_keypoint_model
    from emotion_ai.serving.servables import FaceServable
    from emotion_ai.settings import KEYPOINT_MODEL

    export_saved_model(build_keypoint_model(TINY), tmp_path, KEYPOINT_MODEL, 1)
    keypoints = SavedModelServable(KEYPOINT_MODEL, tmp_path)
    emotion = SavedModelServable(EMOTION_MODEL, tmp_path)
    with caplog.at_level(logging.WARNING):
        assert keypoints.load() and not emotion.load(), "no error: the other model still serves"
    assert f"emotion-ai promote {EMOTION_MODEL}" in caplog.text
    combined = FaceServable(keypoints, emotion)
    endpoints = TFServingEndpoints(
        Repository(**{KEYPOINT_MODEL: keypoints, EMOTION_MODEL: emotion, "emotion-ai": combined})
    )
    waiting = asyncio.run(endpoints.readiness())
    body = json.loads(waiting.body)
    assert waiting.status_code == 503 and set(body["not_ready"]) == {EMOTION_MODEL, "emotion-ai"}
    assert "run the pipeline" in body["not_ready"][EMOTION_MODEL]
    status = endpoints.status(EMOTION_MODEL)
    assert status.status_code == 503 and "emotion-ai promote" in json.loads(status.body)["error"]
    assert endpoints.status(KEYPOINT_MODEL)["model_version_status"][0]["version"] == "1"
    export_saved_model(build_emotion_model(TINY), tmp_path, EMOTION_MODEL, 1)
    emotion.refresh()
    assert emotion.ready and combined.ready and combined.version == 1_000_001
    assert asyncio.run(endpoints.readiness()).status_code == 200


def test_serve_refuses_a_port_in_use_before_loading_anything(tmp_path):
    import socket

    from typer.testing import CliRunner

    from emotion_ai.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app,
            [
                "serve",
                "--rest-api-port",
                str(port),
                "--port",
                "0",
                "--model-base-path",
                str(tmp_path),
            ],
            env={"COLUMNS": "200"},
        )
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} (--rest-api-port)" in result.output and "in use" in result.output
