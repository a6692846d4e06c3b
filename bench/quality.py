"""Quality runs: the emotion model on real FER2013 faces against the majority-class baseline.

Real faces: ../shared/data/fer2013_real_subset.csv.gz (its 5-class rows), split 60/20/20 stratified
with seed 0, trained on CPU within the stated epochs, scored on the held-out test split. The
baseline always answers the most frequent class of the training split. Runs log to a throw-away
MLflow store under bench/work/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from results_table import write_result  # noqa: E402

REAL_FER_SUBSET = BENCH_DIR.parent.parent / "shared" / "data" / "fer2013_real_subset.csv.gz"
TARGET = 1.5
"""Test accuracy at least 1.5x the majority-class baseline."""


def real_faces_quality(epochs: int, width: int, depth: int, seed: int) -> dict:
    import mlflow
    import numpy as np

    from emotion_ai.config import SplitSettings, TrainSettings
    from emotion_ai.data_formats import FER_FORMAT, read_table
    from emotion_ai.datasets import TEST, TRAIN, emotion_dataset
    from emotion_ai.evaluation import emotion_metrics, predict
    from emotion_ai.faces import EMOTIONS
    from emotion_ai.sources import fetch
    from emotion_ai.tracking import local_tracking, use_tracking
    from emotion_ai.training import train_emotion_model

    work = BENCH_DIR / "work" / "quality"
    provenance = fetch(str(REAL_FER_SUBSET), work / "fer2013_real_subset.csv.gz").as_dict()
    table = read_table(work / "fer2013_real_subset.csv.gz", FER_FORMAT)
    dataset = emotion_dataset(table, SplitSettings(0.2, 0.2, seed), provenance)
    settings = TrainSettings.scaled(epochs, 32, 2e-3, seed, width, depth)
    use_tracking(local_tracking(work / "state", "bench-quality"))
    started = time.perf_counter()
    with mlflow.start_run(run_name="real FER2013 subset"):
        model = train_emotion_model(dataset, settings).model
    seconds = time.perf_counter() - started
    images, labels = dataset.part(TEST)
    metrics = emotion_metrics(predict(model, images), labels)
    majority = int(np.bincount(dataset.part(TRAIN)[1], minlength=len(EMOTIONS)).argmax())
    return {"emotion.accuracy": metrics["accuracy"], "emotion.macro_f1": metrics["macro_f1"],
            "emotion.recall_per_class": {name: metrics[f"recall.{name}"] for name in EMOTIONS},
            "emotion.majority_baseline": float((labels == majority).mean()),
            "emotion.majority_class": EMOTIONS[majority],
            "rows": {"train": int((dataset.split == TRAIN).sum()), "test": int(len(labels))},
            "train_seconds_cpu": round(seconds, 1), "epochs": epochs, "width": width, "depth": depth}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    real = real_faces_quality(args.epochs, args.width, args.depth, args.seed)
    command = (f"uv run python bench/quality.py --epochs {args.epochs} --width {args.width} "
               f"--depth {args.depth} --seed {args.seed}")
    result = write_result("quality", value=real["emotion.accuracy"], baseline=real["emotion.majority_baseline"],
                          target=TARGET, unit="test accuracy (real FER subset)", command=command,
                          details={**real, "data": f"{REAL_FER_SUBSET.name}: real FER2013 faces, 5-class rows"})
    print(result)


if __name__ == "__main__":
    main()
