"""The data a run used, as MLflow dataset inputs: what the UI's Datasets column and a logged model's
metrics point to (name, source, digest, schema and profile of each split)."""

from __future__ import annotations

import warnings

import mlflow
import mlflow.data
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.numpy_dataset import NumpyDataset

from emotion_ai.data.datasets import SPLIT_NAMES, TEST, TRAIN, VAL, FaceDataset

CONTEXTS = {TRAIN: "training", VAL: "validation", TEST: "testing"}
"""MLflow's usual context names for our splits."""
SYNTHETIC_PREFIX = "synthetic:"


def dataset_source(source: str) -> DatasetSource:
    """Where a data set came from: its file or URI, or the generator of synthetic faces."""
    if source.startswith(SYNTHETIC_PREFIX):
        return CodeDatasetSource({"generator": source.removeprefix(SYNTHETIC_PREFIX)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a local path matches two equal resolvers
        return resolve_dataset_source(source)


def split_dataset(dataset: FaceDataset, split_id: int) -> NumpyDataset:
    """One split as an MLflow data set named `<kind>-<split>` (e.g. `emotion-test`)."""
    images, targets = dataset.part(split_id)
    return mlflow.data.from_numpy(
        images,
        source=dataset_source(str(dataset.metadata.get("source", ""))),
        targets=targets,
        name=f"{dataset.metadata.get('kind', 'faces')}-{SPLIT_NAMES[split_id]}",
    )


def log_data_inputs(dataset: FaceDataset, split_ids: tuple[int, ...]) -> dict[int, NumpyDataset]:
    """Logs those splits as inputs of the active run; returns them by split id (a metric logged
    with one of them is linked to it)."""
    logged = {}
    for split_id in split_ids:
        logged[split_id] = split_dataset(dataset, split_id)
        mlflow.log_input(
            logged[split_id],
            context=CONTEXTS[split_id],
            tags={"sha256": str(dataset.metadata.get("sha256", ""))},
        )
    return logged
