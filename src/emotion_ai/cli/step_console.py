"""`emotion-ai run`'s console: one live line per pipeline step (status, duration, headline figure),
each step's full output in `<log dir>/<step>.log`, and the failing step's last lines on failure.

kfp.local prints its own messages and every line of each step's process to stdout; while the
pipeline runs, `StepConsole` stands in for stdout and sorts those lines by step.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from emotion_ai.logs import headline_in
from emotion_ai.progress import PROGRESS_DIR_ENV, Progress, read_progress

TASK_STARTED = re.compile(r"Executing task '(?P<task>[\w-]+)'")
TASK_FINISHED = re.compile(r"Task '(?P<task>[\w-]+)' finished with status (?P<status>[A-Z]+)")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
PIPELINE_LOG = "pipeline"
"""The log of the lines no step printed (kfp.local's own, before the first step)."""
LAST_LINES = 25
"""Lines of a failing step's log shown on the console."""
STATUS_MARK = {"waiting": "[dim]·[/]", "done": "[green]✓[/]", "failed": "[red]✗[/]"}


@dataclass
class StepLine:
    """What the console shows of one step."""

    name: str
    status: str = "waiting"
    started: float = 0.0
    ended: float = 0.0
    headline: str = ""
    last_lines: deque = field(default_factory=lambda: deque(maxlen=LAST_LINES))

    def duration(self) -> str:
        if not self.started:
            return ""
        seconds = (self.ended or time.monotonic()) - self.started
        return f"{seconds:4.0f} s" if seconds < 100 else f"{seconds / 60:4.1f} min"


class StepConsole(io.TextIOBase):
    """A stand-in for stdout that routes each line to its step's log file and keeps the steps'
    lines up to date; with `verbose`, every line is echoed to `echo` as well."""

    def __init__(
        self,
        steps: list[str],
        log_dir: Path,
        echo: TextIO,
        verbose: bool = False,
        on_finish: Callable[[StepLine], None] | None = None,
    ) -> None:
        super().__init__()
        self.steps = {name: StepLine(name) for name in steps}
        self.log_dir, self.echo, self.verbose = log_dir, echo, verbose
        self.on_finish = on_finish
        self.current: StepLine | None = None
        self._pending = ""
        self._logs: dict[str, TextIO] = {}
        self._lock = threading.Lock()
        self._epochs_shown: dict[str, int] = {}
        self.log_failure: OSError | None = None
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def progress_dir(self) -> Path:
        """Where the running steps record their progress (EMOTION_AI_PROGRESS_DIR)."""
        return self.log_dir / "progress"

    def poll_progress(self) -> tuple[str, Progress] | None:
        """The running step and its progress, when it has moved on since the last poll: shown as
        its headline and added to its log as it happens."""
        step = self.current
        progress = read_progress(self.progress_dir, step.name) if step else None
        if progress is None or self._epochs_shown.get(step.name) == progress.epoch:
            return None
        self._epochs_shown[step.name] = progress.epoch
        step.headline = progress.line()
        with self._lock:
            self._write_log(step.name, f"[progress] {progress.line()}\n", flush=True)
        return step.name, progress

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
            for line in lines:
                self._take(line)
        return len(text)

    def close(self) -> None:
        if self._pending:
            self._take(self._pending)
            self._pending = ""
        for handle in self._logs.values():
            with suppress(OSError):  # what could not be flushed is in log_failure already
                handle.close()
        super().close()

    def _take(self, line: str) -> None:
        plain = ANSI_ESCAPE.sub("", line)
        if started := TASK_STARTED.search(plain):
            self._start(started["task"])
        name = self.current.name if self.current else PIPELINE_LOG
        self._write_log(name, plain + "\n")
        if self.current:
            self.current.last_lines.append(plain)
            if headline := headline_in(plain):
                self.current.headline = headline
        if finished := TASK_FINISHED.search(plain):
            self._finish(finished["task"], finished["status"] == "SUCCESS")
        if self.verbose:
            self.echo.write(line + "\n")

    def _step(self, task: str) -> StepLine:
        name = task.replace("-", "_")
        return self.steps.setdefault(name, StepLine(name))

    def _start(self, task: str) -> None:
        self.current = self._step(task)
        self.current.status, self.current.started = "running", time.monotonic()

    def _finish(self, task: str, succeeded: bool) -> None:
        step = self._step(task)
        step.status, step.ended = ("done" if succeeded else "failed"), time.monotonic()
        self._write_log(step.name, "", flush=True)
        self.current = None
        if self.on_finish:
            self.on_finish(step)

    def _write_log(self, name: str, text: str, flush: bool = False) -> None:
        """Appends to a step's log. A log that cannot be written (a full or read-only disk) is
        given up, not raised into the pipeline's output: the console still shows the steps, and
        the step that meets the same disk names it."""
        if self.log_failure is not None:
            return
        try:
            log = self._logs.get(name) or open(self.log_dir / f"{name}.log", "a", encoding="utf-8")
            self._logs[name] = log
            log.write(text)
            if flush:
                log.flush()
        except OSError as error:
            self.log_failure = error

    def failed_step(self) -> StepLine | None:
        """The step that failed, or the one running when the pipeline stopped."""
        failed = [step for step in self.steps.values() if step.status == "failed"]
        return failed[0] if failed else self.current

    def __rich__(self) -> Table:
        return steps_table(self.steps.values())


def step_row(step: StepLine) -> tuple:
    mark = (
        Spinner("dots") if step.status == "running" else Text.from_markup(STATUS_MARK[step.status])
    )
    return mark, step.name, step.duration(), step.headline


def steps_table(steps) -> Table:
    """One row per step: status, name, duration, headline (cut, never wrapped, at the width)."""
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(width=1, no_wrap=True)
    table.add_column(width=15, no_wrap=True)
    table.add_column(width=8, justify="right", no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for step in steps:
        table.add_row(*step_row(step))
    return table


@contextmanager
def step_console(
    steps: list[str], log_dir: Path, console: Console, verbose: bool = False
) -> Iterator[StepConsole]:
    """Shows the steps while the body runs the pipeline (a live table on a terminal, a line per
    finished step elsewhere or with `verbose`); on failure, the failing step's last lines."""
    # bound to the real stdout, since the body runs with stdout sorted into the step logs
    console = Console(file=console.file, force_terminal=console.is_terminal, width=console.width)
    live = console.is_terminal and not verbose
    lines = StepConsole(
        steps,
        log_dir,
        echo=sys.stdout,
        verbose=verbose,
        on_finish=None if live else lambda step: console.print(steps_table([step])),
    )
    before = os.environ.get(PROGRESS_DIR_ENV)
    os.environ[PROGRESS_DIR_ENV] = str(lines.progress_dir)
    try:
        with (
            _live(lines, console) if live else nullcontext(),
            _progress_shown(lines, None if live else console),
            redirect_stdout(lines),
        ):
            yield lines
    except BaseException as error:
        _show_failure(lines, console)
        if lines.log_failure is not None:  # the full or read-only disk is the news, not the step
            raise lines.log_failure from error
        raise
    finally:
        lines.close()
        _restore_environment(PROGRESS_DIR_ENV, before)


def _restore_environment(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


PROGRESS_POLL_SECONDS = 1.0


@contextmanager
def _progress_shown(lines: StepConsole, console: Console | None) -> Iterator[None]:
    """Polls the running step's progress while the body runs; with a `console` (a plain stream),
    prints a line per epoch, since no live table shows it."""
    stop = threading.Event()

    def show() -> None:
        moved = lines.poll_progress()
        if moved and console is not None:
            console.print(f"  {moved[0]}: {moved[1].line()}", soft_wrap=True)

    def poll() -> None:
        while not stop.wait(PROGRESS_POLL_SECONDS):
            show()

    poller = threading.Thread(target=poll, name="step-progress", daemon=True)
    poller.start()
    try:
        yield
    finally:
        stop.set()
        poller.join()
        show()


def _live(lines: StepConsole, console: Console) -> Live:
    return Live(lines, console=console, refresh_per_second=4, redirect_stdout=False)


def _show_failure(lines: StepConsole, console: Console) -> None:
    step = lines.failed_step()
    if step is None or lines.log_failure is not None:  # the disk error is raised instead
        return
    log = lines.log_dir / f"{step.name}.log"
    console.print(f"\n[red bold]step {step.name} failed[/]; its last lines ({log}):")
    for line in step.last_lines:
        console.print(Text(line), soft_wrap=True)
