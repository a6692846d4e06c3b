"""The whole loop as a newcomer meets it: `emotion-ai run` on its defaults (synthetic faces), then
the MLflow UI, `serve`, the demo page and `predict` with nothing in between; then later runs on the
same state (a trigger, a bad file, a model that is not better)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
import skimage.data
from browsers import headless_chromium
from mlflow.tracking import MlflowClient
from PIL import Image
from playwright.sync_api import expect
from servers import free_port, running, serve_command
from tiny_networks import TINY_RUN

from emotion_ai.cli.tracking import experiment_runs_url
from emotion_ai.data.synthetic import synthetic_faces, write_keypoints_csv
from emotion_ai.faces import EMOTIONS
from emotion_ai.monitoring.request_log import read_samples
from emotion_ai.release.model_card import MODEL_TRAINING_VIEW, UiLinks
from emotion_ai.settings import EMOTION_MODEL, KEYPOINT_MODEL, SourceSettings, TrainSettings
from emotion_ai.steps.tracking import local_tracking, use_tracking

SECOND_RUN = ["--seed=1", *TINY_RUN, "--significance=1e-9"]
"""Another seed and the cheapest pipeline's network and faces, floors off: a model that is not
better."""
STEPS = {"ingest", "validate", "train_keypoints", "train_emotion", "evaluate", "register"}


def emotion_ai(*args: str, state_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "emotion_ai", *args, "--state-dir", str(state_dir)]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )


@pytest.fixture(scope="module")
def incoming(tmp_path_factory) -> Path:
    """A data folder holding an FKD training.csv with the very faces the defaults' run made up."""
    folder = tmp_path_factory.mktemp("incoming")
    defaults = SourceSettings()
    write_keypoints_csv(folder / "training.csv", defaults.synthetic_rows, seed=defaults.seed)
    return folder


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory) -> Path:
    """The state of `emotion-ai run` with no options (`make run`): both models must be champion."""
    state = tmp_path_factory.mktemp("state")
    result = emotion_ai("run", state_dir=state)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "keypoints v1 (champion), emotion v1 (champion)" in result.stdout, result.stdout
    assert "make ui" in result.stdout and "127.0.0.1:8501" in result.stdout
    assert re.search(r"RMSE \d+\.\d\d px", result.stdout), "the closing table names each metric"
    assert re.search(r"accuracy \d\.\d{3}", result.stdout)
    _assert_one_line_per_step(result.stdout, state)
    return state


STEP_TIME = r" +(\d+ s|\d+\.\d min) "
"""A step's time on its console line: seconds, minutes from 100 s on (a slow machine's steps)."""


def _assert_one_line_per_step(stdout: str, state: Path) -> None:
    """The console shows a line per step with its headline; the full output is in the step logs."""
    assert "KFP Executor" not in stdout and len(stdout.splitlines()) < 40
    assert re.search(
        rf"✓ validate{STEP_TIME}[\d,]+ keypoint and [\d,]+ emotion rows validated", stdout
    )
    assert re.search(rf"✓ train_keypoints{STEP_TIME}5 epochs, val RMSE \d+\.\d\d px", stdout)
    assert re.search(r"✓ evaluate .*RMSE .*: promote; accuracy .*: promote", stdout)
    (run_logs,) = (state / "logs").iterdir()
    assert {log.stem for log in run_logs.glob("*.log")} >= STEPS
    assert "KFP Executor" in (run_logs / "train_emotion.log").read_text()
    assert "Skipping registering function" not in (run_logs / "validate.log").read_text()


@pytest.fixture(scope="module")
def client(state_dir) -> MlflowClient:
    use_tracking(local_tracking(state_dir))
    return MlflowClient()


def _runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("emotion-ai")
    return client.search_runs([experiment.experiment_id])


def test_mlflow_has_a_parent_run_with_a_nested_run_per_step(client):
    runs = _runs(client)
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [
        run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id
    ]
    assert {run.data.tags["emotion_ai.step"] for run in children} == STEPS
    assert all(run.info.status == "FINISHED" for run in children)


