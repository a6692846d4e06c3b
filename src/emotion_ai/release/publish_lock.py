"""One writer of a served layout and its registry aliases at a time: `run`'s register step,
`promote`, `rollback`, `label` and the server's champion follower each hold a file lock beside the
layout (`<model_base_path>/.publish.lock`, a well-kept library's: `filelock`) while they change
them. A second one waits, saying so, or fails in one line when asked not to wait. On an S3 layout no
lock is taken: there the registry alias is the source of truth, and the follower converges on it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

logger = logging.getLogger(__name__)
LOCK_FILE = ".publish.lock"


class PublishBusy(RuntimeError):
    """Another writer holds the layout, and this one was told not to wait."""


@contextmanager
def publishing(base_path: str | Path, wait: bool = True) -> Iterator[None]:
    """Holds the layout's lock for the block (re-entrant within one process)."""
    if "://" in str(base_path):
        yield
        return
    folder = Path(base_path)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE, is_singleton=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise PublishBusy(
                f"{folder} is being published by another run or promote ({lock.lock_file} is "
                "held); try again when it has finished, or wait for it without --no-wait"
            ) from None
        logger.warning("waiting for %s: another run or promote is publishing there", folder)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
