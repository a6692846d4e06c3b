"""The full-data parts' figures, written to bench/results/ beside quality.json: FER2013's confusion
matrices on PublicTest (ours, every seed summed, and the peer's) and each keypoint seed's worst
test faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bench_common import BENCH_DIR

RESULTS = BENCH_DIR / "results"


def _save(figure, name: str) -> Path:
    import matplotlib.pyplot as plt

    path = RESULTS / name
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    print(f"wrote {path}", flush=True)
    return path


def save_confusion_matrices(runs: list[dict], peer: dict) -> None:
    """`fer2013_confusion_ours.png` (the runs' matrices summed) and `fer2013_confusion_peer.png`."""
    from emotion_ai.modeling.plots import confusion_matrix_figure

    ours = np.sum([run["confusion_matrix"] for run in runs], axis=0)
    seeds = ", ".join(str(run["seed"]) for run in runs)
    which = f"seeds {seeds} summed" if len(runs) > 1 else f"seed {seeds}"
    _save(
        confusion_matrix_figure(ours, f"ours, PublicTest, {which}"),
        "fer2013_confusion_ours.png",
    )
    peer_matrix = np.asarray(peer["confusion_matrix"])
    _save(
        confusion_matrix_figure(peer_matrix, "the fer package, PublicTest"),
        "fer2013_confusion_peer.png",
    )


def save_worst_keypoint_faces(
    seed: int, faces: np.ndarray, truth: np.ndarray, predicted: np.ndarray
) -> None:
    """`fkd_teacher_worst_faces_seed<seed>.png`: the seed's test faces farthest from the teacher,
    teacher points in green."""
    from emotion_ai.modeling.metrics import keypoint_squared_errors, per_image_rmse
    from emotion_ai.modeling.plots import worst_keypoint_faces

    errors = per_image_rmse(keypoint_squared_errors(predicted, truth))
    _save(
        worst_keypoint_faces(faces, truth, predicted, errors),
        f"fkd_teacher_worst_faces_seed{seed}.png",
    )
