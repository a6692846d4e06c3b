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

from emotion_ai.data.datasets import emotion_dataset
from emotion_ai.data.formats import FER_FORMAT, read_table
from emotion_ai.modeling.checkpoints import Checkpoints
from emotion_ai.modeling.networks import build_emotion_model
from emotion_ai.modeling.training import train_emotion_model
from emotion_ai.settings import ResNetConfig, SplitSettings, TrainSettings
from emotion_ai.steps.tracking import local_tracking, use_tracking
from emotion_ai.steps.train import TrainControl, resumable

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
        _step("ingest", "--synthetic-rows", "150", state=tmp_path),
        capture_output=True,
        text=True,
        env=environment,
    )
    assert ingest.returncode == 0, ingest.stdout[-2000:] + ingest.stderr[-2000:]
    train = _step("train-emotion", "--epochs", str(EPOCHS), "--width", "16", state=tmp_path)
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
    assert "resuming from the checkpoint after epoch" in resumed.stdout + resumed.stderr
    assert not state_file.parent.exists(), "checkpoints are removed once the step has finished"
    assert (tmp_path / "work" / "emotion_model" / "model.keras").is_file()

    use_tracking(local_tracking(tmp_path))
    run = MlflowClient().get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["emotion_ai.step"] == "train_emotion"
    steps = {metric.step for metric in MlflowClient().get_metric_history(run_id, "train/loss")}
    assert steps == set(range(EPOCHS)), "one learning curve across the kill"
    assert "plots/learning_curves.png" in {
        a.path for a in MlflowClient().list_artifacts(run_id, "plots")
    }
    mlflow.set_tracking_uri(None)


def _checkpoint(folder: Path, epoch: int, run_id: str, fingerprint: str, model=None) -> Checkpoints:
    """A checkpoint as training leaves it, of `model` (a stand-in file when None)."""
    checkpoints = Checkpoints(folder, fingerprint)
    if model is None:
        folder.mkdir(parents=True)
        (folder / "last.keras").write_bytes(b"a model")
        (folder / "state.json").write_text(
            json.dumps(
                {"epoch": epoch, "history": {}, "run_id": run_id, "fingerprint": fingerprint}
            )
        )
    else:
        checkpoints.save(model, epoch, {"loss": [1.0] * epoch}, run_id)
    return checkpoints


def test_only_a_checkpoint_of_the_same_training_with_an_unfinished_run_is_resumed(tmp_path):
    experiment = use_tracking(local_tracking(tmp_path))
    client = MlflowClient()
    killed = client.create_run(experiment).info.run_id
    finished = client.create_run(experiment).info.run_id
    client.set_terminated(finished, "FINISHED")
    same = _checkpoint(tmp_path / "a", 2, killed, "key-1")
    assert resumable("train_emotion", same)["run_id"] == killed
    assert resumable("train_emotion", Checkpoints(same.folder, "key-2")) is None, "other data"
    assert resumable("train_emotion", _checkpoint(tmp_path / "b", 2, finished, "key-1")) is None
    assert resumable("train_emotion", _checkpoint(tmp_path / "c", 2, "no-such-run", "k")) is None
    control = TrainControl(checkpoint_root=str(tmp_path / "roots"), resume=True)
    _checkpoint(tmp_path / "roots" / "train_emotion", 2, finished, "key-1")
    assert control.checkpoints("train_emotion", "key-1").saved() is None, "refused ones are cleared"
    mlflow.set_tracking_uri(None)


def test_a_checkpoint_taken_after_the_last_epoch_finishes_the_step(tmp_path, fer_csv):
    dataset = emotion_dataset(read_table(fer_csv, FER_FORMAT), SplitSettings(), {})
    settings = TrainSettings(epochs=2, network=ResNetConfig(width=16, stages=1, depth=0))
    model = build_emotion_model(settings.network)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    use_tracking(local_tracking(tmp_path))
    with mlflow.start_run() as run:
        checkpoints = _checkpoint(tmp_path / "done", 2, run.info.run_id, "k", model=model)
        trained = train_emotion_model(dataset, settings, checkpoints)
    assert trained.history["loss"] == [1.0, 1.0], "the checkpoint's history, no epoch more"
    mlflow.set_tracking_uri(None)
