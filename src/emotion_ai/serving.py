"""Serving over TensorFlow Serving's REST API on a KServe ModelServer.

Models come from TF Serving's layout `<model_base_path>/<model_name>/<version>/`. Three models
are served: the keypoint model, the emotion model, and `emotion-ai`, which answers both for
one face. Each keeps its newest `num_versions` versions loaded, plus every version a label
names (`labels.json`, e.g. `{"stable": 3, "canary": 4}`). A request that names no version
gets `stable` when that label is set, else the newest version; `/versions/<v>` and
`/labels/<label>` reach the others. Concurrent requests are batched (see `batching`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
import uvloop
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput
from prometheus_client import Counter, Gauge, Histogram
from starlette.requests import ClientDisconnect

from emotion_ai import export, registry
from emotion_ai.batching import Batcher, BatchSettings
from emotion_ai.export import STABLE
from emotion_ai.faces import EMOTIONS, KEYPOINT_NAMES
from emotion_ai.request_log import RequestSampler
from emotion_ai.serving_requests import FaceRequest, describe_face, faces_from_request, read_face_request


def _import_kserve():
    """Imports kserve with our own command line hidden (kserve parses sys.argv on import)."""
    saved, sys.argv = sys.argv, sys.argv[:1]
    try:
        import kserve
        from kserve.model_server import app
        from kserve.protocol.rest.server import RESTServer
    finally:
        sys.argv = saved
    return kserve, app, RESTServer


kserve, kserve_app, RESTServer = _import_kserve()
logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_POLL_SECONDS = 2.0
"""How often the server looks for new versions (TF Serving's --file_system_poll_wait_seconds)."""
PREDICT_PATH = re.compile(
    r"^/v1/models/(?P<model>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?:predict$")
PREDICT_REQUESTS = Counter("emotion_ai_predict_requests", "Predict requests by model and HTTP status",
                           ["model", "code"])
PREDICT_SECONDS = Histogram("emotion_ai_predict_seconds", "Predict request latency by model", ["model"])
SERVED_VERSION = Gauge("emotion_ai_served_version", "Version each model serves by default", ["model"])


@dataclass(frozen=True)
class ServingOptions:
    """How many versions stay loaded (TF Serving's `latest` version policy) and how requests are batched
    (None: each request runs alone)."""

    num_versions: int = 1
    batching: BatchSettings | None = field(default_factory=BatchSettings)


class LoadedVersion:
    """One loaded SavedModel version, with its own batcher."""

    def __init__(self, model_name: str, version: int, saved_model, batching: BatchSettings | None) -> None:
        self.version, self.saved_model = version, saved_model
        self._batcher = Batcher(self.infer_now, batching, model_name) if batching else None

    def infer_now(self, faces: np.ndarray) -> np.ndarray:
        return self.saved_model.serve(tf.constant(faces)).numpy()

    async def infer(self, faces: np.ndarray) -> np.ndarray:
        if self._batcher is None:
            return await asyncio.to_thread(self.infer_now, faces)
        return await self._batcher(faces)

    def signature(self) -> dict:
        """TF Serving's `signature_def` of this version's `serving_default`."""
        function = self.saved_model.signatures["serving_default"]
        describe = lambda spec: {"dtype": f"DT_{spec.dtype.name.upper()}",  # noqa: E731
                                 "tensor_shape": {"dim": [{"size": str(-1 if d is None else d)}
                                                          for d in spec.shape]}}
        return {"serving_default": {
            "inputs": {name: describe(spec) for name, spec in function.structured_input_signature[1].items()},
            "outputs": {name: describe(spec) for name, spec in function.structured_outputs.items()},
            "method_name": "tensorflow/serving/predict"}}


@dataclass(frozen=True)
class ServedVersions:
    """What one model serves: its loaded versions and the labels that point at them (replaced whole)."""

    loaded: dict[int, LoadedVersion] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def default(self) -> int | None:
        """`stable` when that label is set, else the newest version."""
        return self.labels.get(STABLE, max(self.loaded, default=None))

    def find(self, version: str | None = None, label: str | None = None) -> LoadedVersion | None:
        if label is not None:
            number = self.labels.get(label)
        else:
            number = self.default if version is None else int(version) if version.isdigit() else None
        return self.loaded.get(number)


class SavedModelServable(kserve.Model):
    """One model under `<base_path>/<name>/`, following its versions and labels as they change."""

    def __init__(self, name: str, base_path: str | Path, options: ServingOptions = ServingOptions(),
                 sampler: RequestSampler | None = None) -> None:
        super().__init__(name)
        self.base_path, self.options, self.sampler = base_path, options, sampler
        self.layout = export.layout(base_path)
        self.served = ServedVersions()
        self._refused: set[int] = set()

    @property
    def version(self) -> int | None:
        return self.served.default

    def load(self) -> bool:
        if not self.refresh() and not self.served.loaded:
            raise FileNotFoundError(f"no loadable version of {self.name} under {self.base_path}/{self.name}")
        self.ready = True
        return self.ready

    def refresh(self) -> bool:
        """Loads the versions the policy and labels want and drops the others; True if anything changed.

        A version that fails to load is refused (logged, never retried) and the next older one is
        wanted in its place. When nothing is left to serve, the versions served stay.
        """
        listed, labels = self.layout.versions(self.name), self._labels()
        loaded = dict(self.served.loaded)
        while True:
            available = [v for v in listed if v not in self._refused]
            wanted = set(available[-self.options.num_versions:]) | (set(labels.values()) & set(available))
            missing = wanted - loaded.keys()
            if not missing:
                break
            loaded.update({v: lv for v in sorted(missing, reverse=True) if (lv := self._load(v)) is not None})
        served = ServedVersions({v: loaded[v] for v in sorted(wanted)},
                                {label: v for label, v in labels.items() if v in wanted})
        if not wanted or (served.loaded.keys(), served.labels) == (self.served.loaded.keys(), self.served.labels):
            return False
        self.served = served
        SERVED_VERSION.labels(self.name).set(served.default)
        logger.info("serving %s versions %s, labels %s, default %s", self.name, sorted(served.loaded),
                    served.labels, served.default)
        return True

    def _labels(self) -> dict[str, int]:
        """The labels file as it is now; a broken one is logged and the labels served stay."""
        try:
            return export.read_labels(self.base_path, self.name)
        except ValueError as error:
            logger.error("ignored the labels of %s: %s", self.name, error)
            return self.served.labels

    def _load(self, version: int) -> LoadedVersion | None:
        try:
            saved_model = tf.saved_model.load(str(self.layout.local_copy(self.name, version)))
            return LoadedVersion(self.name, version, saved_model, self.options.batching)
        except Exception as error:  # noqa: BLE001 - any unloadable version is refused the same way
            self._refused.add(version)
            logger.error("refused %s version %s: %s", self.name, version, error)
            return None

    def find(self, version: str | None = None, label: str | None = None) -> LoadedVersion | None:
        return self.served.find(version, label)

    def versions(self) -> list[str]:
        """Loaded versions, the default first."""
        served = self.served
        return [str(v) for v in sorted(served.loaded, key=lambda v: (v != served.default, -v))]

    async def predict(self, payload: dict, headers: dict | None = None) -> dict:
        return await self.answer(faces_from_request(payload), self.find())

    async def answer(self, request: FaceRequest, target: LoadedVersion) -> dict:
        outputs = await target.infer(request.faces)
        if self.sampler:
            classes = outputs.argmax(axis=1) if outputs.shape[1] == len(EMOTIONS) else None
            self.sampler.record(self.name, request.faces, classes)
        return request.answer(outputs.tolist())

    def signature(self, target: LoadedVersion) -> dict:
        return target.signature()


@dataclass(frozen=True)
class FaceVersion:
    """The keypoint and emotion versions that answer one `emotion-ai` request; its version is `k.e`."""

    keypoints: LoadedVersion
    emotion: LoadedVersion

    @property
    def version(self) -> str:
        return f"{self.keypoints.version}.{self.emotion.version}"


class FaceServable(kserve.Model):
    """`emotion-ai`: 15 named keypoints and the emotion with its 5 probabilities, per face."""

    def __init__(self, keypoints: SavedModelServable, emotion: SavedModelServable,
                 sampler: RequestSampler | None = None) -> None:
        super().__init__(registry.COMBINED_MODEL)
        self.keypoints, self.emotion, self.sampler = keypoints, emotion, sampler
        self.ready = keypoints.ready and emotion.ready

    @property
    def version(self) -> str:
        return f"{self.keypoints.version}.{self.emotion.version}"

    def find(self, version: str | None = None, label: str | None = None) -> FaceVersion | None:
        """`version` is `k.e`; a label must be set on both models."""
        keypoint_version, _, emotion_version = (version or "").partition(".")
        if version is not None and not emotion_version:
            return None
        keypoints = self.keypoints.find(keypoint_version or None, label)
        emotion = self.emotion.find(emotion_version or None, label)
        return FaceVersion(keypoints, emotion) if keypoints and emotion else None

    def versions(self) -> list[str]:
        return [self.version]

    async def predict(self, payload: dict, headers: dict | None = None) -> dict:
        return await self.answer(faces_from_request(payload), self.find())

    async def answer(self, request: FaceRequest, target: FaceVersion) -> dict:
        coordinates, probabilities = await asyncio.gather(target.keypoints.infer(request.faces),
                                                          target.emotion.infer(request.faces))
        if self.sampler:
            self.sampler.record(self.name, request.faces, probabilities.argmax(axis=1))
        return request.answer([describe_face(c, p) for c, p in zip(coordinates, probabilities)])

    def signature(self, target: FaceVersion) -> dict:
        face = target.keypoints.signature()["serving_default"]["inputs"]
        return {"serving_default": {"inputs": face, "outputs": {
            "keypoints": {"names": list(KEYPOINT_NAMES), "unit": "pixels (x, y)"},
            "emotion": {"labels": list(EMOTIONS)}, "probabilities": {"dtype": "DT_FLOAT", "size": len(EMOTIONS)}},
            "method_name": "tensorflow/serving/predict"}}


SERVABLE_MODELS = (registry.KEYPOINT_MODEL, registry.EMOTION_MODEL, registry.COMBINED_MODEL)


def load_servables(base_path: str | Path, model_name: str | None = None, options: ServingOptions = ServingOptions(),
                   sampler: RequestSampler | None = None) -> list[kserve.Model]:
    """All three models, or only `model_name` (TF Serving's --model_name), with the versions `options` keep."""
    if model_name is not None and model_name not in SERVABLE_MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(SERVABLE_MODELS)}")
    parts = {name: SavedModelServable(name, base_path, options, sampler)
             for name in (registry.KEYPOINT_MODEL, registry.EMOTION_MODEL)
             if model_name in (None, name, registry.COMBINED_MODEL)}
    for part in parts.values():
        part.load()
    servables: list[kserve.Model] = list(parts.values())
    if model_name in (None, registry.COMBINED_MODEL):
        servables.append(FaceServable(parts[registry.KEYPOINT_MODEL], parts[registry.EMOTION_MODEL], sampler))
    return [servable for servable in servables if model_name in (None, servable.name)]


