"""A fault of the state folder itself, in one line: a corrupt or unreadable tracking database, a
read-only folder, a full disk. Each says which file or folder and what to do, in place of the
tracebacks SQLAlchemy, MLflow and the operating system would print."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from pathlib import Path

CORRUPT_DATABASE = ("database disk image is malformed", "file is not a database")
READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
FULL_DATABASE = "database or disk is full"
"""SQLite's words for a full disk (its error is no OSError)."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every error it was raised from or during, once each."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def state_dir_of_command(argv: list[str]) -> Path:
    """The state folder the command line names (`--state-dir`), else EMOTION_AI_STATE_DIR or
    `.state`."""
    for index, argument in enumerate(argv):
        if argument == "--state-dir" and index + 1 < len(argv):
            return Path(argv[index + 1])
        if argument.startswith("--state-dir="):
            return Path(argument.split("=", 1)[1])
    return Path(os.environ.get("EMOTION_AI_STATE_DIR", ".state"))


def state_fault(error: BaseException, state_dir: Path) -> str | None:
    """One line naming the fault behind `error` and what to do, or None when it is no state
    fault."""
    for cause in _chain(error):
        text = str(cause)
        if any(words in text for words in CORRUPT_DATABASE):
            return (
                f"the tracking database {state_dir / 'mlflow.db'} is corrupt ({_words(text)}): "
                f"`emotion-ai doctor --state-dir {state_dir}` sets it aside, or use another "
                "--state-dir (EMOTION_AI_STATE_DIR)"
            )
        full = isinstance(cause, OSError) and cause.errno == errno.ENOSPC
        if full or FULL_DATABASE in text:
            where = getattr(cause, "filename", None) or state_dir
            return (
                f"no space left on the device of {where}: free some "
                "(`emotion-ai doctor` removes what failed runs left) or use a --state-dir on "
                "another disk"
            )
        if isinstance(cause, OSError) and cause.errno in READ_ONLY:
            return (
                f"cannot write {cause.filename or state_dir} ({cause.strerror}): the state folder "
                f"must be writable; use --state-dir (EMOTION_AI_STATE_DIR) to choose another"
            )
    return None


def _words(text: str) -> str:
    """The database error's own words, without the SQL statement SQLAlchemy appends."""
    return next(words for words in CORRUPT_DATABASE if words in text)


def run_with_state_faults(command, argv: list[str] | None = None) -> None:
    """Runs the command line; a state fault ends it with its one line and exit status 1."""
    from emotion_ai.cli.options import console

    try:
        command()
    except Exception as error:  # noqa: BLE001 - only state faults are turned into a line
        line = state_fault(error, state_dir_of_command(argv if argv is not None else sys.argv))
        if line is None:
            raise
        console.print(f"[red]{line}[/]", soft_wrap=True)
        raise SystemExit(1) from error
