"""Registry and publishing, on SQLite and on a real MLflow server with artifacts on real S3.

The infrastructure check (tests/test_infra_check.py) is skipped where these tests publish directly
(NO_CHECK: each check is a process of its own, 8 s); the CLI and the server still run it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from servers import (
    S3_ENVIRONMENT,
    free_port,
    running,
    s3_client,
    seaweedfs_s3,
    serve_command,
    served_version,
    wait_for_version,
)
from tiny_networks import TINY
from typer.testing import CliRunner, Result

from emotion_ai.cli import app
from emotion_ai.modeling.logged_models import log_keras_model
from emotion_ai.modeling.networks import build_emotion_model
from emotion_ai.release import registry
from emotion_ai.release.model_repository import LABELS_FILE, read_labels, versions
from emotion_ai.release.publishing import (
    PREVIOUS_CHAMPION_TAG,
    follow_champion,
    label,
    publish,
    rollback,
)
from emotion_ai.steps.tracking import TrackingSettings, local_tracking, use_tracking

NAME = "emotion-ai-emotion"
FACE = np.zeros((1, 96, 96, 1), dtype=np.float32)
NO_CHECK = {"latency_budget_ms": None}
FOLLOW_TIMEOUT_S = 180
"""Following a moved alias exports the version and runs its infrastructure check (a process of its
own) before the server loads it: 25 s on an idle machine, over 60 s while the suite's pipeline runs
beside it (measured), so it gets more than a plain swap's `SWAP_TIMEOUT_S`."""


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`emotion-ai tracking-server` on 127.0.0.1: SQLite backend, artifacts proxied to a SeaweedFS
    S3 bucket."""
    root = tmp_path_factory.mktemp("mlflow-server")
    (root / "s3").mkdir()
    with seaweedfs_s3(root / "s3") as endpoint:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="mlflow")
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "emotion_ai",
            "tracking-server",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            "s3://mlflow/artifacts",
            "--workers",
            "1",
        ]
        env = {**os.environ, **S3_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint}
        with running(command, f"http://127.0.0.1:{port}/health", root / "mlflow.log", env):
            yield f"http://127.0.0.1:{port}", s3


@pytest.fixture(params=["sqlite", "mlflow-server+s3"])
def store(request, tmp_path):
    """Points MLflow at one tracking/registry store; yields (settings, S3 client or None)."""
    if request.param == "sqlite":
        settings, s3 = local_tracking(tmp_path / "state"), None
    else:
        url, s3 = request.getfixturevalue("mlflow_server")
        settings = TrackingSettings(url, experiment_name=f"registry-{tmp_path.name}")
    use_tracking(settings)
    yield settings, s3
    mlflow.set_tracking_uri(None)


def _register_versions(count: int, name: str = NAME) -> list[int]:
    numbers = []
    for index in range(count):
        with mlflow.start_run():
            model = build_emotion_model(TINY)
            uri = log_keras_model(model, FACE, name).model_uri
        numbers.append(int(registry.register_version(uri, name, {"index": str(index)}).version))
    return numbers


def test_publish_promote_and_rollback_move_alias_and_serving_together(store, tmp_path):
    settings, s3 = store
    served = tmp_path / "serving"
    v1, v2 = _register_versions(2)
    publish(NAME, v1, served, **NO_CHECK)
    assert registry.version_by_alias(NAME, "champion").version in (v1, str(v1))
    publish(NAME, v2, served, **NO_CHECK)
    champion = registry.version_by_alias(NAME, "champion")
    assert int(champion.version) == v2 and champion.tags[PREVIOUS_CHAMPION_TAG] == str(v1)
    assert versions(served, NAME) == [v1, v2]
    assert rollback(NAME, served) == v1
    assert int(registry.version_by_alias(NAME, "champion").version) == v1
    assert versions(served, NAME) == [v1], "the newer version is no longer served"
    assert read_labels(served, NAME) == {"stable": v1}
    assert registry.load_champion(NAME).predict(FACE, verbose=0).shape == (1, 5)
    with pytest.raises(ValueError, match="replaced no earlier champion"):
        rollback(NAME, served)
    if s3 is not None:
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket="mlflow").get("Contents", [])]
        assert any(key.endswith("model.keras") for key in keys), "model artifacts live on S3"


def test_a_failed_alias_move_withdraws_the_export_and_keeps_the_champion(
    store, tmp_path, monkeypatch
):
    served = tmp_path / "serving"
    v1, v2 = _register_versions(2)
    publish(NAME, v1, served, **NO_CHECK)

    def refuse(*_):
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(registry, "set_champion", refuse)
    with pytest.raises(RuntimeError, match="registry unavailable"):
        publish(NAME, v2, served, **NO_CHECK)
    assert int(registry.version_by_alias(NAME, "champion").version) == v1
    assert versions(served, NAME) == [v1]
    assert sorted(p.name for p in (served / NAME).iterdir()) == [str(v1), LABELS_FILE], (
        "no half-published version"
    )
    assert read_labels(served, NAME) == {"stable": v1}


def test_only_the_newest_versions_are_kept(store, tmp_path):
    served = tmp_path / "serving"
    numbers = _register_versions(3)
    for number in numbers:
        publish(NAME, number, served, keep=2, **NO_CHECK)
    assert versions(served, NAME) == numbers[1:]


def test_a_canary_label_exports_its_version_and_outlives_promotions_and_pruning(store, tmp_path):
    served = tmp_path / "serving"
    v1, v2, v3 = _register_versions(3)
    publish(NAME, v1, served, **NO_CHECK)
    assert label(NAME, "canary", v3, served, **NO_CHECK) == {"stable": v1, "canary": v3}
    assert versions(served, NAME) == [v1, v3], "the canary is exported beside the champion"
    publish(NAME, v2, served, keep=1, **NO_CHECK)
    assert versions(served, NAME) == [v2, v3], "neither retired as newer nor pruned as older"
    assert read_labels(served, NAME) == {"stable": v2, "canary": v3}
    with pytest.raises(ValueError, match="promote"):
        label(NAME, "stable", v3, served)
    assert label(NAME, "canary", None, served) == {"stable": v2}


def test_cli_promote_and_rollback(tmp_path):
    """The commands in this process (CliRunner): each promotion still runs the infrastructure check
    in a process of its own."""
    state = tmp_path / "state"
    use_tracking(local_tracking(state))
    v1, v2 = _register_versions(2)

    def cli(*args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--state-dir", str(state)], env={"COLUMNS": "200"})

    for args in (["promote", NAME, str(v1)], ["promote", NAME, str(v2)], ["rollback", NAME]):
        result = cli(*args)
        assert result.exit_code == 0, result.output[-2000:]
    assert "rolled back: version 1" in result.output
    assert int(MlflowClient().get_model_version_by_alias(NAME, "champion").version) == v1
    promoted = MlflowClient().get_model_version(NAME, str(v2))
    assert promoted.tags["decision"] == "promote (manual)" and promoted.tags["decision_by"]
    assert promoted.tags["decision_at"] and "## Promoted by hand" in promoted.description
    assert versions(state / "serving", NAME) == [v1]
    canary = cli("label", NAME, "canary", str(v2))
    assert canary.exit_code == 0, canary.output[-2000:]
    assert versions(state / "serving", NAME) == [v1, v2]
    assert read_labels(state / "serving", NAME) == {"stable": v1, "canary": v2}
    refused = cli("label", NAME, "stable", str(v2))
    assert refused.exit_code == 1 and "promote" in refused.output
    table = cli("models").output
    assert "champion" in table and NAME in table and "promote (manual)" in table


def test_a_failed_export_keeps_the_champion_and_the_served_layout(store, tmp_path):
    served = tmp_path / "serving"
    v1, v2 = _register_versions(2)
    publish(NAME, v1, served, **NO_CHECK)

    class ExportFailsHalfWay:
        def export(self, path, **_):
            (Path(path) / "variables").mkdir(parents=True)
            (Path(path) / "variables" / "variables.index").write_bytes(b"half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish(NAME, v2, served, model=ExportFailsHalfWay(), **NO_CHECK)
    assert int(registry.version_by_alias(NAME, "champion").version) == v1
    assert sorted(p.name for p in (served / NAME).iterdir()) == [str(v1), LABELS_FILE]


def test_the_server_follows_a_champion_alias_moved_in_the_registry(tmp_path):
    """As when someone moves `champion` in the MLflow UI: `serve --follow-champion` exports and
    serves it."""
    state = tmp_path / "state"
    use_tracking(local_tracking(state))
    v1, v2 = _register_versions(2)
    publish(NAME, v1, state / "serving")
    assert follow_champion(NAME, state / "serving") is None, "already served"
    assert follow_champion("emotion-ai-keypoints", state / "serving") is None, (
        "no champion: nothing to do"
    )
    port = free_port()
    command = serve_command(
        state / "serving", port, "--state-dir", str(state), "--model-name", NAME,
        "--file-system-poll-wait-seconds", "0.5", "--follow-champion",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1/models/{NAME}"
    with running(command, url, tmp_path / "server.log"):
        assert served_version(url) == str(v1)
        MlflowClient().set_registered_model_alias(NAME, registry.CHAMPION, str(v2))
        wait_for_version(url, str(v2), FOLLOW_TIMEOUT_S)
    assert versions(state / "serving", NAME) == [v1, v2]
    assert read_labels(state / "serving", NAME) == {"stable": v2}


def test_promote_with_the_tracking_server_down_fails_soon_with_one_line_and_changes_nothing(
    tmp_path,
):
    served = tmp_path / "serving"
    down = f"http://admin:s3cret@127.0.0.1:{free_port()}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emotion_ai",
            "promote",
            NAME,
            "1",
            "--model-base-path",
            str(served),
        ],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard: bounded retries end it in seconds
        env={**os.environ, "MLFLOW_TRACKING_URI": down, "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"promote {NAME} version 1 failed" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr and "admin:***@" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not served.exists(), "nothing was exported or labelled"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_one_writer_publishes_at_a_time_and_one_told_not_to_wait_fails_in_one_line(store, tmp_path):
    """A promote while another holds the layout waits for it (here: fails at once when told not to
    wait); the champion follower skips a look instead of waiting."""
    from emotion_ai.release.publish_lock import PublishBusy, publishing
    from emotion_ai.release.publishing import follow_champion

    served = tmp_path / "serving"
    (v1,) = _register_versions(1)
    with publishing(served):
        errors: list[object] = []

        def promote_without_waiting() -> None:
            try:
                publish(NAME, v1, served, wait=False, **NO_CHECK)
            except PublishBusy as error:
                errors.append(error)

        other = threading.Thread(target=promote_without_waiting)
        other.start()
        other.join()
        assert errors and "held" in str(errors[0]) and "--no-wait" in str(errors[0])
        follower = threading.Thread(target=lambda: errors.append(follow_champion(NAME, served)))
        follower.start()
        follower.join()
        assert errors[-1] is None, "the follower skipped this look"
    assert registry.version_by_alias(NAME, registry.CHAMPION) is None, "nothing moved meanwhile"
    publish(NAME, v1, served, wait=False, **NO_CHECK)
    assert int(registry.version_by_alias(NAME, registry.CHAMPION).version) == v1
