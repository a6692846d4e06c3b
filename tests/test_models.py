import subprocess
import sys

import keras
import numpy as np
import pytest
from tiny_networks import SMALL as TINY

from emotion_ai.modeling.blocks import convolution_block, identity_block
from emotion_ai.modeling.networks import (
    SpatialSoftArgmax,
    build_emotion_model,
    build_keypoint_model,
    masked_keypoint_loss,
)
from emotion_ai.settings import ResNetConfig


def test_convolution_block_projects_and_identity_block_keeps_shape():
    inputs = keras.Input((16, 16, 3))
    down = convolution_block(inputs, 8, strides=2, name="c")
    same = identity_block(down, 8, name="i")
    assert tuple(down.shape) == (None, 8, 8, 8) and tuple(same.shape) == (None, 8, 8, 8)


def test_keypoint_model_starts_at_the_mean_face_in_pixels():
    mean = np.linspace(20, 70, 30)
    model = build_keypoint_model(TINY, mean)
    output = model.predict(np.full((2, 96, 96, 1), 128.0), verbose=0)
    assert output.shape == (2, 30)
    np.testing.assert_allclose(output, np.stack([mean, mean]), atol=1e-3)


def test_soft_argmax_finds_each_heatmaps_peak_in_half_face_units():
    """Cell centres of a 4x4 grid sit at -0.75, -0.25, 0.25, 0.75 of the half face; x, y per
    map, maps in order."""
    logits = np.full((2, 4, 4, 2), -50.0, np.float32)
    logits[0, 0, 3, 0] = 50.0  # first map: top row, right column
    logits[0, 2, 1, 1] = 50.0  # second map: third row, second column
    logits[1] = 0.0  # flat maps: the grid's middle
    points = keras.ops.convert_to_numpy(SpatialSoftArgmax()(logits))
    np.testing.assert_allclose(points, [[0.75, -0.75, -0.25, 0.25], [0, 0, 0, 0]], atol=1e-5)


@pytest.mark.parametrize(
    "network, grid",
    [
        (TINY, 24),  # stages at 24x24 and 12x12 (48x48 input, a strided stem): onto the first
        (ResNetConfig(width=16, stages=1, depth=0), 24),  # its only stage
        (ResNetConfig(width=16, stages=4, depth=0, input_pool=4), 3),  # 12, 6, 3, 2: odd sizes
    ],
)
def test_the_heatmap_head_maps_keypoints_on_the_stage_before_the_last(network, grid):
    model = build_keypoint_model(network, head="heatmap")
    assert tuple(model.get_layer("heatmaps").output.shape) == (None, grid, grid, 15)
    answer = model.predict(np.full((2, 96, 96, 1), 128.0), verbose=0)
    assert answer.shape == (2, 30) and ((answer >= 0) & (answer <= 96)).all()


def test_emotion_model_outputs_five_probabilities():
    probabilities = build_emotion_model(TINY).predict(np.zeros((3, 96, 96, 1)), verbose=0)
    assert probabilities.shape == (3, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_masked_loss_ignores_missing_keypoints():
    truth = np.array([[48.0, 48.0, np.nan, np.nan]], dtype=np.float32)
    close = np.array([[48.0, 48.0, 0.0, 0.0]], dtype=np.float32)
    far = np.array([[96.0, 48.0, 0.0, 0.0]], dtype=np.float32)
    assert float(masked_keypoint_loss(truth, close)[0]) == 0.0
    np.testing.assert_allclose(float(masked_keypoint_loss(truth, far)[0]), 0.5)


def test_saved_model_reloads_in_safe_mode(tmp_path):
    from emotion_ai.modeling.persistence import load_model, save_model

    model = build_keypoint_model(TINY)
    save_model(model, tmp_path)
    reloaded = load_model(tmp_path)
    faces = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 1)).astype(np.float32)
    np.testing.assert_allclose(
        reloaded.predict(faces, verbose=0), model.predict(faces, verbose=0), rtol=1e-5
    )


