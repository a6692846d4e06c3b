"""bench/faults.py's cases against the pipeline's state rather than the server: the gate's decision
after its round trip through the file the steps exchange, two runs at once on one state, a promote
during a run, a corrupt tracking database, a read-only and a full state folder, and a password in a
failing tracking URI. Each runs the real commands on a state folder of its own (tiny synthetic
runs).

The read-only and full folders are small tmpfs mounts (file modes do not stop root, whom the bench
runs as): where mounting is not allowed, the two cases say so and count as not survived.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faults import Case
from servers import free_port
from tiny_networks import TINY_RUN as TINY_RUN_OPTIONS

from emotion_ai.storage import partials_under

TINY_RUN = ["run", *TINY_RUN_OPTIONS]
EMOTION_MODEL = "emotion-ai-emotion"


def _own_state() -> dict[str, str]:
    """This process's environment less its MLflow settings (the load phase's tracking URI and
    experiment): each command uses the state folder it is given."""
    own = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return own | {"COLUMNS": "200"}


def _emotion_ai(state: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "emotion_ai", *args, "--state-dir", str(state)]
    return subprocess.run(command, capture_output=True, text=True, env=env or _own_state())


def _start(state: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "emotion_ai", *args, "--state-dir", str(state)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_own_state()
    )


def _champion_is_served(state: Path) -> tuple[bool, str]:
    """Whether the registry's emotion champion is the version the layout serves as stable."""
    from emotion_ai.release import registry
    from emotion_ai.release.model_repository import read_labels
    from emotion_ai.steps.tracking import local_tracking, use_tracking

    use_tracking(local_tracking(state))
    champion = registry.version_by_alias(EMOTION_MODEL, registry.CHAMPION)
    stable = read_labels(state / "serving", EMOTION_MODEL).get("stable")
    served = champion is not None and stable == int(champion.version)
    return served, f"champion {champion.version if champion else None}, stable {stable}"


def gate_round_trip(work: Path) -> Case:
    """The evaluate step's decision through the file register reads: a NumPy bool is refused where
    it is written, a bool crosses as itself, and the text "False" (the old bug) is refused where it
    is read."""
    import numpy as np
    from pydantic import ValidationError

    from emotion_ai.release.decisions import read_decisions, write_decisions

    decision = {
        "model": EMOTION_MODEL, "promote": False, "reason": "not better", "test": "McNemar exact",
        "p_value": 0.5, "challenger_score": 0.5, "champion_score": 0.6, "metrics": {}, "data": {},
    }  # fmt: skip
    path = work / "decisions.json"
    refusals = []
    try:
        write_decisions(path, [{**decision, "promote": np.bool_(False)}])
    except ValidationError:
        refusals.append("NumPy bool refused when written")
    crossed = write_decisions(path, [decision])[EMOTION_MODEL]["promote"]
    path.write_text(path.read_text().replace('"promote": false', '"promote": "False"'))
    try:
        read_decisions(path)
    except ValidationError:
        refusals.append('"False" refused when read')
    ok = crossed is False and len(refusals) == 2
    return Case(
        "the gate after a round trip", ok, ok, f"crossed {crossed!r}; {'; '.join(refusals)}"
    )


def two_runs_at_once(work: Path) -> Case:
    """Two pipelines on one state at once: both finish and the champion is what is served."""
    state = work / "two-runs"
    runs = [_start(state, *TINY_RUN, f"--seed={seed}") for seed in (0, 1)]
    for run in runs:
        run.communicate()
    finished = [run.returncode for run in runs]
    served, words = _champion_is_served(state)
    ok = finished == [0, 0]
    return Case("two runs at once on one state", ok, served, f"exits {finished}; {words}")


