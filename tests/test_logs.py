"""Passwords in URIs never reach a log line, whichever library logs them."""

import io
import logging
import os
import subprocess
import sys
from contextlib import redirect_stderr

import pytest
from servers import free_port

from emotion_ai.logs import StderrHandler, redact, redact_credentials_in_logs


def test_passwords_in_uris_are_hidden():
    assert (
        redact("http://user:pw@host:5000/x and s3://k:s@b")
        == "http://user:***@host:5000/x and s3://k:***@b"
    )
    assert (
        redact("postgresql://mlflow@db/mlflow is fine") == "postgresql://mlflow@db/mlflow is fine"
    )


def test_every_log_record_of_the_process_is_redacted():
    redact_credentials_in_logs()
    redact_credentials_in_logs()
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    other = logging.getLogger("some.library")
    other.addHandler(keep := Keep())
    other.setLevel(logging.INFO)
    try:
        other.info("retrying %s after %d s", "http://alice:hunter2@mlflow:5000/api", 4)
    finally:
        other.removeHandler(keep)
    assert records == ["retrying http://alice:***@mlflow:5000/api after 4 s"]


def test_our_handler_writes_to_the_stderr_of_the_moment():
    """A caller that swaps stderr for a while (a CLI test runner) leaves no closed stream behind."""
    logger = logging.getLogger("emotion_ai.tests.stderr")
    logger.addHandler(handler := StderrHandler())
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.propagate = False  # only this handler: `emotion_ai` may have its own by now
    try:
        with redirect_stderr(io.StringIO()) as first:
            logger.warning("one")
        first.close()
        with redirect_stderr(io.StringIO()) as second:
            logger.warning("two")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert second.getvalue() == "two\n"


def test_tracebacks_hide_passwords_too(capsys):
    redact_credentials_in_logs()
    try:
        raise ConnectionError("API request to http://user:secret@127.0.0.1:1/api failed")
    except ConnectionError as error:
        sys.excepthook(type(error), error, error.__traceback__)
    printed = capsys.readouterr().err
    assert "secret" not in printed and "http://user:***@127.0.0.1:1/api" in printed
    assert "Traceback" in printed


def test_a_command_against_an_unreachable_server_never_prints_its_password(tmp_path):
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://user:secret@127.0.0.1:{free_port()}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    result = subprocess.run(
        [sys.executable, "-m", "emotion_ai", "models", "--state-dir", str(tmp_path)],
        env=environment,
        capture_output=True,
        text=True,
    )
    printed = result.stdout + result.stderr
    assert result.returncode != 0 and "user:***@" in printed
    assert "secret" not in printed


@pytest.mark.parametrize("experiment", [{}, {"MLFLOW_EXPERIMENT_ID": "1"}], ids=["name", "id"])
def test_a_run_against_an_unreachable_server_ends_in_one_line(tmp_path, experiment):
    """Also where `mlflow run` named the experiment by id, which is looked up first."""
    environment = {
        **os.environ,
        **experiment,
        "MLFLOW_TRACKING_URI": f"http://user:secret@127.0.0.1:{free_port()}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "COLUMNS": "200",
    }
    command = [sys.executable, "-m", "emotion_ai", "run", "--state-dir", str(tmp_path)]
    result = subprocess.run(command, env=environment, capture_output=True, text=True)
    printed = (result.stdout + result.stderr).strip()
    assert result.returncode == 1 and len(printed.splitlines()) == 1, printed
    assert printed.startswith("reaching the tracking server failed") and "secret" not in printed