@pytest.mark.parametrize(
    "loader", ["emotion_ai.modeling.persistence", "emotion_ai.release.registry"]
)
@pytest.mark.parametrize("head", ["pooled", "heatmap"])
def test_a_flip_averaged_model_loads_where_only_a_loader_is_imported(tmp_path, loader, head):
    """The register step and `emotion-ai promote` import a loader, not the networks: the loader
    must bring our layers (MirrorFaces, SpatialSoftArgmax) into Keras' registry, or
    `--flip-test-time` and heatmap models fail to load there."""
    from emotion_ai.modeling.networks import with_flip_averaging
    from emotion_ai.modeling.persistence import MODEL_FILE, save_model

    save_model(with_flip_averaging(build_keypoint_model(TINY, head=head)), tmp_path)
    load = (
        f"import {loader}, keras; "
        f"keras.saving.load_model({str(tmp_path / MODEL_FILE)!r}, compile=False, safe_mode=True)"
    )
    result = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_too_narrow_a_network_is_refused_with_the_reason(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    with pytest.raises(ValueError, match="oneDNN"):
        ResNetConfig(width=4)
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert ResNetConfig(width=4).stage_filters == (4, 8, 16)


def test_mixed_precision_where_the_hardware_computes_it_and_outputs_stay_float32():
    import keras

    from emotion_ai.modeling.networks import (
        build_emotion_model,
        build_keypoint_model,
        precision_policy,
    )

    gpu = ["/physical_device:GPU:0"]
    assert precision_policy("auto", [], cpu_bfloat16=False) == "float32"
    assert precision_policy("auto", [], cpu_bfloat16=True) == "mixed_bfloat16"
    assert precision_policy("auto", gpu, cpu_bfloat16=True) == "mixed_float16"
    assert precision_policy("float32", gpu, cpu_bfloat16=True) == "float32"
    for policy, dtype in (("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")):
        keras.mixed_precision.set_global_policy(policy)
        try:
            for model in (
                build_keypoint_model(TINY),
                build_keypoint_model(TINY, head="heatmap"),
                build_emotion_model(TINY),
            ):
                assert any(layer.compute_dtype == dtype for layer in model.layers)
                assert model.output.dtype == "float32"
        finally:
            keras.mixed_precision.set_global_policy("float32")


def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path):
    from emotion_ai.modeling.networks import cpu_computes_bfloat16

    (tmp_path / "with").write_text("flags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\n")
    (tmp_path / "without").write_text("flags\t\t: fpu sse2 avx2\n")
    assert cpu_computes_bfloat16(tmp_path / "with")
    assert not cpu_computes_bfloat16(tmp_path / "without")
    assert not cpu_computes_bfloat16(tmp_path / "missing")


def test_input_pooling_computes_at_half_size_and_still_takes_96x96_faces():
    from dataclasses import replace

    from emotion_ai.modeling.networks import build_emotion_model

    model = build_emotion_model(replace(TINY, input_pool=2))
    assert model.input.shape[1:] == (96, 96, 1)
    assert model.get_layer("input_pool").output.shape[1:3] == (48, 48)
    with pytest.raises(ValueError, match="input_pool"):
        replace(TINY, input_pool=5)


def test_balanced_class_weights_favour_rare_classes_but_are_capped():
    from emotion_ai.modeling.training import MAX_CLASS_WEIGHT, balanced_class_weights

    labels = np.array([0] * 100 + [1] + [2] * 50 + [3] * 200 + [4] * 49)
    weights = balanced_class_weights(labels)
    assert weights[1] == MAX_CLASS_WEIGHT and weights[4] > weights[0] > weights[3]
    assert weights[3] == pytest.approx(len(labels) / (5 * 200))


def test_class_weights_to_a_power_lean_back_toward_the_faces_frequencies():
    from emotion_ai.modeling.training import balanced_class_weights

    labels = np.array([0] * 100 + [2] * 50 + [3] * 200)
    balanced, halfway = balanced_class_weights(labels), balanced_class_weights(labels, 0.5)
    assert halfway[3] == pytest.approx(balanced[3] ** 0.5) and balanced[3] < halfway[3] < 1
    assert halfway[2] == pytest.approx(balanced[2] ** 0.5) and 1 < halfway[2] < balanced[2]
    assert set(balanced_class_weights(labels, 0.0).values()) == {0.0, 1.0}, "0: unweighted"
