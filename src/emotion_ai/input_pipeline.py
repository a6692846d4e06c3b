"""tf.data input pipelines: uint8 faces in memory -> float batches of 96x96x1 faces."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from emotion_ai.faces import FACE_SIZE, KEYPOINT_NAMES

AUTOTUNE = tf.data.AUTOTUNE


def to_model_input(images: tf.Tensor) -> tf.Tensor:
    """A batch of uint8 faces (n, h, w) -> float32 (n, 96, 96, 1) in 0..255."""
    faces = tf.cast(images, tf.float32)[..., tf.newaxis]
    if faces.shape[1] != FACE_SIZE:
        faces = tf.image.resize(faces, (FACE_SIZE, FACE_SIZE), method="bilinear")
    return faces


def as_model_input(images: np.ndarray) -> np.ndarray:
    """The same conversion for arrays (evaluation, serving, examples)."""
    return to_model_input(tf.constant(images)).numpy()


def face_batches(images: np.ndarray, targets: np.ndarray, batch_size: int, *, shuffle: bool,
                 seed: int, augment=None) -> tf.data.Dataset:
    """Cached, optionally shuffled and augmented, batched and prefetched pairs."""
    data = tf.data.Dataset.from_tensor_slices((images, targets)).cache()
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(lambda x, y: (to_model_input(x), y), num_parallel_calls=AUTOTUNE)
    if augment is not None:
        data = data.map(augment, num_parallel_calls=AUTOTUNE)
    return data.prefetch(AUTOTUNE)


def _mirror_random_half(faces: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors a random half of a batch of faces; returns the faces and which were mirrored."""
    flip = tf.random.uniform((tf.shape(faces)[0],)) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(faces, axis=[2]), faces), flip


def flip_faces(faces: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors a random half of a batch; emotion labels do not change with a flip."""
    return _mirror_random_half(faces)[0], labels


def _mirror_partner(name: str) -> str:
    return name.replace("left", "@").replace("right", "left").replace("@", "right")


MIRRORED_KEYPOINTS = [KEYPOINT_NAMES.index(_mirror_partner(name)) for name in KEYPOINT_NAMES]
"""For each keypoint, the one it becomes in a mirrored face (left and right swap; nose and lips stay)."""


def mirror_keypoints(keypoints: tf.Tensor) -> tf.Tensor:
    """(n, 30) keypoints of faces -> those of the horizontally mirrored faces (NaN stays NaN)."""
    points = tf.gather(tf.reshape(keypoints, (-1, len(KEYPOINT_NAMES), 2)), MIRRORED_KEYPOINTS, axis=1)
    mirrored = tf.stack([(FACE_SIZE - 1) - points[..., 0], points[..., 1]], axis=-1)
    return tf.reshape(mirrored, (-1, 2 * len(KEYPOINT_NAMES)))


def flip_faces_and_keypoints(faces: tf.Tensor, keypoints: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors a random half of a batch, keypoints with them, so every label stays true."""
    faces, flip = _mirror_random_half(faces)
    return faces, tf.where(flip[:, None], mirror_keypoints(keypoints), keypoints)
