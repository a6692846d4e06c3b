"""TensorFlow's import, as every process runs it: its C++ start-up lines kept off the console, and
the objects it (and the other heavy libraries' imports) made kept out of the garbage collector's
walks.

Importing TensorFlow prints absl's "All log messages before absl::InitializeLog() ..." warning and
oneDNN's notice straight to file descriptor 2, before `TF_CPP_MIN_LOG_LEVEL` is read, so no setting
silences them. A finder on `sys.meta_path` runs TensorFlow's import with descriptor 2 sent to a
temporary file, then writes back every captured line that is not one of those notices.
`TF_CPP_MIN_LOG_LEVEL=0` (as `emotion-ai run --verbose` sets for its steps) turns the filter off and
shows TensorFlow's informational lines too.

These imports leave hundreds of thousands of Python objects that live as long as the process. Each
full collection of the cyclic garbage collector walks them all, and so does the interpreter's exit,
in every process that imports them (a step, an infrastructure check, a CLI command). `gc.freeze()`
after each import moves them to the permanent generation, which no collection walks (Python's `gc`
documentation).
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from types import ModuleType

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"
"""TensorFlow's C++ log level unless the user set one: warnings and errors only."""
START_UP_NOTICES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\)"
    r"|^I\d{4} [\d:.]+ +\d+ (port|cpu_feature_guard)\.cc:\d+\]"
    r"|^To enable the following instructions:"
)


def filtered(captured: str) -> str:
    """The captured text without TensorFlow's start-up notices."""
    lines = captured.splitlines(keepends=True)
    return "".join(line for line in lines if not START_UP_NOTICES.search(line))


@contextmanager
def start_up_notices_dropped() -> Iterator[None]:
    """Descriptor 2 goes to a temporary file for the block; what is not a notice is written back."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            rest = filtered(capture.read().decode(errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()


FROZEN_AFTER_IMPORT = ("tensorflow", "keras", "mlflow", "great_expectations")
"""The libraries whose import is followed by `gc.freeze()`."""


class _WrappedLoader(importlib.abc.Loader):
    """Runs a library's import (TensorFlow's with its start-up notices dropped when `quiet`), then
    freezes the objects alive after it."""

    def __init__(self, loader: importlib.abc.Loader, quiet: bool) -> None:
        self.loader = loader
        self.quiet = quiet

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with start_up_notices_dropped() if self.quiet else nullcontext():
            self.loader.exec_module(module)
        gc.freeze()


class _LibraryFinder(importlib.abc.MetaPathFinder):
    """Finds the FROZEN_AFTER_IMPORT libraries as the next finders would, with their loaders
    wrapped."""

    def find_spec(self, name: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if name not in FROZEN_AFTER_IMPORT:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            quiet = name == "tensorflow" and os.environ[LOG_LEVEL_VARIABLE] != "0"
            spec.loader = _WrappedLoader(spec.loader, quiet)
        return spec


def prepare_tensorflow_import() -> None:
    """Sets TensorFlow's C++ log level to warnings (unless set); the FROZEN_AFTER_IMPORT libraries'
    imports in this process (and in the processes it starts, which run this too) are then followed
    by `gc.freeze()`, and TensorFlow's drops its start-up notices unless the level is 0; once."""
    os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LEVEL)
    if not any(isinstance(finder, _LibraryFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LibraryFinder())
