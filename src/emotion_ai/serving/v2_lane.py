"""KServe's V2 REST routes as clients call them, in front of KServe's own: an infer body without the
binary extension's header is JSON, and `/v2/models/<m>/versions/<v>[/ready|/infer]` reaches
version v (KServe answers its versioned routes "not supported").

A versioned request is checked here (a version not served gets a 404 naming it) and then passed to
KServe's unversioned route with the version in `VERSION_HEADER`, which KServe hands to the model
with the request's other headers (`FaceModel.predict` reads it).
"""

from __future__ import annotations

import re

from emotion_ai.serving.errors import status_of
from emotion_ai.serving.open_inference import VERSION_HEADER, VersionNotFound
from emotion_ai.serving.rest import send_json

V2_INFER_PATH = re.compile(r"^/v2/models/[^/]+/infer$")
V2_VERSION_PATH = re.compile(
    r"^/v2/models/(?P<model>[^/]+)/versions/(?P<version>[^/]+)(?P<route>/ready|/infer)?$"
)
BINARY_HEADER = b"inference-header-content-length"


def json_unless_binary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An infer request without the binary extension's header is JSON (so the protocol says),
    whatever its content type: tritonclient sends JSON bodies with none, which KServe would
    otherwise read as binary and refuse."""
    if any(name == BINARY_HEADER for name, _ in headers):
        return headers
    kept = [(name, value) for name, value in headers if name != b"content-type"]
    return [*kept, (b"content-type", b"application/json")]


class OpenInferenceLane:
    """ASGI middleware for the V2 routes above; every other request passes untouched."""

    def __init__(self, app, repository) -> None:
        self.app, self.repository = app, repository

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2/models/"):
            return await self.app(scope, receive, send)
        versioned = V2_VERSION_PATH.match(scope["path"])
        if versioned is not None:
            missing = self._missing(versioned["model"], versioned["version"])
            if missing is not None:
                return await send_json(send, status_of(missing).http, {"error": str(missing)})
            scope = _unversioned(scope, versioned)
        if scope["method"] == "POST" and V2_INFER_PATH.match(scope["path"]):
            scope = {**scope, "headers": json_unless_binary(scope["headers"])}
        await self.app(scope, receive, send)

    def _missing(self, model_name: str, version: str) -> Exception | None:
        """Why `version` of `model_name` cannot answer, or None when it can."""
        model = self.repository.get_model(model_name)
        if model is None or model.find(version) is None:
            return VersionNotFound(model_name, version)
        return None


def _unversioned(scope: dict, versioned: re.Match) -> dict:
    """The scope of the unversioned route, the version in VERSION_HEADER."""
    path = f"/v2/models/{versioned['model']}{versioned['route'] or ''}"
    header = (VERSION_HEADER.encode(), versioned["version"].encode())
    return {
        **scope,
        "path": path,
        "raw_path": path.encode(),
        "headers": [*scope["headers"], header],
    }