def test_runs_hold_params_metrics_and_plots(client):
    by_step = {run.data.tags.get("emotion_ai.step"): run for run in _runs(client)}
    evaluate = by_step["evaluate"].data.metrics
    assert evaluate["keypoints/test/rmse_px"] > 0
    assert 0 <= evaluate["emotion/test/accuracy"] <= 1
    assert 0 <= evaluate["keypoints/test/rmse_px/nose_tip"]
    ingest = by_step["ingest"].data.params
    assert len(ingest["data/keypoints/sha256"]) == 64
    assert ingest["data/fer/source"].startswith("synthetic:")
    train = by_step["train_emotion"]
    assert train.data.params["epochs"] == str(TrainSettings().epochs)
    assert {"train/loss", "val/accuracy", "optimizer/learning_rate"} <= set(train.data.metrics)
    assert not [name for name in train.data.params if name.startswith("opt_")], "no autolog noise"
    artifacts = {item.path for item in client.list_artifacts(train.info.run_id, "plots")}
    assert {"plots/learning_curves.png", "plots/emotions_on_faces.png"} <= artifacts
    evaluate_plots = {
        item.path for item in client.list_artifacts(by_step["evaluate"].info.run_id, "plots")
    }
    assert {
        "plots/confusion_matrix.png",
        "plots/keypoint_errors.png",
        "plots/keypoint_worst_faces.png",
    } <= evaluate_plots
    validate = by_step["validate"]
    assert (
        validate.data.metrics["validation/fer2013-content/failed"] == 0
        and validate.data.metrics["validation/fkd-content/passed"] > 30
    )
    docs = {item.path for item in client.list_artifacts(validate.info.run_id, "data_docs")}
    assert {"data_docs/index.html", "data_docs/summary.html"} <= docs
    summary = mlflow.artifacts.load_text(f"runs:/{validate.info.run_id}/data_docs/summary.html")
    assert "all expectations passed" in summary and "fkd-content" in summary
    assert "<script" not in summary and "http" not in summary, "renders offline"
    profile = mlflow.artifacts.load_dict(f"runs:/{validate.info.run_id}/data_profile.json")
    assert set(profile["emotion"]["class_share"]) == {
        "Angry",
        "Disgust",
        "Sad",
        "Happy",
        "Surprise",
    }
    assert len(profile["keypoints"]["pixels"]["histogram"]) == 16


def test_both_models_are_registered_and_champions_are_exported(client, state_dir):
    for name in (KEYPOINT_MODEL, EMOTION_MODEL):
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(champion.version) == "1"
        assert len(champion.tags["data_sha256"]) == 64 and champion.tags["decision"] == "promote"
        assert (state_dir / "serving" / name / "1" / "saved_model.pb").is_file()
        assert float(champion.tags["test_score"]) >= 0 and champion.tags["decision_test"] == "floor"
        card = champion.description
        assert f"# {name} version 1" in card and "95% bootstrap interval" in card
        assert "SYNTHETIC" in card, "the defaults train on synthetic faces only"
        assert ("Disgust" in card) == (name == EMOTION_MODEL), "each card's limits are its own"
        assert f"#/models/{name}" not in card and "](#/experiments/" in card
        assert "Each version's description is its model card" in (
            client.get_registered_model(name).description
        )


def _by_step(client: MlflowClient) -> dict:
    return {run.data.tags.get("emotion_ai.step"): run for run in _runs(client)}


def test_both_models_are_logged_models_with_named_tensors_and_linked_test_metrics(client):
    evaluate = _by_step(client)["evaluate"]
    for name, group, metric, output in (
        (KEYPOINT_MODEL, "keypoints", "rmse_px", "keypoints"),
        (EMOTION_MODEL, "emotion", "accuracy", "emotion"),
    ):
        version = client.get_model_version(name, "1")
        assert version.source.startswith("models:/m-"), "registered from the logged model"
        logged = mlflow.get_logged_model(version.source.removeprefix("models:/"))
        assert logged.name == name and logged.source_run_id == version.tags["train_run_id"]
        info = mlflow.models.get_model_info(version.source)
        assert info.signature.inputs.input_names() == ["face"]
        assert info.signature.outputs.input_names() == [output]
        assert info.saved_input_example_info["type"] == "ndarray"
        linked = {m.key: m.value for m in logged.metrics}
        assert linked[f"{group}/test/{metric}"] == evaluate.data.metrics[f"{group}/test/{metric}"]
        assert float(version.tags["test_score"]) == pytest.approx(linked[f"{group}/test/{metric}"])
        tested = {m.key: m.dataset_name for m in logged.metrics if "/test/" in m.key}
        assert set(tested.values()) == {f"{group}-test"}, [
            (m.key, m.dataset_name) for m in logged.metrics
        ]
    emotion = mlflow.models.get_model_info(client.get_model_version(EMOTION_MODEL, "1").source)
    assert emotion.metadata["class_names"] == list(EMOTIONS)


