"""Inference engines: OpenVINO serves a SavedModel where it agrees with TensorFlow, and the server
falls back to TensorFlow, saying why, where it does not load or does not agree."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tiny_networks import TINY

from emotion_ai.modeling.networks import build_keypoint_model
from emotion_ai.release.model_repository import export_saved_model
from emotion_ai.release.warmup import WARMUP_BATCH_SIZES, read_warmup_faces
from emotion_ai.serving import engines
from emotion_ai.serving.engines import (
    AGREEMENT_TOLERANCE,
    SHIPPED_OPENVINO_DIR,
    OpenVinoEngine,
    TensorFlowEngine,
    choose_engine,
    ship_openvino,
)
from emotion_ai.serving.versions import load_version
from emotion_ai.settings import KEYPOINT_MODEL, ServingOptions


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    return Path(export_saved_model(build_keypoint_model(TINY), base, KEYPOINT_MODEL, 1))


def test_every_export_carries_tf_serving_warm_up_requests(export):
    batches = read_warmup_faces(export)
    assert [len(faces) for faces in batches] == list(WARMUP_BATCH_SIZES)
    assert all(faces.shape[1:] == (96, 96, 1) and faces.dtype == np.float32 for faces in batches)
    assert 0 <= batches[-1].min() < batches[-1].max() <= 255, "faces, not blank images"


def test_openvino_is_chosen_where_it_agrees_with_tensorflow(export):
    faces = read_warmup_faces(export)
    choice = choose_engine("openvino", export, faces)
    assert choice.engine.name == "openvino" and "agrees with TensorFlow" in choice.reason
    reference = TensorFlowEngine.load(export).infer(faces[-1])
    np.testing.assert_allclose(
        choice.engine.infer(faces[-1]),
        reference,
        atol=AGREEMENT_TOLERANCE,
        rtol=AGREEMENT_TOLERANCE,
    )


def test_openvino_serves_the_heatmap_keypoint_head_as_tensorflow_does(tmp_path):
    export = export_saved_model(build_keypoint_model(TINY, head="heatmap"), tmp_path, "kp", 1)
    choice = choose_engine("openvino", Path(export), read_warmup_faces(Path(export)))
    assert choice.engine.name == "openvino" and "agrees with TensorFlow" in choice.reason


def test_tensorflow_serves_where_openvino_does_not_load(export, tmp_path, monkeypatch):
    def convert_elsewhere(saved_model_dir):
        return OpenVinoEngine.converted.__func__(OpenVinoEngine, tmp_path)

    monkeypatch.setattr(OpenVinoEngine, "converted", convert_elsewhere)
    root = logging.getLogger()
    before = (root.level, list(root.filters), list(root.handlers))
    choice = choose_engine("openvino", export, read_warmup_faces(export))
    assert choice.engine.name == "tensorflow" and "OpenVINO could not load it" in choice.reason
    after = (root.level, list(root.filters), list(root.handlers))
    assert after == before, "a failed conversion leaves the root logger as it found it"


def test_tensorflow_serves_where_openvino_disagrees(export, monkeypatch):
    class Disagrees(OpenVinoEngine):
        def infer(self, faces):
            return super().infer(faces) + 0.01

    monkeypatch.setattr(engines, "OpenVinoEngine", Disagrees)
    loaded = load_version(KEYPOINT_MODEL, 1, export, ServingOptions(engine="openvino"))
    assert loaded.engine.name == "tensorflow"


def _shipped_export(export, tmp_path) -> Path:
    """A copy of `export` with the OpenVINO model and agreement the pre-promotion check ships."""
    shipped = Path(shutil.copytree(export, tmp_path / "1"))
    faces = read_warmup_faces(shipped)
    choice = choose_engine("openvino", shipped, faces)
    ship_openvino(shipped, choice.engine, choice.agreement)
    return shipped


def test_a_shipped_openvino_model_serves_without_tensorflow_loading_the_export(
    export, tmp_path, monkeypatch
):
    shipped = _shipped_export(export, tmp_path)

    def no_tensorflow(path):
        raise AssertionError(f"TensorFlow loaded {path}")

    monkeypatch.setattr(tf.saved_model, "load", no_tensorflow)
    loaded = load_version(KEYPOINT_MODEL, 1, shipped)
    assert loaded.engine.name == "openvino" and loaded.choice.reason.startswith("shipped")
    faces = read_warmup_faces(shipped)[-1]
    monkeypatch.undo()
    np.testing.assert_allclose(
        loaded.infer_now(faces),
        TensorFlowEngine.load(export).infer(faces),
        atol=AGREEMENT_TOLERANCE,
        rtol=AGREEMENT_TOLERANCE,
    )
    assert loaded.signature() == load_version(KEYPOINT_MODEL, 1, export).signature()


def test_a_shipped_openvino_model_that_disagrees_with_its_answers_is_converted_again(
    export, tmp_path
):
    shipped = _shipped_export(export, tmp_path)
    agreement = shipped / SHIPPED_OPENVINO_DIR / "agreement.npz"
    with np.load(agreement) as stored:
        changed = {name: stored[name] + name.startswith("answers") for name in stored.files}
    np.savez(agreement, **changed)
    loaded = load_version(KEYPOINT_MODEL, 1, shipped)
    assert loaded.engine.name == "openvino" and "agrees with TensorFlow within" in (
        loaded.choice.reason
    )


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="unknown engine 'onnx'"):
        ServingOptions(engine="onnx")


@pytest.mark.parametrize("warmup", [True, False])
def test_a_version_replays_its_warm_up_requests_before_it_serves(export, monkeypatch, warmup):
    sizes = []

    class Recording(TensorFlowEngine):
        def infer(self, faces):
            sizes.append(len(faces))
            return super().infer(faces)

    monkeypatch.setattr(engines, "TensorFlowEngine", Recording)
    load_version(KEYPOINT_MODEL, 1, export, ServingOptions(engine="tensorflow", warmup=warmup))
    assert sizes == (list(WARMUP_BATCH_SIZES) if warmup else [])
