"""TF Serving's REST request and answer formats for faces: rows or columns (each plain or under the
signature's input name), pixels or base64 images."""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass

import numpy as np
from kserve.errors import InvalidInput
from PIL import Image, UnidentifiedImageError

from emotion_ai.faces import EMOTIONS, FACE_SIZE, KEYPOINT_NAMES
from emotion_ai.serving.errors import RequestTooLarge
from emotion_ai.serving.json_arrays import read_number_array
from emotion_ai.settings import RequestLimits

SIGNATURE = "serving_default"
"""The one signature every served model has."""

FACE_SHAPES = ((FACE_SIZE * FACE_SIZE,), (FACE_SIZE, FACE_SIZE), (FACE_SIZE, FACE_SIZE, 1))
"""The shapes one face may have in a request: flat, rows, rows with a channel."""


@dataclass
class FaceRequest:
    """Faces (n, 96, 96, 1) float32 in 0..255, and which TF Serving format asked for them."""

    faces: np.ndarray
    columnar: bool

    def answer(self, predictions: list) -> dict:
        """TF Serving answers the row format with "predictions", the columnar one with "outputs"."""
        return {"outputs" if self.columnar else "predictions": predictions}


def json_face_request(body: bytes, input_name: str, limits: RequestLimits) -> FaceRequest:
    """A request body parsed as JSON (slower than `pixel_array_request`: run it off the event
    loop)."""
    return faces_from_request(parse_json_body(body), input_name, limits)


def parse_json_body(body: bytes) -> object:
    """A request body's JSON, or InvalidInput naming why it is not."""
    try:
        return json.loads(body)
    except RecursionError as error:
        raise InvalidInput("the request body's JSON is nested too deeply") from error
    except ValueError as error:
        raise InvalidInput(f"the request body is not JSON ({error})") from error


def request_instances(
    payload: object, input_name: str, limits: RequestLimits, what: str
) -> tuple[list, bool]:
    """The instances of TF Serving's row (`{"instances": [...]}`, each also as `{"<input_name>":
    ...}`) or columnar (`{"inputs": [...]}` or `{"inputs": {"<input_name>": [...]}}`) request, and
    whether it was columnar; `what` names them in errors."""
    if not isinstance(payload, dict) or not ({"instances", "inputs"} & set(payload)):
        raise InvalidInput('the request body must be a JSON object with "instances" or "inputs"')
    check_signature(payload.get("signature_name", SIGNATURE))
    columnar = "instances" not in payload
    instances = payload["inputs"] if columnar else payload["instances"]
    if isinstance(instances, dict):
        instances = _named(instances, input_name)
    if not isinstance(instances, list) or not instances:
        raise InvalidInput(f"instances must be a non-empty list of {what}")
    if all(isinstance(item, dict) and "b64" not in item for item in instances):
        instances = [_named(item, input_name) for item in instances]
    check_instances(len(instances), limits)
    return instances, columnar


def _named(tensors: dict, input_name: str) -> object:
    """The value of a `{"<input_name>": value}` object."""
    check_input_names(list(tensors), input_name)
    return tensors[input_name]


def check_signature(name: str) -> None:
    """Refuses a signature name other than the one every model has."""
    if name != SIGNATURE:
        raise InvalidInput(f"signature_name {name!r} is not served; the model has {SIGNATURE!r}")


def check_input_names(names: list[str], input_name: str) -> None:
    """Refuses a request whose tensors are not exactly the model's one input."""
    if names != [input_name]:
        raise InvalidInput(
            f"the request names the input(s) {sorted(names)}; the model's one input is "
            f"{input_name!r}"
        )


def b64_bytes(encoded: object) -> bytes:
    """The bytes of a request's `{"b64": ...}` value."""
    try:
        return base64.b64decode(str(encoded), validate=True)
    except binascii.Error as error:
        raise InvalidInput(f"b64 value is not base64 ({error})") from error


def check_instances(count: int, limits: RequestLimits) -> None:
    if count > limits.max_instances:
        raise RequestTooLarge(
            f"{count} instances in one request; the server takes at most {limits.max_instances}"
        )


def pixel_array_request(body: bytes, limits: RequestLimits = RequestLimits()) -> FaceRequest | None:
    """The faces of a body that is exactly `{"instances"|"inputs": <array of faces of
    FACE_SHAPES>}`, read in one compiled pass into an array without a Python object per pixel; None
    for any other body. A ragged array is never read as faces (see `json_arrays`)."""
    parsed = read_number_array(body)
    if (
        parsed is None
        or parsed.key not in (b"instances", b"inputs")
        or parsed.values.shape[1:] not in FACE_SHAPES
    ):
        return None
    check_instances(len(parsed.values), limits)
    return FaceRequest(checked_faces(parsed.values), parsed.key == b"inputs")


def faces_from_request(payload: dict, input_name: str, limits: RequestLimits) -> FaceRequest:
    """Reads TF Serving's row (`{"instances": [...]}`) or columnar (`{"inputs": ...}`) request
    for a model whose input is `input_name`.

    Each face is a 96x96 array (96x96, 96x96x1 or 9216 flat values) of pixels in 0..255, or in
    0..1 when no value exceeds 1, or `{"b64": "..."}` holding a PNG or JPEG of any size.
    """
    instances, columnar = request_instances(payload, input_name, limits, "faces")
    if all(isinstance(item, dict) and "b64" in item for item in instances):
        budget = PixelBudget(limits)
        faces = [decode_face_image(b64_bytes(item["b64"]), budget) for item in instances]
        return FaceRequest(np.stack(faces)[..., np.newaxis], columnar)
    return FaceRequest(_pixel_faces(instances), columnar)