def test_the_parent_run_sums_the_pipeline_run_up(client):
    runs = _runs(client)
    parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
    data = parent.data
    assert len(data.params["data/keypoints/sha256"]) == 64
    assert data.params["data/emotion/source"].startswith("synthetic:")
    assert data.metrics["keypoints/test/rmse_px"] > 0 and "emotion/test/macro_f1" in data.metrics
    assert data.tags[f"decision/{EMOTION_MODEL}"] == "promote"
    assert data.tags[f"version/{KEYPOINT_MODEL}"] == "1"
    note = data.tags["mlflow.note.content"]
    assert f"[v1]({UiLinks.version(EMOTION_MODEL, 1)})" in note and "RMSE" in note
    commits = {run.data.tags.get("mlflow.source.git.commit") for run in runs}
    assert len(commits) == 1 and None not in commits, "every run carries the commit"


def test_step_runs_record_their_data_sets_and_training_records_system_metrics(client):
    by_step = _by_step(client)
    contexts = {
        step: {
            (entry.dataset.name, tag.value)
            for entry in by_step[step].inputs.dataset_inputs
            for tag in entry.tags
            if tag.key == "mlflow.data.context"
        }
        for step in ("validate", "train_emotion", "evaluate")
    }
    assert ("emotion-train", "training") in contexts["validate"]
    assert ("keypoints-test", "testing") in contexts["validate"]
    assert contexts["train_emotion"] == {
        ("emotion-train", "training"),
        ("emotion-val", "validation"),
    }
    assert contexts["evaluate"] == {("emotion-test", "testing"), ("keypoints-test", "testing")}
    system = [name for name in by_step["train_emotion"].data.metrics if name.startswith("system/")]
    assert "system/cpu_utilization_percentage" in system


EXPAND_CHILD_RUNS = '[data-component-id*="runnamecellrenderer"]'
"""The button beside a parent run's name that shows its nested runs."""


@pytest.fixture(scope="module")
def mlflow_ui(state_dir) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "emotion_ai", "ui", "--port", str(port)]
    with running(
        [*command, "--state-dir", str(state_dir)],
        f"http://127.0.0.1:{port}/health",
        state_dir / "ui.log",
    ):
        yield f"http://127.0.0.1:{port}"


def test_the_mlflow_ui_shows_step_runs_logged_models_and_the_model_card(
    client, mlflow_ui, state_dir
):
    experiment_id = client.get_experiment_by_name("emotion-ai").experiment_id
    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(experiment_runs_url(mlflow_ui, experiment_id))
        page.locator(EXPAND_CHILD_RUNS).first.click()
        for step in sorted(STEPS):
            expect(page.get_by_text(step, exact=True)).to_be_visible(timeout=60_000)
        page.screenshot(path=state_dir / "ui-runs.png")
        page.goto(f"{mlflow_ui}/#/experiments/{experiment_id}/models{MODEL_TRAINING_VIEW}")
        logged_models = page.locator(f'a[href^="#/experiments/{experiment_id}/models/m-"]')
        for name in (KEYPOINT_MODEL, EMOTION_MODEL):
            expect(logged_models.filter(has_text=name)).to_be_visible(timeout=60_000)
        page.screenshot(path=state_dir / "ui-models.png")
        page.goto(f"{mlflow_ui}/{UiLinks.version(EMOTION_MODEL, 1)}")
        card_title = page.get_by_role("heading", name=f"{EMOTION_MODEL} version 1", exact=True)
        expect(card_title).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name="Known limits")).to_be_visible()
        expect(page.get_by_text("Trained and tested on SYNTHETIC faces")).to_be_visible()
        page.screenshot(path=state_dir / "ui-version.png", full_page=True)


@pytest.fixture(scope="module")
def server_url(state_dir):
    port = free_port()
    command = serve_command(
        state_dir / "serving", port, "--state-dir", str(state_dir), "--request-sample-rate", "1"
    )
    url = f"http://127.0.0.1:{port}"
    with running(command, f"{url}/v1/models/emotion-ai", state_dir / "server.log"):
        yield url


