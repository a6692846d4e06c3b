"""The two face models, assembled from the residual blocks."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from emotion_ai.faces import EMOTIONS, FACE_SIZE, KEYPOINT_NAMES, MIRRORED_KEYPOINTS, N_COORDINATES
from emotion_ai.modeling.blocks import (
    face_input,
    resnet_features,
    resnet_stage_maps,
    upsampling_fusion,
)
from emotion_ai.settings import ResNetConfig

HALF_FACE = FACE_SIZE / 2
HEATMAP_UPSAMPLINGS = 1
"""Stages the heatmap head brings the last feature map back up through (1: the second-to-last
stage's grid, 12x12 for three stages at 48x48)."""


BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPU features (as /proc/cpuinfo names them) that compute bfloat16 natively."""


def cpu_computes_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 instructions (Linux; False where it can't tell)."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return False
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def precision_policy(precision: str, gpus: list, cpu_bfloat16: bool) -> str:
    """`auto`: mixed float16 on a GPU (tensor cores), mixed bfloat16 on a CPU that computes it
    (AMX, AVX512-BF16), float32 elsewhere; `float32` always. Weights and output layers stay float32
    either way."""
    if precision == "float32":
        return "float32"
    if gpus:
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_bfloat16 else "float32"


def build_keypoint_model(
    config: ResNetConfig, mean_keypoints: np.ndarray | None = None, head: str = "pooled"
) -> keras.Model:
    """96x96x1 face (0..255) -> 30 keypoint coordinates in pixels, from the pooled features or from
    heatmaps (`head`, see `TrainSettings.keypoint_head`); `mean_keypoints` is the pooled head's
    start."""
    inputs = face_input(FACE_SIZE)
    centred = (
        _heatmap_head(inputs, config)
        if head == "heatmap"
        else _pooled_head(inputs, config, mean_keypoints)
    )
    pixels = layers.Rescaling(HALF_FACE, offset=HALF_FACE, name="keypoints", dtype="float32")(
        centred
    )
    return keras.Model(inputs, pixels, name="keypoints")


def _pooled_head(inputs, config: ResNetConfig, mean_keypoints: np.ndarray | None):
    """Coordinates in half-face units, a dense layer over the pooled features.

    It starts at `mean_keypoints` (the training set's mean face) when given, so training refines
    an average face instead of climbing from the image centre (the usual output-bias
    initialisation; a zero kernel makes the start exact and still learns from step one).
    """
    start = (
        np.zeros(N_COORDINATES)
        if mean_keypoints is None
        else (mean_keypoints - HALF_FACE) / HALF_FACE
    )
    return layers.Dense(
        N_COORDINATES,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(start.tolist()),
        name="keypoints_centred",
        dtype="float32",
    )(resnet_features(inputs, config))


def _heatmap_head(inputs, config: ResNetConfig):
    """Coordinates in half-face units, each keypoint's heatmap's soft-argmax (integral regression:
    the mean position under the map's softmax, differentiable and finer than its grid)."""
    maps = resnet_stage_maps(inputs, config)
    fused = upsampling_fusion(maps, min(HEATMAP_UPSAMPLINGS, len(maps) - 1))
    heatmaps = layers.Conv2D(len(KEYPOINT_NAMES), 1, name="heatmaps", dtype="float32")(fused)
    return SpatialSoftArgmax(name="keypoints_centred", dtype="float32")(heatmaps)


def _cell_centres(cells: int) -> np.ndarray:
    """Centres of `cells` equal cells across the face, in half-face units (-1 .. 1 its edges)."""
    return (np.arange(cells) + 0.5) / cells * 2 - 1


@keras.saving.register_keras_serializable(package="emotion_ai")
class SpatialSoftArgmax(layers.Layer):
    """(n, h, w, k) heatmap logits -> (n, 2k): per map, the (x, y) mean position under its softmax
    over the grid, in half-face units, x and y of each map side by side."""

    def call(self, logits):
        _, height, width, count = logits.shape
        weights = ops.softmax(ops.reshape(logits, (-1, height * width, count)), axis=1)
        rows, columns = np.meshgrid(_cell_centres(height), _cell_centres(width), indexing="ij")
        x, y = (
            ops.sum(weights * ops.convert_to_tensor(axis.reshape(1, -1, 1), weights.dtype), axis=1)
            for axis in (columns, rows)
        )
        return ops.reshape(ops.stack([x, y], axis=-1), (-1, 2 * count))


@keras.saving.register_keras_serializable(package="emotion_ai")
class MirrorFaces(layers.Layer):
    """Mirrors a batch of faces left to right."""

    def call(self, faces):
        return ops.flip(faces, axis=2)


def mirror_keypoints(keypoints):
    """(n, 30) keypoints of faces -> those of the horizontally mirrored faces: left and right
    swap, x becomes 95 - x (NaN stays NaN)."""
    points = ops.take(ops.reshape(keypoints, (-1, len(KEYPOINT_NAMES), 2)), MIRRORED_KEYPOINTS, 1)
    mirrored = ops.stack([(FACE_SIZE - 1) - points[..., 0], points[..., 1]], axis=-1)
    return ops.reshape(mirrored, (-1, N_COORDINATES))


@keras.saving.register_keras_serializable(package="emotion_ai")
class MirrorKeypoints(layers.Layer):
    """Keypoints found on mirrored faces, mirrored back onto the faces themselves."""

    def call(self, keypoints):
        return mirror_keypoints(keypoints)


def with_flip_averaging(model: keras.Model) -> keras.Model:
    """`model` answering with the mean of its outputs on each face and on its mirror image
    (test-time flip averaging): emotions as they are, keypoints mirrored back first. Input, output
    name and model name stay the same."""
    single = keras.Model(model.input, model.output, name=f"{model.name}_single")
    faces = face_input(FACE_SIZE)
    on_mirror = single(MirrorFaces(name="mirror")(faces))
    if model.output_names[0] == "keypoints":
        on_mirror = MirrorKeypoints(name="mirror_back")(on_mirror)
    averaged = layers.Average(name=model.output_names[0], dtype="float32")(
        [single(faces), on_mirror]
    )
    return keras.Model(faces, averaged, name=model.name)


def build_emotion_model(config: ResNetConfig, head_dropout: float = 0.0) -> keras.Model:
    """96x96x1 face (0..255) -> probabilities of the 5 emotions; with `head_dropout`, a second
    dropout of the pooled features right before the classifier (after the network's own)."""
    inputs = face_input(FACE_SIZE)
    features = resnet_features(inputs, config)
    if head_dropout:
        features = layers.Dropout(head_dropout, name="head_dropout")(features)
    probabilities = layers.Dense(
        len(EMOTIONS), activation="softmax", name="emotion", dtype="float32"
    )(features)
    return keras.Model(inputs, probabilities, name="emotion")


@keras.saving.register_keras_serializable(package="emotion_ai")
def masked_keypoint_loss(y_true, y_pred):
    """Mean squared error over the keypoints present (NaN = missing), in half-face units."""
    present = ops.logical_not(ops.isnan(y_true))
    error = ops.where(present, (y_true - y_pred) / HALF_FACE, 0.0)
    count = ops.maximum(ops.sum(ops.cast(present, "float32"), axis=-1), 1.0)
    return ops.sum(ops.square(error), axis=-1) / count


@keras.saving.register_keras_serializable(package="emotion_ai")
def masked_rmse_px(y_true, y_pred):
    """Root mean squared keypoint error in pixels over the keypoints present."""
    return ops.sqrt(masked_keypoint_loss(y_true, y_pred)) * HALF_FACE
