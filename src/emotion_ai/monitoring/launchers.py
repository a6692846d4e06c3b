"""How a triggered pipeline run is started: on this machine, on Kubeflow Pipelines, or by any
command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Launcher(Protocol):
    def launch(self, reason: str, keypoints_source: str, fer_source: str) -> str:
        """Starts a pipeline run; returns what was started. Raises if it could not."""


@dataclass(frozen=True)
class LocalLauncher:
    """`emotion-ai run` on this machine, waiting for it to finish."""

    state_dir: Path
    run_arguments: tuple[str, ...] = ()

    def launch(self, reason: str, keypoints_source: str, fer_source: str) -> str:
        command = [
            sys.executable,
            "-m",
            "emotion_ai",
            "run",
            "--state-dir",
            str(self.state_dir),
            "--trigger",
            reason,
            "--keypoints-csv",
            keypoints_source,
            "--fer-csv",
            fer_source,
            *self.run_arguments,
        ]
        subprocess.run(command, check=True)
        return "local pipeline run finished"


@dataclass(frozen=True)
class KfpLauncher:
    """One run on Kubeflow Pipelines (the cluster runs it; this returns once it is submitted)."""

    submit: Callable[[list[str]], str]
    """Submits one run with these `name=value` parameters and returns its id
    (`pipelines.remote.Cluster.submit`,
    handed in by the CLI: the library never imports the top-level `pipelines`)."""
    parameters: tuple[str, ...]

    def launch(self, reason: str, keypoints_source: str, fer_source: str) -> str:
        sources = [f"keypoints_source={keypoints_source}", f"fer_source={fer_source}"]
        run_id = self.submit([*self.parameters, *sources, f"trigger={reason}"])
        return f"KFP run {run_id}"


@dataclass(frozen=True)
class CommandLauncher:
    """Any shell command, told the reason and sources in EMOTION_AI_* environment variables."""

    command: str

    def launch(self, reason: str, keypoints_source: str, fer_source: str) -> str:
        environment = {
            **os.environ,
            "EMOTION_AI_TRIGGER": reason,
            "EMOTION_AI_KEYPOINTS_CSV": keypoints_source,
            "EMOTION_AI_FER_CSV": fer_source,
        }
        subprocess.run(self.command, shell=True, check=True, env=environment)
        return f"command finished: {self.command}"
