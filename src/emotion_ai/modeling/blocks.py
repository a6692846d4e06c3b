"""Residual blocks: small functions that take a tensor and return a tensor."""

from __future__ import annotations

import keras
from keras import layers

from emotion_ai.settings import ResNetConfig

KERNEL_SIZE = 3
BN_MOMENTUM = 0.9
"""Faster-adapting batch-norm statistics than Keras' 0.99, for short CPU trainings."""


def conv_bn(x, filters: int, kernel_size: int, strides: int, name: str):
    """Convolution then batch normalisation (no activation)."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)


def conv_bn_relu(x, filters: int, kernel_size: int, strides: int, name: str):
    return layers.ReLU(name=f"{name}_relu")(conv_bn(x, filters, kernel_size, strides, name))


def convolution_block(x, filters: int, strides: int, name: str):
    """Residual block that changes size: conv-BN-ReLU, conv-BN, plus a strided 1x1 projection
    shortcut."""
    shortcut = conv_bn(x, filters, 1, strides, f"{name}_shortcut")
    x = conv_bn_relu(x, filters, KERNEL_SIZE, strides, f"{name}_a")
    x = conv_bn(x, filters, KERNEL_SIZE, 1, f"{name}_b")
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, shortcut]))


def identity_block(x, filters: int, name: str):
    """Residual block that keeps size: conv-BN-ReLU, conv-BN, plus the input itself."""
    shortcut = x
    x = conv_bn_relu(x, filters, KERNEL_SIZE, 1, f"{name}_a")
    x = conv_bn(x, filters, KERNEL_SIZE, 1, f"{name}_b")
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, shortcut]))


def resnet_stage(x, filters: int, identity_blocks: int, strides: int, name: str):
    """One convolution block followed by `identity_blocks` identity blocks."""
    x = convolution_block(x, filters, strides, f"{name}_conv_block")
    for index in range(identity_blocks):
        x = identity_block(x, filters, f"{name}_identity_{index + 1}")
    return x


def resnet_stage_maps(inputs, config: ResNetConfig) -> list:
    """Pixels 0..255 in, each stage's feature map out (the first the largest)."""
    x = layers.Rescaling(1 / 255, name="pixels_to_unit")(inputs)
    if config.input_pool > 1:
        x = layers.AveragePooling2D(config.input_pool, name="input_pool")(x)
    x = conv_bn_relu(x, config.stem_filters, 5, 2, "stem")
    maps = []
    for index, filters in enumerate(config.stage_filters):
        strides = 1 if index == 0 else 2
        x = resnet_stage(x, filters, config.depth, strides, f"stage{index + 1}")
        maps.append(x)
    return maps


def resnet_features(inputs, config: ResNetConfig):
    """Pixels 0..255 in, a pooled feature vector out."""
    x = layers.GlobalAveragePooling2D(name="pool")(resnet_stage_maps(inputs, config)[-1])
    return layers.Dropout(config.feature_dropout, name="feature_dropout")(x)


def upsampling_fusion(maps: list, stages: int):
    """The last of `maps` brought back up through the `stages` maps before it: at each, resized to
    that map's grid, joined with it and mixed by a conv-BN-ReLU of its filters (a small feature
    pyramid's top-down path). 0 stages: the last map itself."""
    x = maps[-1]
    for index in range(len(maps) - 2, len(maps) - 2 - stages, -1):
        earlier = maps[index]
        height, width = earlier.shape[1:3]
        upsampled = layers.Resizing(height, width, name=f"up{index + 1}")(x)
        joined = layers.Concatenate(name=f"join{index + 1}")([earlier, upsampled])
        x = conv_bn_relu(joined, earlier.shape[-1], KERNEL_SIZE, 1, f"fuse{index + 1}")
    return x


def face_input(size: int) -> keras.KerasTensor:
    return keras.Input(shape=(size, size, 1), name="face")
