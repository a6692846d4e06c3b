"""Augmentation keeps labels true: a mirrored face gets mirrored, left/right-swapped keypoints."""

import numpy as np

from emotion_ai.faces import KEYPOINT_COLUMNS
from emotion_ai.input_pipeline import flip_faces_and_keypoints, mirror_keypoints
from emotion_ai.synthetic import MEAN_KEYPOINTS, synthetic_faces

COLUMN = {name: i for i, name in enumerate(KEYPOINT_COLUMNS)}


def test_mirroring_swaps_left_and_right_and_reflects_x():
    keypoints = MEAN_KEYPOINTS.reshape(1, -1).copy()
    keypoints[0, COLUMN["mouth_left_corner_y"]] = np.nan
    mirrored = mirror_keypoints(keypoints).numpy()
    assert mirrored[0, COLUMN["left_eye_center_x"]] == 95 - keypoints[0, COLUMN["right_eye_center_x"]]
    assert mirrored[0, COLUMN["right_eyebrow_outer_end_y"]] == keypoints[0, COLUMN["left_eyebrow_outer_end_y"]]
    assert mirrored[0, COLUMN["nose_tip_x"]] == 95 - keypoints[0, COLUMN["nose_tip_x"]]
    assert np.isnan(mirrored[0, COLUMN["mouth_right_corner_y"]])
    np.testing.assert_allclose(mirror_keypoints(mirrored).numpy(), keypoints, rtol=1e-5)


def test_flipped_keypoints_still_sit_on_the_flipped_face():
    faces, keypoints = synthetic_faces(np.array([3] * 16), np.random.default_rng(0))
    flipped_faces, flipped_keypoints = flip_faces_and_keypoints(faces[..., None].astype(np.float32), keypoints)
    flipped_faces, flipped_keypoints = flipped_faces.numpy()[..., 0], flipped_keypoints.numpy()
    changed = (flipped_keypoints != keypoints).any(axis=1)
    assert 0 < changed.sum() < 16, "a random part of the batch is flipped"
    for face, points in zip(flipped_faces, flipped_keypoints):
        for eye in ("left_eye_center", "right_eye_center"):
            x, y = points[COLUMN[f"{eye}_x"]], points[COLUMN[f"{eye}_y"]]
            assert face[int(round(y)), int(round(x))] < 120, f"{eye} lands on a dark eye"
