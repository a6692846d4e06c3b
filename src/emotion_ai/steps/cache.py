"""Content-addressed reuse of step outputs: a rerun with unchanged inputs, parameters and code
reuses what the step wrote last time (kfp.local has no caching of its own).

The key is the sha256 of the step name, its parameters, the bytes of every input file and the
source of this package, so changed data or changed code never hits a stale entry. An entry is
written beside its place and renamed into it, so a failed step never leaves one behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from emotion_ai.storage import atomic_path, write_json

PACKAGE_DIR = Path(__file__).parents[1]
"""The whole `emotion_ai` package: its source is part of every key."""
METADATA_FILE = "cache-entry.json"


def _hash_tree(digest: hashlib._Hash, path: Path) -> None:
    """Feeds the relative names and content digests of every file under `path` (or `path` itself)
    into `digest`."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())


@cache
def code_fingerprint() -> str:
    """sha256 of this package's source: a code change invalidates every cache entry."""
    digest = hashlib.sha256()
    for source in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(source.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def cache_key(step: str, inputs: list[Path], parameters: dict[str, object]) -> str:
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            {"step": step, "code": code_fingerprint(), "parameters": parameters},
            sort_keys=True,
            default=str,
        ).encode()
    )
    for path in inputs:
        _hash_tree(digest, path)
    return digest.hexdigest()


@dataclass(frozen=True)
class StepCache:
    """Cache entries under `root/<step>/<key>/<output name>/`."""

    root: Path

    def _entry(self, step: str, key: str) -> Path:
        return self.root / step / key

    def restore(self, step: str, key: str, outputs: dict[str, Path]) -> dict | None:
        """Copies a cached entry into `outputs` and returns its metadata; None on a miss."""
        entry = self._entry(step, key)
        if not (entry / METADATA_FILE).is_file():
            return None
        for name, target in outputs.items():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copytree(entry / name, target, dirs_exist_ok=True)
        return json.loads((entry / METADATA_FILE).read_text())

    def store(self, step: str, key: str, outputs: dict[str, Path], metadata: dict) -> None:
        """Saves `outputs` as the entry for `key`, atomically (complete or absent)."""
        entry = self._entry(step, key)
        if entry.exists():
            return
        with atomic_path(entry) as staged:
            for name, source in outputs.items():
                shutil.copytree(source, staged / name)
            write_json(staged / METADATA_FILE, {"key": key, **metadata})
