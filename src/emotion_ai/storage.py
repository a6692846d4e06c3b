"""Local files written whole or not at all: atomic writes (files and folders), JSON in and out, and
finding what an interrupted writer left behind. Remote URIs are `locations`' job."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def remove_path(path: Path) -> None:
    """Removes a file or a whole folder, whichever `path` is (nothing when it is gone)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


PARTIAL_MARK = ".partial-"
"""In the name of everything `atomic_path` is still writing (or left behind when killed)."""


def partials_under(root: Path) -> Iterator[Path]:
    """Files and folders under `root` that `atomic_path` began and never renamed into place."""
    return root.rglob(f".*{PARTIAL_MARK}*")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A path beside `path` to write a file or folder to; renamed onto `path` when the block
    succeeds and removed when it fails, so readers see the whole result or none of it. The partial
    name is hidden and unique, so concurrent writers never meet and TF Serving never takes it for a
    version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}{PARTIAL_MARK}{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield partial
    except BaseException:
        remove_path(partial)
        raise
    os.replace(partial, path)


def write_text_atomically(path: Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text)


def write_json(path: Path, content: dict) -> None:
    """Writes `content` as JSON atomically (readers never see half a file). Only JSON's own types
    are taken: anything else (a NumPy value, a path) is a TypeError, never silently turned into
    text."""
    write_text_atomically(path, json.dumps(content, indent=2))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
