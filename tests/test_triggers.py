"""Retraining triggers: new data, drift of served faces, a schedule; one run at a time, reason in
MLflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from emotion_ai.data.datasets import FaceDataset
from emotion_ai.data.profiles import data_profile
from emotion_ai.data.synthetic import (
    synthetic_faces,
    write_fer_csv,
    write_keypoints_csv,
)
from emotion_ai.locations import location
from emotion_ai.monitoring.drift import (
    DriftThresholds,
    detect_drift,
    population_stability_index,
)
from emotion_ai.monitoring.launchers import CommandLauncher
from emotion_ai.monitoring.request_log import RequestSampler, read_samples
from emotion_ai.monitoring.triggers import data_sources
from emotion_ai.monitoring.watcher import Watcher, WatchSettings
from emotion_ai.steps.tracking import TRIGGER_TAG, local_tracking, use_tracking

FACES = 120


def _faces(seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(FACES) % 5
    faces, _ = synthetic_faces(labels, np.random.default_rng(seed))
    return faces, labels


@pytest.fixture(scope="module")
def reference() -> dict:
    faces, labels = _faces(seed=0)
    return data_profile(
        FaceDataset(faces, labels, np.zeros(FACES, int), {"kind": "emotion", "split": {}})
    )


def _served(log: Path, faces: np.ndarray, classes: np.ndarray) -> None:
    RequestSampler(log, rate=1.0).record("emotion-ai", faces.astype(np.float32)[..., None], classes)


def test_psi_is_zero_for_equal_mixes_and_grows_with_the_shift():
    assert population_stability_index([0.5, 0.5], [50, 50]) == pytest.approx(0)
    assert (
        0
        < population_stability_index([0.5, 0.5], [60, 40])
        < population_stability_index([0.5, 0.5], [90, 10])
    )


def test_faces_like_the_training_data_do_not_drift_and_changed_ones_do(reference, tmp_path):
    faces, labels = _faces(seed=1)
    _served(tmp_path / "same.jsonl", faces, labels)
    same = detect_drift(reference, read_samples(tmp_path / "same.jsonl"))
    assert same is not None and not same.drifted, same
    _served(tmp_path / "dark.jsonl", (faces * 0.45).astype(np.uint8), labels)
    dark = detect_drift(reference, read_samples(tmp_path / "dark.jsonl"))
    assert dark.drifted and any("pixel histogram PSI" in r for r in dark.reasons)
    assert any("brightness KS" in r for r in dark.reasons)
    _served(tmp_path / "happy.jsonl", faces, np.full(FACES, 3))
    happy = detect_drift(reference, read_samples(tmp_path / "happy.jsonl"))
    assert [r for r in happy.reasons if "class mix" in r] and happy.class_mix_psi > 1


def test_too_few_sampled_faces_are_not_judged(reference, tmp_path):
    faces, labels = _faces(seed=1)
    _served(tmp_path / "few.jsonl", faces[:10], labels[:10])
    assert (
        detect_drift(reference, read_samples(tmp_path / "few.jsonl"), DriftThresholds(min_faces=50))
        is None
    )


def test_a_half_written_last_line_is_left_for_the_next_read(tmp_path):
    log = tmp_path / "requests.jsonl"
    faces, labels = _faces(seed=2)
    _served(log, faces[:3], labels[:3])
    with open(log, "a") as handle:
        handle.write('{"time": 1, "mod')
    samples = read_samples(log)
    assert len(samples.means) == 3 and samples.end_offset < log.stat().st_size
    assert len(read_samples(log, samples.end_offset).means) == 0


class Recorder:
    """A launch command that appends the reason it was given to a file."""

    def __init__(self, folder: Path, seconds: float = 0.0) -> None:
        self.file = folder / "launches.txt"
        self.command = (
            f'{sys.executable} -c "import os, time; time.sleep({seconds}); '
            f"open(r'{self.file}', 'a').write(os.environ['EMOTION_AI_TRIGGER'] + '|' + "
            "os.environ['EMOTION_AI_FER_CSV'] + chr(10))\""
        )

    def launches(self) -> list[str]:
        return self.file.read_text().splitlines() if self.file.is_file() else []


@pytest.fixture
def data_folder(tmp_path) -> Path:
    folder = tmp_path / "incoming"
    write_keypoints_csv(folder / "training.csv", 40, seed=1)
    write_fer_csv(folder / "fer2013.csv", 60, seed=2)
    return folder


def _watcher(tmp_path: Path, recorder: Recorder, **settings) -> Watcher:
    return Watcher(
        WatchSettings(tmp_path / "state", **settings),
        CommandLauncher(recorder.command),
        local_tracking(tmp_path / "state"),
    )


def test_new_data_triggers_exactly_one_run_and_changed_data_another(tmp_path, data_folder):
    recorder = Recorder(tmp_path)
    watcher = _watcher(tmp_path, recorder, data_uri=str(data_folder), debounce_seconds=0)
    first = watcher.check_once()
    assert [t.kind for t in first.triggers] == ["new_data"] and first.launched
    assert watcher.check_once().triggers == []
    write_fer_csv(data_folder / "fer2013.csv", 60, seed=3)
    assert watcher.check_once().triggers[0].reason == "new data: fer2013.csv"
    launches = recorder.launches()
    assert len(launches) == 2 and launches[0].startswith("new data: fer2013.csv, training.csv|")
    assert launches[1].endswith(str((data_folder / "fer2013.csv").resolve()))


def test_only_data_files_are_taken_as_sources_and_a_state_folder_inside_the_data_is_refused(
    data_folder,
):
    (data_folder / "fer2013-report.html").write_text("<html></html>")
    (data_folder / "training_notes.txt").write_text("notes")
    keypoints, fer = data_sources(location(data_folder).fingerprints())
    assert (keypoints, fer) == (
        str((data_folder / "training.csv").resolve()),
        str((data_folder / "fer2013.csv").resolve()),
    )
    with pytest.raises(ValueError, match="state folder .* is inside the watched data folder"):
        WatchSettings(data_folder / ".state", data_uri=str(data_folder))


def test_drift_triggers_undrifted_does_not_and_the_reason_is_in_mlflow(tmp_path, reference):
    recorder, log = Recorder(tmp_path), tmp_path / "requests.jsonl"
    watcher = _watcher(
        tmp_path, recorder, request_log=log, reference_profile=reference, debounce_seconds=0
    )
    faces, labels = _faces(seed=4)
    _served(log, faces, labels)
    assert watcher.check_once().triggers == [] and recorder.launches() == []
    _served(log, 255 - faces, labels)
    outcome = watcher.check_once()
    assert [t.kind for t in outcome.triggers] == ["drift"] and len(recorder.launches()) == 1
    experiment_id = use_tracking(local_tracking(tmp_path / "state"))
    runs = mlflow.search_runs(
        [experiment_id], filter_string="tags.emotion_ai.step = 'watch'", output_format="list"
    )
    assert len(runs) == 1 and runs[0].data.tags[TRIGGER_TAG].startswith(
        "drift of served faces (120 sampled)"
    )
    assert runs[0].data.metrics["drift.pixel_psi"] > 0.2 and runs[0].info.status == "FINISHED"
    assert watcher.check_once().triggers == [], (
        "the drifted faces were consumed by the run they triggered"
    )


def test_triggers_at_once_start_one_run_and_debounce_defers_without_dropping(
    tmp_path, data_folder, reference
):
    recorder, log = Recorder(tmp_path), tmp_path / "requests.jsonl"
    faces, labels = _faces(seed=5)
    _served(log, 255 - faces, labels)
    watcher = _watcher(
        tmp_path,
        recorder,
        data_uri=str(data_folder),
        request_log=log,
        reference_profile=reference,
        schedule="* * * * *",
        debounce_seconds=600,
    )
    now = 1_800_000_000.0
    both = watcher.check_once(now)
    assert {t.kind for t in both.triggers} == {"new_data", "drift"}
    assert (
        len(recorder.launches()) == 1
        and "new data" in recorder.launches()[0]
        and "drift" in recorder.launches()[0]
    )
    write_fer_csv(data_folder / "fer2013.csv", 60, seed=6)
    deferred = watcher.check_once(now + 120)
    assert {t.kind for t in deferred.triggers} == {
        "new_data",
        "schedule",
    } and "deferred" in deferred.note
    assert len(recorder.launches()) == 1
    later = watcher.check_once(now + 700)
    assert {t.kind for t in later.triggers} == {"new_data", "schedule"} and len(
        recorder.launches()
    ) == 2


def test_two_watchers_at_once_start_one_run(tmp_path, data_folder):
    recorder = Recorder(tmp_path, seconds=4)
    command = [
        sys.executable,
        "-m",
        "emotion_ai",
        "watch",
        "--once",
        "--data-uri",
        str(data_folder),
        "--reference-profile",
        str(_write_profile(tmp_path)),
        "--launch",
        "command",
        "--launch-command",
        recorder.command,
        "--state-dir",
        str(tmp_path / "state"),
    ]
    environment = {**os.environ, "COLUMNS": "200"}
    watchers = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
        )
        for _ in range(2)
    ]
    outputs = [watcher.communicate(timeout=120)[0] for watcher in watchers]
    assert all(watcher.returncode == 0 for watcher in watchers), outputs
    assert len(recorder.launches()) == 1
    assert sum("another triggered run is in progress" in output for output in outputs) == 1, outputs


def _write_profile(tmp_path: Path) -> Path:
    faces, labels = _faces(seed=0)
    profile = data_profile(
        FaceDataset(faces, labels, np.zeros(FACES, int), {"kind": "emotion", "split": {}})
    )
    path = tmp_path / "profile.json"
    path.write_text(__import__("json").dumps({"emotion": profile}))
    return path
