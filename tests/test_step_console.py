"""`emotion-ai run`'s console: kfp.local's stdout sorted into step logs, a line per step."""

from __future__ import annotations

import errno
import io

import pytest
from rich.console import Console

from emotion_ai.cli.step_console import step_console
from emotion_ai.logs import HEADLINE_MARK
from emotion_ai.progress import PROGRESS_DIR_ENV, Progress, read_progress, write_progress

STEPS = ["ingest", "train_emotion"]


def _kfp_prints(steps: dict[str, str], failing: str = "") -> None:
    """What kfp.local prints for each task (colour codes included), and its step's own lines."""
    print("\x1b[95m'emotion-ai'\x1b[0m Running pipeline")
    for task, headline in steps.items():
        print(f"12:00:00.000 - INFO - Executing task \x1b[96m'{task}'\x1b[0m")
        print(f"    [KFP Executor] running {task}")
        print(f"    2026 INFO emotion_ai.steps: {HEADLINE_MARK}{headline}")
        status = "FAILURE" if task == failing else "SUCCESS"
        print(f"12:00:01.000 - INFO - Task \x1b[96m'{task}'\x1b[0m finished with status {status}")
        if task == failing:
            raise RuntimeError(f"Pipeline finished with status FAILURE. Inner task failed: {task}")


def test_each_step_gets_a_line_with_its_headline_and_a_log_of_its_own(tmp_path):
    screen = io.StringIO()
    with step_console(STEPS, tmp_path, Console(file=screen, width=80)):
        _kfp_prints({"ingest": "keypoints 3.9 MB", "train-emotion": "1 epoch, val accuracy 0.5"})
    shown = screen.getvalue()
    assert "✓ ingest" in shown and "keypoints 3.9 MB" in shown
    assert "✓ train_emotion" in shown and "val accuracy 0.5" in shown
    assert "KFP Executor" not in shown and "Running pipeline" not in shown
    assert "running train-emotion" in (tmp_path / "train_emotion.log").read_text()
    assert "running ingest" not in (tmp_path / "train_emotion.log").read_text()
    assert "Running pipeline" in (tmp_path / "pipeline.log").read_text()


def test_a_failing_step_shows_its_last_lines(tmp_path):
    screen = io.StringIO()
    with pytest.raises(RuntimeError), step_console(STEPS, tmp_path, Console(file=screen)):
        _kfp_prints({"ingest": "ok", "train-emotion": "never"}, failing="train-emotion")
    shown = screen.getvalue()
    assert "✗ train_emotion" in shown and "step train_emotion failed" in shown
    assert "running train-emotion" in shown[shown.index("step train_emotion failed") :]


def test_a_full_disk_under_the_logs_ends_the_run_with_it_and_no_step_trace(tmp_path):
    """/dev/full answers every write with ENOSPC, as a full state folder would."""
    (tmp_path / "train_emotion.log").symlink_to("/dev/full")
    screen = io.StringIO()
    with pytest.raises(OSError) as raised, step_console(STEPS, tmp_path, Console(file=screen)):
        _kfp_prints({"ingest": "ok", "train-emotion": "never"}, failing="train-emotion")
    assert raised.value.errno == errno.ENOSPC
    assert isinstance(raised.value.__cause__, RuntimeError), "the step's failure stays chained"
    shown = screen.getvalue()
    assert "✗ train_emotion" in shown and "failed; its last lines" not in shown
    assert "running ingest" in (tmp_path / "ingest.log").read_text(), "the other logs are whole"


def test_verbose_shows_every_line(tmp_path, capsys):
    with step_console(STEPS, tmp_path, Console(file=io.StringIO()), verbose=True):
        _kfp_prints({"ingest": "ok"})
    assert "[KFP Executor] running ingest" in capsys.readouterr().out
    assert "running ingest" in (tmp_path / "ingest.log").read_text()


def test_a_running_training_step_shows_its_epochs_and_grows_its_log(tmp_path):
    """kfp.local hands a step's own lines over only when it ends; the step's progress file is read
    meanwhile (here: the last poll, as the pipeline stops, without waiting on the poller)."""
    screen = io.StringIO()
    with step_console(STEPS, tmp_path, Console(file=screen, width=120)) as lines:
        print("12:00:00.000 - INFO - Executing task 'train-emotion'")
        write_progress("train_emotion", Progress(2, 40, "val accuracy 0.612", 900.0))
        lines.poll_progress()
        assert lines.steps["train_emotion"].headline.startswith("epoch 2/40, val accuracy 0.612")
        write_progress("train_emotion", Progress(3, 40, "val accuracy 0.640", 850.0))
    log = (tmp_path / "train_emotion.log").read_text()
    assert log.count("[progress] epoch 2/40") == 1 and "about 15 min left" in log
    assert "train_emotion: epoch 3/40, val accuracy 0.640, about 14 min left" in screen.getvalue()


def test_training_records_its_progress_after_each_epoch(tmp_path, monkeypatch):
    from emotion_ai.modeling.callbacks import EpochProgress

    monkeypatch.setenv(PROGRESS_DIR_ENV, str(tmp_path))
    callback = EpochProgress("train_keypoints", epochs=10)
    callback.on_train_begin()
    callback.on_epoch_begin(4)
    callback.on_epoch_end(4, {"loss": 0.1, "val_masked_rmse_px": 2.345})
    progress = read_progress(tmp_path, "train_keypoints")
    assert (progress.epoch, progress.epochs, progress.figure) == (5, 10, "val RMSE 2.35 px")
    assert progress.seconds_left >= 0
