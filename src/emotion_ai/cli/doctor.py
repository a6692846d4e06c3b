"""`emotion-ai doctor`: what interrupted runs leave behind in a state folder, reported and
repaired."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emotion_ai.cli.options import (
    DEFAULT_STATE_DIR,
    StateDir,
    console,
    registry_errors,
    tracking_settings,
)
from emotion_ai.storage import partials_under, remove_path

PARTIAL_AGE_SECONDS = 3600
"""A half-written file this old belongs to no write still under way."""


def doctor(
    repair: Annotated[
        bool, typer.Option(help="Repair what is found (--no-repair only reports it).")
    ] = True,
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Find, and repair, what interrupted runs leave behind: MLflow runs left RUNNING by a process
    that has ended (marked FAILED with the reason), training checkpoints and whether `--resume` may
    use them (those it may not are removed), and half-written files older than an hour (removed)."""
    from emotion_ai.steps.tracking import fail_abandoned_runs

    table = Table("found", "where", "what happens", title=f"emotion-ai doctor: {state_dir}")
    with registry_errors("doctor"):
        for run_id in fail_abandoned_runs(tracking_settings(state_dir), repair):
            table.add_row(
                "run left RUNNING", f"MLflow run {run_id}", _done(repair, "marked FAILED")
            )
        for row in _checkpoints(state_dir, repair):
            table.add_row(*row)
    for partial in _old_partials(state_dir):
        if repair:
            remove_path(partial)
        table.add_row("half-written file", str(partial), _done(repair, "removed"))
    console.print(table if table.row_count else f"{state_dir}: nothing to repair")


def _done(repair: bool, action: str) -> str:
    return action if repair else f"would be {action}"


def _checkpoints(state_dir: Path, repair: bool) -> list[tuple[str, str, str]]:
    """A row for each training checkpoint: whether its run may be resumed (else it is removed)."""
    from emotion_ai.modeling.checkpoints import STATE_FILE, Checkpoints

    states = sorted(state_dir.rglob(f"checkpoints/*/{STATE_FILE}"))
    if not states:
        return []  # TensorFlow is imported only where there are checkpoints to look at
    from emotion_ai.steps.model_steps import resumable

    rows = []
    for state in states:
        saved = Checkpoints(state.parent).saved()
        checkpoints = Checkpoints(state.parent, saved["fingerprint"] if saved else "")
        if saved and resumable(state.parent.name, checkpoints):
            rows.append(("checkpoint", str(state.parent), "kept: `--resume` continues from it"))
        else:
            if repair:
                checkpoints.clear()
            rows.append(("checkpoint", str(state.parent), _done(repair, "removed (not resumable)")))
    return rows


def _old_partials(state_dir: Path) -> list[Path]:
    cutoff = time.time() - PARTIAL_AGE_SECONDS
    return [
        path
        for path in partials_under(state_dir)
        if path.exists() and path.lstat().st_mtime < cutoff
    ]