def test_predict_after_a_run_prints_each_face_of_a_real_photo_and_draws_it(state_dir, tmp_path):
    photo, annotated = tmp_path / "astronaut.png", tmp_path / "annotated.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    result = emotion_ai("predict", str(photo), "--annotate", str(annotated), state_dir=state_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "astronaut.png: 1 face" in result.stdout
    assert any(emotion in result.stdout for emotion in EMOTIONS)
    assert Image.open(annotated).size == (512, 512)


def test_served_request_returns_keypoints_and_emotion_probabilities(server_url):
    faces, _ = synthetic_faces(np.array([3]), np.random.default_rng(0))
    response = requests.post(
        f"{server_url}/v1/models/emotion-ai:predict", json={"instances": faces.tolist()}
    )
    assert response.status_code == 200, response.text
    answer = response.json()["predictions"][0]
    coordinates = [value for point in answer["keypoints"].values() for value in point]
    assert len(coordinates) == 30
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert answer["emotion"] in answer["labels"]
    status = requests.get(f"{server_url}/v1/models/{EMOTION_MODEL}").json()
    assert status["model_version_status"][0] == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    bad = requests.post(
        f"{server_url}/v1/models/{KEYPOINT_MODEL}:predict", json={"instances": [[1, 2]]}
    )
    assert bad.status_code == 400 and "96x96" in bad.json()["error"]


def test_served_faces_are_sampled_for_drift_checks_without_the_faces(server_url, state_dir):
    faces, _ = synthetic_faces(np.array([0, 4]), np.random.default_rng(1))
    response = requests.post(
        f"{server_url}/v1/models/emotion-ai:predict", json={"instances": faces.tolist()}
    )
    assert response.status_code == 200, response.text
    samples = read_samples(state_dir / "requests" / "requests.jsonl")
    assert len(samples.means) >= 2 and samples.histograms.shape[1] == 16
    np.testing.assert_allclose(samples.means[-2:], faces.reshape(2, -1).mean(axis=1), atol=0.01)
    predicted = [EMOTIONS.index(p["emotion"]) for p in response.json()["predictions"]]
    assert list(samples.classes[-2:]) == predicted
    assert '"pixels"' not in (state_dir / "requests" / "requests.jsonl").read_text()


def test_liveness_readiness_and_prometheus_metrics(server_url):
    requests.post(f"{server_url}/v1/models/{KEYPOINT_MODEL}:predict", json={"instances": [[1, 2]]})
    assert requests.get(f"{server_url}/healthz").json() == {"status": "alive"}
    ready = requests.get(f"{server_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] == {
        KEYPOINT_MODEL: "1",
        EMOTION_MODEL: "1",
        "emotion-ai": "1000001",
        "emotion-ai-faces": "1000001",
    }
    metrics = requests.get(f"{server_url}/metrics").text
    assert re.search(
        r'emotion_ai_predict_requests_total\{code="200",model="emotion-ai",protocol="rest"\} [1-9]',
        metrics,
    )
    assert re.search(
        rf'emotion_ai_predict_requests_total\{{code="400",model="{KEYPOINT_MODEL}",'
        r'protocol="rest"\} [1-9]',
        metrics,
    )
    assert f'emotion_ai_served_version{{model="{EMOTION_MODEL}"}} 1.0' in metrics
    assert 'emotion_ai_predict_seconds_count{model="emotion-ai",protocol="rest"}' in metrics


def test_csv_without_pixels_stops_at_validate_and_nothing_is_promoted(state_dir, client, tmp_path):
    bad_csv = tmp_path / "no_pixels.csv"
    bad_csv.write_text("emotion,Usage\n3,Training\n4,PublicTest\n")
    served_before = sorted(p.relative_to(state_dir) for p in (state_dir / "serving").rglob("*"))
    result = emotion_ai("run", *TINY_RUN, "--fer-csv", str(bad_csv), state_dir=state_dir)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Inner task failed: 'validate'" in output and "step validate failed" in output
    shown = output[output.index("step validate failed") :]
    assert "no_pixels.csv" in shown and "column 'pixels'" in shown, "its last lines name the error"
    failed = [
        run
        for run in _runs(client)
        if run.data.tags.get("emotion_ai.step") == "validate" and run.info.status == "FAILED"
    ]
    assert len(failed) == 1
    assert failed[0].data.metrics["validation/fer2013-schema/failed"] == 1
    summary = mlflow.artifacts.load_text(f"runs:/{failed[0].info.run_id}/data_docs/summary.html")
    assert "1 expectation(s) failed" in summary and "pixels" in summary
    assert not [
        run
        for run in _runs(client)
        if run.data.tags.get("emotion_ai.step", "").startswith("train")
        and run.info.start_time > failed[0].info.start_time
    ]
    for name in (KEYPOINT_MODEL, EMOTION_MODEL):
        assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["1"]
        assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert (
        sorted(p.relative_to(state_dir) for p in (state_dir / "serving").rglob("*"))
        == served_before
    )


