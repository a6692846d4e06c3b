"""Step processes end with the command that started them.

kfp.local runs each step as `sh -ec '... python3 -m kfp.dsl.executor_main ...'`, so a step's parent
is a shell, not `emotion-ai run`: killing the command (even `kill -9`) would leave training running.
`emotion-ai run` puts its process id in `EMOTION_AI_SUPERVISOR_PID`; every step watches it and ends
itself once that process is gone. On a cluster nothing sets it and nothing is watched.
"""

from __future__ import annotations

import logging
import os
import threading
import time

SUPERVISOR_ENV = "EMOTION_AI_SUPERVISOR_PID"
CHECK_SECONDS = 1.0
logger = logging.getLogger(__name__)


def supervise_steps() -> None:
    """Called by the command that runs the steps: they will watch this process."""
    os.environ[SUPERVISOR_ENV] = str(os.getpid())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_with_supervisor() -> None:
    """Called by a step: ends this process soon after its supervisor's, if it has one."""
    supervisor = os.environ.get(SUPERVISOR_ENV, "")
    if supervisor.isdigit() and int(supervisor) != os.getpid():
        threading.Thread(target=_watch, args=(int(supervisor),), daemon=True).start()


def _watch(supervisor: int) -> None:
    while alive(supervisor):
        time.sleep(CHECK_SECONDS)
    logger.error("the command that started this step (pid %s) has ended: stopping", supervisor)
    os._exit(1)
