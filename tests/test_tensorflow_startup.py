"""TensorFlow's C++ start-up notices stay off the console; anything else it prints still shows; the
objects its import made are frozen out of the garbage collector's walks."""

import os
import subprocess
import sys

from emotion_ai.tensorflow_startup import LOG_LEVEL_VARIABLE, filtered

IMPORT_TENSORFLOW = (
    "import sys, emotion_ai, tensorflow as tf; "
    "print('after import', file=sys.stderr); print(int(tf.reduce_sum(tf.ones(3))))"
)


def _stderr_of_import(**environment: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != LOG_LEVEL_VARIABLE}
    return subprocess.run(
        [sys.executable, "-c", IMPORT_TENSORFLOW],
        capture_output=True,
        text=True,
        env={**env, **environment},
        check=True,
    )


def test_importing_tensorflow_prints_no_start_up_notices():
    result = _stderr_of_import()
    assert result.stdout == "3\n"
    assert result.stderr == "after import\n"


def test_log_level_0_brings_tensorflow_detail_back():
    result = _stderr_of_import(**{LOG_LEVEL_VARIABLE: "0"})
    assert "absl::InitializeLog()" in result.stderr and "after import" in result.stderr


def test_only_the_notices_are_dropped():
    captured = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796408437.183982   12965 port.cc:153] oneDNN custom operations are on.\n"
        "E0000 00:00:1796408437.183982   12965 some_op.cc:12] a real error\n"
        "a Python warning\n"
    )
    assert filtered(captured) == (
        "E0000 00:00:1796408437.183982   12965 some_op.cc:12] a real error\na Python warning\n"
    )


def test_the_objects_of_keras_and_tensorflow_imports_are_frozen_out_of_the_collectors_walks():
    frozen_after = (
        "import gc, emotion_ai; before = gc.get_freeze_count(); import keras; "
        "print(before, gc.get_freeze_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", frozen_after], capture_output=True, text=True, check=True
    )
    before, after = map(int, result.stdout.split())
    assert before == 0 and after > 100_000, result.stdout
