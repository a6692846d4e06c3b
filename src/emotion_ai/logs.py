"""Logging for every process that runs our code (the CLI, pipeline steps, the server): the library
logs,
only the CLI prints. On a terminal, rich's handler; elsewhere (pipeline step logs, CI) plain lines
that
never wrap, so they stay whole for whoever searches them."""

from __future__ import annotations

import logging
import sys

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Routes the `emotion_ai.*` loggers at `level` to stderr, once per process. Only our own logger
    gets a
    handler: other libraries (KServe, uvicorn) keep configuring theirs as they would."""
    ours = logging.getLogger("emotion_ai")
    if ours.handlers:
        return
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    ours.addHandler(handler)
    ours.setLevel(level)
    ours.propagate = False
