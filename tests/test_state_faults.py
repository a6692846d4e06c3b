"""Faults of the state folder itself end a command in one line naming the file and what to do;
`doctor` finds and repairs what it can."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from emotion_ai.cli import app
from emotion_ai.cli.state_faults import state_dir_of_command, state_fault


def _emotion_ai(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emotion_ai", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )


def test_a_corrupt_database_is_one_line_and_doctor_sets_it_aside(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "mlflow.db").write_bytes(os.urandom(8192))
    listed = _emotion_ai("models", "--state-dir", str(state))
    printed = listed.stdout + listed.stderr
    assert listed.returncode == 1 and "Traceback" not in printed
    assert f"the tracking database {state / 'mlflow.db'} is corrupt" in printed
    assert "emotion-ai doctor" in printed and len(printed.strip().splitlines()) <= 3
    repaired = _emotion_ai("doctor", "--state-dir", str(state))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "corrupt tracking database" in repaired.stdout
    assert [p.name.split("-")[0] for p in state.glob("mlflow.db.corrupt-*")] == [
        "mlflow.db.corrupt"
    ]
    assert _emotion_ai("models", "--state-dir", str(state)).returncode == 0


def test_doctor_removes_what_failed_pipeline_runs_left_and_keeps_finished_ones(tmp_path):
    state = tmp_path / "state"
    failed, finished = state / "kfp" / "run-failed", state / "kfp" / "run-finished"
    for run, steps in ((failed, ("ingest", "validate")), (finished, ("ingest", "register"))):
        for step in steps:
            (run / step).mkdir(parents=True)
            (run / step / "output.bin").write_bytes(b"x" * 1000)
    hours_ago = time.time() - 7200
    for path in state.rglob("*"):
        os.utime(path, (hours_ago, hours_ago))
    result = CliRunner().invoke(app, ["doctor", "--state-dir", str(state)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "failed run's outputs" in result.output
    assert not failed.exists() and finished.exists()


def test_read_only_and_full_state_folders_are_named_with_what_to_do(tmp_path):
    read_only = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "mlflow.db"))
    line = state_fault(RuntimeError("could not log"), tmp_path)
    assert line is None, "other errors keep their own message"
    wrapped = RuntimeError("step failed")
    wrapped.__cause__ = read_only
    line = state_fault(wrapped, tmp_path)
    assert f"cannot write {tmp_path / 'mlflow.db'} (Read-only file system)" in line
    assert "--state-dir" in line
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "kfp"))
    assert "no space left on the device of" in state_fault(full, tmp_path)
    assert "emotion-ai doctor" in state_fault(full, tmp_path)
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    assert f"no space left on the device of {tmp_path}:" in state_fault(sqlite_full, tmp_path)


def test_the_state_folder_is_read_from_the_command_line(monkeypatch):
    monkeypatch.delenv("EMOTION_AI_STATE_DIR", raising=False)
    assert state_dir_of_command(["models", "--state-dir", "/x"]) == Path("/x")
    assert state_dir_of_command(["models", "--state-dir=/y"]) == Path("/y")
    assert state_dir_of_command(["models"]) == Path(".state")
    monkeypatch.setenv("EMOTION_AI_STATE_DIR", "/z")
    assert state_dir_of_command(["models"]) == Path("/z")


def test_runs_started_at_once_on_a_new_state_folder_set_its_database_up_once(tmp_path):
    """Each opens the new SQLite store at the same moment; one makes its tables, the others wait
    (without the lock, two migrated it at once and left it half made)."""
    opening = (
        "import sys; from pathlib import Path; "
        "from emotion_ai.steps.tracking import local_tracking, use_tracking; "
        "print(use_tracking(local_tracking(Path(sys.argv[1]))))"
    )
    state = tmp_path / "state"
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", opening, str(state)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    ids = {opener.communicate()[0].strip() for opener in openers}
    assert [opener.returncode for opener in openers] == [0, 0, 0]
    assert len(ids) == 1, "one experiment, made once"
    assert _emotion_ai("models", "--state-dir", str(state)).returncode == 0
