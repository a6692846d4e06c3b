"""Shared fixtures: small data sets generated in the exact Kaggle formats."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One TensorFlow thread per test process, inherited by the commands the tests start: xdist runs a
# worker per core, and a second thread per process only spins on the other worker's core.
for _threads in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_threads, "1")

from servers import S3_ENVIRONMENT, seaweedfs_s3  # noqa: E402

from emotion_ai.data.synthetic import write_fer_csv, write_keypoints_csv  # noqa: E402

LONGEST_FILES_FIRST = (
    "test_end_to_end.py",
    "test_registry.py",
    "test_production_topology.py",
    "test_resume.py",
    "test_recipe.py",
    "test_tuning.py",
    "test_mlproject.py",
    "test_serving_versions.py",
    "test_infra_check.py",
    "test_photos.py",
    "test_mlflow_ui.py",
)
"""The test files that take longest (410 s to 38 s on 2 cores), longest first. xdist hands whole
files to workers in collection order (`make test` passes --no-loadscope-reorder; by default it
orders files by their number of tests), so the long ones start first and the workers finish
together, instead of one worker running the last long file alone while the other waits."""


CHECKOUT = Path(__file__).resolve().parent.parent


def _checkout_status() -> str:
    """`git status --porcelain` of the checkout ('' where it is no git checkout)."""
    result = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
    )
    return result.stdout if result.returncode == 0 else ""


def pytest_configure(config: pytest.Config) -> None:
    """The session remembers the checkout's state, to check it at the end."""
    if not hasattr(config, "workerinput"):
        config.stash[CHECKOUT_STATE] = _checkout_status()


@pytest.fixture(autouse=True, scope="session")
def _work_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test process works in a folder of its own once collection is done, so that nothing a
    library writes to its working folder by default (MLflow's `mlflow.db`) lands in the
    checkout."""
    os.chdir(tmp_path_factory.mktemp("working-folder"))


CHECKOUT_STATE = pytest.StashKey[str]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fails the session when its tests changed the checkout (`git status` differs)."""
    config = session.config
    if hasattr(config, "workerinput") or CHECKOUT_STATE not in config.stash:
        return
    before, after = config.stash[CHECKOUT_STATE], _checkout_status()
    if after != before:
        changed = sorted(set(after.splitlines()) ^ set(before.splitlines()))
        print(f"\nthe tests changed the checkout ({CHECKOUT}): {changed}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The LONGEST_FILES_FIRST ahead of the others, each file's tests in their own order."""
    rank = {name: index for index, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A real SeaweedFS S3 server on 127.0.0.1; boto3 in this process (and children) points at
    it."""
    with (
        seaweedfs_s3(tmp_path_factory.mktemp("seaweedfs")) as endpoint,
        pytest.MonkeyPatch.context() as patch,
    ):
        for name, value in {**S3_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint}.items():
            patch.setenv(name, value)
        yield endpoint


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def keypoints_csv(data_dir: Path) -> Path:
    return write_keypoints_csv(data_dir / "training.csv", 60, seed=1)


@pytest.fixture(scope="session")
def fer_csv(data_dir: Path) -> Path:
    return write_fer_csv(data_dir / "fer2013.csv", 120, seed=2)


MLFLOW_EXPORTS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
)
"""`mlflow.set_tracking_uri`, `set_registry_uri` and `set_experiment` export these, and the
commands a test starts (`emotion-ai ...`, `mlflow run`) would follow them into another test's
store."""


@pytest.fixture(autouse=True)
def _mlflow_settings_stay_in_their_test(monkeypatch):
    for name in MLFLOW_EXPORTS:
        monkeypatch.delenv(name, raising=False)
    yield
    for name in MLFLOW_EXPORTS:
        os.environ.pop(name, None)
