"""`emotion-ai doctor`: what interrupted runs leave behind in a state folder, reported and
repaired."""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
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

DATABASE_FILE = "mlflow.db"
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
    for row in _corrupt_database(state_dir, repair):
        table.add_row(*row)
    for row in _failed_pipeline_outputs(state_dir, repair):
        table.add_row(*row)
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


def _corrupt_database(state_dir: Path, repair: bool) -> list[tuple[str, str, str]]:
    """A row when the state's own tracking database (SQLite) fails SQLite's integrity check; it
    is moved aside (kept, renamed), so runs and the registry start afresh while the served models
    stay."""
    database = state_dir / DATABASE_FILE
    if os.environ.get("MLFLOW_TRACKING_URI") or not database.is_file():
        return []
    problem = sqlite_problem(database)
    if problem is None:
        return []
    aside = database.with_name(f"{DATABASE_FILE}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    if repair:
        database.rename(aside)
    return [
        (
            f"corrupt tracking database ({problem})",
            str(database),
            _done(repair, f"moved aside to {aside.name}; runs and registry start afresh"),
        )
    ]


def sqlite_problem(database: Path) -> str | None:
    """What SQLite's quick integrity check finds wrong with `database`, or None."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        return str(error)
    return None if verdict == "ok" else verdict


def _failed_pipeline_outputs(state_dir: Path, repair: bool) -> list[tuple[str, str, str]]:
    """A row for each pipeline run's outputs under `kfp/` that never reached its register step
    and has not been written to for an hour (a failed or killed run's; a finished run's outputs
    are kept)."""
    rows = []
    cutoff = time.time() - PARTIAL_AGE_SECONDS
    for run in sorted((state_dir / "kfp").glob("*/")):
        files = [path for path in run.rglob("*") if path.is_file()]
        finished = (run / "register").is_dir()
        if finished or any(path.stat().st_mtime > cutoff for path in files):
            continue
        size = sum(path.stat().st_size for path in files)
        if repair:
            remove_path(run)
        rows.append(
            ("failed run's outputs", str(run), _done(repair, f"removed ({size / 1e6:.1f} MB)"))
        )
    return rows


def _done(repair: bool, action: str) -> str:
    return action if repair else f"would be {action}"


def _checkpoints(state_dir: Path, repair: bool) -> list[tuple[str, str, str]]:
    """A row for each training checkpoint: whether its run may be resumed (else it is removed)."""
    from emotion_ai.modeling.checkpoints import STATE_FILE, Checkpoints

    states = sorted(state_dir.rglob(f"checkpoints/*/{STATE_FILE}"))
    if not states:
        return []  # TensorFlow is imported only where there are checkpoints to look at
    from emotion_ai.steps.train import resumable

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