def faces_from_tensor(name: str, values: np.ndarray, limits: RequestLimits) -> np.ndarray:
    """The faces (n, 96, 96, 1) float32 in 0..255 of one request tensor (gRPC and V2): numbers of
    shape (n, 96, 96, 1), (n, 96, 96) or (n, 9216), pixels 0..255 (or 0..1); or strings, one PNG or
    JPEG image a face (raw bytes, or base64)."""
    if values.ndim == 0 or len(values) == 0:
        raise InvalidInput(f"input {name!r} holds no faces")
    check_instances(len(values), limits)
    if values.dtype.kind in "OSa":
        budget = PixelBudget(limits)
        images = [decode_face_image(_raw_image(image), budget) for image in values.reshape(-1)]
        return np.stack(images)[..., np.newaxis]
    if values.dtype.kind not in "fiu" or values.shape[1:] not in FACE_SHAPES:
        raise InvalidInput(
            f"input {name!r} is {values.dtype} of shape {list(values.shape)}; faces are numbers of "
            f"shape [n, {FACE_SIZE}, {FACE_SIZE}, 1], [n, {FACE_SIZE}, {FACE_SIZE}] or "
            f"[n, {FACE_SIZE * FACE_SIZE}], or encoded images"
        )
    return checked_faces(values.astype(np.float32))


def _raw_image(value: bytes | str) -> bytes:
    """An image sent as is, or base64-encoded (KServe's V2 REST carries only UTF-8 strings)."""
    value = value.encode() if isinstance(value, str) else bytes(value)
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return value


def _holds_bool(value: object) -> bool:
    """Whether a JSON value holds `true` or `false` anywhere (NumPy would take them as 1 and 0)."""
    if isinstance(value, bool):
        return True
    return isinstance(value, list) and any(_holds_bool(item) for item in value)


def _pixel_faces(instances: list) -> np.ndarray:
    if _holds_bool(instances):
        raise InvalidInput("pixel values must be numbers, not true or false")
    try:
        faces = np.asarray(instances, dtype=np.float32)
    except (ValueError, TypeError, OverflowError) as error:
        raise InvalidInput(
            f"instances must be equally shaped arrays of numbers ({error})"
        ) from error
    if faces.shape[1:] not in FACE_SHAPES:
        raise InvalidInput(
            f"each instance must be a {FACE_SIZE}x{FACE_SIZE} grayscale face (got instances of "
            f"shape {list(np.shape(instances))})"
        )
    return checked_faces(faces)


def checked_faces(faces: np.ndarray) -> np.ndarray:
    """Faces of FACE_SHAPES as (n, 96, 96, 1), pixels in 0..255 (scaled up from 0..1 when no value
    exceeds 1)."""
    faces = faces.reshape(-1, FACE_SIZE, FACE_SIZE, 1)
    if not np.isfinite(faces).all() or faces.min() < 0 or faces.max() > 255:
        raise InvalidInput("pixel values must be finite numbers in 0..255 (or 0..1)")
    return faces * 255 if faces.max() <= 1 else faces


class PixelBudget:
    """The decoded pixels one request may still spend, checked from each image's header before it is
    decoded (so an image bomb costs nothing)."""

    def __init__(self, limits: RequestLimits) -> None:
        self.limits, self.left = limits, limits.max_request_pixels

    def spend(self, width: int, height: int) -> None:
        pixels = width * height
        if pixels > self.limits.max_image_pixels:
            raise RequestTooLarge(
                f"an image of {width}x{height} pixels is larger than the server takes "
                f"({self.limits.max_image_pixels} pixels)"
            )
        if pixels > self.left:
            raise RequestTooLarge(
                f"the request's images hold more than {self.limits.max_request_pixels} pixels "
                "together"
            )
        self.left -= pixels


def decode_face_image(data: bytes, budget: PixelBudget) -> np.ndarray:
    """A PNG/JPEG of any size -> 96x96 grayscale pixels."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            budget.spend(*image.size)
            gray = image.convert("L").resize((FACE_SIZE, FACE_SIZE), Image.Resampling.BILINEAR)
    except Image.DecompressionBombError as error:
        raise RequestTooLarge(f"the image is larger than the server takes ({error})") from error
    except UnidentifiedImageError as error:
        raise InvalidInput("the image is not a PNG or JPEG image (no format recognised)") from error
    except OSError as error:
        raise InvalidInput(f"the image is not a readable PNG or JPEG image ({error})") from error
    return np.asarray(gray, dtype=np.float32)


def describe_face(coordinates: np.ndarray, probabilities: np.ndarray) -> dict:
    """One face's answer: named keypoints (x, y) in pixels, the emotion and its probabilities."""
    best = int(np.argmax(probabilities))
    return {
        "keypoints": {
            name: coordinates[2 * i : 2 * i + 2].tolist() for i, name in enumerate(KEYPOINT_NAMES)
        },
        "emotion": EMOTIONS[best],
        "emotion_id": best,
        "probabilities": probabilities.tolist(),
        "labels": list(EMOTIONS),
    }
