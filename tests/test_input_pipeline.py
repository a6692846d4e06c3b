"""Augmentation keeps labels true: a mirrored, rotated, shifted or scaled face gets keypoints moved
alike."""

import keras
import numpy as np
import tensorflow as tf

from emotion_ai.data.synthetic import MEAN_KEYPOINTS, synthetic_faces
from emotion_ai.faces import KEYPOINT_COLUMNS
from emotion_ai.modeling.input_pipeline import (
    emotion_augmentation,
    face_batches,
    flip_faces_and_keypoints,
    keypoint_augmentation,
    warp_faces,
)
from emotion_ai.modeling.networks import mirror_keypoints
from emotion_ai.settings import AugmentSettings

COLUMN = {name: i for i, name in enumerate(KEYPOINT_COLUMNS)}


def test_mirroring_swaps_left_and_right_and_reflects_x():
    keypoints = MEAN_KEYPOINTS.reshape(1, -1).copy()
    keypoints[0, COLUMN["mouth_left_corner_y"]] = np.nan
    mirrored = mirror_keypoints(keypoints).numpy()
    assert (
        mirrored[0, COLUMN["left_eye_center_x"]] == 95 - keypoints[0, COLUMN["right_eye_center_x"]]
    )
    assert (
        mirrored[0, COLUMN["right_eyebrow_outer_end_y"]]
        == keypoints[0, COLUMN["left_eyebrow_outer_end_y"]]
    )
    assert mirrored[0, COLUMN["nose_tip_x"]] == 95 - keypoints[0, COLUMN["nose_tip_x"]]
    assert np.isnan(mirrored[0, COLUMN["mouth_right_corner_y"]])
    np.testing.assert_allclose(mirror_keypoints(mirrored).numpy(), keypoints, rtol=1e-5)


def _eyes_are_dark(faces: np.ndarray, keypoints: np.ndarray) -> None:
    for face, points in zip(faces, keypoints, strict=False):
        for eye in ("left_eye_center", "right_eye_center"):
            x, y = points[COLUMN[f"{eye}_x"]], points[COLUMN[f"{eye}_y"]]
            assert face[int(round(y)), int(round(x))] < 120, f"{eye} lands on a dark eye"


def test_flipped_keypoints_still_sit_on_the_flipped_face():
    faces, keypoints = synthetic_faces(np.array([3] * 16), np.random.default_rng(0))
    flipped_faces, flipped_keypoints = flip_faces_and_keypoints(
        faces[..., None].astype(np.float32), keypoints
    )
    flipped_faces, flipped_keypoints = flipped_faces.numpy()[..., 0], flipped_keypoints.numpy()
    changed = (flipped_keypoints != keypoints).any(axis=1)
    assert 0 < changed.sum() < 16, "a random part of the batch is flipped"
    _eyes_are_dark(flipped_faces, flipped_keypoints)


def test_rotated_shifted_and_scaled_keypoints_still_sit_on_their_moved_faces():
    tf.random.set_seed(1)
    faces, keypoints = synthetic_faces(np.array([0, 1, 2, 3, 4] * 4), np.random.default_rng(1))
    keypoints[0, COLUMN["nose_tip_x"]] = np.nan
    strong = AugmentSettings(rotation_degrees=25, shift_px=8, scale=0.15, brightness=0, contrast=0)
    moved_faces, moved_keypoints = keypoint_augmentation(strong)(
        faces[..., None].astype(np.float32), keypoints
    )
    moved_faces, moved_keypoints = moved_faces.numpy()[..., 0], moved_keypoints.numpy()
    assert np.abs(moved_keypoints - keypoints)[:, COLUMN["left_eye_center_x"]].min() > 0.05, (
        "every face moved"
    )
    assert np.isnan(moved_keypoints[0, COLUMN["nose_tip_x"]]) and not np.isnan(
        moved_keypoints[0, 0]
    )
    _eyes_are_dark(moved_faces, moved_keypoints)


def _blob(size: int, centre: tuple[float, float]) -> np.ndarray:
    """A smooth bright spot on a dark (1, size, size, 1) face, at `centre` (x, y) in pixels."""
    y, x = np.mgrid[:size, :size]
    spot = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * (size / 24) ** 2))
    return (255 * spot).astype(np.float32)[None, ..., None]


def _centroid(face: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[: face.shape[0], : face.shape[1]]
    return np.array([(x * face).sum(), (y * face).sum()]) / face.sum()


def test_a_48_pixel_face_moves_by_the_same_share_of_its_width_as_a_96_pixel_face():
    rotation = tf.constant([[[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]], tf.float32)
    scale, shift = tf.constant([1.1]), tf.constant([[6.0, -4.0]])
    big = warp_faces(_blob(96, (60.5, 30.5)), rotation, scale, shift).numpy()[0, ..., 0]
    small = warp_faces(_blob(48, (30.0, 15.0)), rotation, scale, shift).numpy()[0, ..., 0]
    np.testing.assert_allclose(2 * _centroid(small) + 0.5, _centroid(big), atol=0.3)
    still = warp_faces(
        _blob(48, (30.0, 15.0)), tf.eye(2, batch_shape=[1]), tf.ones(1), tf.zeros((1, 2))
    )
    np.testing.assert_allclose(still.numpy(), _blob(48, (30.0, 15.0)), atol=1e-3)


def test_augmented_emotion_batches_come_out_at_96_pixels_from_48_pixel_faces():
    faces, _ = synthetic_faces(np.array([0, 1, 2, 3, 4] * 2), np.random.default_rng(4))
    batches = face_batches(
        faces[:, ::2, ::2].copy(),
        np.arange(10),
        4,
        shuffle=True,
        seed=0,
        augment=emotion_augmentation(AugmentSettings()),
    )
    shapes = [(tuple(x.shape), tuple(y.shape)) for x, y in batches]
    assert shapes == [((4, 96, 96, 1), (4,)), ((4, 96, 96, 1), (4,)), ((2, 96, 96, 1), (2,))]


def test_the_same_seed_draws_the_same_augmented_batches_every_epoch_and_another_seed_others():
    faces, _ = synthetic_faces(np.arange(64) % 5, np.random.default_rng(4))

    def two_epochs(seed: int) -> np.ndarray:
        keras.utils.set_random_seed(seed)
        batches = face_batches(
            faces,
            np.arange(64),
            8,
            shuffle=True,
            seed=seed,
            augment=emotion_augmentation(AugmentSettings()),
        )
        return np.stack([x.numpy() for _ in range(2) for x, _ in batches])

    first = two_epochs(seed=3)
    np.testing.assert_array_equal(two_epochs(seed=3), first)
    assert not np.allclose(two_epochs(seed=4), first)


def test_emotion_augmentation_keeps_labels_and_pixel_range():
    faces, _ = synthetic_faces(np.array([1] * 8), np.random.default_rng(2))
    labels = np.arange(8)
    augmented, same_labels = emotion_augmentation(AugmentSettings(brightness=60))(
        faces[..., None].astype(np.float32), labels
    )
    assert augmented.shape == (8, 96, 96, 1) and np.array_equal(same_labels, labels)
    assert 0 <= float(tf.reduce_min(augmented)) and float(tf.reduce_max(augmented)) <= 255
    assert not np.allclose(augmented.numpy()[..., 0], faces)
