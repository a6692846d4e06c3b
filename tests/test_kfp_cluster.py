"""`emotion-ai pipeline submit|schedule` send the compiled pipeline and checked parameters to
KFP."""

from __future__ import annotations

from kfp_api import recording_kfp_api
from typer.testing import CliRunner

from emotion_ai.cli import app
from emotion_ai.settings import SourceSettings, SplitSettings, TrainSettings
from emotion_ai.settings_json import settings_from_json
from pipelines.remote import Cluster

REQUIRED = [
    "-p",
    "tracking_uri=http://mlflow.emotion-ai:5000",
    "-p",
    "model_base_path=s3://emotion-ai/serving",
]


def _posted(requests: list, path: str) -> dict:
    return next(
        body for method, posted_path, body in requests if method == "POST" and posted_path == path
    )


def test_submit_starts_a_run_of_the_compiled_pipeline_with_typed_parameters():
    with recording_kfp_api() as (host, requests):
        result = CliRunner().invoke(
            app,
            [
                "pipeline",
                "submit",
                "--host",
                host,
                *REQUIRED,
                "-p",
                "epochs=3",
                "-p",
                "use_fer_usage=true",
                "-p",
                "head_dropout=0.5",
                "--experiment",
                "nightly",
            ],
        )
    assert result.exit_code == 0, result.output
    assert "run-1" in result.output
    assert _posted(requests, "/apis/v2beta1/experiments")["display_name"] == "nightly"
    run = _posted(requests, "/apis/v2beta1/runs")
    assert run["experiment_id"] == "experiment-1"
    parameters = run["runtime_config"]["parameters"]
    assert set(parameters) == {"tracking_uri", "model_base_path", "training", "split"}
    assert parameters["model_base_path"] == "s3://emotion-ai/serving"
    training = settings_from_json(TrainSettings, parameters["training"])
    assert training == TrainSettings(epochs=3, head_dropout=0.5), "other fields keep defaults"
    assert settings_from_json(SplitSettings, parameters["split"]).use_fer_usage is True
    assert set(run["pipeline_spec"]["root"]["dag"]["tasks"]) >= {
        "ingest",
        "train-emotion",
        "register",
    }


def test_schedule_creates_one_recurring_run_at_a_time_without_catch_up():
    with recording_kfp_api() as (host, requests):
        result = CliRunner().invoke(
            app,
            [
                "pipeline",
                "schedule",
                "--host",
                host,
                "--cron",
                "0 3 * * *",
                *REQUIRED,
                "--name",
                "nightly-retrain",
                "--training-gpus",
                "1",
            ],
        )
    assert result.exit_code == 0, result.output
    recurring = _posted(requests, "/apis/v2beta1/recurringruns")
    assert recurring["display_name"] == "nightly-retrain"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert recurring["max_concurrency"] == 1 and recurring["no_catchup"] is True
    executors = recurring["pipeline_spec"]["deploymentSpec"]["executors"]
    assert (
        executors["exec-train-emotion"]["container"]["resources"]["accelerator"]["resourceCount"]
        == "1"
    )


def test_bad_parameters_are_refused_before_the_cluster_is_contacted():
    cases = {
        ("-p", "epoch=3"): "unknown pipeline parameter 'epoch'",
        ("-p", "epochs=three"): "epochs must be int, not 'three'",
        ("-p", "training={}"): "TrainSettings: missing field(s)",
        ("-p", "epochs"): "not of the form name=value",
    }
    with recording_kfp_api() as (host, requests):
        for extra, message in cases.items():
            result = CliRunner().invoke(
                app, ["pipeline", "submit", "--host", host, *REQUIRED, *extra]
            )
            assert result.exit_code == 2 and message in result.output, result.output
        missing = CliRunner().invoke(app, ["pipeline", "submit", "--host", host, "-p", "epochs=1"])
        assert (
            missing.exit_code == 2
            and "tracking_uri" in missing.output
            and "model_base_path" in missing.output
        )
        bad_cron = CliRunner().invoke(
            app, ["pipeline", "schedule", "--host", host, "--cron", "daily", *REQUIRED]
        )
        assert bad_cron.exit_code == 2 and "5 fields" in bad_cron.output
    assert requests == []


def test_a_trigger_submits_one_kfp_run_with_its_reason_and_the_new_data(tmp_path):
    from emotion_ai.data.synthetic import write_fer_csv
    from emotion_ai.monitoring.launchers import KfpLauncher
    from emotion_ai.monitoring.watcher import Watcher, WatchSettings
    from emotion_ai.steps.tracking import local_tracking

    incoming = tmp_path / "incoming"
    write_fer_csv(incoming / "fer2013.csv", 30, seed=1)
    with recording_kfp_api() as (host, requests):
        launcher = KfpLauncher(Cluster(host).submit, tuple(REQUIRED[1::2]))
        watcher = Watcher(
            WatchSettings(tmp_path / "state", data_uri=str(incoming)),
            launcher,
            local_tracking(tmp_path / "state"),
        )
        assert watcher.check_once().launched == "KFP run run-1"
        assert watcher.check_once().launched == ""
    runs = [body for method, path, body in requests if path == "/apis/v2beta1/runs"]
    assert len(runs) == 1
    parameters = runs[0]["runtime_config"]["parameters"]
    assert parameters["trigger"] == "new data: fer2013.csv"
    sources = settings_from_json(SourceSettings, parameters["sources"])
    assert sources.keypoints_source == ""
    assert sources.fer_source == str((incoming / "fer2013.csv").resolve())
