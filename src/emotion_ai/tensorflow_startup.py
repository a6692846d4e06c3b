"""Keeps TensorFlow's C++ start-up lines off the console.

Importing TensorFlow prints absl's "All log messages before absl::InitializeLog() ..." warning and
oneDNN's notice straight to file descriptor 2, before `TF_CPP_MIN_LOG_LEVEL` is read, so no setting
silences them. A finder on `sys.meta_path` runs TensorFlow's import with descriptor 2 sent to a
temporary file, then writes back every captured line that is not one of those notices.
`TF_CPP_MIN_LOG_LEVEL=0` (as `emotion-ai run --verbose` sets for its steps) turns the filter off and
shows TensorFlow's informational lines too.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with start_up_notices_dropped():
            self.loader.exec_module(module)


class _TensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the next finders would, with its loader wrapped."""

    def find_spec(self, name: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_start_up() -> None:
    """Sets TensorFlow's C++ log level to warnings (unless set) and, unless it is 0, drops the
    start-up notices of TensorFlow's import in this process and the processes it starts; once."""
    os.environ.setdefault(LOG_LEVEL_VARIABLE, QUIET_LEVEL)
    if os.environ[LOG_LEVEL_VARIABLE] == "0" or "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _TensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _TensorFlowFinder())
