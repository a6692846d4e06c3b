"""`mlflow run . -e train_emotion -P epochs=1 --env-manager local` works from the project root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import yaml
from tiny_networks import TINY

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = {"main", "ingest", "train_keypoints", "train_emotion", "evaluate", "register"}


def test_mlproject_declares_every_step_as_an_entry_point():
    project = yaml.safe_load((PROJECT_ROOT / "MLproject").read_text())
    assert set(project["entry_points"]) == ENTRY_POINTS
    assert (PROJECT_ROOT / project["python_env"]).is_file()


def test_mlflow_run_trains_the_emotion_model_as_an_entry_point(tmp_path):
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "run",
        ".",
        "-e",
        "train_emotion",
        "-P",
        "epochs=1",
        "-P",
        f"stages={TINY.stages}",
        "-P",
        f"depth={TINY.depth}",
        "-P",
        f"workdir={tmp_path / 'work'}",
        "--env-manager",
        "local",
    ]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "work" / "emotion_model" / "model.keras").is_file()
    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    project_run = next(
        run for run in runs if run.data.tags.get("mlflow.project.entryPoint") == "train_emotion"
    )
    assert project_run.info.status == "FINISHED"
    nested = {
        run.data.tags.get("emotion_ai.step"): run
        for run in runs
        if run.data.tags.get("mlflow.parentRunId") == project_run.info.run_id
    }
    assert set(nested) == {"ingest", "validate", "train_emotion"}
    train = nested["train_emotion"]
    assert train.data.params["epochs"] == "1" and "train/accuracy" in train.data.metrics
    (output,) = train.outputs.model_outputs
    assert mlflow.get_logged_model(output.model_id).name == "emotion-ai-emotion"