def _versioned_parts(models: list[kserve.Model]) -> list[SavedModelServable]:
    """The SavedModel servables behind `models` (the combined model's two included), each once."""
    parts = [part for model in models
             for part in ((model.keypoints, model.emotion) if isinstance(model, FaceServable) else (model,))]
    return list({id(part): part for part in parts}.values())


def model_status(versions: list[str], ready: bool) -> dict:
    """TF Serving's `GET /v1/models/<name>` answer."""
    return {"model_version_status": [{
        "version": version,
        "state": "AVAILABLE" if ready else "LOADING",
        "status": {"error_code": "OK", "error_message": ""},
    } for version in versions]}


def not_found_message(name: str, version: str | None = None, label: str | None = None) -> str:
    """TF Serving's words for a model, version or label that is not served."""
    wanted = f"Specific({name}, {version})" if version else f"Labelled({name}, {label})" if label \
        else f"Latest({name})"
    return f"Servable not found for request: {wanted}"


def _not_found(name: str, version: str | None, label: str | None) -> JSONResponse:
    return JSONResponse({"error": not_found_message(name, version, label)}, 404)


def locate(repository, model_name: str, version: str | None, label: str | None):
    """The model and the version a request names (None when either is not served)."""
    model = repository.get_model(model_name)
    return model, model.find(version, label) if model else None


