"""The pre-promotion infrastructure check, release's side: before the champion alias moves, the
candidate export is loaded by the serving code in a separate process
(`emotion_ai.serving.infra_validation`) and must answer its warm-up requests as the trained model
does, within a latency budget. A candidate that fails is never published or promoted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from emotion_ai.release.warmup import read_warmup_faces

CHECK_TIMEOUT_SECONDS = 600
"""How long the checking process may take in all (loading TensorFlow and the export included)."""


class InfraCheckFailed(RuntimeError):
    """The candidate export did not pass the infrastructure check; nothing was promoted."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass(frozen=True)
class InfraReport:
    passed: bool
    reason: str
    engine: str | None = None
    slowest_ms: float | None = None


def check_export(
    model: keras.Model, model_name: str, export_dir: Path, latency_budget_ms: float
) -> InfraReport:
    """Runs the check on an export of `model`; raises InfraCheckFailed (with the report) when the
    candidate fails."""
    with tempfile.TemporaryDirectory(prefix="infra-check-") as scratch:
        expected = Path(scratch) / "expected.npz"
        # Called, not `predict`ed: predict traces a function per batch size (and warns about it).
        answers = [
            np.asarray(model(faces, training=False)) for faces in read_warmup_faces(export_dir)
        ]
        np.savez(expected, **{f"answer_{i}": answer for i, answer in enumerate(answers)})
        report = _run_check(model_name, export_dir, latency_budget_ms, expected)
    if not report.passed:
        raise InfraCheckFailed(
            f"{model_name} failed the infrastructure check: {report.reason}", report.reason
        )
    return report


def _run_check(
    model_name: str, export_dir: Path, latency_budget_ms: float, expected: Path
) -> InfraReport:
    command = [
        sys.executable, "-m", "emotion_ai.serving.infra_validation",
        "--model-name", model_name, "--export-dir", str(export_dir),
        "--latency-budget-ms", str(latency_budget_ms), "--expected", str(expected),
    ]  # fmt: skip
    try:
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=CHECK_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return InfraReport(False, f"it did not answer within {CHECK_TIMEOUT_SECONDS} s")
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        last_words = finished.stderr.strip().splitlines()[-1:] or ["no output"]
        return InfraReport(
            False, f"the checking process exited with {finished.returncode}: {last_words[0]}"
        )
    return InfraReport(**json.loads(lines[-1]))