def promote_during_a_run(work: Path) -> Case:
    """A promote of version 1 while a run registers: it waits its turn; the champion stays what is
    served."""
    state = work / "two-runs"  # holds two versions of each model by now
    run = _start(state, *TINY_RUN, "--seed=2")
    time.sleep(1)  # the run is under way; the promote may land before, during or after register
    promote = _emotion_ai(state, "promote", EMOTION_MODEL, "1")
    run.communicate()
    served, words = _champion_is_served(state)
    ok = promote.returncode == 0 and run.returncode == 0
    return Case(
        "promote during a run", ok, served, f"promote exit {promote.returncode}, run exit "
        f"{run.returncode}; {words}"
    )  # fmt: skip


def corrupt_database(work: Path) -> Case:
    """A corrupt mlflow.db: one line saying what to do; doctor sets it aside, nothing deleted."""
    state = work / "corrupt"
    state.mkdir()
    garbage = os.urandom(8192)
    (state / "mlflow.db").write_bytes(garbage)
    listed = _emotion_ai(state, "models")
    printed = (listed.stdout + listed.stderr).strip()
    one_line = listed.returncode == 1 and "Traceback" not in printed and "doctor" in printed
    repaired = _emotion_ai(state, "doctor")
    kept = [path for path in state.glob("mlflow.db.corrupt-*") if path.read_bytes() == garbage]
    ok = one_line and repaired.returncode == 0
    return Case("a corrupt tracking database", ok, bool(kept), printed.splitlines()[-1][:160])


@contextmanager
def _small_file_system(folder: Path, size: str, read_only: bool = False) -> Iterator[bool]:
    """A tmpfs of `size` mounted on `folder` (read-only when asked) for the block; yields whether
    it could be mounted."""
    folder.mkdir(parents=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)])
    if mount.returncode != 0:
        yield False
        return
    try:
        (folder / "state").mkdir()
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield True
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _one_clear_line(result: subprocess.CompletedProcess, words: str) -> tuple[bool, str]:
    """Whether a failed command ended with one line holding `words` and printed no trace."""
    printed = (result.stdout + result.stderr).strip()
    last = printed.splitlines()[-1] if printed else ""
    ok = result.returncode == 1 and words in last and "Traceback" not in printed
    return ok, f"exit {result.returncode}, {len(printed.splitlines())} lines: {last[:120]}"


def state_folder_on(work: Path, name: str, size: str, read_only: bool, words: str) -> Case:
    """A run on a state folder that is read-only or fills up: one line naming it and what to do,
    and nothing half-written left behind."""
    with _small_file_system(work / name, size, read_only) as mounted:
        if not mounted:
            return Case(f"a {name} state folder", False, False, "cannot mount a tmpfs here")
        state = work / name / "state"
        ok, detail = _one_clear_line(_emotion_ai(state, *TINY_RUN), words)
        partials = [str(path) for path in partials_under(state)]
    return Case(f"a {name} state folder", ok, not partials, f"{detail}; partial files {partials}")


def password_in_a_failing_uri(work: Path) -> Case:
    """A run against an unreachable tracking server with a password in its URI: the password is
    in none of the output."""
    secret = "s3cret-in-uri"
    down = {**_own_state(), "MLFLOW_TRACKING_URI": f"http://admin:{secret}@127.0.0.1:{free_port()}"}
    result = _emotion_ai(work / "down", *TINY_RUN, env=down)
    printed = result.stdout + result.stderr
    ok = result.returncode != 0 and secret not in printed and "admin:***@" in printed
    return Case(
        "a password in a failing tracking URI", ok, ok, f"exit {result.returncode}, "
        f"{len(printed.splitlines())} lines, password shown: {secret in printed}"
    )  # fmt: skip


def state_cases(work: Path) -> list[Case]:
    return [
        gate_round_trip(work),
        two_runs_at_once(work),
        promote_during_a_run(work),
        corrupt_database(work),
        state_folder_on(work, "read-only", "50m", True, "the state folder must be writable"),
        state_folder_on(work, "full", "3m", False, "no space left on the device of"),
        password_in_a_failing_uri(work),
    ]
