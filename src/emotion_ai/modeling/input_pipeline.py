"""tf.data input pipelines: uint8 faces in memory -> float batches of 96x96x1 faces."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from emotion_ai.faces import FACE_SIZE, KEYPOINT_NAMES
from emotion_ai.modeling.networks import mirror_keypoints
from emotion_ai.settings import AugmentSettings

AUTOTUNE = tf.data.AUTOTUNE
CENTRE = (FACE_SIZE - 1) / 2


def to_model_input(images: tf.Tensor) -> tf.Tensor:
    """A batch of uint8 faces (n, h, w) -> float32 (n, 96, 96, 1) in 0..255."""
    return at_face_size(tf.cast(images, tf.float32)[..., tf.newaxis])


def at_face_size(faces: tf.Tensor) -> tf.Tensor:
    """Float faces (n, h, w, 1) upsampled to 96x96 when they are smaller (FER's 48x48)."""
    if faces.shape[1] != FACE_SIZE:
        faces = tf.image.resize(faces, (FACE_SIZE, FACE_SIZE), method="bilinear")
    return faces


def as_model_input(images: np.ndarray) -> np.ndarray:
    """The same conversion for arrays (evaluation, serving, examples)."""
    return to_model_input(tf.constant(images)).numpy()


def face_batches(
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    augment=None,
) -> tf.data.Dataset:
    """Cached, optionally shuffled and augmented, batched and prefetched pairs of 96x96x1 float
    faces.

    `augment` takes float faces at their stored size and returns them at 96x96: 48x48 FER faces are
    augmented at their own size (a quarter of the pixels to warp) and upsampled last. Batches are
    converted one at a time (prefetched while the model trains): the augmentation's random draws
    then come in the same order every run, where parallel calls would take them in whatever order
    their threads ran, and the same seed would train a different model.
    """
    data = tf.data.Dataset.from_tensor_slices((images, targets)).cache()
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if augment is None:
        convert = lambda x, y: (to_model_input(x), y)  # noqa: E731
    else:
        convert = lambda x, y: augment(tf.cast(x, tf.float32)[..., tf.newaxis], y)  # noqa: E731
    return data.batch(batch_size).map(convert).prefetch(AUTOTUNE)


def _mirror_random_half(faces: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors a random half of a batch of faces; returns the faces and which were mirrored."""
    flip = tf.random.uniform((tf.shape(faces)[0],)) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(faces, axis=[2]), faces), flip


def flip_faces(faces: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors a random half of a batch; emotion labels do not change with a flip."""
    return _mirror_random_half(faces)[0], labels


def flip_faces_and_keypoints(faces: tf.Tensor, keypoints: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mirrors a random half of a batch, keypoints with them, so every label stays true."""
    faces, flip = _mirror_random_half(faces)
    return faces, tf.where(flip[:, None], mirror_keypoints(keypoints), keypoints)


def _random_similarity(
    count: tf.Tensor, settings: AugmentSettings
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per face a rotation (n, 2, 2), a scale (n,) and a shift (n, 2) within the settings'
    ranges."""
    angle = tf.random.uniform((count,), -1, 1) * settings.rotation_degrees * (np.pi / 180)
    scale = 1 + tf.random.uniform((count,), -1, 1) * settings.scale
    shift = tf.random.uniform((count, 2), -1, 1) * settings.shift_px
    cos, sin = tf.cos(angle), tf.sin(angle)
    rotation = tf.reshape(tf.stack([cos, -sin, sin, cos], axis=1), (-1, 2, 2))
    return rotation, scale, shift


def warp_faces(
    faces: tf.Tensor, rotation: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor
) -> tf.Tensor:
    """Moves each face by p' = scale * rotation (p - c) + c + shift (c the centre), reflecting at
    borders.

    `shift` is in pixels of a 96x96 face; a face of another size (48x48) moves by the same share of
    its width. The image op wants the inverse map (output pixel -> input pixel): p = M p' + b with
    M = rotation^T / scale and b = c - M (c + shift).
    """
    size = tf.cast(tf.shape(faces)[1], tf.float32)
    centre, shift = (size - 1) / 2, shift * (size / FACE_SIZE)
    inverse = tf.transpose(rotation, (0, 2, 1)) / scale[:, None, None]
    offset = centre - tf.linalg.matvec(inverse, centre + shift)
    transforms = tf.concat(
        [
            inverse[:, 0, :],
            offset[:, :1],
            inverse[:, 1, :],
            offset[:, 1:],
            tf.zeros((tf.shape(faces)[0], 2)),
        ],
        axis=1,
    )
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=faces,
        transforms=transforms,
        output_shape=tf.shape(faces)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    return tf.ensure_shape(warped, faces.shape)


def move_keypoints(
    keypoints: tf.Tensor, rotation: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor
) -> tf.Tensor:
    """(n, 30) keypoints moved the way `warp_faces` moves their faces (NaN stays NaN)."""
    points = tf.reshape(keypoints, (-1, len(KEYPOINT_NAMES), 2)) - CENTRE
    moved = (
        tf.einsum("nij,nkj->nki", rotation, points) * scale[:, None, None]
        + CENTRE
        + shift[:, None, :]
    )
    return tf.reshape(moved, (-1, 2 * len(KEYPOINT_NAMES)))


def _jitter_light(faces: tf.Tensor, settings: AugmentSettings) -> tf.Tensor:
    """Random contrast about each face's mean and a random brightness offset, kept in 0..255."""
    count = tf.shape(faces)[0]
    contrast = 1 + tf.random.uniform((count, 1, 1, 1), -1, 1) * settings.contrast
    brightness = tf.random.uniform((count, 1, 1, 1), -1, 1) * settings.brightness
    mean = tf.reduce_mean(faces, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((faces - mean) * contrast + mean + brightness, 0.0, 255.0)


def emotion_augmentation(
    settings: AugmentSettings, mixup_alpha: float = 0.0, random_erasing: float = 0.0
):
    """Flip, brightness, contrast, rotation, shift and scale of a batch of faces at their own size,
    and with `random_erasing`, a noise rectangle on that share of them, then upsampled to 96x96;
    labels unchanged, or with `mixup_alpha`, faces and their one-hot targets blended pairwise
    (`mixup`)."""
    erase = (
        keras.layers.RandomErasing(factor=(random_erasing, random_erasing), value_range=(0, 255))
        if random_erasing > 0
        else None
    )

    def augment(faces: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        faces, labels = flip_faces(faces, labels)
        faces = warp_faces(
            _jitter_light(faces, settings), *_random_similarity(tf.shape(faces)[0], settings)
        )
        if erase is not None:
            faces = erase(faces, training=True)
        faces = at_face_size(faces)
        return mixup(faces, labels, mixup_alpha) if mixup_alpha > 0 else (faces, labels)

    return augment


def mixup(faces: tf.Tensor, targets: tf.Tensor, alpha: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Blends each face of a batch with another face of the batch, and its (one-hot) targets by the
    same Beta(alpha, alpha) weight (mixup, Zhang et al. 2018)."""
    count = tf.shape(faces)[0]
    first, second = tf.random.gamma((count,), alpha), tf.random.gamma((count,), alpha)
    weight = first / (first + second)
    partner = tf.random.shuffle(tf.range(count))
    blended = weight[:, None, None, None] * faces + (1 - weight[:, None, None, None]) * tf.gather(
        faces, partner
    )
    mixed = weight[:, None] * targets + (1 - weight[:, None]) * tf.gather(targets, partner)
    return blended, mixed


def keypoint_augmentation(settings: AugmentSettings):
    """The same for 96x96 keypoint faces, moving every keypoint with its face so labels stay
    true."""

    def augment(faces: tf.Tensor, keypoints: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        faces, keypoints = flip_faces_and_keypoints(faces, keypoints)
        faces = _jitter_light(faces, settings)
        similarity = _random_similarity(tf.shape(faces)[0], settings)
        return warp_faces(faces, *similarity), move_keypoints(keypoints, *similarity)

    return augment
