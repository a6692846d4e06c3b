"""What a killed run leaves behind is found and repaired: runs left RUNNING are failed with the
reason, checkpoints that may not be resumed and stale half-written files are removed, and step
processes end with the command that started them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import mlflow
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from emotion_ai.cli import app
from emotion_ai.cli.options import console
from emotion_ai.modeling.checkpoints import Checkpoints
from emotion_ai.steps.supervision import SUPERVISOR_ENV
from emotion_ai.steps.tracking import (
    FAILURE_REASON_TAG,
    HOST_TAG,
    INTERRUPTED_TAG,
    PID_TAG,
    fail_abandoned_runs,
    local_tracking,
    step_run,
    use_tracking,
)


def _ended_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _run(client: MlflowClient, experiment: str, pid: int, host: str) -> str:
    tags = {PID_TAG: str(pid), HOST_TAG: host}
    return client.create_run(experiment, tags=tags).info.run_id


def test_runs_whose_process_ended_are_failed_with_the_reason_and_no_others(tmp_path):
    tracking = local_tracking(tmp_path)
    experiment = use_tracking(tracking)
    client, host = MlflowClient(), socket.gethostname()
    dead = _run(client, experiment, _ended_pid(), host)
    alive = _run(client, experiment, os.getpid(), host)
    elsewhere = _run(client, experiment, _ended_pid(), "another-host")
    assert fail_abandoned_runs(tracking, repair=False) == [dead]
    assert client.get_run(dead).info.status == "RUNNING", "--no-repair only reports"
    assert fail_abandoned_runs(tracking) == [dead]
    run = client.get_run(dead)
    assert (
        run.info.status == "FAILED"
        and "ended without finishing" in run.data.tags[FAILURE_REASON_TAG]
    )
    assert {client.get_run(r).info.status for r in (alive, elsewhere)} == {"RUNNING"}
    mlflow.set_tracking_uri(None)


def test_doctor_reports_then_repairs_what_a_killed_run_left(tmp_path, monkeypatch):
    monkeypatch.setattr(console, "width", 250)
    tracking = local_tracking(tmp_path)
    experiment = use_tracking(tracking)
    client = MlflowClient()
    dead = _run(client, experiment, _ended_pid(), socket.gethostname())
    finished = client.create_run(experiment).info.run_id
    client.set_terminated(finished, "FINISHED")
    stale = tmp_path / "checkpoints" / "train_emotion"
    stale.mkdir(parents=True)
    (stale / "last.keras").write_bytes(b"a model")
    Checkpoints(stale, "key").folder.joinpath("state.json").write_text(
        f'{{"epoch": 2, "history": {{}}, "run_id": "{finished}", "fingerprint": "key"}}'
    )
    partial = tmp_path / "steps" / ".dataset.partial-1a2b3c4d.npz"
    partial.parent.mkdir()
    partial.write_bytes(b"half")
    os.utime(partial, (time.time() - 7200, time.time() - 7200))
    mlflow.set_tracking_uri(None)

    state = ["--state-dir", str(tmp_path)]
    report = CliRunner().invoke(app, ["doctor", "--no-repair", *state])
    assert report.exit_code == 0, report.output
    assert dead in report.output and "would be marked FAILED" in report.output
    assert stale.exists() and partial.exists()
    repaired = CliRunner().invoke(app, ["doctor", *state])
    assert repaired.exit_code == 0 and "marked FAILED" in repaired.output
    assert not stale.exists() and not partial.exists()
    again = CliRunner().invoke(app, ["doctor", *state])
    assert "nothing to repair" in again.output
    use_tracking(tracking)
    assert MlflowClient().get_run(dead).info.status == "FAILED"
    mlflow.set_tracking_uri(None)


def test_a_step_ends_soon_after_the_command_that_started_it():
    supervisor = subprocess.Popen(["sleep", "60"])
    step = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from emotion_ai.steps.supervision import end_with_supervisor; "
            "end_with_supervisor(); time.sleep(60)",
        ],
        env={**os.environ, SUPERVISOR_ENV: str(supervisor.pid)},
    )
    time.sleep(1)
    assert step.poll() is None, "the step runs while its supervisor does"
    supervisor.kill()
    supervisor.wait()
    assert step.wait(timeout=30) == 1


def test_a_resumed_run_keeps_why_it_stopped_but_no_longer_reads_as_failed(tmp_path):
    tracking = local_tracking(tmp_path)
    experiment = use_tracking(tracking)
    client = MlflowClient()
    killed = _run(client, experiment, _ended_pid(), socket.gethostname())
    fail_abandoned_runs(tracking)
    with step_run(tracking, "", "train_emotion", run_id=killed):
        pass
    run = client.get_run(killed)
    assert run.info.status == "FINISHED" and FAILURE_REASON_TAG not in run.data.tags
    assert "ended without finishing" in run.data.tags[INTERRUPTED_TAG]
    mlflow.set_tracking_uri(None)
