"""Scoring on the held-out test split and the promotion gate (floors + a paired statistical test)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import keras
import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from emotion_ai.config import GateSettings
from emotion_ai.faces import EMOTIONS, KEYPOINT_NAMES
from emotion_ai.input_pipeline import as_model_input

PREDICT_BATCH = 256
WITHIN_PX = 2.0


def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return model.predict(as_model_input(images), batch_size=PREDICT_BATCH, verbose=0)


def keypoint_squared_errors(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(n, 30) squared errors in px², NaN where the keypoint is missing."""
    return (predicted - true) ** 2


def per_image_rmse(squared_errors: np.ndarray) -> np.ndarray:
    """RMSE in px of each image over its present keypoints."""
    return np.sqrt(np.nanmean(squared_errors, axis=1))


def keypoint_metrics(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    squared = keypoint_squared_errors(predicted, true)
    point_distance = np.sqrt(squared[:, 0::2] + squared[:, 1::2])
    metrics = {
        "rmse_px": float(np.sqrt(np.nanmean(squared))),
        "within_2px": float(np.nanmean(point_distance <= WITHIN_PX) if np.isfinite(point_distance).any()
                            else np.nan),
    }
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a keypoint missing in every test image
        per_point = np.sqrt(np.nanmean(squared[:, 0::2] + squared[:, 1::2], axis=0) / 2)
    metrics.update({f"rmse_px.{name}": float(value) for name, value in zip(KEYPOINT_NAMES, per_point)})
    return metrics


def emotion_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    predicted = probabilities.argmax(axis=1)
    classes = list(range(len(EMOTIONS)))
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0)
    metrics = {
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": float(f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)),
    }
    for index, name in enumerate(EMOTIONS):
        metrics[f"precision.{name}"] = float(precision[index])
        metrics[f"recall.{name}"] = float(recall[index])
    return metrics


def emotion_confusion(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return confusion_matrix(labels, probabilities.argmax(axis=1), labels=list(range(len(EMOTIONS))))


@dataclass
class Decision:
    """Whether a challenger is promoted, and the evidence."""

    model: str
    promote: bool
    reason: str
    test: str
    p_value: float | None = None
    interval: tuple[float, float] | None = None
    challenger_score: float | None = None
    champion_score: float | None = None
    score_interval: tuple[float, float] | None = None
    """Bootstrap interval of the challenger's own test score."""

    def as_dict(self) -> dict:
        return asdict(self)


def bootstrap_mean_interval(values: np.ndarray, settings: GateSettings) -> tuple[float, float]:
    """Two-sided (1 - significance) percentile bootstrap interval of the mean of `values`
    (per-image paired differences, errors or 0/1 correctness)."""
    rng = np.random.default_rng(settings.seed)
    samples = rng.integers(0, len(values), size=(settings.bootstrap_samples, len(values)))
    means = values[samples].mean(axis=1)
    tail = 100 * settings.significance / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def gate_keypoints(challenger_errors: np.ndarray, champion_errors: np.ndarray | None,
                   settings: GateSettings, model: str) -> Decision:
    """Promote if RMSE clears the floor and, against a champion, the paired bootstrap interval of
    (champion - challenger) per-image RMSE lies above the minimum improvement."""
    score = float(np.sqrt(np.nanmean(challenger_errors**2)))
    low, high = bootstrap_mean_interval(challenger_errors[np.isfinite(challenger_errors)] ** 2, settings)
    decision = _gate_keypoints(score, challenger_errors, champion_errors, settings, model)
    decision.score_interval = (float(np.sqrt(low)), float(np.sqrt(high)))
    return decision


def _gate_keypoints(score: float, challenger_errors: np.ndarray, champion_errors: np.ndarray | None,
                    settings: GateSettings, model: str) -> Decision:
    if score > settings.max_keypoint_rmse_px:
        return Decision(model, False, f"RMSE {score:.3f} px is above the floor "
                        f"{settings.max_keypoint_rmse_px} px", "floor", challenger_score=score)
    if champion_errors is None:
        return Decision(model, True, "first model: clears the floor", "floor", challenger_score=score)
    champion = float(np.sqrt(np.nanmean(champion_errors**2)))
    present = np.isfinite(challenger_errors) & np.isfinite(champion_errors)
    interval = bootstrap_mean_interval(champion_errors[present] - challenger_errors[present], settings)
    better = interval[0] > settings.min_keypoint_improvement_px
    reason = (f"per-image RMSE improvement {interval[0]:.3f}..{interval[1]:.3f} px "
              f"({100 * (1 - settings.significance):.0f}% paired bootstrap) "
              + ("is above" if better else "does not clear")
              + f" the minimum {settings.min_keypoint_improvement_px} px")
    return Decision(model, better, reason, "paired bootstrap", interval=interval,
                    challenger_score=score, champion_score=champion)


def gate_emotion(challenger_correct: np.ndarray, champion_correct: np.ndarray | None,
                 settings: GateSettings, model: str) -> Decision:
    """Promote if accuracy clears the floor and, against a champion, McNemar's exact test says the
    challenger is right significantly more often on the same images."""
    decision = _gate_emotion(challenger_correct, champion_correct, settings, model)
    decision.score_interval = bootstrap_mean_interval(challenger_correct.astype(float), settings)
    return decision


def _gate_emotion(challenger_correct: np.ndarray, champion_correct: np.ndarray | None,
                  settings: GateSettings, model: str) -> Decision:
    score = float(challenger_correct.mean())
    if score < settings.min_emotion_accuracy:
        return Decision(model, False, f"accuracy {score:.3f} is below the floor "
                        f"{settings.min_emotion_accuracy}", "floor", challenger_score=score)
    if champion_correct is None:
        return Decision(model, True, "first model: clears the floor", "floor", challenger_score=score)
    champion = float(champion_correct.mean())
    only_challenger = int((challenger_correct & ~champion_correct).sum())
    only_champion = int((~challenger_correct & champion_correct).sum())
    discordant = only_challenger + only_champion
    p_value = (binomtest(only_challenger, discordant, 0.5, alternative="greater").pvalue
               if discordant else 1.0)
    better = p_value < settings.significance and score - champion > settings.min_emotion_improvement
    reason = (f"McNemar exact p={p_value:.4g} ({only_challenger} vs {only_champion} discordant), "
              f"accuracy {champion:.3f} -> {score:.3f}: "
              + ("significant" if better else "not a significant improvement"))
    return Decision(model, better, reason, "McNemar exact", p_value=float(p_value),
                    challenger_score=score, champion_score=champion)
