"""The server never silently stops following its versions: odd folder names are ignored with one
warning, and a refresh that fails is logged and retried."""

from __future__ import annotations

import asyncio
import logging
import uuid

from emotion_ai.release.model_repository import LocalLayout, version_number
from emotion_ai.serving.servables import ServedVersions
from emotion_ai.serving.server import watch_versions


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
