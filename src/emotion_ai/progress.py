"""How far a running training step is, shared through a small file while the step runs: kfp.local
hands over a step's output only once the step has ended, so `emotion-ai run` reads these files to
show epoch k/N, the latest validation figure and the time left, and to grow the step's log.

The command that starts the steps names the folder in EMOTION_AI_PROGRESS_DIR; a step started
without it (tests, a cluster) writes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from emotion_ai.storage import write_text_atomically

PROGRESS_DIR_ENV = "EMOTION_AI_PROGRESS_DIR"


@dataclass(frozen=True)
class Progress:
    """One training step after `epoch` of `epochs` epochs."""

    epoch: int
    epochs: int
    figure: str
    """The latest validation figure in words (`val accuracy 0.612`)."""
    seconds_left: float

    def line(self) -> str:
        minutes = self.seconds_left / 60
        left = f"{minutes:.0f} min left" if minutes >= 1 else f"{self.seconds_left:.0f} s left"
        return f"epoch {self.epoch}/{self.epochs}, {self.figure}, about {left}"


def progress_dir() -> Path | None:
    folder = os.environ.get(PROGRESS_DIR_ENV, "")
    return Path(folder) if folder else None


def write_progress(step: str, progress: Progress) -> None:
    """Records `progress` for `step` where the starting command reads it (nowhere without one)."""
    folder = progress_dir()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomically(folder / f"{step}.json", json.dumps(asdict(progress)))


def read_progress(folder: Path, step: str) -> Progress | None:
    """The progress `step` last recorded in `folder`, if any."""
    try:
        return Progress(**json.loads((folder / f"{step}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
