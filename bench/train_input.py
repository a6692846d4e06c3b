"""Training throughput through the real input pipeline vs the same model fed pre-loaded tensors.

Ours: uint8 48x48 FER-style faces through `face_batches` (cache, shuffle, batch, float conversion,
flip and light augmentation, one warp that rotates, shifts, scales and upsamples to 96x96,
prefetch). Baseline: the same model, `fit` on float32 96x96 arrays already in memory (no conversion,
no augmentation). Both are timed epoch by epoch, interleaved, after a warm-up epoch each; the median
epoch counts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import keras  # noqa: E402
from results_table import write_result  # noqa: E402

TARGET = 0.95


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def measure(faces_count: int, batch_size: int, rounds: int, width: int) -> dict:
    import numpy as np

    from emotion_ai.data.synthetic import synthetic_faces
    from emotion_ai.modeling.input_pipeline import (
        as_model_input,
        emotion_augmentation,
        face_batches,
    )
    from emotion_ai.modeling.networks import build_emotion_model
    from emotion_ai.settings import AugmentSettings, ResNetConfig

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, faces_count)
    faces96, _ = synthetic_faces(labels, rng)
    faces48 = faces96[:, ::2, ::2].copy()
    preloaded = as_model_input(faces48)
    pipeline = face_batches(
        faces48,
        labels,
        batch_size,
        shuffle=True,
        seed=0,
        augment=emotion_augmentation(AugmentSettings()),
    )
    models = {}
    for name in ("pipeline", "preloaded"):
        keras.utils.set_random_seed(0)
        models[name] = build_emotion_model(ResNetConfig(width=width))
        models[name].compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    fits = {
        "pipeline": lambda timer: models["pipeline"].fit(
            pipeline, epochs=1, verbose=0, callbacks=[timer]
        ),
        "preloaded": lambda timer: models["preloaded"].fit(
            preloaded,
            labels,
            batch_size=batch_size,
            epochs=1,
            shuffle=True,
            verbose=0,
            callbacks=[timer],
        ),
    }
    seconds = {name: [] for name in fits}
    for round_index in range(rounds + 1):
        for name, fit in fits.items():
            timer = EpochTimer()
            fit(timer)
            if round_index:
                seconds[name].extend(timer.seconds)
    return {name: faces_count / statistics.median(values) for name, values in seconds.items()} | {
        "epoch_seconds": seconds
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--faces", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args()
    measured = measure(args.faces, args.batch_size, args.rounds, args.width)
    command = (
        f"uv run python bench/train_input.py --faces {args.faces} --batch-size {args.batch_size} "
        f"--rounds {args.rounds} --width {args.width}"
    )
    result = write_result(
        "train_input",
        value=measured["pipeline"],
        baseline=measured["preloaded"],
        target=TARGET,
        unit="images/s",
        command=command,
        details={
            "epoch_seconds": measured["epoch_seconds"],
            "faces": args.faces,
            "batch_size": args.batch_size,
            "width": args.width,
            "data": "generated 48x48 FER-style faces (emotion_ai.synthetic)",
        },
    )
    print(result)


if __name__ == "__main__":
    main()
