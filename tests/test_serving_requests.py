"""Request validation of the TF Serving REST API (no server needed)."""

import base64
import io
import json

import numpy as np
import pytest
from images import b64_request, png, png_claiming
from PIL import Image

from emotion_ai.serving.face_requests import (
    FaceRequest,
    InvalidInput,
    RequestTooLarge,
    describe_face,
    faces_from_request,
    json_face_request,
    pixel_array_request,
)
from emotion_ai.settings import RequestLimits

INPUT = "face"
"""The input name of the model the requests are for."""
PNG_FACE = base64.b64encode(png(96, 96)).decode()


def faces_of(payload: object) -> FaceRequest:
    return faces_from_request(payload, INPUT, RequestLimits())


def read_face_request(body: bytes, limits: RequestLimits = RequestLimits()) -> FaceRequest:
    """As the server reads a body: the compiled pixel-array pass, else JSON."""
    request = pixel_array_request(body, limits)
    return request if request is not None else json_face_request(body, INPUT, limits)


def test_accepts_96x96_faces_nested_flat_or_with_a_channel():
    face = np.arange(96 * 96, dtype=np.float32).reshape(96, 96) % 256
    for instance in (face, face.reshape(-1), face[..., None]):
        faces = faces_of({"instances": [instance.tolist()]}).faces
        assert faces.shape == (1, 96, 96, 1)
        np.testing.assert_array_equal(faces[0, ..., 0], face)


def _body(payload) -> bytes:
    return json.dumps(payload).encode()


def test_plain_pixel_arrays_are_read_straight_from_the_body_like_any_other():
    face = np.arange(96 * 96, dtype=np.float32).reshape(96, 96) % 256
    for instances in (
        [face.tolist()],
        [face.reshape(-1).tolist()] * 2,
        [face[..., None].tolist()],
        [(face / 255).tolist()],
    ):
        for key in ("instances", "inputs"):
            fast = pixel_array_request(_body({key: instances}))
            general = faces_of({key: instances})
            assert fast is not None, "a plain pixel array is read without building Python lists"
            assert fast.columnar == general.columnar == (key == "inputs")
            np.testing.assert_allclose(fast.faces, general.faces, rtol=1e-6)
    spaced = b' { "instances" : [ [ ' + b" , ".join([b"7"] * 9216) + b" ] ] } "
    np.testing.assert_array_equal(pixel_array_request(spaced).faces, np.full((1, 96, 96, 1), 7))


def test_a_ragged_array_with_the_right_number_of_pixels_is_refused():
    rows = [[[v] for v in range(96)] for _ in range(96)]
    rows[1][0] = [0, 1]  # one pixel too many in row 1 ...
    rows[2] = rows[2][:-1]  # ... one too few in row 2: 9216 numbers all the same
    assert pixel_array_request(_body({"instances": [rows]})) is None
    with pytest.raises(InvalidInput, match="equally shaped"):
        read_face_request(_body({"instances": [rows]}))


@pytest.mark.parametrize(
    "body, words",
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b'{"instances": [[' + b",".join([b"1"] * 9215) + b", NaN]]}", "finite"),
        (b'{"instances": [[' + b",".join([b"1"] * 9215) + b', "x"]]}', "numbers"),
        (b'{"instances": [[' + b",".join([b"1"] * 9215) + b", null]]}", "numbers"),
        (b'{"instances": [[' + b",".join([b"300"] * 9216) + b"]]}", "0..255"),
        (
            b'{"instances": [[' + b",".join([b"1"] * 9216) + b'], [1]], "extra": 1}',
            "equally shaped",
        ),
    ],
)
def test_bad_bodies_get_a_clear_reason(body, words):
    with pytest.raises(InvalidInput, match=words):
        read_face_request(body)


@pytest.mark.parametrize(
    "payload, words",
    [
        ({"faces": []}, '"instances"'),
        ([1, 2], '"instances"'),
        ({"instances": []}, "non-empty"),
        ({"instances": [{"b64": "not base64!"}]}, "not base64"),
        ({"instances": [{"b64": "aGVsbG8="}]}, "PNG or JPEG"),
        ({"instances": [[1, 2, 3]]}, "96x96"),
        ({"instances": [[[0] * 96] * 95]}, "96x96"),
        ({"instances": [[0] * 9216, [0] * 9215]}, "equally shaped"),
        ({"instances": [["a"] * 9216]}, "numbers"),
        ({"instances": [[300] * 9216]}, "0..255"),
        ({"instances": [[-1] * 9216]}, "0..255"),
        ({"instances": [[float("nan")] * 9216]}, "finite"),
        ({"instances": [[True] + [0] * 9215]}, "not true or false"),
        ({"inputs": [[[0] * 95 + [False]] * 96]}, "not true or false"),
    ],
)
def test_bad_requests_get_a_clear_reason(payload, words):
    with pytest.raises(InvalidInput, match=words):
        faces_of(payload)


