"""TF Serving layout: versions appear whole or not at all."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tiny_networks import TINY

from emotion_ai.modeling.networks import build_emotion_model
from emotion_ai.release.model_repository import (
    export_saved_model,
    prune_versions,
    versions,
)


def test_export_writes_a_servable_numbered_version(tmp_path):
    model = build_emotion_model(TINY)
    path = Path(export_saved_model(model, tmp_path, "emotion", 3))
    assert path == tmp_path / "emotion" / "3" and (path / "saved_model.pb").is_file()
    assert versions(tmp_path, "emotion") == [3]
    loaded = tf.saved_model.load(str(path))
    served = loaded.serve(tf.zeros((1, 96, 96, 1))).numpy()
    np.testing.assert_allclose(
        served, model.predict(np.zeros((1, 96, 96, 1)), verbose=0), rtol=1e-5
    )


def test_a_failed_export_leaves_no_version_behind(tmp_path):
    class Broken:
        def export(self, path, **_):
            (tmp_path / "m").mkdir(exist_ok=True)
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        export_saved_model(Broken(), tmp_path, "m", 1)
    assert versions(tmp_path, "m") == [] and list((tmp_path / "m").iterdir()) == []


def test_prune_keeps_the_newest_and_protected_versions(tmp_path):
    for version in (1, 2, 3, 4):
        (tmp_path / "m" / str(version)).mkdir(parents=True)
    (tmp_path / "m" / ".5.partial-x").mkdir()
    assert prune_versions(tmp_path, "m", keep=2, protected={1}) == [2]
    assert versions(tmp_path, "m") == [1, 3, 4]
