"""TensorFlow Serving's REST protocol: predict answered by a pure ASGI lane, status and metadata by
an endpoints class registered on the app's router.

A request that names no version gets the model's default (`stable`, else the newest);
`/versions/<v>` and `/labels/<label>` reach the others. Errors have TF Serving's shape, `{"error":
"..."}`, and the status `errors.STATUSES` gives them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import ClientDisconnect

from emotion_ai.serving.errors import logged, message_of, status_of, unserved
from emotion_ai.serving.face_requests import pixel_array_request
from emotion_ai.serving.metrics import count_predict
from emotion_ai.serving.model_status import status_json, status_response
from emotion_ai.settings import RequestLimits

PREDICT_PATH = re.compile(
    r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?:predict$"
)


def locate(repository, model_name: str, version: str | None, label: str | None):
    """The model and the version a request names (None when either is not served)."""
    model = repository.get_model(model_name)
    return model, model.find(version, label) if model else None


class PredictLane:
    """ASGI middleware that answers TF Serving's predict requests itself and limits every body.

    `POST .../:predict` is read, answered and counted for Prometheus (/metrics) here, past
    Starlette's routing and FastAPI's request and response handling (under load those layers cost
    more than reading the face) and ahead of KServe's own V1 routes, whose JSON differs. A plain
    pixel array is read on the event loop by the compiled pass; any other body (JSON, images) is
    parsed and decoded by a small thread pool, so a slow body never stalls other requests. Bodies
    over `max_body_bytes` get a 413, bodies not received in `body_timeout_seconds` a 408. Plain ASGI
    rather than `BaseHTTPMiddleware`, which costs a task and a response stream per request.
    """

    def __init__(self, app, repository, limits: RequestLimits = RequestLimits()) -> None:
        self.app, self.repository, self.limits = app, repository, limits
        self.decoder = ThreadPoolExecutor(limits.decode_workers, thread_name_prefix="decode")
        self.too_large = {"error": f"request body is larger than {limits.max_body_bytes} bytes"}
        # Load the compiled pass now: on the first request it would hold the event loop ~150 ms.
        pixel_array_request(b'{"instances": [[0]]}')

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        predict = PREDICT_PATH.match(scope["path"]) if scope["method"] == "POST" else None
        if predict is not None:
            return await self._answer_predict(predict, scope, receive, send)
        if declared_length(scope) > self.limits.max_body_bytes:
            return await send_json(send, 413, self.too_large)
        await self.app(scope, receive, send)

    async def _answer_predict(self, predict: re.Match, scope, receive, send) -> None:
        started = time.perf_counter()
        try:
            status, answer = await self._read_and_predict(predict, scope, receive)
        except ClientDisconnect:
            return
        await send_json(send, status, answer)
        count_predict(predict["model"], "rest", status, time.perf_counter() - started)

    async def _read_and_predict(self, predict: re.Match, scope, receive) -> tuple[int, dict]:
        if declared_length(scope) > self.limits.max_body_bytes:
            return 413, self.too_large
        try:
            body = await asyncio.wait_for(
                read_body(receive, self.limits.max_body_bytes), self.limits.body_timeout_seconds
            )
        except TimeoutError:
            return 408, {
                "error": f"the request body did not arrive within "
                f"{self.limits.body_timeout_seconds:g} s"
            }
        return (413, self.too_large) if body is None else await self._predict(predict, body)

    async def _predict(self, predict: re.Match, body: bytes) -> tuple[int, dict]:
        """The HTTP status and JSON answer to one predict request."""
        model, target = locate(
            self.repository, predict["model"], predict["version"], predict["label"]
        )
        if target is None:
            error = unserved(model, predict["model"], predict["version"], predict["label"])
            return status_of(error).http, {"error": str(error)}
        try:
            return 200, await model.answer(await self._request(model, target, body), target)
        except Exception as error:  # noqa: BLE001 - every error gets TF Serving's shape and its status
            return logged(error, f"predict on {predict['model']}").http, {
                "error": message_of(error)
            }

    async def _request(self, model, target, body: bytes):
        """The request as `model` reads it: a plain pixel array of faces at once, anything else
        (JSON, images, photos) decoded off the loop."""
        request = pixel_array_request(body, self.limits) if model.takes_faces else None
        if request is not None:
            return request
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.decoder, model.read_body, body, model.input_name(target), self.limits
        )


def declared_length(scope) -> int:
    """The request's Content-Length (0 when it has none)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def read_body(receive, limit: int) -> bytes | None:
    """An ASGI request's body, or None as soon as it passes `limit` bytes (the rest left unread)."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        parts.append(message.get("body", b""))
        size += len(parts[-1])
        if size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_json(send, status: int, payload: dict) -> None:
    """Sends a whole JSON response through ASGI `send`."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class TFServingEndpoints:
    """TF Serving's routes other than predict (which `PredictLane` answers in front of the app),
    plus the Kubernetes probes. Each method is one route."""

    def __init__(self, repository) -> None:
        self.repository = repository

    async def liveness(self) -> dict:
        return {"status": "alive"}

    async def readiness(self) -> JSONResponse:
        """200 while every model serves a version and has read its versions lately, else 503
        (Kubernetes readiness probe)."""
        models, now = self.repository.get_models(), time.time()
        ready = bool(models) and all(model.ready and not model.stale() for model in models.values())
        waiting = {
            name: model.missing_message() for name, model in models.items() if not model.ready
        }
        return JSONResponse(
            {
                "ready": ready,
                **({"not_ready": waiting} if waiting else {}),
                "models": {name: str(model.version) for name, model in models.items()},
                "last_refresh_seconds_ago": {
                    name: round(now - model.refreshed_at, 1) for name, model in models.items()
                },
            },
            200 if ready else 503,
        )

    def status(self, model_name: str, version: str | None = None, label: str | None = None):
        model, target = locate(self.repository, model_name, version, label)
        if target is None:
            return self._not_found(model, model_name, version, label)
        named = version is not None or label is not None
        return status_json(status_response(model, target if named else None))

    def metadata(self, model_name: str, version: str | None = None, label: str | None = None):
        model, target = locate(self.repository, model_name, version, label)
        if target is None:
            return self._not_found(model, model_name, version, label)
        return {
            "model_spec": {
                "name": model_name,
                "signature_name": "",
                "version": str(target.version),
            },
            "metadata": {"signature_def": {"signature_def": model.signature(target)}},
        }

    @staticmethod
    def _not_found(model, name: str, version: str | None, label: str | None) -> JSONResponse:
        error = unserved(model, name, version, label)
        return JSONResponse({"error": str(error)}, status_of(error).http)


DEMO_PAGE = Path(__file__).with_name("demo") / "index.html"


async def demo_page() -> HTMLResponse:
    """The demo page: upload a photo or use the webcam, see every face's box, keypoints and
    emotion (one static file; it calls `emotion-ai-faces`)."""
    return HTMLResponse(DEMO_PAGE.read_text())


def register_tf_serving_endpoints(app: FastAPI, repository) -> None:
    """Adds the TF Serving routes ahead of KServe's own V1 routes (whose JSON differs), and the demo
    page at `/` (ahead of KServe's liveness answer there)."""
    endpoints = TFServingEndpoints(repository)
    app.add_api_route("/", demo_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/healthz", endpoints.liveness, methods=["GET"])
    app.add_api_route("/readyz", endpoints.readiness, methods=["GET"])
    for suffix in ("", "/versions/{version}", "/labels/{label}"):
        app.add_api_route(f"/v1/models/{{model_name}}{suffix}", endpoints.status, methods=["GET"])
        app.add_api_route(
            f"/v1/models/{{model_name}}{suffix}/metadata", endpoints.metadata, methods=["GET"]
        )
