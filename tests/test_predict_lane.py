"""PredictLane on its own: ASGI messages in, status and JSON out, with a stand-in repository."""

import asyncio
import json

import numpy as np
from images import b64_request, png

from emotion_ai.serving.face_requests import json_face_request
from emotion_ai.serving.rest import PredictLane
from emotion_ai.settings import RequestLimits

FACE = json.dumps({"instances": [np.zeros((96, 96)).tolist()]}).encode()


class Model:
    """Stands in for a served face model: the lane reads its faces and asks it to answer."""

    takes_faces = True
    ready = True
    read_body = staticmethod(json_face_request)

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails

    @staticmethod
    def input_name(target) -> str:
        return "face"

    def find(self, version, label):
        return None if version == "9" else (version or label or "default")

    async def answer(self, request, target):
        if self.fails:
            raise RuntimeError("the model broke")
        return {"predictions": [[float(request.faces.sum()), target]]}


class Repository:
    def get_model(self, name):
        return {"ok": Model(), "broken": Model(fails=True)}.get(name)


async def _passed_on(scope, receive, send):
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


def call(
    path: str,
    chunks: list[bytes],
    method: str = "POST",
    declared: int | None = None,
    limit: int = 1 << 20,
) -> tuple[int, bytes]:
    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    lane = PredictLane(
        _passed_on, Repository(), RequestLimits(max_body_bytes=limit, max_instances=2)
    )
    asyncio.run(lane(scope, receive, send))
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


def test_predict_is_answered_in_the_lane_with_the_version_or_label_asked_for():
    for path, target in (
        ("/v1/models/ok:predict", "default"),
        ("/v1/models/ok/versions/3:predict", "3"),
        ("/v1/models/ok/labels/canary:predict", "canary"),
    ):
        status, body = call(path, [FACE[:100], FACE[100:]])
        assert status == 200 and json.loads(body) == {"predictions": [[0.0, target]]}


def test_errors_have_tf_servings_shape_and_status():
    cases = [
        (("/v1/models/nope:predict", [FACE]), 404, "Latest(nope)"),
        (("/v1/models/ok/versions/9:predict", [FACE]), 404, "Specific(ok, 9)"),
        (("/v1/models/ok:predict", [b'{"instances": [[1, 2]]}']), 400, "96x96"),
        (("/v1/models/ok:predict", [b"{"]), 400, "not JSON"),
        (("/v1/models/broken:predict", [FACE]), 500, "the model broke"),
    ]
    for (path, chunks), code, words in cases:
        status, body = call(path, chunks)
        assert status == code and words in json.loads(body)["error"], (path, status, body)


def test_bodies_over_the_limit_get_413_declared_or_not():
    assert call("/v1/models/ok:predict", [FACE], declared=len(FACE), limit=1000)[0] == 413
    assert call("/v1/models/ok:predict", [FACE[:600], FACE[600:]], limit=1000)[0] == 413
    assert call("/v1/models/ok/metadata", [b""], method="GET", declared=5000, limit=1000)[0] == 413


def test_other_requests_go_on_to_the_app():
    assert call("/v1/models/ok/metadata", [b""], method="GET") == (299, b"app")
    assert call("/v1/models/ok:predict", [b""], method="GET") == (299, b"app")


def test_limits_get_413_and_image_bodies_are_decoded_off_the_event_loop():
    image = png(300, 200, gray=7)
    status, body = call("/v1/models/ok:predict", [b64_request(image)])
    assert status == 200 and json.loads(body)["predictions"][0][0] == 7 * 96 * 96
    status, body = call("/v1/models/ok:predict", [b64_request(image, image, image)])
    assert status == 413 and "3 instances" in json.loads(body)["error"]


def test_a_body_that_never_arrives_whole_gets_a_408():
    scope = {"type": "http", "method": "POST", "path": "/v1/models/ok:predict", "headers": []}
    sent = []

    async def receive():
        if not sent:
            sent.append("first part")
            return {"type": "http.request", "body": FACE[:100], "more_body": True}
        await asyncio.sleep(3600)

    async def send(message):
        sent.append(message)

    lane = PredictLane(_passed_on, Repository(), RequestLimits(body_timeout_seconds=0.2))
    asyncio.run(lane(scope, receive, send))
    assert sent[1]["status"] == 408
    assert "did not arrive within 0.2 s" in json.loads(sent[2]["body"])["error"]
