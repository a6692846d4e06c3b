"""Scores of predictions on held-out faces: keypoint RMSE in pixels, emotion accuracy and per-class
figures."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from emotion_ai.faces import EMOTIONS, KEYPOINT_NAMES

WITHIN_PX = 2.0


def keypoint_squared_errors(predicted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(n, 30) squared errors in px², NaN where the keypoint is missing."""
    return (predicted - true) ** 2


def per_image_rmse(squared_errors: np.ndarray) -> np.ndarray:
    """RMSE in px of each image over its present keypoints."""
    return np.sqrt(np.nanmean(squared_errors, axis=1))


def worst_images(image_errors: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` images with the largest error, worst first (NaN, an image without
    keypoints, last)."""
    return np.argsort(np.nan_to_num(image_errors, nan=-np.inf), kind="stable")[::-1][:count]


def rmse_px(squared_errors: np.ndarray) -> float:
    """The test RMSE of keypoints, as Kaggle's leaderboard scores it: over every present
    coordinate of every face (a face with fewer keypoints counts less)."""
    return float(np.sqrt(np.nanmean(squared_errors)))


def keypoint_metrics(predicted: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """`rmse_px`, the share of present keypoints `within_2px` of the truth, the median image's
    RMSE (`median_image_rmse_px`: unlike `rmse_px`, not moved by a few faces far off, such as faces
    whose labels are wrong), and the RMSE of each keypoint (`rmse_px/<keypoint>`, over both its
    coordinates)."""
    squared = keypoint_squared_errors(predicted, true)
    point_distance = np.sqrt(squared[:, 0::2] + squared[:, 1::2])
    present = point_distance[np.isfinite(point_distance)]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a keypoint or image with none present
        per_point = np.sqrt(np.nanmean(squared[:, 0::2] + squared[:, 1::2], axis=0) / 2)
        median_image = float(np.nanmedian(per_image_rmse(squared)))
    metrics = {
        "rmse_px": rmse_px(squared),
        "within_2px": float((present <= WITHIN_PX).mean()) if present.size else float("nan"),
        "median_image_rmse_px": median_image,
    }
    metrics.update(
        {
            f"rmse_px/{name}": float(value)
            for name, value in zip(KEYPOINT_NAMES, per_point, strict=False)
        }
    )
    return metrics


def emotion_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """`accuracy`, `macro_f1`, and `precision/<emotion>` and `recall/<emotion>` of each class."""
    predicted = probabilities.argmax(axis=1)
    classes = list(range(len(EMOTIONS)))
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    metrics = {
        "accuracy": float((predicted == labels).mean()),
        "macro_f1": float(
            f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)
        ),
    }
    for index, name in enumerate(EMOTIONS):
        metrics[f"precision/{name}"] = float(precision[index])
        metrics[f"recall/{name}"] = float(recall[index])
    return metrics


def emotion_confusion(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return confusion_matrix(labels, probabilities.argmax(axis=1), labels=list(range(len(EMOTIONS))))
