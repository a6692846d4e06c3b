"""`emotion-ai tune`: a small search whose trials are nested MLflow runs under one parent."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from emotion_ai.data.datasets import TEST, TRAIN, FaceDataset
from emotion_ai.modeling.tuning import tune
from emotion_ai.settings import TrainSettings
from emotion_ai.steps.tracking import local_tracking, use_tracking


def test_tune_runs_trials_as_nested_runs_and_records_the_best(tmp_path):
    command = [
        sys.executable,
        "-m",
        "emotion_ai",
        "tune",
        "emotion",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--workdir",
        str(tmp_path / "work"),
        "--synthetic-rows",
        "150",
        "--state-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    experiment_id = use_tracking(local_tracking(tmp_path))
    client = MlflowClient()
    runs = client.search_runs([experiment_id])
    parent = next(run for run in runs if run.data.tags.get("emotion_ai.step") == "tune")
    trials = [
        run
        for run in runs
        if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        and run.data.tags.get("emotion_ai.step") == "tune_trial"
    ]
    assert parent.info.status == "FINISHED" and len(trials) == 2
    assert len({run.data.params["learning_rate"] for run in trials}) == 2, (
        "each trial tries other settings"
    )
    best = min(run.data.metrics["best_val_loss"] for run in trials)
    assert parent.data.metrics["best_val_loss"] == best
    assert int(parent.data.params["best.width"]) in (16, 24, 32)
    assert "best" in result.stdout


def test_tuning_data_without_validation_faces_is_refused_before_any_trial():
    """Data ingested with `--val-fraction 0` gives the trials nothing to be scored on."""
    split = np.array([TRAIN] * 6 + [TEST] * 2)
    dataset = FaceDataset(np.zeros((8, 48, 48), np.uint8), np.arange(8) % 5, split, {})
    with pytest.raises(ValueError, match="no validation faces.*--val-fraction 0"):
        tune("emotion", dataset, TrainSettings(epochs=1), trials=1)
