"""Serving over TensorFlow Serving's REST API on a KServe ModelServer.

Models come from TF Serving's layout `<model_base_path>/<model_name>/<version>/` (the
newest complete version is served). Three models are served: the keypoint model, the
emotion model, and `emotion-ai`, which answers both for one face.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from emotion_ai import export, registry
from emotion_ai.faces import EMOTIONS, FACE_SIZE, KEYPOINT_NAMES


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
DEFAULT_POLL_SECONDS = 2.0
"""How often the server looks for new versions (TF Serving's --file_system_poll_wait_seconds)."""
InvalidInput = kserve.errors.InvalidInput


def faces_from_request(payload: dict) -> np.ndarray:
    """TF Serving's row format `{"instances": [...]}` -> float32 faces (n, 96, 96, 1) in 0..255.

    Each instance is a 96x96 face as nested lists (96x96 or 96x96x1) or 9216 flat values.
    """
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput('the request body must be a JSON object with "instances"')
    try:
        faces = np.asarray(payload["instances"], dtype=np.float32)
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"instances must be equally shaped arrays of numbers ({error})") from error
    if faces.ndim == 2 and faces.shape[1] == FACE_SIZE * FACE_SIZE:
        faces = faces.reshape(-1, FACE_SIZE, FACE_SIZE)
    if faces.ndim == 3:
        faces = faces[..., np.newaxis]
    if faces.ndim != 4 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE, 1) or len(faces) == 0:
        raise InvalidInput(f"each instance must be a {FACE_SIZE}x{FACE_SIZE} grayscale face "
                           f"(got instances of shape {list(np.shape(payload['instances']))})")
    if not np.isfinite(faces).all() or faces.min() < 0 or faces.max() > 255:
        raise InvalidInput("pixel values must be finite numbers in 0..255")
    return faces


class SavedModelServable(kserve.Model):
    """The newest version of one model under `<base_path>/<name>/`, swapped in when it changes."""

    def __init__(self, name: str, base_path: str | Path) -> None:
        super().__init__(name)
        self.base_path = base_path
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
        logger.info("serving %s version %s", self.name, newest)
        return True

    def infer(self, faces: np.ndarray) -> np.ndarray:
        _, saved_model = self._current
        return saved_model.serve(tf.constant(faces)).numpy()

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        return {"predictions": self.infer(faces_from_request(payload)).tolist()}


class FaceServable(kserve.Model):
    """`emotion-ai`: 15 named keypoints and the emotion with its 5 probabilities, per face."""

    def __init__(self, keypoints: SavedModelServable, emotion: SavedModelServable) -> None:
        super().__init__(registry.COMBINED_MODEL)
        self.keypoints, self.emotion = keypoints, emotion
        self.ready = keypoints.ready and emotion.ready

    @property
    def version(self) -> str:
        return f"{self.keypoints.version}.{self.emotion.version}"

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        faces = faces_from_request(payload)
        coordinates, probabilities = self.keypoints.infer(faces), self.emotion.infer(faces)
        return {"predictions": [describe_face(c, p) for c, p in zip(coordinates, probabilities)]}


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


def load_servables(base_path: str | Path) -> list[kserve.Model]:
    keypoints = SavedModelServable(registry.KEYPOINT_MODEL, base_path)
    emotion = SavedModelServable(registry.EMOTION_MODEL, base_path)
    keypoints.load()
    emotion.load()
    return [keypoints, emotion, FaceServable(keypoints, emotion)]


def model_status(model) -> dict:
    """TF Serving's `GET /v1/models/<name>` answer."""
    return {"model_version_status": [{
        "version": str(model.version),
        "state": "AVAILABLE" if model.ready else "LOADING",
        "status": {"error_code": "OK", "error_message": ""},
    }]}


def add_tf_serving_routes(app, repository) -> None:
    """Routes where TF Serving's JSON differs from KServe's V1; added before KServe's own."""
    from fastapi.responses import JSONResponse

    @app.get("/v1/models/{model_name}")
    async def status(model_name: str):
        model = repository.get_model(model_name)
        if model is None:
            return JSONResponse({"error": f"Servable not found for request: Latest({model_name})"}, 404)
        return model_status(model)


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
        asyncio.run(self._serve_and_watch([m for m in models if isinstance(m, SavedModelServable)]))

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


def serve_models(base_path: str | Path, host: str, port: int, poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
    """Loads the newest exported versions and serves them until interrupted, following new versions."""
    LoopbackModelServer(host, port, poll_seconds).start(load_servables(base_path))
