"""Data profiles: what a data set looks like, saved as the reference that drift checks compare
to."""

from __future__ import annotations

import numpy as np

from emotion_ai.data.datasets import FaceDataset
from emotion_ai.faces import EMOTIONS, KEYPOINT_COLUMNS

HISTOGRAM_BINS = 16
MEAN_QUANTILES = 21
"""Per-image mean brightness is kept as this many quantiles (0%, 5%, ... 100%) for KS drift
tests."""
SAMPLE_IMAGES = 2048
"""Pixel statistics are taken on at most this many images (seeded), which is plenty for a
profile."""


def pixel_histogram(images: np.ndarray) -> np.ndarray:
    """Share of uint8 pixel values in each of 16 equal bins of 0..255."""
    counts = np.bincount(images.ravel(), minlength=256).reshape(HISTOGRAM_BINS, -1).sum(axis=1)
    return counts / max(counts.sum(), 1)


def pixel_profile(images: np.ndarray, seed: int = 0) -> dict:
    """Mean, std, a normalised 16-bin histogram of the pixel values and quantiles of per-image
    means."""
    if len(images) > SAMPLE_IMAGES:
        images = images[
            np.random.default_rng(seed).choice(len(images), SAMPLE_IMAGES, replace=False)
        ]
    image_means = images.reshape(len(images), -1).mean(axis=1)
    return {
        "mean": float(images.mean()),
        "std": float(images.std()),
        "histogram": pixel_histogram(images).round(6).tolist(),
        "image_mean_quantiles": np.quantile(image_means, np.linspace(0, 1, MEAN_QUANTILES))
        .round(3)
        .tolist(),
    }


def data_profile(dataset: FaceDataset) -> dict:
    """Rows (and those validation set aside), split, pixel statistics and, per kind, class mix or
    keypoint means."""
    profile = {
        "kind": dataset.metadata["kind"],
        "rows": int(len(dataset.images)),
        "rows_set_aside": int(dataset.metadata.get("rows_set_aside", 0)),
        "split": dataset.metadata["split"],
        "pixels": pixel_profile(dataset.images),
    }
    if dataset.metadata["kind"] == "emotion":
        counts = np.bincount(dataset.targets, minlength=len(EMOTIONS))
        profile["class_share"] = {
            name: float(c / max(counts.sum(), 1)) for name, c in zip(EMOTIONS, counts, strict=False)
        }
    else:
        means = np.nanmean(dataset.targets, axis=0)
        profile["keypoint_means"] = {
            name: float(value) for name, value in zip(KEYPOINT_COLUMNS, means, strict=False)
        }
        profile["complete_rows"] = int((~np.isnan(dataset.targets).any(axis=1)).sum())
    return profile
