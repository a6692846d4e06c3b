"""Export to serving: TF Serving's versioned layout `<model_base_path>/<model_name>/<version>/`.

A version is written aside under a dot-name (TF Serving and our server ignore names that
are not numbers) and renamed into place, so a server never sees half a SavedModel.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import keras

SERVING_ENDPOINT = "serve"


def versions(base_path: Path, model_name: str) -> list[int]:
    """The complete versions under `<base_path>/<model_name>/`, oldest first."""
    model_dir = base_path / model_name
    if not model_dir.is_dir():
        return []
    return sorted(int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit() and entry.is_dir())


def export_saved_model(model: keras.Model, base_path: Path, model_name: str, version: int) -> Path:
    """Writes `model` as a SavedModel version; an existing version is left as it is."""
    target = base_path / model_name / str(version)
    if target.is_dir():
        return target
    staging = base_path / model_name / f".{version}.partial-{uuid.uuid4().hex[:8]}"
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        model.export(str(staging), format="tf_saved_model", verbose=False)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def prune_versions(base_path: Path, model_name: str, keep: int, protected: set[int]) -> list[int]:
    """Deletes all but the newest `keep` versions (never a protected one); returns those deleted."""
    existing = versions(base_path, model_name)
    doomed = [v for v in existing[:-keep] if v not in protected] if keep > 0 else []
    for version in doomed:
        remove_version(base_path, model_name, version)
    return doomed


def remove_version(base_path: Path, model_name: str, version: int) -> None:
    """Withdraws a published version: renamed aside first, so it disappears at once."""
    target = base_path / model_name / str(version)
    if target.is_dir():
        retired = base_path / model_name / f".{version}.retired-{uuid.uuid4().hex[:8]}"
        os.replace(target, retired)
        shutil.rmtree(retired, ignore_errors=True)


def retire_versions_above(base_path: Path, model_name: str, version: int) -> list[int]:
    """Withdraws every published version newer than `version` (after a rollback)."""
    newer = [v for v in versions(base_path, model_name) if v > version]
    for doomed in newer:
        remove_version(base_path, model_name, doomed)
    return newer
