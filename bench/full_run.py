"""README's real-data command, end to end: `emotion-ai run` on the shared FER2013 and FKD files,
each pipeline step's wall time and peak memory (resident set of the step's processes, sampled).

The ratio is the two trainings' share of the run's wall time (how little the pipeline adds around
them); the per-step figures are the point. The command is README's real-data command, read from
README.md, with the shared files' paths.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
README = BENCH_DIR.parent / "README.md"
sys.path.insert(0, str(BENCH_DIR))

import full_data  # noqa: E402
from results_table import write_result  # noqa: E402

STEPS = ("ingest", "validate", "train_keypoints", "train_emotion", "evaluate", "register")
TRAINING_STEPS = ("train_keypoints", "train_emotion")
REAL_DATA_COMMAND = re.compile(r"^uv run emotion-ai run (--keypoints-csv [^`]*)$", re.MULTILINE)
DATA_FILE_OPTIONS = ("--keypoints-csv", "--fer-csv")
SAMPLE_SECONDS = 2.0


def readme_flags() -> list[str]:
    """README's real-data command's options but its two data files."""
    command = REAL_DATA_COMMAND.search(README.read_text())
    if command is None:
        raise SystemExit(f"{README}: no `uv run emotion-ai run --keypoints-csv ...` command found")
    words = iter(shlex.split(command.group(1).replace("\\\n", " ")))
    flags = []
    for word in words:
        if word in DATA_FILE_OPTIONS:
            next(words)  # the file's path
        else:
            flags.append(word)
    return flags


def readme_command(flags: list[str], state_dir: Path) -> list[str]:
    """README's real-data command (its `flags`) on the shared files, into its own state folder."""
    return [
        "emotion-ai",
        "run",
        "--keypoints-csv",
        str(full_data.FKD_TEACHER),
        "--fer-csv",
        str(full_data.FER2013),
        *flags,
        "--state-dir",
        str(state_dir),
    ]


def step_of(process: psutil.Process) -> str | None:
    """The pipeline step a process works for: kfp.local runs each step's component function as
    `... --function_to_execute <step>`."""
    try:
        arguments = process.cmdline()
    except psutil.Error:
        return None
    for flag, value in zip(arguments, arguments[1:], strict=False):
        if flag == "--function_to_execute" and value in STEPS:
            return value
    return None


def watch(command: list[str]) -> tuple[int, dict[str, dict[str, float]], float]:
    """Runs `command`, sampling its process tree; each step's first/last sighting and peak RSS."""
    started = time.monotonic()
    runner = subprocess.Popen(command)
    seen: dict[str, dict[str, float]] = {}
    while runner.poll() is None:
        now = time.monotonic() - started
        rss_by_step: dict[str, int] = {}
        for child in psutil.Process(runner.pid).children(recursive=True):
            step = step_of(child)
            if step is None:
                continue
            try:
                rss_by_step[step] = rss_by_step.get(step, 0) + child.memory_info().rss
            except psutil.Error:
                continue
        for step, rss in rss_by_step.items():
            record = seen.setdefault(step, {"first_s": now, "peak_rss_mib": 0.0})
            record["last_s"] = now
            record["peak_rss_mib"] = max(record["peak_rss_mib"], rss / 2**20)
        time.sleep(SAMPLE_SECONDS)
    return runner.returncode, seen, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=BENCH_DIR / "work" / "full_run_state")
    args = parser.parse_args()
    flags = readme_flags()
    command = readme_command(flags, args.state_dir)
    print("running:", shlex.join(command), flush=True)
    returncode, seen, total_s = watch(command)
    if returncode != 0:
        sys.exit(f"the run failed (exit {returncode}); nothing recorded")
    steps = {
        step: {
            "minutes": round((record["last_s"] - record["first_s"] + SAMPLE_SECONDS) / 60, 2),
            "peak_rss_mib": round(record["peak_rss_mib"]),
        }
        for step, record in seen.items()
    }
    training_minutes = sum(steps[step]["minutes"] for step in TRAINING_STEPS if step in steps)
    total_minutes = total_s / 60
    write_result(
        "full_run",
        value=training_minutes,
        baseline=total_minutes,
        target=0.9,
        unit="min",
        command=f"uv run python bench/full_run.py  # runs: emotion-ai run ... {shlex.join(flags)}",
        details={"total_minutes": round(total_minutes, 1), "steps": steps},
    )
    print(f"total {total_minutes:.1f} min; steps: {steps}", flush=True)


if __name__ == "__main__":
    main()