class PredictLane:
    """ASGI middleware that answers TF Serving's predict requests itself and limits every body.

    `POST .../:predict` is read, answered and counted for Prometheus (/metrics) here, past
    Starlette's routing and FastAPI's request and response handling (under load those layers cost
    more than reading the face) and ahead of KServe's own V1 routes, whose JSON differs. Any body
    over `max_body_bytes` gets a 413. Plain ASGI rather than `BaseHTTPMiddleware`, which costs a
    task and a response stream per request.
    """

    def __init__(self, app, repository, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.repository, self.max_body_bytes = app, repository, max_body_bytes
        self.too_large = {"error": f"request body is larger than {max_body_bytes} bytes"}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        predict = PREDICT_PATH.match(scope["path"]) if scope["method"] == "POST" else None
        if predict is not None:
            return await self._answer_predict(predict, scope, receive, send)
        if _declared_length(scope) > self.max_body_bytes:
            return await send_json(send, 413, self.too_large)
        await self.app(scope, receive, send)

    async def _answer_predict(self, predict: re.Match, scope, receive, send) -> None:
        started = time.perf_counter()
        try:
            body = None if _declared_length(scope) > self.max_body_bytes else \
                await read_body(receive, self.max_body_bytes)
        except ClientDisconnect:
            return
        status, answer = (413, self.too_large) if body is None else await self._predict(predict, body)
        await send_json(send, status, answer)
        PREDICT_REQUESTS.labels(predict["model"], str(status)).inc()
        PREDICT_SECONDS.labels(predict["model"]).observe(time.perf_counter() - started)

    async def _predict(self, predict: re.Match, body: bytes) -> tuple[int, dict]:
        """The HTTP status and JSON answer to one predict request."""
        model, target = locate(self.repository, predict["model"], predict["version"], predict["label"])
        if target is None:
            return 404, {"error": not_found_message(predict["model"], predict["version"], predict["label"])}
        try:
            return 200, await model.answer(read_face_request(body), target)
        except InvalidInput as error:
            return 400, {"error": str(error)}
        except Exception as error:  # noqa: BLE001 - the client gets TF Serving's error shape, the log the trace
            logger.exception("predict failed on %s", predict["model"])
            return 500, {"error": f"{type(error).__name__}: {error}"}


def _declared_length(scope) -> int:
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
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def add_tf_serving_routes(app, repository) -> None:
    """TF Serving's routes other than predict (which `PredictLane` answers in front of the app): FastAPI
    routes added before KServe's own V1 routes (whose JSON differs)."""

    @app.get("/healthz")
    async def liveness():
        return {"status": "alive"}

    @app.get("/readyz")
    async def readiness():
        """200 once every model serves a version, else 503 (Kubernetes readiness probe)."""
        models = {name: str(model.version) for name, model in repository.get_models().items()}
        ready = bool(models) and all(model.ready for model in repository.get_models().values())
        return JSONResponse({"ready": ready, "models": models}, 200 if ready else 503)

    def status(model_name: str, version: str | None = None, label: str | None = None):
        model, target = locate(repository, model_name, version, label)
        if target is None:
            return _not_found(model_name, version, label)
        return model_status(model.versions() if version is None and label is None else [str(target.version)],
                            model.ready)

    def metadata(model_name: str, version: str | None = None, label: str | None = None):
        model, target = locate(repository, model_name, version, label)
        if target is None:
            return _not_found(model_name, version, label)
        return {"model_spec": {"name": model_name, "signature_name": "", "version": str(target.version)},
                "metadata": {"signature_def": {"signature_def": model.signature(target)}}}

    app.add_api_route("/v1/models/{model_name}", status, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}/versions/{version}", status, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}/labels/{label}", status, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}/metadata", metadata, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}/versions/{version}/metadata", metadata, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}/labels/{label}/metadata", metadata, methods=["GET"])