def test_a_second_emotion_model_not_significantly_better_is_kept_out(state_dir, client, incoming):
    """Another seed and one epoch train another model that clears the floor (0 here) but disagrees
    with the champion on some faces, not significantly in its favour: McNemar's p is then a NumPy
    float, whose comparison once crossed to the register step as the truthy text "False" and made
    that model champion."""
    champion_before = client.get_model_version_by_alias(EMOTION_MODEL, "champion").version
    result = emotion_ai(
        "run", *SECOND_RUN, f"--keypoints-csv={incoming / 'training.csv'}", state_dir=state_dir
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    latest = max(
        client.search_model_versions(f"name='{EMOTION_MODEL}'"), key=lambda v: int(v.version)
    )
    assert latest.tags["decision"] == "reject", latest.tags
    assert "not a significant improvement" in latest.tags["decision_reason"]
    discordant = re.search(r"\((\d+) vs (\d+) discordant\)", latest.tags["decision_reason"])
    assert int(discordant[1]) + int(discordant[2]) > 0, "McNemar's test ran on disagreements"
    assert client.get_model_version_by_alias(EMOTION_MODEL, "champion").version == champion_before
    assert not (state_dir / "serving" / EMOTION_MODEL / str(latest.version)).exists()
    assert f"emotion v{latest.version} (champion)" not in result.stdout


def test_new_data_triggers_a_run_that_reuses_unchanged_steps_and_says_why(
    state_dir, client, incoming
):
    """The watcher sees training.csv as new and starts a run with it, on the settings of the run
    before, which read the same file: every step that depends on nothing else is reused."""
    first = {}
    for run in sorted(_runs(client), key=lambda run: run.info.start_time):
        if run.data.tags.get("emotion_ai.cache") == "miss":
            first[run.data.tags["emotion_ai.step"]] = run.info.run_id
    result = emotion_ai(
        "watch",
        "--once",
        f"--data-uri={incoming}",
        *[f"--run-arg={a}" for a in SECOND_RUN],
        state_dir=state_dir,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "trigger new data: training.csv" in result.stdout
    pipelines = sorted(
        (
            run
            for run in _runs(client)
            if "mlflow.parentRunId" not in run.data.tags
            and run.data.tags.get("emotion_ai.orchestrator")
        ),
        key=lambda run: run.info.start_time,
    )
    assert pipelines[-1].data.tags["emotion_ai.trigger"] == "new data: training.csv"
    assert pipelines[0].data.tags["emotion_ai.trigger"] == "manual"
    step_logs = state_dir / "logs" / pipelines[-1].info.run_name
    for step in ("validate", "train_keypoints", "train_emotion"):
        assert re.search(rf"✓ {step} .*\(cached\)", result.stdout)
        assert f"[cache] {step}: inputs, parameters and code unchanged" in (
            (step_logs / f"{step}.log").read_text()
        )
        latest = max(
            (run for run in _runs(client) if run.data.tags.get("emotion_ai.step") == step),
            key=lambda run: run.info.start_time,
        )
        assert latest.data.tags["emotion_ai.cache"] == "hit"
        assert latest.data.tags["emotion_ai.cache.source_run_id"] == first[step]
    rerun = max(
        client.search_model_versions(f"name='{EMOTION_MODEL}'"), key=lambda v: int(v.version)
    )
    assert (
        rerun.tags["train_run_id"] == first["train_emotion"] and rerun.tags["decision"] == "reject"
    )
    assert str(client.get_model_version_by_alias(EMOTION_MODEL, "champion").version) == "1"
