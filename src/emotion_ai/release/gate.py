"""The promotion gate: absolute floors, then a paired statistical test of challenger against
champion."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import binomtest

from emotion_ai.modeling.metrics import per_image_rmse, rmse_px
from emotion_ai.settings import GateSettings


class Decision(BaseModel):
    """Whether a challenger is promoted, and the evidence: typed strictly, so that a value of the
    wrong type (a NumPy bool) is refused where it is made, not taken for another downstream."""

    model_config = ConfigDict(strict=True, extra="forbid", validate_assignment=True)

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
        return self.model_dump()


def _resamples(count: int, settings: GateSettings) -> np.ndarray:
    """(bootstrap_samples, count) indices: each row one resample of the test faces."""
    rng = np.random.default_rng(settings.bootstrap_seed)
    return rng.integers(0, count, size=(settings.bootstrap_samples, count))


def _percentile_interval(statistics: np.ndarray, settings: GateSettings) -> tuple[float, float]:
    tail = 100 * settings.significance / 2
    return float(np.percentile(statistics, tail)), float(np.percentile(statistics, 100 - tail))


def _floor_decision(model: str, score: float, reason: str | None = None) -> Decision:
    """The decision on the floor alone: kept out for `reason`, or promoted as the first model."""
    return Decision(
        model=model,
        promote=reason is None,
        reason=reason or "first model: clears the floor",
        test="floor",
        challenger_score=score,
    )


def bootstrap_mean_interval(values: np.ndarray, settings: GateSettings) -> tuple[float, float]:
    """Two-sided (1 - significance) percentile bootstrap interval of the mean of `values`
    (per-image paired differences or 0/1 correctness)."""
    return _percentile_interval(values[_resamples(len(values), settings)].mean(axis=1), settings)


def bootstrap_rmse_interval(
    squared_errors: np.ndarray, settings: GateSettings
) -> tuple[float, float]:
    """The same interval for `rmse_px` of (n, 30) squared errors, resampling whole faces."""
    present = np.isfinite(squared_errors)
    sums, counts = np.where(present, squared_errors, 0.0).sum(axis=1), present.sum(axis=1)
    samples = _resamples(len(sums), settings)
    return _percentile_interval(
        np.sqrt(sums[samples].sum(axis=1) / counts[samples].sum(axis=1)), settings
    )


def gate_keypoints(
    challenger_squared: np.ndarray,
    champion_squared: np.ndarray | None,
    settings: GateSettings,
    model: str,
) -> Decision:
    """Promote if the test `rmse_px` clears the floor and, against a champion, the paired bootstrap
    interval of (champion - challenger) per-image RMSE lies above the minimum improvement.

    Both take (n, 30) squared errors in px², NaN where a keypoint is missing; the score is
    `metrics.rmse_px`, the same figure the evaluate run, card, version tag and CLI show."""
    score = rmse_px(challenger_squared)
    challenger_errors = per_image_rmse(challenger_squared)
    champion_errors = None if champion_squared is None else per_image_rmse(champion_squared)
    decision = _gate_keypoints(score, challenger_errors, champion_errors, settings, model)
    if champion_squared is not None:
        decision.champion_score = rmse_px(champion_squared)
    decision.score_interval = bootstrap_rmse_interval(challenger_squared, settings)
    return decision


def _gate_keypoints(
    score: float,
    challenger_errors: np.ndarray,
    champion_errors: np.ndarray | None,
    settings: GateSettings,
    model: str,
) -> Decision:
    if score > settings.max_keypoint_rmse_px:
        return _floor_decision(
            model,
            score,
            f"RMSE {score:.3f} px is above the floor {settings.max_keypoint_rmse_px} px",
        )
    if champion_errors is None:
        return _floor_decision(model, score)
    present = np.isfinite(challenger_errors) & np.isfinite(champion_errors)
    interval = bootstrap_mean_interval(
        champion_errors[present] - challenger_errors[present], settings
    )
    better = bool(interval[0] > settings.min_keypoint_improvement_px)
    reason = (
        f"per-image RMSE improvement {interval[0]:.3f}..{interval[1]:.3f} px "
        f"({100 * (1 - settings.significance):.0f}% paired bootstrap) "
        + ("is above" if better else "does not clear")
        + f" the minimum {settings.min_keypoint_improvement_px} px"
    )
    return Decision(
        model=model,
        promote=better,
        reason=reason,
        test="paired bootstrap",
        interval=interval,
        challenger_score=score,
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
        return _floor_decision(
            model, score, f"accuracy {score:.3f} is below the floor {settings.min_emotion_accuracy}"
        )
    if champion_correct is None:
        return _floor_decision(model, score)
    champion = float(champion_correct.mean())
    only_challenger = int((challenger_correct & ~champion_correct).sum())
    only_champion = int((~challenger_correct & champion_correct).sum())
    discordant = only_challenger + only_champion
    p_value = (
        binomtest(only_challenger, discordant, 0.5, alternative="greater").pvalue
        if discordant
        else 1.0
    )
    better = bool(
        p_value < settings.significance and score - champion > settings.min_emotion_improvement
    )
    reason = (
        f"McNemar exact p={p_value:.4g} ({only_challenger} vs {only_champion} discordant), "
        f"accuracy {champion:.3f} -> {score:.3f}: "
        + ("significant" if better else "not a significant improvement")
    )
    return Decision(
        model=model,
        promote=better,
        reason=reason,
        test="McNemar exact",
        p_value=float(p_value),
        challenger_score=score,
        champion_score=champion,
    )
