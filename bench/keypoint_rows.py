"""Keypoint RMSE on GENERATED data of Kaggle's size and share of incomplete rows as the training
rows shrink (`bench/quality.py --part keypoint-rows`, recorded in quality.json): every row through
the masked loss, only the 2,140 complete rows (as a loss without masking would need), and 500.
"""

from __future__ import annotations

from dataclasses import replace

from bench_common import WORK, split_dataset, spread, train

FULL_FKD_ROWS = 7049
KAGGLE_COMPLETE_ROWS = 2140
"""Rows of Kaggle's training.csv with all 15 keypoints; the others have about 4."""
UNUSED = 3
"""A split id no part selects: rows left out of a smaller training set."""


def _training_sample(dataset, rows: int, seed: int, eligible=True):
    """The data set with `rows` of its `eligible` training rows left in, drawn with `seed`; the
    other training rows set aside (split UNUSED)."""
    import numpy as np

    from emotion_ai.data.datasets import TRAIN

    candidates = np.flatnonzero((dataset.split == TRAIN) & eligible)
    kept = np.random.default_rng(seed).choice(candidates, min(rows, len(candidates)), replace=False)
    split = np.where(dataset.split == TRAIN, UNUSED, dataset.split)
    split[kept] = TRAIN
    return replace(dataset, split=split)


def _training_rows(dataset, keep: str, rows: int, seed: int):
    """The data set with only some training rows left in: `all`, or `rows` complete ones."""
    import numpy as np

    if keep == "all":
        return dataset
    return _training_sample(dataset, rows, seed, ~np.isnan(dataset.targets).any(axis=1))


ROW_CASES = (
    ("all", FULL_FKD_ROWS, 1, "every row, masked loss"),
    ("complete", KAGGLE_COMPLETE_ROWS, 2, f"{KAGGLE_COMPLETE_ROWS} complete rows"),
    ("complete", 500, 4, "500 complete rows"),
)
"""(rows kept, how many, epochs as a multiple of --epochs, label): fewer rows get more epochs."""


def _group_rmse(scores: dict, names) -> float:
    """The RMSE over a group of keypoints, each keypoint weighted alike."""
    import numpy as np

    return float(np.sqrt(np.mean([scores[f"rmse_px/{name}"] ** 2 for name in names])))


def _rows_case_scores(model, images, truth) -> dict:
    from emotion_ai.faces import ALWAYS_LABELLED, KEYPOINT_NAMES
    from emotion_ai.modeling.metrics import keypoint_metrics
    from emotion_ai.modeling.training import predict

    scores = keypoint_metrics(predict(model, images), truth)
    rarely = [name for name in KEYPOINT_NAMES if name not in ALWAYS_LABELLED]
    return {
        "rmse_px": scores["rmse_px"],
        "within_2px": scores["within_2px"],
        "rmse_px_always_labelled": _group_rmse(scores, ALWAYS_LABELLED),
        "rmse_px_complete_rows_only": _group_rmse(scores, rarely),
    }


def keypoint_rows_quality(args) -> dict:
    """Keypoint RMSE on generated data of Kaggle's size and missing-keypoint share as the training
    rows shrink: every row through the masked loss, only the complete rows (as a loss without
    masking would need), and 500 of them; all scored on the same test split, over the seeds. The
    4 keypoints every row holds and the 11 only complete rows hold are scored apart: the masked
    loss gives the first 3 times the labels."""
    from emotion_ai.data.datasets import TEST, TRAIN, keypoint_dataset
    from emotion_ai.data.formats import FKD_FORMAT
    from emotion_ai.data.synthetic import write_keypoints_csv
    from emotion_ai.modeling.training import train_keypoint_model
    from emotion_ai.settings import ResNetConfig, TrainSettings

    csv = WORK / "training_kaggle_missing.csv"
    if not csv.is_file():
        missing = 1 - KAGGLE_COMPLETE_ROWS / FULL_FKD_ROWS
        write_keypoints_csv(csv, FULL_FKD_ROWS, seed=0, missing_fraction=missing)
    full = split_dataset(csv, FKD_FORMAT, keypoint_dataset, args.split_seed)
    images, truth = full.part(TEST)
    curve = []
    for keep, rows, epoch_factor, label in ROW_CASES:
        runs = []
        for seed in args.seeds:
            dataset = _training_rows(full, keep, rows, seed)
            settings = TrainSettings(
                epochs=args.epochs * epoch_factor,
                seed=seed,
                early_stopping_patience=args.patience,
                network=ResNetConfig(width=args.width, depth=args.depth),
            )
            model, minutes = train(train_keypoint_model, dataset, settings, f"{label} s{seed}")
            runs.append(
                {"seed": seed, "train_minutes": minutes, **_rows_case_scores(model, images, truth)}
            )
            print(label, runs[-1], flush=True)
        curve.append(
            {
                "rows_kept": label,
                "training_rows": int(len(dataset.part(TRAIN)[0])),
                "epochs": args.epochs * epoch_factor,
                **{key: spread([run[key] for run in runs]) for key in runs[0] if key != "seed"},
                "runs": runs,
            }
        )
    return {
        "keypoints.rows_curve": curve,
        "keypoints.rows_curve_data": f"GENERATED faces, {FULL_FKD_ROWS} rows of which "
        f"{KAGGLE_COMPLETE_ROWS} complete (Kaggle's share; the others hold only the 4 keypoints "
        f"Kaggle's do); one split (seed {args.split_seed}), 60/20/20; training rows of the 60% "
        f"kept as listed, epochs scaled up as rows shrink; mean and spread over seeds {args.seeds}",
        "keypoints.rows_curve_note": "rmse_px_always_labelled: the 4 keypoints every row holds "
        "(3 times the labels through the masked loss); rmse_px_complete_rows_only: the other 11",
    }
