"""What the pipeline steps share: the files they exchange and reuse of cached outputs.

Every step runs inside a nested MLflow run under the pipeline's parent run, and writes its
outputs only into its own output directories, so a failed step leaves nothing behind that
a later step could mistake for a result.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow

from emotion_ai.steps.cache import StepCache

RAW_FILE = "data.csv"
SOURCE_FILE = "source.json"
DATASET_FILE = "dataset.npz"
PROFILE_FILE = "profile.json"
LINEAGE_FILE = "lineage.json"
DECISIONS_FILE = "decisions.json"
REJECTED_ROWS_FILE = "rejected_rows.csv"
"""Beside a data set: the file rows validation set aside, and why."""
CACHE_TAG = "emotion_ai.cache"
logger = logging.getLogger(__name__)


def reuse_cached(cache_root: str, step: str, key: str, outputs: dict[str, Path]) -> bool:
    """Restores the step's outputs from the cache when `key` was seen before, and says so."""
    if not cache_root:
        return False
    entry = StepCache(Path(cache_root)).restore(step, key, outputs)
    mlflow.set_tag(CACHE_TAG, "hit" if entry else "miss")
    if entry is None:
        return False
    mlflow.set_tags({f"{CACHE_TAG}.key": key, f"{CACHE_TAG}.source_run_id": entry["run_id"]})
    logger.info(
        "[cache] %s: inputs, parameters and code unchanged; reusing the outputs of MLflow run %s "
        "(key %s)",
        step,
        entry["run_id"],
        key[:12],
    )
    return True


def remember_outputs(cache_root: str, step: str, key: str, outputs: dict[str, Path]) -> None:
    if cache_root:
        StepCache(Path(cache_root)).store(
            step, key, outputs, {"run_id": mlflow.active_run().info.run_id}
        )
