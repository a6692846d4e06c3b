"""Export to serving: TF Serving's versioned layout `<model_base_path>/<model_name>/<version>/`.

The base path is a local folder or `s3://bucket/prefix`. A half-written version is never
visible: locally it is written under a dot-name (TF Serving and our server ignore names that
are not numbers) and renamed into place; on S3, where nothing renames atomically, a version
counts as complete only once its `saved_model.pb` exists, which is uploaded last and
deleted first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from emotion_ai.locations import S3Location, location
from emotion_ai.release.warmup import write_warmup_requests
from emotion_ai.storage import atomic_path, write_text_atomically

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)
_IGNORED_NAMES: set[str] = set()

SAVED_MODEL_FILE = "saved_model.pb"
LABELS_FILE = "labels.json"
"""`<model_base_path>/<model_name>/labels.json`: version labels such as `{"stable": 3, "canary": 4}`
(TF Serving's `version_labels`), kept beside the versions so that every server reads the same
ones."""
STABLE = "stable"
"""The label that follows the champion; our server answers requests naming no version with it."""


def version_number(name: str) -> int | None:
    """The version a folder name stands for: ASCII digits only (`"²".isdigit()` is true, yet no
    version)."""
    return int(name) if name.isascii() and name.isdigit() else None


def _versions_among(model_name: str, names: list[str]) -> list[int]:
    """The version numbers among a model's entry names; any other name that is no hidden or known
    file is ignored, with a warning the first time it is seen."""
    numbers = []
    for name in names:
        number = version_number(name)
        if number is not None:
            numbers.append(number)
        elif not name.startswith(".") and name != LABELS_FILE and name not in _IGNORED_NAMES:
            _IGNORED_NAMES.add(name)
            logger.warning(
                "ignored %r under %s: a version folder is named by a number", name, model_name
            )
    return sorted(numbers)


class LocalLayout:
    """Versions as folders under a local base path."""

    def __init__(self, base_path: Path) -> None:
        self.base_path = base_path

    def versions(self, model_name: str) -> list[int]:
        model_dir = self.base_path / model_name
        if not model_dir.is_dir():
            return []
        return _versions_among(
            model_name, [entry.name for entry in model_dir.iterdir() if entry.is_dir()]
        )

    def staging_dir(self, model_name: str) -> Path:
        """Where a version is written before it is published (same file system: rename is
        atomic)."""
        staging = self.base_path / model_name / f".staging-{uuid.uuid4().hex[:8]}"
        staging.parent.mkdir(parents=True, exist_ok=True)
        return staging

    def publish(self, local_dir: Path, model_name: str, version: int) -> str:
        target = self.base_path / model_name / str(version)
        os.replace(local_dir, target)
        return str(target)

    def remove(self, model_name: str, version: int) -> None:
        """Renamed aside first, so the version disappears at once."""
        target = self.base_path / model_name / str(version)
        if target.is_dir():
            retired = self.base_path / model_name / f".{version}.retired-{uuid.uuid4().hex[:8]}"
            os.replace(target, retired)
            shutil.rmtree(retired, ignore_errors=True)

    def local_copy(self, model_name: str, version: int) -> Path:
        return self.base_path / model_name / str(version)

    def marker(self, model_name: str, version: int) -> tuple:
        """What changes when a version's files change: each file's path, size and modification
        time."""
        root = self.base_path / model_name / str(version)
        files = sorted(path for path in root.rglob("*") if path.is_file())
        return tuple(
            (path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns)
            for path in files
            for stat in [path.stat()]
        )

    def read_labels(self, model_name: str) -> str | None:
        path = self.base_path / model_name / LABELS_FILE
        return path.read_text() if path.is_file() else None

    def write_labels(self, model_name: str, text: str) -> None:
        write_text_atomically(self.base_path / model_name / LABELS_FILE, text)


class S3Layout:
    """Versions as key prefixes under `s3://bucket/prefix` (boto3; endpoint from
    AWS_ENDPOINT_URL)."""

    def __init__(self, place: S3Location) -> None:
        self.place = place
        self._cache: Path | None = None

    def versions(self, model_name: str) -> list[int]:
        model_prefix = self.place.key(model_name) + "/"
        complete = {
            version
            for item in self.place.objects(model_prefix)
            for version, _, rest in [item["Key"].removeprefix(model_prefix).partition("/")]
            if rest == SAVED_MODEL_FILE
        }
        return _versions_among(model_name, sorted(complete))

    def staging_dir(self, model_name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{model_name}-"))

    def publish(self, local_dir: Path, model_name: str, version: int) -> str:
        files = sorted(path for path in local_dir.rglob("*") if path.is_file())
        files.sort(key=lambda path: path.name == SAVED_MODEL_FILE)
        for path in files:
            self.place.upload(
                path, self.place.key(model_name, version, path.relative_to(local_dir).as_posix())
            )
        return f"s3://{self.place.bucket}/{self.place.key(model_name, version)}"

    def remove(self, model_name: str, version: int) -> None:
        prefix = self.place.key(model_name, version) + "/"
        self.place.delete(prefix + SAVED_MODEL_FILE)
        for item in self.place.objects(prefix):
            self.place.delete(item["Key"])

    def _objects(self, model_name: str, version: int) -> list[dict]:
        return self.place.objects(self.place.key(model_name, version) + "/")

    def marker(self, model_name: str, version: int) -> tuple:
        """What changes when a version's files change: each object's key and ETag."""
        return tuple(
            sorted((item["Key"], item["ETag"]) for item in self._objects(model_name, version))
        )

    def local_copy(self, model_name: str, version: int) -> Path:
        """Downloads a version into a local cache (TF loads SavedModels from local files), once for
        each content: the cache folder is named by the version and its objects' ETags."""
        self._cache = self._cache or Path(tempfile.mkdtemp(prefix="emotion-ai-models-"))
        objects = self._objects(model_name, version)
        content = repr(sorted((item["Key"], item["ETag"]) for item in objects)).encode()
        target = self._cache / model_name / f"{version}-{hashlib.sha256(content).hexdigest()[:12]}"
        if not target.is_dir():
            prefix = self.place.key(model_name, version) + "/"
            with atomic_path(target) as partial:
                for item in objects:
                    destination = partial / item["Key"][len(prefix) :]
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    self.place.download(item["Key"], destination)
        return target

    def read_labels(self, model_name: str) -> str | None:
        return self.place.read_text(self.place.key(model_name, LABELS_FILE))

    def write_labels(self, model_name: str, text: str) -> None:
        self.place.write_text(self.place.key(model_name, LABELS_FILE), text)


def layout(base_path: str | Path) -> LocalLayout | S3Layout:
    """The layout of the location `base_path` names: a local folder or an S3 prefix."""
    place = location(base_path)
    if isinstance(place, S3Location):
        return S3Layout(place)
    folder = place.on_this_machine()
    if folder is None:
        raise ValueError(f"models are served from a folder or s3://bucket/prefix, not {base_path}")
    return LocalLayout(folder)


def read_labels(base_path: str | Path, model_name: str) -> dict[str, int]:
    """The version labels of `model_name`, e.g. `{"stable": 3}` ({} when none are set)."""
    text = layout(base_path).read_labels(model_name)
    if text is None:
        return {}
    labels = json.loads(text)
    if not isinstance(labels, dict) or not all(
        isinstance(v, int) and v > 0 for v in labels.values()
    ):
        raise ValueError(
            f"{base_path}/{model_name}/{LABELS_FILE} must map label names to version numbers"
        )
    return labels


def set_label(
    base_path: str | Path, model_name: str, label: str, version: int | None
) -> dict[str, int]:
    """Points `label` at `version` (None removes it); returns all labels."""
    labels = {name: v for name, v in read_labels(base_path, model_name).items() if name != label}
    if version is not None:
        labels[label] = version
    layout(base_path).write_labels(model_name, json.dumps(labels, indent=2, sort_keys=True))
    return labels


def versions(base_path: str | Path, model_name: str) -> list[int]:
    """The complete versions under `<base_path>/<model_name>/`, oldest first."""
    return layout(base_path).versions(model_name)


def export_saved_model(
    model: keras.Model,
    base_path: str | Path,
    model_name: str,
    version: int,
    check: Callable[[Path], object] | None = None,
) -> str:
    """Writes `model` as a SavedModel version with its warm-up requests; an existing version is
    left as it is. `check(export_dir)`, when given, sees the finished export before it is published
    and raises to stop it."""
    target = layout(base_path)
    if version in target.versions(model_name):
        return f"{base_path}/{model_name}/{version}"
    staging = target.staging_dir(model_name)
    try:
        model.export(str(staging), format="tf_saved_model", verbose=False)
        write_warmup_requests(staging, model_name, model.inputs[0].name)
        if check is not None:
            check(staging)
        return target.publish(staging, model_name, version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_version(base_path: str | Path, model_name: str, version: int) -> None:
    """Withdraws a published version."""
    layout(base_path).remove(model_name, version)


def retire_versions_above(
    base_path: str | Path, model_name: str, version: int, protected: set[int] = frozenset()
) -> list[int]:
    """Withdraws every published version newer than `version` (after a rollback), except protected
    ones."""
    newer = [v for v in versions(base_path, model_name) if v > version and v not in protected]
    for doomed in newer:
        remove_version(base_path, model_name, doomed)
    return newer


def prune_versions(
    base_path: str | Path, model_name: str, keep: int, protected: set[int]
) -> list[int]:
    """Deletes all but the newest `keep` versions (never a protected one); returns those deleted."""
    existing = versions(base_path, model_name)
    doomed = [v for v in existing[:-keep] if v not in protected] if keep > 0 else []
    for version in doomed:
        remove_version(base_path, model_name, version)
    return doomed
