"""Request validation of the TF Serving REST API (no server needed)."""

import numpy as np
import pytest

from emotion_ai.serving import InvalidInput, describe_face, faces_from_request


def test_accepts_96x96_faces_nested_flat_or_with_a_channel():
    face = np.arange(96 * 96, dtype=np.float32).reshape(96, 96) % 256
    for instance in (face, face.reshape(-1), face[..., None]):
        faces = faces_from_request({"instances": [instance.tolist()]})
        assert faces.shape == (1, 96, 96, 1)
        np.testing.assert_array_equal(faces[0, ..., 0], face)


@pytest.mark.parametrize("payload, words", [
    ({"inputs": []}, '"instances"'),
    ([1, 2], '"instances"'),
    ({"instances": []}, "96x96"),
    ({"instances": [[1, 2, 3]]}, "96x96"),
    ({"instances": [[[0] * 96] * 95]}, "96x96"),
    ({"instances": [[0] * 9216, [0] * 9215]}, "equally shaped"),
    ({"instances": [["a"] * 9216]}, "numbers"),
    ({"instances": [[300] * 9216]}, "0..255"),
    ({"instances": [[-1] * 9216]}, "0..255"),
    ({"instances": [[float("nan")] * 9216]}, "finite"),
])
def test_bad_requests_get_a_clear_reason(payload, words):
    with pytest.raises(InvalidInput, match=words):
        faces_from_request(payload)


def test_describe_face_names_keypoints_and_emotion():
    answer = describe_face(np.arange(30, dtype=np.float32), np.array([0.1, 0.1, 0.1, 0.6, 0.1]))
    assert answer["emotion"] == "Happy" and answer["emotion_id"] == 3
    assert len(answer["keypoints"]) == 15 and answer["keypoints"]["right_eye_center"] == [2.0, 3.0]
