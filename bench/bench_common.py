"""What the quality benchmarks share: where the shared data and the work folder are, a data file
read and split as the pipeline does it, a training in a throw-away MLflow store, and a mean with
its spread over seeds."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
SHARED_DATA = BENCH_DIR.parent.parent / "shared" / "data"
REAL_FER_SUBSET = SHARED_DATA / "fer2013_real_subset.csv.gz"
"""The superseded 732-face FER subset (bench/faces trains its small emotion model on it)."""
WORK = BENCH_DIR / "work"
VAL_FRACTION = 0.2
"""The share of faces held out for validation unless a benchmark says otherwise."""


def split_dataset(path: Path, table_format, build, seed: int, val_fraction: float = VAL_FRACTION):
    """A data file read, split (seed) into training, validation (`val_fraction`) and test (20 %)
    faces and fingerprinted the way the pipeline does it. The test faces do not depend on
    `val_fraction`: `assign_splits` draws them first."""
    from emotion_ai.data.formats import read_table
    from emotion_ai.data.sources import fetch
    from emotion_ai.settings import SplitSettings

    copy = WORK / "quality" / path.name
    provenance = fetch(str(path), copy).as_dict()
    return build(read_table(copy, table_format), SplitSettings(val_fraction, 0.2, seed), provenance)


def train(train_fn, dataset, settings, run_name: str, store: str = "quality"):
    """Trains in a run of a throw-away MLflow store (bench/work/<store>/state); returns the model
    and the wall-clock minutes."""
    import mlflow

    from emotion_ai.steps.tracking import local_tracking, use_tracking

    use_tracking(local_tracking(WORK / store / "state", f"bench-{store}"))
    started = time.perf_counter()
    with mlflow.start_run(run_name=run_name):
        model = train_fn(dataset, settings).model
    return model, (time.perf_counter() - started) / 60


def spread(values: list[float]) -> dict:
    """The mean of runs, their standard deviation and the values themselves."""
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "values": [float(v) for v in values],
    }
