"""Serving over TensorFlow Serving's REST API on a KServe ModelServer.

Models come from TF Serving's layout `<model_base_path>/<model_name>/<version>/` (the
newest complete version is served). Three models are served: the keypoint model, the
emotion model, and `emotion-ai`, which answers both for one face.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from fastapi import Request
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from prometheus_client import Counter, Gauge, Histogram

from emotion_ai import export, registry
from emotion_ai.faces import EMOTIONS, FACE_SIZE, KEYPOINT_NAMES
from emotion_ai.request_log import RequestSampler


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
InvalidInput = kserve.errors.InvalidInput
PREDICT_PATH = re.compile(r"^/v1/models/(?P<model>[^/:]+)(?:/versions/[^/:]+)?:predict$")
PREDICT_REQUESTS = Counter("emotion_ai_predict_requests", "Predict requests by model and HTTP status",
                           ["model", "code"])
PREDICT_SECONDS = Histogram("emotion_ai_predict_seconds", "Predict request latency by model", ["model"])
SERVED_VERSION = Gauge("emotion_ai_served_version", "Version each model serves", ["model"])


@dataclass
class FaceRequest:
    """Faces (n, 96, 96, 1) float32 in 0..255, and which TF Serving format asked for them."""

    faces: np.ndarray
    columnar: bool

    def answer(self, predictions: list) -> dict:
        """TF Serving answers the row format with "predictions", the columnar one with "outputs"."""
        return {"outputs" if self.columnar else "predictions": predictions}


def faces_from_request(payload: dict) -> FaceRequest:
    """Reads TF Serving's row (`{"instances": [...]}`) or columnar (`{"inputs": ...}`) request.

    Each face is a 96x96 array (96x96, 96x96x1 or 9216 flat values) of pixels in 0..255, or in
    0..1 when no value exceeds 1, or `{"b64": "..."}` holding a PNG or JPEG of any size.
    """
    if not isinstance(payload, dict) or not ({"instances", "inputs"} & set(payload)):
        raise InvalidInput('the request body must be a JSON object with "instances" or "inputs"')
    columnar = "instances" not in payload
    instances = payload["inputs"] if columnar else payload["instances"]
    if isinstance(instances, dict) and len(instances) == 1:
        instances = next(iter(instances.values()))
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("instances must be a non-empty list of faces")
    if all(isinstance(item, dict) and "b64" in item for item in instances):
        return FaceRequest(np.stack([_decode_image(item["b64"]) for item in instances])[..., np.newaxis], columnar)
    return FaceRequest(_pixel_faces(instances), columnar)


def _pixel_faces(instances: list) -> np.ndarray:
    try:
        faces = np.asarray(instances, dtype=np.float32)
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"instances must be equally shaped arrays of numbers ({error})") from error
    if faces.ndim == 2 and faces.shape[1] == FACE_SIZE * FACE_SIZE:
        faces = faces.reshape(-1, FACE_SIZE, FACE_SIZE)
    if faces.ndim == 3:
        faces = faces[..., np.newaxis]
    if faces.ndim != 4 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE, 1):
        raise InvalidInput(f"each instance must be a {FACE_SIZE}x{FACE_SIZE} grayscale face "
                           f"(got instances of shape {list(np.shape(instances))})")
    if not np.isfinite(faces).all() or faces.min() < 0 or faces.max() > 255:
        raise InvalidInput("pixel values must be finite numbers in 0..255 (or 0..1)")
    return faces * 255 if faces.max() <= 1 else faces


def _decode_image(encoded: object) -> np.ndarray:
    """A base64 PNG/JPEG of any size -> 96x96 grayscale pixels."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(str(encoded), validate=True))) as image:
            gray = image.convert("L").resize((FACE_SIZE, FACE_SIZE), Image.Resampling.BILINEAR)
    except (binascii.Error, UnidentifiedImageError, OSError) as error:
        raise InvalidInput(f"b64 value is not a base64 PNG or JPEG image ({error})") from error
    return np.asarray(gray, dtype=np.float32)


