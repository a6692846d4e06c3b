"""Quality runs, recorded together in bench/results/quality.json.

--part real: the emotion model on ../shared/data/fer2013_real_subset.csv.gz (its 5-class rows),
split
60/20/20 stratified with seed 0, trained on CPU within the stated epochs and scored on the held-out
test split against the majority-class baseline (always the training split's most frequent class).
--part synthetic: both models on GENERATED data of the real sizes (7049 FKD rows, 35887 FER rows,
bench/work/, written by bench/ingest.py or here): keypoint RMSE in px and emotion accuracy.
Runs log to a throw-away MLflow store under bench/work/quality.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from results_table import RESULTS_DIR, write_result  # noqa: E402

REAL_FER_SUBSET = BENCH_DIR.parent.parent / "shared" / "data" / "fer2013_real_subset.csv.gz"
TARGET = 1.5
"""Test accuracy at least 1.5x the majority-class baseline."""


WORK = BENCH_DIR / "work"
FULL_FKD_ROWS, FULL_FER_ROWS = 7049, 35887


def _dataset(path: Path, table_format, build, seed: int):
    """A data file read, split 60/20/20 (seed) and fingerprinted the way the pipeline does it."""
    from emotion_ai.data.formats import read_table
    from emotion_ai.data.sources import fetch
    from emotion_ai.settings import SplitSettings

    copy = WORK / "quality" / path.name
    provenance = fetch(str(path), copy).as_dict()
    return build(read_table(copy, table_format), SplitSettings(0.2, 0.2, seed), provenance)


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


def real_faces_quality(
    epochs: int, width: int, depth: int, seed: int, patience: int, balance: bool
) -> dict:
    import numpy as np

    from emotion_ai.data.datasets import TEST, TRAIN, emotion_dataset
    from emotion_ai.data.formats import FER_FORMAT
    from emotion_ai.faces import EMOTIONS
    from emotion_ai.modeling.metrics import emotion_metrics
    from emotion_ai.modeling.training import predict, train_emotion_model
    from emotion_ai.release.gate import bootstrap_mean_interval
    from emotion_ai.settings import GateSettings, TrainSettings

    dataset = _dataset(REAL_FER_SUBSET, FER_FORMAT, emotion_dataset, seed)
    settings = replace(
        TrainSettings.scaled(epochs, 32, 2e-3, seed, width, depth),
        early_stopping_patience=patience,
        balance_classes=balance,
    )
    model, seconds = _train(train_emotion_model, dataset, settings, "real FER2013 subset")
    images, labels = dataset.part(TEST)
    probabilities = predict(model, images)
    metrics = emotion_metrics(probabilities, labels)
    interval = bootstrap_mean_interval(
        (probabilities.argmax(axis=1) == labels).astype(float), GateSettings()
    )
    majority = int(np.bincount(dataset.part(TRAIN)[1], minlength=len(EMOTIONS)).argmax())
    return {
        "emotion.accuracy": metrics["accuracy"],
        "emotion.accuracy_95_interval": interval,
        "emotion.macro_f1": metrics["macro_f1"],
        "emotion.recall_per_class": {name: metrics[f"recall/{name}"] for name in EMOTIONS},
        "emotion.majority_baseline": float((labels == majority).mean()),
        "emotion.majority_class": EMOTIONS[majority],
        "rows": {"train": int((dataset.split == TRAIN).sum()), "test": int(len(labels))},
        "train_seconds_cpu": seconds,
        "epochs": epochs,
        "width": width,
        "depth": depth,
        "early_stopping_patience": patience,
        "balance_classes": balance,
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
    from emotion_ai.settings import TrainSettings

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
        TrainSettings.scaled(keypoint_epochs, 32, 2e-3, seed, width, depth),
        "synthetic keypoints, real size",
    )
    emotion = _dataset(fer, FER_FORMAT, emotion_dataset, seed)
    emotion_model, emotion_seconds = _train(
        train_emotion_model,
        emotion,
        TrainSettings.scaled(emotion_epochs, 64, 2e-3, seed, width, depth),
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


def _previous() -> dict:
    path = RESULTS_DIR / "quality.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["real", "synthetic"], default="real")
    parser.add_argument("--epochs", type=int, default=40, help="real part: emotion epochs")
    parser.add_argument("--keypoint-epochs", type=int, default=30, help="synthetic part")
    parser.add_argument("--emotion-epochs", type=int, default=8, help="synthetic part")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--patience", type=int, default=15, help="real part: early-stopping patience"
    )
    parser.add_argument("--no-balance", action="store_true", help="real part: no class weights")
    args = parser.parse_args()
    previous = _previous()
    commands = previous.get("commands", {})
    if args.part == "real":
        measured = real_faces_quality(
            args.epochs, args.width, args.depth, args.seed, args.patience, not args.no_balance
        )
        commands["real"] = (
            f"uv run python bench/quality.py --part real --epochs {args.epochs} --width "
            f"{args.width} --depth {args.depth} --seed {args.seed} --patience {args.patience}"
            + (" --no-balance" if args.no_balance else "")
        )
    else:
        measured = synthetic_quality(
            args.keypoint_epochs, args.emotion_epochs, args.width, args.depth, args.seed
        )
        commands["synthetic"] = (
            "uv run python bench/quality.py --part synthetic --keypoint-epochs "
            f"{args.keypoint_epochs} --emotion-epochs {args.emotion_epochs} --width {args.width} "
            f"--depth {args.depth} --seed {args.seed}"
        )
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
    if "emotion.accuracy" not in details:
        raise SystemExit("run --part real first: quality.json's value is the real-face accuracy")
    result = write_result(
        "quality",
        value=details["emotion.accuracy"],
        baseline=details["emotion.majority_baseline"],
        target=TARGET,
        unit="test accuracy (real FER subset)",
        command=commands["real"],
        details=details,
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
