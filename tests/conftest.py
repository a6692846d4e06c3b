"""Shared fixtures: small data sets generated in the exact Kaggle formats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emotion_ai.synthetic import write_fer_csv, write_keypoints_csv  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def keypoints_csv(data_dir: Path) -> Path:
    return write_keypoints_csv(data_dir / "training.csv", 60, seed=1)


@pytest.fixture(scope="session")
def fer_csv(data_dir: Path) -> Path:
    return write_fer_csv(data_dir / "fer2013.csv", 120, seed=2)