def test_describe_face_names_keypoints_and_emotion():
    answer = describe_face(np.arange(30, dtype=np.float32), np.array([0.1, 0.1, 0.1, 0.6, 0.1]))
    assert answer["emotion"] == "Happy" and answer["emotion_id"] == 3
    assert len(answer["keypoints"]) == 15 and answer["keypoints"]["right_eye_center"] == [2.0, 3.0]


def test_rows_and_columns_may_name_the_input_and_only_the_input():
    face = [[0.5] * 9216]
    named_rows = faces_of({"instances": [{"face": face[0]}, {"face": face[0]}]})
    assert not named_rows.columnar and named_rows.faces.shape == (2, 96, 96, 1)
    assert faces_of({"instances": [{"face": {"b64": PNG_FACE}}]}).faces.shape == (1, 96, 96, 1)
    assert faces_of({"inputs": {"face": face}, "signature_name": "serving_default"}).columnar
    for payload in (
        {"instances": [{"image": face[0]}]},
        {"inputs": {"images": face}},
        {"inputs": {"face": face, "extra": face}},
    ):
        with pytest.raises(InvalidInput, match="the model's one input is 'face'"):
            faces_of(payload)
    with pytest.raises(InvalidInput, match="signature_name 'predict' is not served"):
        faces_of({"instances": face, "signature_name": "predict"})


def test_columnar_inputs_and_unit_range_pixels():
    request = faces_of({"inputs": {"face": [[0.5] * 9216]}})
    assert request.columnar and request.answer([1]) == {"outputs": [1]}
    np.testing.assert_allclose(request.faces, 127.5)
    assert faces_of({"instances": [[0.5] * 9216]}).answer([1]) == {"predictions": [1]}


def test_base64_png_and_jpeg_of_any_size_become_96x96_gray_faces():

    encoded = []
    for size, image_format in (((120, 80), "PNG"), ((48, 48), "JPEG")):
        buffer = io.BytesIO()
        Image.new("RGB", size, (200, 200, 200)).save(buffer, format=image_format)
        encoded.append({"b64": base64.b64encode(buffer.getvalue()).decode()})
    faces = faces_of({"instances": encoded}).faces
    assert faces.shape == (2, 96, 96, 1)
    np.testing.assert_allclose(faces, 200, atol=2)


def test_too_many_instances_are_refused_as_too_large_on_both_paths():
    limits = RequestLimits(max_instances=3)
    faces = np.zeros((4, 96, 96)).tolist()
    with pytest.raises(RequestTooLarge, match="4 instances"):
        read_face_request(_body({"instances": faces}), limits)
    with pytest.raises(RequestTooLarge, match="4 instances"):
        read_face_request(b64_request(*[png(2, 2)] * 4), limits)
    assert len(read_face_request(_body({"instances": faces[:3]}), limits).faces) == 3


def test_images_over_the_pixel_limits_are_refused_before_they_are_decoded():
    limits = RequestLimits(max_image_pixels=100 * 100, max_request_pixels=150 * 100)
    assert read_face_request(b64_request(png(100, 100)), limits).faces.shape == (1, 96, 96, 1)
    with pytest.raises(RequestTooLarge, match="101x100 pixels"):
        read_face_request(b64_request(png(101, 100)), limits)
    with pytest.raises(RequestTooLarge, match="together"):
        read_face_request(b64_request(png(100, 100), png(100, 100)), limits)
    with pytest.raises(RequestTooLarge, match="larger than the server takes"):
        read_face_request(b64_request(png_claiming(20_000, 20_000)))


def test_overflowing_numbers_and_deep_nesting_are_bad_requests():
    with pytest.raises(InvalidInput, match="numbers"):
        read_face_request(b'{"instances": [[1' + b"0" * 400 + b"]]}")
    with pytest.raises(InvalidInput, match="nested too deeply"):
        read_face_request(b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
