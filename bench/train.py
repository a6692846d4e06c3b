"""Training speed on the full shared data: faces per second of each model's training step, the
headline recipe's network against today's, in the same run.

Today's networks compute at 96x96 in float32 (width 32, depth 1, batch 32: the recipe recorded
before the full data sets came). Ours are the headline recipe's (`bench/quality.py --part fer2013`
and `--part fkd-teacher`, the commands in bench/results/quality.json): 48x48 compute
(`input_pool` 2), mixed bfloat16 where the CPU has it, batch 64. Each is fed by the real input
pipeline (augmentation included) on the real training faces; rounds alternate between the two, a
warm-up first, and the median round counts. The projected minutes are a full-data training's
epochs at that pace.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import full_data  # noqa: E402
from results_table import write_result  # noqa: E402

TODAY = {"width": 32, "depth": 1, "input_pool": 1, "precision": "float32", "batch_size": 32}
HEADLINE = {"width": 32, "depth": 2, "input_pool": 2, "precision": "auto", "batch_size": 64}
OURS = {"emotion": HEADLINE, "keypoints": HEADLINE}
EPOCHS = {"emotion": 40, "keypoints": 40}
"""The headline recipes' epochs (bench/results/quality.json's commands)."""
TARGET_MINUTES = {"emotion": 60, "keypoints": 30}


def _trainer(model: str, dataset, setup: dict, steps: int):
    """A function that runs `steps` training steps of `setup`'s network on the real pipeline."""
    import keras
    import numpy as np

    from emotion_ai.data.datasets import TRAIN
    from emotion_ai.modeling import networks
    from emotion_ai.modeling.input_pipeline import (
        emotion_augmentation,
        face_batches,
        keypoint_augmentation,
    )
    from emotion_ai.settings import AugmentSettings, ResNetConfig, TrainSettings

    settings = TrainSettings(batch_size=setup["batch_size"], precision=setup["precision"])
    keras.utils.set_random_seed(0)
    images, targets = dataset.part(TRAIN)
    augment = (
        emotion_augmentation(AugmentSettings())
        if model == "emotion"
        else keypoint_augmentation(AugmentSettings())
    )
    policy = networks.precision_policy(settings.precision, [], networks.cpu_computes_bfloat16())
    keras.mixed_precision.set_global_policy(policy)
    config = ResNetConfig(
        width=setup["width"], depth=setup["depth"], input_pool=setup["input_pool"]
    )
    if model == "emotion":
        network = networks.build_emotion_model(config)
        network.compile("adam", "sparse_categorical_crossentropy")
    else:
        network = networks.build_keypoint_model(config, np.nanmean(targets, axis=0))
        network.compile("adam", networks.masked_keypoint_loss)
    keras.mixed_precision.set_global_policy("float32")
    batches = face_batches(
        images, targets, settings.batch_size, shuffle=True, seed=0, augment=augment
    ).repeat()
    iterator = iter(batches)

    def run() -> float:
        started = time.perf_counter()
        for _ in range(steps):
            network.train_on_batch(*next(iterator))
        return steps * settings.batch_size / (time.perf_counter() - started)

    return run, policy


def measure(model: str, dataset, steps: int, rounds: int) -> dict:
    runs = {
        name: _trainer(model, dataset, setup, steps)
        for name, setup in (("today", TODAY), ("ours", OURS[model]))
    }
    rates = {name: [] for name in runs}
    for round_index in range(rounds + 1):
        for name, (run, _) in runs.items():
            rate = run()
            if round_index:
                rates[name].append(rate)
    return {
        name: {
            "faces_per_s": statistics.median(values),
            "rounds": values,
            "precision": runs[name][1],
        }
        for name, values in rates.items()
    }


def needed_speedup(emotion: dict) -> float:
    """The speed-up over today's network a headline emotion training within its target needs."""
    needed_rate = emotion["training_faces"] * emotion["epochs"] / (emotion["target_minutes"] * 60)
    return needed_rate / emotion["today"]["faces_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    datasets = {
        "emotion": full_data.fer2013_dataset(0.1, 0),
        "keypoints": full_data.fkd_teacher_dataset(0, 0.1),
    }
    from emotion_ai.data.datasets import TRAIN

    details = {}
    for model, dataset in datasets.items():
        measured = measure(model, dataset, args.steps, args.rounds)
        faces = len(dataset.part(TRAIN)[0])
        for name in ("today", "ours"):
            minutes = EPOCHS[model] * faces / measured[name]["faces_per_s"] / 60
            measured[name]["setup"] = TODAY if name == "today" else OURS[model]
            measured[name]["projected_train_minutes"] = minutes
        details[model] = {
            **measured,
            "training_faces": faces,
            "epochs": EPOCHS[model],
            "target_minutes": TARGET_MINUTES[model],
            "speedup": measured["ours"]["faces_per_s"] / measured["today"]["faces_per_s"],
        }
        print(model, {k: round(v["faces_per_s"]) for k, v in measured.items()}, flush=True)
    result = write_result(
        "train_speed",
        value=details["emotion"]["ours"]["faces_per_s"],
        baseline=details["emotion"]["today"]["faces_per_s"],
        target=round(needed_speedup(details["emotion"]), 2),
        unit="emotion training faces/s (ratio: the speed-up; target: the speed-up a 60-minute "
        "headline needs)",
        command=f"uv run python bench/train.py --steps {args.steps} --rounds {args.rounds}",
        details=details,
    )
    print(result)


if __name__ == "__main__":
    main()
