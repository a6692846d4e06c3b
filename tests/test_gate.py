"""The promotion gate: floors for the first model, a paired test against a champion."""

import json

import numpy as np
import pytest
from pydantic import ValidationError

from emotion_ai.modeling.metrics import keypoint_metrics, worst_images
from emotion_ai.release.decisions import read_decisions, write_decisions
from emotion_ai.release.gate import gate_emotion, gate_keypoints
from emotion_ai.settings import GateSettings

GATE = GateSettings(max_keypoint_rmse_px=5.0, min_emotion_accuracy=0.5)


def _squared(per_image_rmse: np.ndarray) -> np.ndarray:
    """(n, 30) squared errors of faces whose every coordinate is off by that face's RMSE."""
    return np.repeat(np.asarray(per_image_rmse)[:, None] ** 2, 30, axis=1)


def test_first_model_is_promoted_when_it_clears_the_floor():
    assert gate_keypoints(_squared(np.full(50, 2.0)), None, GATE, "k").promote
    assert gate_emotion(np.array([True] * 40 + [False] * 10), None, GATE, "e").promote


def test_first_model_below_the_floor_is_not_promoted():
    decision = gate_keypoints(_squared(np.full(50, 9.0)), None, GATE, "k")
    assert not decision.promote and "floor" in decision.reason
    assert not gate_emotion(np.array([True] * 10 + [False] * 40), None, GATE, "e").promote


def test_worse_challenger_keeps_the_champion():
    rng = np.random.default_rng(0)
    champion = rng.uniform(1, 2, 200)
    assert not gate_keypoints(_squared(champion + 0.5), _squared(champion), GATE, "k").promote
    champion_correct = rng.random(200) < 0.8
    assert not gate_emotion(
        champion_correct & (rng.random(200) < 0.8), champion_correct, GATE, "e"
    ).promote


def test_insignificant_improvement_is_not_promoted():
    rng = np.random.default_rng(1)
    champion = rng.uniform(1, 3, 200)
    noisy = champion - 0.01 + rng.normal(0, 0.5, 200)
    decision = gate_keypoints(_squared(np.abs(noisy)), _squared(champion), GATE, "k")
    assert not decision.promote and decision.interval[0] <= 0 <= decision.interval[1] + 0.1
    champion_correct = np.array([True] * 150 + [False] * 50)
    challenger_correct = champion_correct.copy()
    challenger_correct[150:153] = True
    decision = gate_emotion(challenger_correct, champion_correct, GATE, "e")
    assert not decision.promote and decision.p_value > 0.05


def test_clear_improvement_is_promoted_with_its_evidence():
    rng = np.random.default_rng(2)
    champion = rng.uniform(2, 3, 200)
    challenger = champion - 1.0 + rng.normal(0, 0.1, 200)
    decision = gate_keypoints(_squared(challenger), _squared(champion), GATE, "k")
    assert decision.promote and decision.interval[0] > 0.8
    champion_correct = np.array([True] * 120 + [False] * 80)
    challenger_correct = np.array([True] * 190 + [False] * 10)
    decision = gate_emotion(challenger_correct, champion_correct, GATE, "e")
    assert decision.promote and decision.p_value < 1e-6


def test_keypoint_metrics_ignore_missing_points():
    truth = np.array([[10.0, 10.0] + [np.nan] * 28])
    predicted = np.array([[13.0, 14.0] + [0.0] * 28])
    metrics = keypoint_metrics(predicted, truth)
    np.testing.assert_allclose(metrics["rmse_px"], np.sqrt((9 + 16) / 2))
    assert metrics["within_2px"] == 0.0
    np.testing.assert_allclose(metrics["rmse_px/left_eye_center"], np.sqrt(25 / 2))
    close = keypoint_metrics(np.array([[11.0, 10.0] + [0.0] * 28]), truth)
    assert close["within_2px"] == 1.0, "missing keypoints are no misses"


def test_a_few_faces_far_off_move_the_rmse_but_not_the_median_image():
    truth = np.full((9, 30), 40.0)
    predicted = truth + 1.0
    predicted[0] += 30.0  # one face whose label (or answer) is far off
    metrics = keypoint_metrics(predicted, truth)
    assert metrics["rmse_px"] > 10
    np.testing.assert_allclose(metrics["median_image_rmse_px"], 1.0)


def test_worst_images_come_worst_first_and_images_without_keypoints_last():
    errors = np.array([2.0, np.nan, 9.0, 0.5, 4.0])
    assert worst_images(errors, 3).tolist() == [2, 4, 0]
    assert worst_images(errors, 5).tolist()[-1] == 1


def test_the_gate_scores_keypoints_with_the_same_rmse_as_the_evaluate_run():
    """Faces with fewer keypoints (as in Kaggle's file) weigh less in `rmse_px`: the gate's score
    is that figure, not an average over faces."""
    rng = np.random.default_rng(3)
    truth = rng.uniform(20, 70, (40, 30))
    truth[:30, 8:] = np.nan
    predicted = (
        truth + rng.normal(0, 1.0, truth.shape) * np.where(np.arange(40) < 30, 3, 1)[:, None]
    )
    decision = gate_keypoints((predicted - truth) ** 2, None, GATE, "k")
    assert decision.challenger_score == keypoint_metrics(predicted, truth)["rmse_px"]
    low, high = decision.score_interval
    assert low < decision.challenger_score < high


def test_a_rejected_emotion_challenger_stays_rejected_through_the_decisions_file(tmp_path):
    """McNemar's p is a NumPy float, so the comparison gives a NumPy bool: the register step reads
    the decision back from the evaluate step's file, and must read `False`, not the text "False"."""
    champion_correct = np.array([True] * 150 + [False] * 50)
    challenger_correct = champion_correct.copy()
    challenger_correct[[0, 1, 150, 151, 152]] = [False, False, True, True, True]
    decision = gate_emotion(challenger_correct, champion_correct, GATE, "e")
    assert decision.p_value > GATE.significance
    path = tmp_path / "decisions.json"
    written = {**decision.as_dict(), "metrics": {"accuracy": 0.755}, "data": {"rows": 200}}
    (read_back,) = write_decisions(path, [written]).values()
    assert read_back["promote"] is False and read_decisions(path)["e"]["promote"] is False


def test_the_decisions_file_refuses_values_of_the_wrong_type(tmp_path):
    decision = {"model": "e", "promote": np.False_, "reason": "r", "test": "t"}
    with pytest.raises(ValidationError, match="promote"):
        write_decisions(tmp_path / "d.json", [{**decision, "metrics": {}, "data": {}}])
    (tmp_path / "d.json").write_text(
        json.dumps({"e": {**decision, "promote": "False", "metrics": {}, "data": {}}})
    )
    with pytest.raises(ValidationError, match="promote"):
        read_decisions(tmp_path / "d.json")
