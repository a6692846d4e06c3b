"""Figures people would rather see than read; each returns a matplotlib Figure for
mlflow.log_figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from emotion_ai.faces import EMOTIONS  # noqa: E402
from emotion_ai.modeling.metrics import worst_images  # noqa: E402

GRID_COLUMNS = 6
WORST_FACES = 12
"""Faces the figure of the largest keypoint errors shows."""


def learning_curves(history: dict[str, list[float]], title: str) -> Figure:
    """Every metric of a Keras history against its epoch, train and validation together."""
    names = sorted({name.removeprefix("val_") for name in history if name != "learning_rate"})
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names, strict=False):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in history:
                axis.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=label)
        axis.set(title=name, xlabel="epoch")
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def keypoint_errors_figure(metrics: dict[str, float], title: str) -> Figure:
    """The test RMSE of each keypoint (`rmse_px/<keypoint>` of `keypoint_metrics`), worst on top,
    against the overall RMSE."""
    per_point = sorted(
        (value, name.removeprefix("rmse_px/"))
        for name, value in metrics.items()
        if name.startswith("rmse_px/") and np.isfinite(value)
    )
    figure, axis = plt.subplots(figsize=(6.5, 5), layout="constrained")
    axis.barh([name for _, name in per_point], [value for value, _ in per_point], color="tab:blue")
    axis.axvline(metrics["rmse_px"], color="tab:red", linestyle="--", label="all keypoints")
    axis.set(title=title, xlabel="RMSE (px), lower is better")
    axis.legend(loc="lower right")
    return figure


def confusion_matrix_figure(matrix: np.ndarray, title: str) -> Figure:
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    axis.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axis.text(column, row, int(count), ha="center", va="center")
    axis.set(
        xticks=range(len(EMOTIONS)),
        yticks=range(len(EMOTIONS)),
        xticklabels=EMOTIONS,
        yticklabels=EMOTIONS,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    figure.tight_layout()
    return figure


def _face_grid(n_faces: int) -> tuple[Figure, np.ndarray]:
    """Axes for `n_faces` faces, with room above each row for a title (constrained layout)."""
    rows = max(1, int(np.ceil(n_faces / GRID_COLUMNS)))
    figure, axes = plt.subplots(
        rows, GRID_COLUMNS, figsize=(2 * GRID_COLUMNS, 2.4 * rows + 0.6), squeeze=False,
        layout="constrained",
    )  # fmt: skip
    for axis in axes.ravel():
        axis.axis("off")
    return figure, axes.ravel()


def keypoints_on_faces(
    faces: np.ndarray, true: np.ndarray, predicted: np.ndarray, titles: list[str] | None = None
) -> Figure:
    """Held-out faces with true (green) and predicted (red) keypoints, one legend for all; each
    face titled by `titles` when given."""
    figure, axes = _face_grid(len(faces))
    labels = titles or [""] * len(faces)
    for axis, face, truth, guess, label in zip(axes, faces, true, predicted, labels, strict=False):
        axis.imshow(face, cmap="gray", vmin=0, vmax=255)
        axis.set_title(label, fontsize=9)
        axis.scatter(truth[0::2], truth[1::2], s=10, c="lime", label="true")
        axis.scatter(guess[0::2], guess[1::2], s=10, c="red", marker="x", label="predicted")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=2,
                  fontsize=11, markerscale=2)  # fmt: skip
    return figure


def worst_keypoint_faces(
    faces: np.ndarray,
    true: np.ndarray,
    predicted: np.ndarray,
    image_errors: np.ndarray,
    count: int = WORST_FACES,
) -> Figure:
    """The `count` faces of largest `image_errors` (each face's RMSE in px), worst first, each
    titled with its index and error: where a few faces far off (often wrong labels) weigh on the
    RMSE, they show which."""
    worst = worst_images(image_errors, count)
    titles = [f"test face {index}: {image_errors[index]:.1f} px" for index in worst]
    return keypoints_on_faces(faces[worst], true[worst], predicted[worst], titles)


def emotions_on_faces(faces: np.ndarray, true: np.ndarray, predicted: np.ndarray) -> Figure:
    """Held-out faces titled with true and predicted emotion (red when wrong)."""
    figure, axes = _face_grid(len(faces))
    for axis, face, truth, guess in zip(axes, faces, true, predicted, strict=False):
        axis.imshow(face, cmap="gray", vmin=0, vmax=255)
        axis.set_title(
            f"{EMOTIONS[truth]} / {EMOTIONS[guess]}",
            fontsize=9,
            color="black" if truth == guess else "red",
        )
    figure.suptitle("true / predicted emotion (red: wrong)")
    return figure
