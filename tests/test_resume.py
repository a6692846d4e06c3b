"""Training checkpoints every epoch; `--resume` continues a run killed with `kill -9`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from emotion_ai.steps.tracking import local_tracking, use_tracking

EPOCHS = 6


def _step(*args: str, state: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "emotion_ai",
        "step",
        *args,
        "--workdir",
        str(state / "work"),
        "--state-dir",
        str(state),
    ]


def _wait_for_checkpoint(
    state_file: Path, process: subprocess.Popen, epochs: int, timeout_s: float = 300
) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        if state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= epochs:
            return json.loads(state_file.read_text())["epoch"]
        time.sleep(0.2)
    raise TimeoutError(f"no checkpoint of epoch {epochs} within {timeout_s} s")


def test_a_run_killed_with_sigkill_resumes_from_its_last_epoch_in_the_same_mlflow_run(tmp_path):
    environment = {**os.environ, "COLUMNS": "200"}
    ingest = subprocess.run(
        _step("ingest", "--synthetic-rows", "300", state=tmp_path),
        capture_output=True,
        text=True,
        env=environment,
    )
    assert ingest.returncode == 0, ingest.stdout[-2000:] + ingest.stderr[-2000:]
    train = _step("train-emotion", "--epochs", str(EPOCHS), state=tmp_path)
    state_file = tmp_path / "work" / "checkpoints" / "train_emotion" / "state.json"
    with open(tmp_path / "killed.log", "wb") as log:
        process = subprocess.Popen(train, stdout=log, stderr=subprocess.STDOUT, env=environment)
        killed_after = _wait_for_checkpoint(state_file, process, epochs=2)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert killed_after < EPOCHS
    run_id = json.loads(state_file.read_text())["run_id"]

    resumed = subprocess.run([*train, "--resume"], capture_output=True, text=True, env=environment)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    resumed_from = json.loads(state_file.read_text())
    assert "resuming from the checkpoint after epoch" in resumed.stdout + resumed.stderr
    assert resumed_from["epoch"] == EPOCHS and resumed_from["run_id"] == run_id
    assert len(resumed_from["history"]["loss"]) == EPOCHS
    assert (tmp_path / "work" / "emotion_model" / "model.keras").is_file()

    use_tracking(local_tracking(tmp_path))
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["emotion_ai.step"] == "train_emotion"
    steps = {metric.step for metric in MlflowClient().get_metric_history(run_id, "loss")}
    assert steps == set(range(EPOCHS)), "one learning curve across the kill"
    assert "plots/learning_curves.png" in {
        a.path for a in MlflowClient().list_artifacts(run_id, "plots")
    }
    mlflow.set_tracking_uri(None)
