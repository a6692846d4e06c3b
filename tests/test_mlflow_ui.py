"""`emotion-ai ui` prints where to look only once MLflow answers, opens on the experiment's runs in
the model-training view, and stops the server when it is stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient
from servers import free_port

from emotion_ai.steps.tracking import EXPERIMENT_KIND_TAG, local_tracking, use_tracking


def _printed_url(process: subprocess.Popen, timeout_s: float = 300) -> str:
    deadline = time.monotonic() + timeout_s  # a hang guard, not a speed target
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if match := re.search(r"MLflow on (\S+)", line):
            return match[1]
        assert line or process.poll() is None, "emotion-ai ui ended before printing its address"
    raise TimeoutError("emotion-ai ui printed no address")


def test_ui_prints_the_experiments_runs_once_mlflow_answers_and_stops_with_it(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "emotion_ai", "ui", "--port", str(port), "--state-dir", tmp_path],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        url = _printed_url(process)
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).ok, "answers when printed"
        model_training_runs = r"/#/experiments/(\d+)/runs\?workflowType=machine_learning"
        experiment_id = re.fullmatch(rf"http://127\.0\.0\.1:{port}{model_training_runs}", url)[1]
        use_tracking(local_tracking(tmp_path))
        experiment = MlflowClient().get_experiment(experiment_id)
        assert experiment.name == "emotion-ai"
        assert experiment.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
        mlflow.set_tracking_uri(None)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
