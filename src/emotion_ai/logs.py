"""Logging for every process that runs our code (the CLI, pipeline steps, the server): the library
logs, only the CLI prints. On a terminal, rich's handler; elsewhere (pipeline step logs, CI) plain
lines that never wrap, so they stay whole for whoever searches them."""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HEADLINE_MARK = "emotion-ai headline: "
"""Starts the one log line a pipeline step writes to sum up its outcome; `emotion-ai run` shows the
text after it on the step's line."""
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]*):[^/\s@]*@")


def redact(text: str) -> str:
    """`scheme://user:password@host` with the password hidden: `scheme://user:***@host`."""
    return _CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)


def _redacting_factory(make_record):
    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: logging reports it when it is emitted
            return record
        if "@" in message and "://" in message:
            record.msg, record.args = redact(message), None
        return record

    return factory


def redact_credentials_in_logs() -> None:
    """Every log record of this process, any library's, and every traceback it prints (its main
    thread's and other threads') has passwords in URIs hidden; once."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacts", False):
        redacting = _redacting_factory(factory)
        redacting.redacts = True
        logging.setLogRecordFactory(redacting)
    sys.excepthook = _redacted_excepthook
    threading.excepthook = _redacted_thread_excepthook


def _redacted_excepthook(kind, error, trace) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, error, trace))))


def _redacted_thread_excepthook(arguments: threading.ExceptHookArgs) -> None:
    if arguments.exc_type is SystemExit:
        return
    name = arguments.thread.name if arguments.thread else "a thread"
    sys.stderr.write(f"Exception in {name}:\n")
    _redacted_excepthook(arguments.exc_type, arguments.exc_value, arguments.exc_traceback)


class StderrHandler(logging.StreamHandler):
    """Writes to the `sys.stderr` of the moment, not the one it was made with: a caller that
    redirects stderr for a while (a CLI test runner, `contextlib.redirect_stderr`) leaves no closed
    stream behind."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _stream) -> None:
        """Always `sys.stderr`; StreamHandler's own set-up assigns it."""


def configure_logging(level: int = logging.INFO) -> None:
    """Routes the `emotion_ai.*` loggers at `level` to stderr, once per process, and hides passwords
    in URIs in every log record. Only our own logger gets a
    handler: other libraries (KServe, uvicorn) keep configuring theirs as they would."""
    redact_credentials_in_logs()
    # MLflow announces each database table set-up at INFO, on every new state folder, and logs the
    # trace of each database error it then raises anyway (the command names it in one line).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    # Every logged model warns that pip's version is unknown (uv's environments have none).
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    ours = logging.getLogger("emotion_ai")
    if ours.handlers:
        return
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False)
    else:
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    ours.addHandler(handler)
    ours.setLevel(level)
    ours.propagate = False


def log_headline(logger: logging.Logger, text: str) -> None:
    """Logs a step's headline (rows validated, epochs and figure, decisions) for the console."""
    logger.info("%s%s", HEADLINE_MARK, text)


def headline_in(line: str) -> str | None:
    """The headline a log line carries, or None."""
    _, mark, text = line.partition(HEADLINE_MARK)
    return text.strip() if mark else None