class SavedModelServable(kserve.Model):
    """The newest version of one model under `<base_path>/<name>/`, swapped in when it changes."""

    def __init__(self, name: str, base_path: str | Path, sampler: RequestSampler | None = None) -> None:
        super().__init__(name)
        self.base_path, self.sampler = base_path, sampler
        self.layout = export.layout(base_path)
        self._current: tuple[int, object] | None = None
        self._refused: set[int] = set()

    @property
    def version(self) -> int | None:
        return self._current[0] if self._current else None

    def load(self) -> bool:
        if not self.refresh() and self._current is None:
            raise FileNotFoundError(f"no loadable version of {self.name} under {self.base_path}/{self.name}")
        self.ready = True
        return self.ready

    def refresh(self) -> bool:
        """Loads the highest complete version if it is not the one served; True if it swapped.

        A version that fails to load is refused (logged, never retried) and the old one keeps serving.
        """
        available = [v for v in self.layout.versions(self.name) if v not in self._refused]
        if not available or available[-1] == self.version:
            return False
        newest = available[-1]
        try:
            saved_model = tf.saved_model.load(str(self.layout.local_copy(self.name, newest)))
        except Exception as error:  # noqa: BLE001 - any unloadable version is refused the same way
            self._refused.add(newest)
            logger.error("refused %s version %s: %s", self.name, newest, error)
            return False
        self._current = (newest, saved_model)
        SERVED_VERSION.labels(self.name).set(newest)
        logger.info("serving %s version %s", self.name, newest)
        return True

    def infer(self, faces: np.ndarray) -> np.ndarray:
        _, saved_model = self._current
        return saved_model.serve(tf.constant(faces)).numpy()

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        request = faces_from_request(payload)
        outputs = self.infer(request.faces)
        if self.sampler:
            classes = outputs.argmax(axis=1) if outputs.shape[1] == len(EMOTIONS) else None
            self.sampler.record(self.name, request.faces, classes)
        return request.answer(outputs.tolist())

    def signature(self) -> dict:
        """TF Serving's `signature_def` of the served version's `serving_default`."""
        _, saved_model = self._current
        function = saved_model.signatures["serving_default"]
        describe = lambda spec: {"dtype": f"DT_{spec.dtype.name.upper()}",  # noqa: E731
                                 "tensor_shape": {"dim": [{"size": str(-1 if d is None else d)}
                                                          for d in spec.shape]}}
        return {"serving_default": {
            "inputs": {name: describe(spec) for name, spec in function.structured_input_signature[1].items()},
            "outputs": {name: describe(spec) for name, spec in function.structured_outputs.items()},
            "method_name": "tensorflow/serving/predict"}}


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

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        request = faces_from_request(payload)
        coordinates, probabilities = self.keypoints.infer(request.faces), self.emotion.infer(request.faces)
        if self.sampler:
            self.sampler.record(self.name, request.faces, probabilities.argmax(axis=1))
        return request.answer([describe_face(c, p) for c, p in zip(coordinates, probabilities)])

    def signature(self) -> dict:
        face = self.keypoints.signature()["serving_default"]["inputs"]
        return {"serving_default": {"inputs": face, "outputs": {
            "keypoints": {"names": list(KEYPOINT_NAMES), "unit": "pixels (x, y)"},
            "emotion": {"labels": list(EMOTIONS)}, "probabilities": {"dtype": "DT_FLOAT", "size": len(EMOTIONS)}},
            "method_name": "tensorflow/serving/predict"}}


def describe_face(coordinates: np.ndarray, probabilities: np.ndarray) -> dict:
    """One face's answer: named keypoints (x, y) in pixels, the emotion and its probabilities."""
    best = int(np.argmax(probabilities))
    return {
        "keypoints": {name: coordinates[2 * i:2 * i + 2].tolist() for i, name in enumerate(KEYPOINT_NAMES)},
        "emotion": EMOTIONS[best],
        "emotion_id": best,
        "probabilities": probabilities.tolist(),
        "labels": list(EMOTIONS),
    }


SERVABLE_MODELS = (registry.KEYPOINT_MODEL, registry.EMOTION_MODEL, registry.COMBINED_MODEL)


def load_servables(base_path: str | Path, model_name: str | None = None,
                   sampler: RequestSampler | None = None) -> list[kserve.Model]:
    """All three models, or only `model_name` (TF Serving's --model_name), at their newest versions."""
    if model_name is not None and model_name not in SERVABLE_MODELS:
        raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(SERVABLE_MODELS)}")
    keypoints = SavedModelServable(registry.KEYPOINT_MODEL, base_path, sampler)
    emotion = SavedModelServable(registry.EMOTION_MODEL, base_path, sampler)
    keypoints.load()
    emotion.load()
    servables = [keypoints, emotion, FaceServable(keypoints, emotion, sampler)]
    return [servable for servable in servables if model_name in (None, servable.name)]


def _versioned_parts(models: list[kserve.Model]) -> list[SavedModelServable]:
    """The SavedModel servables behind `models` (the combined model's two included), each once."""
    parts = [part for model in models
             for part in ((model.keypoints, model.emotion) if isinstance(model, FaceServable) else (model,))]
    return list({id(part): part for part in parts}.values())


