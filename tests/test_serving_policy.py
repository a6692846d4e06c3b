"""Which versions a model keeps loaded, and which one a request gets: newest N, labels, refused
versions."""

from __future__ import annotations

import asyncio

import pytest
from tiny_networks import TINY

from emotion_ai.modeling.networks import build_emotion_model, build_keypoint_model
from emotion_ai.release.model_repository import (
    LABELS_FILE,
    export_saved_model,
    set_label,
)
from emotion_ai.serving.face_requests import faces_from_request
from emotion_ai.serving.servables import FaceServable, SavedModelServable
from emotion_ai.settings import (
    EMOTION_MODEL,
    KEYPOINT_MODEL,
    RequestLimits,
    ServingOptions,
)

FACES = faces_from_request({"instances": [[0] * 9216, [255] * 9216]}, "face", RequestLimits())


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    for version in (1, 2, 3):
        export_saved_model(build_emotion_model(TINY), base, EMOTION_MODEL, version)
    export_saved_model(build_keypoint_model(TINY), base, KEYPOINT_MODEL, 1)
    return base


def _versions(servable: SavedModelServable, *wanted: str) -> list[str | None]:
    return [getattr(servable.find(version), "version", None) for version in wanted]


def test_the_newest_versions_and_labelled_ones_stay_loaded_and_stable_answers_by_default(base):
    servable = SavedModelServable(EMOTION_MODEL, base, ServingOptions(num_versions=2))
    servable.load()
    assert servable.versions() == ["3", "2"] and _versions(servable, "1", "2", "3") == [None, 2, 3]
    set_label(base, EMOTION_MODEL, "stable", 1)
    set_label(base, EMOTION_MODEL, "canary", 3)
    assert servable.refresh()
    assert servable.version == 1 and servable.versions() == ["1", "3", "2"]
    assert servable.find(label="canary").version == 3 and servable.find(label="shadow") is None
    answer = asyncio.run(servable.answer(FACES, servable.find(label="stable")))
    assert len(answer["predictions"]) == 2 and len(answer["predictions"][0]) == 5
    set_label(base, EMOTION_MODEL, "stable", None)
    set_label(base, EMOTION_MODEL, "canary", None)
    assert servable.refresh() and servable.version == 3
    assert _versions(servable, "1") == [None], "an unlabelled old version is unloaded"


def test_a_refused_version_leaves_the_next_newest_serving_and_a_broken_labels_file_changes_nothing(
    base,
):
    servable = SavedModelServable(EMOTION_MODEL, base)
    servable.load()
    corrupt = base / EMOTION_MODEL / "4"
    corrupt.mkdir()
    (corrupt / "saved_model.pb").write_bytes(b"not a saved model")
    try:
        assert not servable.refresh() and servable.version == 3
        set_label(base, EMOTION_MODEL, "stable", 2)
        assert servable.refresh() and servable.version == 2
        (base / EMOTION_MODEL / LABELS_FILE).write_text('{"stable": "two"}')
        assert not servable.refresh() and servable.version == 2
    finally:
        (base / EMOTION_MODEL / LABELS_FILE).unlink()
        (corrupt / "saved_model.pb").unlink()
        corrupt.rmdir()


def test_the_combined_model_names_its_versions_keypoints_dot_emotion(base):
    keypoints, emotion = (
        SavedModelServable(name, base, ServingOptions(num_versions=3))
        for name in (KEYPOINT_MODEL, EMOTION_MODEL)
    )
    keypoints.load()
    emotion.load()
    combined = FaceServable(keypoints, emotion)
    assert combined.version == 1000003 and combined.find("1000002").version == 1000002
    assert combined.find("1.2") is None
    assert not combined.stale() and combined.refreshed_at > 0, "fresh as its parts"
    assert combined.find("2.2") is None and combined.find("3") is None
    assert combined.find(label="canary") is None, "a label must be set on both models"
    answer = asyncio.run(combined.answer(FACES, combined.find("1000001")))
    assert set(answer["predictions"][0]) >= {"keypoints", "emotion", "probabilities"}


def test_a_version_that_breaks_its_models_contract_is_refused_and_retried_once_it_changes(tmp_path):
    export_saved_model(build_emotion_model(TINY), tmp_path, EMOTION_MODEL, 1)
    export_saved_model(build_keypoint_model(TINY), tmp_path, EMOTION_MODEL, 2)
    servable = SavedModelServable(EMOTION_MODEL, tmp_path)
    servable.load()
    assert servable.versions() == ["1"], "a keypoint model in the emotion folder must not serve"
    answer = asyncio.run(servable.answer(FACES, servable.find()))
    assert len(answer["predictions"][0]) == 5
    assert not servable.refresh(), "a refused version is not retried while it is unchanged"
    empty = tmp_path / EMOTION_MODEL / "3"
    empty.mkdir()
    assert not servable.refresh() and servable.version == 1, "a version still empty is refused"
    empty.rmdir()
    export_saved_model(build_emotion_model(TINY), tmp_path, EMOTION_MODEL, 3)
    assert servable.refresh() and servable.version == 3, "once written, it is tried again"