class UntimedRESTServer(RESTServer):
    """KServe's REST server without its per-request timing middleware, which logs three lines and makes
    four `getrusage` calls (each walks all of TensorFlow's threads) per request: a fifth of the server's
    time under load. Predict latency is on /metrics (`emotion_ai_predict_seconds`) instead."""

    def _add_middlewares(self, app) -> None:
        """None (KServe adds only its timing here, and the access-log format we never set)."""


class LoopbackModelServer(kserve.ModelServer):
    """KServe's ModelServer, REST only, bound to a chosen address (KServe binds 0.0.0.0), that
    polls the model base path and swaps in new versions while it serves.

    Predict requests are answered by `PredictLane`, the outermost ASGI app, before FastAPI's
    middleware; the event loop is uvloop's. Uvicorn's access log (one line per request) is off
    unless asked for, as in TF Serving; /metrics counts requests by model and status.
    """

    def __init__(self, host: str, http_port: int, poll_seconds: float, access_log: bool = False,
                 follow: Callable[[str], object] | None = None) -> None:
        super().__init__(http_port=http_port, enable_grpc=False, workers=1)
        self.host, self.poll_seconds, self.access_log, self.follow = host, poll_seconds, access_log, follow

    def start(self, models: list[kserve.Model]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        gc.freeze()  # TensorFlow's many long-lived objects leave the collector's rounds: no pauses per request
        add_tf_serving_routes(kserve_app, self.registered_models)
        self._rest_server = UntimedRESTServer(PredictLane(kserve_app, self.registered_models), self.dataplane,
                                              self.model_repository_extension, self.http_port,
                                              grace_period=self.grace_period,
                                              timeout_keep_alive=self.timeout_keep_alive)
        self._rest_server.config.host = self.host
        if not self.access_log:
            _silence_access_log()
        uvloop.run(self._serve_and_watch(_versioned_parts(models)))

    async def _serve_and_watch(self, servables: list[SavedModelServable]) -> None:
        watchers = [asyncio.create_task(self._watch(servables))]
        if self.follow is not None:
            watchers.append(asyncio.create_task(self._follow_registry([servable.name for servable in servables])))
        try:
            await self._rest_server.start()
        finally:
            for watcher in watchers:
                watcher.cancel()

    async def _watch(self, servables: list[SavedModelServable]) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            for servable in servables:
                await asyncio.to_thread(servable.refresh)

    async def _follow_registry(self, names: list[str]) -> None:
        """Calls `follow` for each model every poll, on its own (a slow registry never delays `_watch`)."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            for name in names:
                try:
                    await asyncio.to_thread(self.follow, name)
                except Exception as error:  # noqa: BLE001 - the registry may be down; serving goes on
                    logger.error("could not follow the champion of %s: %s", name, error)


def _silence_access_log() -> None:
    """No handler for uvicorn's access logger, so uvicorn skips the per-request line altogether."""
    access_logger = logging.getLogger("uvicorn.access")
    access_logger.handlers.clear()
    access_logger.propagate = False


def serve_models(base_path: str | Path, host: str, port: int, poll_seconds: float = DEFAULT_POLL_SECONDS,
                 model_name: str | None = None, options: ServingOptions = ServingOptions(),
                 sampler: RequestSampler | None = None, access_log: bool = False,
                 follow: Callable[[str], object] | None = None) -> None:
    """Loads the exported versions `options` keep and serves them until interrupted, following changes
    in the layout; `follow(model name)`, when given, is called every poll too (see `follow_champion`)."""
    LoopbackModelServer(host, port, poll_seconds, access_log, follow).start(
        load_servables(base_path, model_name, options, sampler))
