"""The promotion gate: absolute floors, then a paired statistical test of challenger against
champion."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest

from emotion_ai.settings import GateSettings


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


def gate_keypoints(
    challenger_errors: np.ndarray,
    champion_errors: np.ndarray | None,
    settings: GateSettings,
    model: str,
) -> Decision:
    """Promote if RMSE clears the floor and, against a champion, the paired bootstrap interval of
    (champion - challenger) per-image RMSE lies above the minimum improvement."""
    score = float(np.sqrt(np.nanmean(challenger_errors**2)))
    low, high = bootstrap_mean_interval(
        challenger_errors[np.isfinite(challenger_errors)] ** 2, settings
    )
    decision = _gate_keypoints(score, challenger_errors, champion_errors, settings, model)
    decision.score_interval = (float(np.sqrt(low)), float(np.sqrt(high)))
    return decision


def _gate_keypoints(
    score: float,
    challenger_errors: np.ndarray,
    champion_errors: np.ndarray | None,
    settings: GateSettings,
    model: str,
) -> Decision:
    if score > settings.max_keypoint_rmse_px:
        return Decision(
            model,
            False,
            f"RMSE {score:.3f} px is above the floor {settings.max_keypoint_rmse_px} px",
            "floor",
            challenger_score=score,
        )
    if champion_errors is None:
        return Decision(
            model, True, "first model: clears the floor", "floor", challenger_score=score
        )
    champion = float(np.sqrt(np.nanmean(champion_errors**2)))
    present = np.isfinite(challenger_errors) & np.isfinite(champion_errors)
    interval = bootstrap_mean_interval(
        champion_errors[present] - challenger_errors[present], settings
    )
    better = interval[0] > settings.min_keypoint_improvement_px
    reason = (
        f"per-image RMSE improvement {interval[0]:.3f}..{interval[1]:.3f} px "
        f"({100 * (1 - settings.significance):.0f}% paired bootstrap) "
        + ("is above" if better else "does not clear")
        + f" the minimum {settings.min_keypoint_improvement_px} px"
    )
    return Decision(
        model,
        better,
        reason,
        "paired bootstrap",
        interval=interval,
        challenger_score=score,
        champion_score=champion,
    )


def gate_emotion(
    challenger_correct: np.ndarray,
    champion_correct: np.ndarray | None,
    settings: GateSettings,
    model: str,
) -> Decision:
    """Promote if accuracy clears the floor and, against a champion, McNemar's exact test says the
    challenger is right significantly more often on the same images."""
    decision = _gate_emotion(challenger_correct, champion_correct, settings, model)
    decision.score_interval = bootstrap_mean_interval(challenger_correct.astype(float), settings)
    return decision


def _gate_emotion(
    challenger_correct: np.ndarray,
    champion_correct: np.ndarray | None,
    settings: GateSettings,
    model: str,
) -> Decision:
    score = float(challenger_correct.mean())
    if score < settings.min_emotion_accuracy:
        return Decision(
            model,
            False,
            f"accuracy {score:.3f} is below the floor {settings.min_emotion_accuracy}",
            "floor",
            challenger_score=score,
        )
    if champion_correct is None:
        return Decision(
            model, True, "first model: clears the floor", "floor", challenger_score=score
        )
    champion = float(champion_correct.mean())
    only_challenger = int((challenger_correct & ~champion_correct).sum())
    only_champion = int((~challenger_correct & champion_correct).sum())
    discordant = only_challenger + only_champion
    p_value = (
        binomtest(only_challenger, discordant, 0.5, alternative="greater").pvalue
        if discordant
        else 1.0
    )
    better = p_value < settings.significance and score - champion > settings.min_emotion_improvement
    reason = (
        f"McNemar exact p={p_value:.4g} ({only_challenger} vs {only_champion} discordant), "
        f"accuracy {champion:.3f} -> {score:.3f}: "
        + ("significant" if better else "not a significant improvement")
    )
    return Decision(
        model,
        better,
        reason,
        "McNemar exact",
        p_value=float(p_value),
        challenger_score=score,
        champion_score=champion,
    )
