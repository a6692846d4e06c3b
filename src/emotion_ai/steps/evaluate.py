"""The evaluate step: score the challenger and the registry's champion on the same test split, log
the figures and plots, and decide each model's promotion through the gate (the decisions go to the
register step as a typed file)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import numpy as np

from emotion_ai.data.datasets import TEST, FaceDataset, load_dataset
from emotion_ai.faces import EMOTIONS
from emotion_ai.logs import log_headline
from emotion_ai.modeling import metrics, plots
from emotion_ai.modeling.persistence import load_model
from emotion_ai.modeling.training import predict
from emotion_ai.release import registry
from emotion_ai.release.decisions import write_decisions
from emotion_ai.release.gate import gate_emotion, gate_keypoints
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL, GateSettings
from emotion_ai.steps.data_inputs import log_data_inputs
from emotion_ai.steps.io import DATASET_FILE, DECISIONS_FILE, LINEAGE_FILE
from emotion_ai.steps.summary import METRIC_GROUP, headline_figure, verdict
from emotion_ai.steps.tracking import StepContext, step_run
from emotion_ai.storage import read_json

logger = logging.getLogger(__name__)


TEST_PREFIX = "test"
CHAMPION_PREFIX = "champion/test"


def _log_test_metrics(
    kind: str, prefix: str, scores: dict[str, float], model_id: str | None = None, dataset=None
) -> None:
    """Logs `<kind>/<prefix>/<metric>` to the evaluate run (and, with `model_id`, to that logged
    model too, against the test data set)."""
    named = {f"{kind}/{prefix}/{name}": value for name, value in scores.items()}
    mlflow.log_metrics(named, model_id=model_id, dataset=dataset)


@dataclass(frozen=True)
class _TestSplitScores:
    """The challenger's and the registry champion's predictions on the test split (no champion
    before the first promotion), and the challenger's scores."""

    dataset: FaceDataset
    truth: np.ndarray
    challenger: np.ndarray
    champion: np.ndarray | None
    scores: dict[str, float]


def _score_test_split(
    name: str, data_dir: Path, model_dir: Path, score: Callable[[np.ndarray, np.ndarray], dict]
) -> _TestSplitScores:
    """Predicts the test split with the challenger and the champion of `name` and logs each one's
    `score`: the challenger's also to its logged model, against the test data set."""
    dataset = load_dataset(data_dir / DATASET_FILE)
    test = log_data_inputs(dataset, (TEST,))[TEST]
    images, truth = dataset.part(TEST)
    group = METRIC_GROUP[name]
    challenger = predict(load_model(model_dir), images)
    scores = score(challenger, truth)
    model_id = read_json(model_dir / LINEAGE_FILE).get("model_id")
    _log_test_metrics(group, TEST_PREFIX, scores, model_id, test)
    champion_model = registry.load_champion(name)
    champion = None
    if champion_model is not None:
        champion = predict(champion_model, images)
        _log_test_metrics(group, CHAMPION_PREFIX, score(champion, truth))
    return _TestSplitScores(dataset, truth, challenger, champion, scores)


def _log_worst_keypoint_faces(test: _TestSplitScores, challenger_squared: np.ndarray) -> None:
    """The challenger's worst test faces, each titled with its error."""
    figure = plots.worst_keypoint_faces(
        test.dataset.part(TEST)[0],
        test.truth,
        test.challenger,
        metrics.per_image_rmse(challenger_squared),
    )
    mlflow.log_figure(figure, "plots/keypoint_worst_faces.png")


def _evaluate_keypoints(data_dir: Path, model_dir: Path, gate: GateSettings) -> dict:
    test = _score_test_split(KEYPOINT_MODEL, data_dir, model_dir, metrics.keypoint_metrics)
    mlflow.log_figure(
        plots.keypoint_errors_figure(test.scores, "challenger, test split"),
        "plots/keypoint_errors.png",
    )
    challenger_squared = metrics.keypoint_squared_errors(test.challenger, test.truth)
    _log_worst_keypoint_faces(test, challenger_squared)
    champion_squared = (
        None
        if test.champion is None
        else metrics.keypoint_squared_errors(test.champion, test.truth)
    )
    decision = gate_keypoints(challenger_squared, champion_squared, gate, KEYPOINT_MODEL)
    return {**decision.as_dict(), "metrics": test.scores, "data": test.dataset.metadata}


def _evaluate_emotion(data_dir: Path, model_dir: Path, gate: GateSettings) -> dict:
    test = _score_test_split(EMOTION_MODEL, data_dir, model_dir, metrics.emotion_metrics)
    matrix = metrics.emotion_confusion(test.challenger, test.truth)
    mlflow.log_figure(
        plots.confusion_matrix_figure(matrix, "challenger, test split"),
        "plots/confusion_matrix.png",
    )
    mlflow.log_dict({"labels": list(EMOTIONS), "matrix": matrix.tolist()}, "confusion_matrix.json")
    champion_correct = None if test.champion is None else test.champion.argmax(axis=1) == test.truth
    decision = gate_emotion(
        test.challenger.argmax(axis=1) == test.truth, champion_correct, gate, EMOTION_MODEL
    )
    return {
        **decision.as_dict(),
        "metrics": test.scores,
        "confusion_matrix": matrix.tolist(),
        "data": test.dataset.metadata,
    }


def evaluate(
    keypoints_data: Path,
    emotion_data: Path,
    keypoint_model: Path,
    emotion_model: Path,
    report_dir: Path,
    context: StepContext,
    gate: GateSettings = GateSettings(),
) -> dict:
    """Scores challenger and champion on the same test split and decides on promotion."""
    with step_run(context.tracking, context.parent_run_id, "evaluate"):
        mlflow.log_params({f"gate/{k}": v for k, v in asdict(gate).items()})
        decisions = [
            _evaluate_keypoints(keypoints_data, keypoint_model, gate),
            _evaluate_emotion(emotion_data, emotion_model, gate),
        ]
        for decision in decisions:
            mlflow.set_tag(f"decision/{decision['model']}", verdict(decision))
            mlflow.set_tag(f"decision/{decision['model']}/reason", decision["reason"])
        report = write_decisions(report_dir / DECISIONS_FILE, decisions)
        mlflow.log_dict(report, DECISIONS_FILE)
    log_headline(
        logger,
        "; ".join(
            f"{headline_figure(d['model'], d['challenger_score'])}: {verdict(d)}" for d in decisions
        ),
    )
    return report