def model_status(model) -> dict:
    """TF Serving's `GET /v1/models/<name>` answer."""
    return {"model_version_status": [{
        "version": str(model.version),
        "state": "AVAILABLE" if model.ready else "LOADING",
        "status": {"error_code": "OK", "error_message": ""},
    }]}


def _not_found(name: str, version: str | None = None) -> JSONResponse:
    wanted = f"Specific({name}, {version})" if version else f"Latest({name})"
    return JSONResponse({"error": f"Servable not found for request: {wanted}"}, 404)


def add_tf_serving_routes(app, repository, max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Routes where TF Serving's JSON differs from KServe's V1, added before KServe's own, and a body limit."""

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        if int(request.headers.get("content-length") or 0) > max_body_bytes:
            return JSONResponse({"error": f"request body is larger than {max_body_bytes} bytes"}, 413)
        return await call_next(request)

    @app.middleware("http")
    async def measure_predictions(request: Request, call_next):
        """Prometheus counts and latency of every predict request (on /metrics)."""
        predict = PREDICT_PATH.match(request.url.path)
        if predict is None:
            return await call_next(request)
        started = time.perf_counter()
        response = await call_next(request)
        PREDICT_REQUESTS.labels(predict["model"], str(response.status_code)).inc()
        PREDICT_SECONDS.labels(predict["model"]).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz")
    async def liveness():
        return {"status": "alive"}

    @app.get("/readyz")
    async def readiness():
        """200 once every model serves a version, else 503 (Kubernetes readiness probe)."""
        models = {name: str(model.version) for name, model in repository.get_models().items()}
        ready = bool(models) and all(model.ready for model in repository.get_models().values())
        return JSONResponse({"ready": ready, "models": models}, 200 if ready else 503)

    def served(model_name: str, version: str | None = None):
        model = repository.get_model(model_name)
        if model is None or (version is not None and version != str(model.version)):
            return None
        return model

    @app.get("/v1/models/{model_name}")
    async def status(model_name: str):
        model = served(model_name)
        return model_status(model) if model else _not_found(model_name)

    @app.get("/v1/models/{model_name}/versions/{version}")
    async def version_status(model_name: str, version: str):
        model = served(model_name, version)
        return model_status(model) if model else _not_found(model_name, version)

    @app.get("/v1/models/{model_name}/metadata")
    async def metadata(model_name: str):
        model = served(model_name)
        if model is None:
            return _not_found(model_name)
        return {"model_spec": {"name": model_name, "signature_name": "", "version": str(model.version)},
                "metadata": {"signature_def": {"signature_def": model.signature()}}}

    @app.post("/v1/models/{model_name}/versions/{version}:predict")
    async def version_predict(model_name: str, version: str, request: Request):
        model = served(model_name, version)
        if model is None:
            return _not_found(model_name, version)
        try:
            payload = await request.json()
        except ValueError as error:
            raise InvalidInput(f"the request body is not JSON ({error})") from error
        return await asyncio.to_thread(model.predict, payload)


class LoopbackModelServer(kserve.ModelServer):
    """KServe's ModelServer, REST only, bound to a chosen address (KServe binds 0.0.0.0), that
    polls the model base path and swaps in new versions while it serves."""

    def __init__(self, host: str, http_port: int, poll_seconds: float) -> None:
        super().__init__(http_port=http_port, enable_grpc=False, workers=1)
        self.host = host
        self.poll_seconds = poll_seconds

    def start(self, models: list[kserve.Model]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        add_tf_serving_routes(kserve_app, self.registered_models)
        self._rest_server = RESTServer("kserve.model_server:app", self.dataplane,
                                       self.model_repository_extension, self.http_port,
                                       grace_period=self.grace_period, event_loop=self.event_loop,
                                       timeout_keep_alive=self.timeout_keep_alive)
        self._rest_server.config.host = self.host
        asyncio.run(self._serve_and_watch(_versioned_parts(models)))

    async def _serve_and_watch(self, servables: list[SavedModelServable]) -> None:
        watcher = asyncio.create_task(self._watch(servables))
        try:
            await self._rest_server.start()
        finally:
            watcher.cancel()

    async def _watch(self, servables: list[SavedModelServable]) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            for servable in servables:
                await asyncio.to_thread(servable.refresh)


def serve_models(base_path: str | Path, host: str, port: int, poll_seconds: float = DEFAULT_POLL_SECONDS,
                 model_name: str | None = None, sampler: RequestSampler | None = None) -> None:
    """Loads the newest exported versions and serves them until interrupted, following new versions."""
    LoopbackModelServer(host, port, poll_seconds).start(load_servables(base_path, model_name, sampler))
