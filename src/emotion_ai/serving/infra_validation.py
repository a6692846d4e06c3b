"""The pre-promotion infrastructure check, serving's side (TFX InfraValidator's idea): load a
candidate export with the serving code, as the server would, send it its warm-up requests, and say
whether it answered correctly within the latency budget.

Run as `python -m emotion_ai.serving.infra_validation`, in a process of its own (see
`emotion_ai.release.infra_check`), so that an export that crashes or hangs the loader takes only
this process down. It prints one JSON line: `{"passed": ..., "reason": ..., "engine": ...,
"slowest_ms": ...}`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from emotion_ai.faces import EMOTIONS
from emotion_ai.serving.engines import ship_openvino
from emotion_ai.serving.versions import OUTPUT_SIZES, load_version, warmup_batches
from emotion_ai.settings import EMOTION_MODEL, ServingOptions

ANSWER_TOLERANCE = 1e-3
"""Largest difference from the trained model's own answers, absolute plus relative: |served -
expected| <= tol + tol * |expected|."""


def wrong_answer(model_name: str, answer: np.ndarray, expected: np.ndarray | None) -> str | None:
    """How one warm-up answer is wrong, or None when it is right."""
    if answer.shape != (len(answer), OUTPUT_SIZES[model_name]):
        return f"it answered shape {list(answer.shape)}, not [n, {OUTPUT_SIZES[model_name]}]"
    if not np.isfinite(answer).all():
        return f"it answered {np.size(answer) - np.isfinite(answer).sum()} non-finite values (NaN)"
    if model_name == EMOTION_MODEL and not np.allclose(answer.sum(axis=1), 1.0, atol=1e-3):
        return f"its {len(EMOTIONS)} emotion probabilities do not sum to 1"
    if expected is not None:
        if (np.abs(answer - expected) > ANSWER_TOLERANCE * (1 + np.abs(expected))).any():
            return (
                f"it answers up to {float(np.abs(answer - expected).max()):.3g} off the trained "
                f"model (tolerance {ANSWER_TOLERANCE:g})"
            )
    return None


def validate(
    model_name: str, export_dir: Path, latency_budget_ms: float, expected: list[np.ndarray] | None
) -> dict:
    """Loads the export as the server would (its engine, its warm-up), then sends each warm-up
    request once more, timed, and checks every answer. A passing export converted to OpenVINO here
    gets the converted model shipped inside it, so that servers need not convert it again."""
    loaded = load_version(model_name, 0, export_dir, ServingOptions())
    slowest_ms = 0.0
    for index, faces in enumerate(warmup_batches(export_dir, 1)):
        started = time.perf_counter()
        answer = loaded.infer_now(faces)
        slowest_ms = max(slowest_ms, (time.perf_counter() - started) * 1e3)
        problem = wrong_answer(model_name, answer, expected[index] if expected else None)
        if problem:
            return _report(False, f"warm-up request {index + 1}: {problem}", loaded, slowest_ms)
    if slowest_ms > latency_budget_ms:
        return _report(
            False,
            f"its slowest warm-up request took {slowest_ms:.0f} ms, over the budget of "
            f"{latency_budget_ms:g} ms",
            loaded,
            slowest_ms,
        )
    if loaded.choice.agreement is not None:
        ship_openvino(export_dir, loaded.engine, loaded.choice.agreement)
    return _report(True, "answered every warm-up request correctly in time", loaded, slowest_ms)


def _report(passed: bool, reason: str, loaded, slowest_ms: float) -> dict:
    return {
        "passed": passed,
        "reason": reason,
        "engine": loaded.engine.name,
        "slowest_ms": round(slowest_ms, 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", required=True, choices=sorted(OUTPUT_SIZES))
    parser.add_argument("--export-dir", required=True, type=Path)
    parser.add_argument("--latency-budget-ms", required=True, type=float)
    parser.add_argument(
        "--expected", type=Path, help="an .npz of the trained model's answers, one per request"
    )
    args = parser.parse_args(argv)
    expected = None
    if args.expected:
        with np.load(args.expected, allow_pickle=False) as answers:
            expected = [answers[f"answer_{i}"] for i in range(len(answers.files))]
    try:
        report = validate(args.model_name, args.export_dir, args.latency_budget_ms, expected)
    except Exception as error:  # noqa: BLE001 - whatever stops the load is the check's finding
        report = {"passed": False, "reason": f"it does not load: {error}", "engine": None}
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
