"""Drift of served faces against the reference profile written at ingestion.

Three measures, each with its threshold: the population stability index (PSI) of the pixel
histogram, the Kolmogorov-Smirnov statistic of per-face mean brightness against the reference
quantiles, and the PSI of the predicted-class mix against the training class shares.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from emotion_ai.faces import EMOTIONS
from emotion_ai.monitoring.request_log import SampledFaces

PSI_FLOOR = 1e-4
"""Shares below this are raised to it, so an empty bin does not make PSI infinite."""


@dataclass(frozen=True)
class DriftThresholds:
    pixel_psi: float = 0.2
    brightness_ks: float = 0.25
    class_mix_psi: float = 0.25
    min_faces: int = 50
    """Fewer sampled faces than this are not judged."""


@dataclass(frozen=True)
class DriftReport:
    faces: int
    pixel_psi: float
    brightness_ks: float
    brightness_ks_p_value: float
    class_mix_psi: float
    reasons: list[str]

    @property
    def drifted(self) -> bool:
        return bool(self.reasons)

    def as_dict(self) -> dict:
        return asdict(self)


def population_stability_index(expected: np.ndarray, observed: np.ndarray) -> float:
    """PSI = sum((o - e) ln(o / e)) over bins of two share vectors (0.1 small, 0.25 large shift)."""
    expected = np.maximum(np.asarray(expected, float) / max(np.sum(expected), PSI_FLOOR), PSI_FLOOR)
    observed = np.maximum(np.asarray(observed, float) / max(np.sum(observed), PSI_FLOOR), PSI_FLOOR)
    return float(np.sum((observed - expected) * np.log(observed / expected)))


def brightness_ks(means: np.ndarray, reference_quantiles: list[float]) -> tuple[float, float]:
    """KS statistic and p-value of per-face mean brightness against the reference distribution,
    whose CDF is interpolated from its quantiles."""
    quantiles = np.asarray(reference_quantiles, float)
    levels = np.linspace(0, 1, len(quantiles))
    result = stats.kstest(means, lambda x: np.interp(x, quantiles, levels))
    return float(result.statistic), float(result.pvalue)


def detect_drift(
    reference: dict, samples: SampledFaces, thresholds: DriftThresholds = DriftThresholds()
) -> DriftReport | None:
    """Compares sampled faces to the emotion data profile; None when too few faces were sampled."""
    if len(samples.means) < thresholds.min_faces:
        return None
    pixels = reference["pixels"]
    pixel_psi = population_stability_index(pixels["histogram"], samples.histograms.mean(axis=0))
    ks, p_value = brightness_ks(samples.means, pixels["image_mean_quantiles"])
    class_mix_psi = 0.0
    if len(samples.classes) >= thresholds.min_faces:
        expected = [reference["class_share"][name] for name in EMOTIONS]
        class_mix_psi = population_stability_index(
            expected, np.bincount(samples.classes, minlength=len(EMOTIONS))
        )
    checks = [
        ("pixel histogram PSI", pixel_psi, thresholds.pixel_psi),
        ("mean brightness KS", ks, thresholds.brightness_ks),
        ("predicted class mix PSI", class_mix_psi, thresholds.class_mix_psi),
    ]
    reasons = [f"{name} {value:.3f} > {limit}" for name, value, limit in checks if value > limit]
    return DriftReport(len(samples.means), pixel_psi, ks, p_value, class_mix_psi, reasons)
