"""The pre-promotion infrastructure check: a candidate is loaded by the serving code in a process of
its own and must answer its warm-up requests as the trained model does, within a latency budget;
one that answers NaN or too slowly is never published or promoted, and the reason is on its version.
("Too slowly" is a sound model against a budget of 10 µs, which no request meets.)
"""

from __future__ import annotations

import keras
import mlflow
import numpy as np
import pytest
from tiny_networks import TINY

from emotion_ai.modeling.logged_models import log_keras_model
from emotion_ai.modeling.networks import build_emotion_model
from emotion_ai.release import registry
from emotion_ai.release.infra_check import InfraCheckFailed
from emotion_ai.release.model_repository import read_labels, versions
from emotion_ai.release.publishing import INFRA_CHECK_TAG, publish
from emotion_ai.release.warmup import WARMUP_FILE
from emotion_ai.serving.engines import SHIPPED_OPENVINO_DIR
from emotion_ai.settings import EMOTION_MODEL
from emotion_ai.steps.tracking import local_tracking, use_tracking

FACE = np.zeros((1, 96, 96, 1), dtype=np.float32)


class AnswersNaN(keras.layers.Layer):
    def call(self, x):
        return x * float("nan")


def emotion_model_with(layer: keras.layers.Layer) -> keras.Model:
    """A model that keeps the emotion contract (face in, 5 probabilities out), then `layer`."""
    faces = keras.Input((96, 96, 1), name="face")
    pooled = keras.layers.GlobalAveragePooling2D()(faces)
    probabilities = keras.layers.Dense(5, activation="softmax")(pooled)
    return keras.Model(faces, layer(probabilities))


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A registry on SQLite whose champion, version 1, is published; yields (layout, version 2).
    The failing candidates change nothing, so its tests share it."""
    tmp_path = tmp_path_factory.mktemp("registry")
    use_tracking(local_tracking(tmp_path / "state"))
    numbers = []
    for _ in range(2):
        with mlflow.start_run():
            uri = log_keras_model(build_emotion_model(TINY), FACE, EMOTION_MODEL).model_uri
        numbers.append(int(registry.register_version(uri, EMOTION_MODEL, {}).version))
    served = tmp_path / "serving"
    publish(EMOTION_MODEL, numbers[0], served)
    yield served, numbers[1]
    mlflow.set_tracking_uri(None)


def test_a_sound_candidate_passes_and_says_so_on_its_version(champion):
    served, _ = champion
    version = registry.version_by_alias(EMOTION_MODEL, "champion")
    assert version.tags[INFRA_CHECK_TAG] == "passed"
    assert version.tags["infra_check_engine"] in ("openvino", "tensorflow")
    assert float(version.tags["infra_check_slowest_ms"]) > 0
    export = served / EMOTION_MODEL / str(version.version)
    assert (export / WARMUP_FILE).is_file()
    assert version.tags["infra_check_engine"] != "openvino" or (
        (export / SHIPPED_OPENVINO_DIR / "model.xml").is_file()
    ), "the OpenVINO model the check converted ships in the export"


@pytest.mark.parametrize(
    "candidate, budget_ms, words",
    [
        (lambda: emotion_model_with(AnswersNaN()), 1000.0, "5 non-finite values"),
        (lambda: emotion_model_with(keras.layers.Identity()), 0.01, "over the budget of 0.01 ms"),
    ],
    ids=["answers-nan", "too-slow"],
)
def test_a_failing_candidate_is_not_promoted_and_the_reason_is_on_its_version(
    champion, candidate, budget_ms, words
):
    served, challenger = champion
    with pytest.raises(InfraCheckFailed, match=words):
        publish(EMOTION_MODEL, challenger, served, model=candidate(), latency_budget_ms=budget_ms)
    assert int(registry.version_by_alias(EMOTION_MODEL, "champion").version) == 1
    assert versions(served, EMOTION_MODEL) == [1] and read_labels(served, EMOTION_MODEL) == {
        "stable": 1
    }
    assert not [p for p in (served / EMOTION_MODEL).iterdir() if p.name.startswith(".")]
    tags = mlflow.MlflowClient().get_model_version(EMOTION_MODEL, str(challenger)).tags
    assert tags[INFRA_CHECK_TAG] == "failed" and words in tags["infra_check_reason"]
