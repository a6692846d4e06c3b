"""The suite's own scheduling (see LONGEST_FILES_FIRST in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from conftest import LONGEST_FILES_FIRST


def test_the_files_put_first_exist():
    """A renamed or removed file would silently fall back to the end of the queue."""
    missing = [name for name in LONGEST_FILES_FIRST if not (Path(__file__).parent / name).is_file()]
    assert not missing, f"LONGEST_FILES_FIRST names files that are not in tests/: {missing}"
