"""Runs the pipeline on this machine through kfp.local's SubprocessRunner (no Docker, no
cluster)."""

from __future__ import annotations

import warnings
from pathlib import Path

from kfp import local

from pipelines.pipeline import emotion_ai_pipeline


def run_local(pipeline_root: Path, **arguments: object) -> None:
    """Runs every step as a subprocess of this Python environment; raises if a step fails."""
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    emotion_ai_pipeline(**arguments)
