"""The compact validated data set handed to training: uint8 faces, targets, a split, metadata.

Stored as an uncompressed `.npz` (no pickles: loaded with allow_pickle=False), written
aside and renamed into place so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from emotion_ai.data.formats import DataFormatError, Table
from emotion_ai.faces import EMOTIONS, FER_CODE_TO_CLASS, KEYPOINT_COLUMNS
from emotion_ai.settings import SplitSettings
from emotion_ai.storage import atomic_path

logger = logging.getLogger(__name__)

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = ("train", "val", "test")
FER_USAGE_SPLITS = {"Training": TRAIN, "PublicTest": VAL, "PrivateTest": TEST}
_FER_CLASS_LOOKUP = np.full(max(FER_CODE_TO_CLASS) + 1, -1, dtype=np.int64)
_FER_CLASS_LOOKUP[list(FER_CODE_TO_CLASS)] = list(FER_CODE_TO_CLASS.values())


@dataclass
class FaceDataset:
    """Faces (n, h, w) uint8, one target array (labels or keypoints), split ids, metadata."""

    images: np.ndarray
    targets: np.ndarray
    split: np.ndarray
    metadata: dict

    def part(self, split_id: int) -> tuple[np.ndarray, np.ndarray]:
        mask = self.split == split_id
        return self.images[mask], self.targets[mask]


def save_dataset(dataset: FaceDataset, path: Path) -> Path:
    """Writes the data set atomically (to a temporary name, then renamed)."""
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        np.savez(
            handle,
            images=dataset.images,
            targets=dataset.targets,
            split=dataset.split,
            metadata=np.array(json.dumps(dataset.metadata)),
        )
    return path


def load_dataset(path: Path) -> FaceDataset:
    with np.load(path, allow_pickle=False) as data:
        return FaceDataset(
            data["images"], data["targets"], data["split"], json.loads(str(data["metadata"]))
        )


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """A group id per image; byte-identical images share one."""
    flat = np.ascontiguousarray(images.reshape(len(images), int(np.prod(images.shape[1:]))))
    as_bytes = flat.view(np.dtype((np.void, flat.shape[1] * flat.itemsize))).ravel()
    _, group = np.unique(as_bytes, return_inverse=True)
    return group.ravel()


def assign_splits(images: np.ndarray, strata: np.ndarray, settings: SplitSettings) -> np.ndarray:
    """Deterministic split ids, stratified by `strata`; duplicates always share a split."""
    group = duplicate_groups(images)
    first_of_group = np.unique(group, return_index=True)[1]
    group_strata = strata[first_of_group]
    rng = np.random.default_rng(settings.seed)
    group_split = np.full(len(first_of_group), TRAIN, dtype=np.int8)
    for stratum in np.unique(group_strata):
        members = rng.permutation(np.flatnonzero(group_strata == stratum))
        n_test = int(round(len(members) * settings.test_fraction))
        n_val = int(round(len(members) * settings.val_fraction))
        group_split[members[:n_test]] = TEST
        group_split[members[n_test : n_test + n_val]] = VAL
    return group_split[group]


def split_counts(split: np.ndarray) -> dict[str, int]:
    return {name: int((split == i).sum()) for i, name in enumerate(SPLIT_NAMES)}


def keypoint_dataset(table: Table, settings: SplitSettings, provenance: dict) -> FaceDataset:
    """FKD rows as faces and (n, 30) keypoints; missing keypoints stay NaN (masked in the loss)."""
    images = table.images.reshape(-1, 96, 96)
    keypoints = table.rows[list(KEYPOINT_COLUMNS)].to_numpy(dtype=np.float32)
    complete = ~np.isnan(keypoints).any(axis=1)
    split = assign_splits(images, complete.astype(int), settings)
    metadata = {
        **provenance,
        "kind": "keypoints",
        "rows": len(images),
        "complete_rows": int(complete.sum()),
        "split": split_counts(split),
        "split_settings": vars(settings),
    }
    return FaceDataset(images, keypoints, split, metadata)


def _usage_of_rows(table: Table) -> np.ndarray:
    """Each row's Usage as split ids (Training, PublicTest, PrivateTest -> train, val, test)."""
    if "Usage" not in table.columns:
        raise DataFormatError(
            table.source, "a split by Usage needs the Usage column", column="Usage"
        )
    usage = table.rows["Usage"].str.strip().map(FER_USAGE_SPLITS)
    if usage.isna().any():
        first = int(usage.isna().to_numpy().argmax())
        raise DataFormatError(
            table.source,
            f"Usage {table.rows['Usage'].iloc[first]!r} is not one of {sorted(FER_USAGE_SPLITS)}",
            row=int(table.rows["row"].iloc[first]),
            column="Usage",
        )
    return usage.to_numpy().astype(np.int8)


def usage_splits(
    table: Table, kept: np.ndarray, labels: np.ndarray, settings: SplitSettings
) -> np.ndarray:
    """Split ids of the `kept` rows from FER's Usage column: Training, PublicTest, PrivateTest are
    train, val, test. A file without PrivateTest rows (Kaggle's test rows held back) tests on
    PublicTest instead, and validation is `val_fraction` of the Training rows (stratified, seeded,
    duplicates together); a file with neither is refused."""
    split = _usage_of_rows(table)[kept]
    if (split == TEST).any():
        logger.info("split by Usage: Training, PublicTest, PrivateTest rows are train, val, test")
        return split
    if not (split == VAL).any():
        raise DataFormatError(
            table.source,
            "a split by Usage needs PrivateTest or PublicTest rows of the kept emotions to test on "
            "(found only Training rows): split by fractions instead (no --split-by-usage)",
            column="Usage",
        )
    training = np.flatnonzero(split == TRAIN)
    within = replace(settings, test_fraction=0.0)
    images = table.images.reshape(len(table.rows), -1)[kept]
    split[split == VAL] = TEST
    split[training] = assign_splits(images[training], labels[training], within)
    logger.info(
        "split by Usage: no PrivateTest rows, so PublicTest rows are the test split and "
        "validation is %.0f%% of the Training rows",
        100 * settings.val_fraction,
    )
    return split


def emotion_dataset(table: Table, settings: SplitSettings, provenance: dict) -> FaceDataset:
    """FER rows mapped to our 5 classes (Fear and Neutral dropped), faces kept at 48x48."""
    codes = table.rows["emotion"].to_numpy()
    kept = np.isin(codes, list(FER_CODE_TO_CLASS))
    images = table.images.reshape(-1, 48, 48)[kept]
    labels = _FER_CLASS_LOOKUP[codes[kept].astype(np.int64)]
    if settings.use_fer_usage:
        split = usage_splits(table, kept, labels, settings)
    else:
        split = assign_splits(images, labels, settings)
    class_counts = {name: int((labels == i).sum()) for i, name in enumerate(EMOTIONS)}
    metadata = {
        **provenance,
        "kind": "emotion",
        "rows": int(kept.sum()),
        "dropped_rows": int((~kept).sum()),
        "class_counts": class_counts,
        "label_mapping": {"fer_code_to_class": FER_CODE_TO_CLASS, "classes": list(EMOTIONS)},
        "split": split_counts(split),
        "split_settings": vars(settings),
    }
    return FaceDataset(images, labels, split, metadata)
