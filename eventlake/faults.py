"""Where a job may be stopped: named fault points for the tests, and the guard around a commit.

``EVENTLAKE_KILL_AT=<point>`` makes the process group die by ``SIGKILL`` when it reaches that
point, exactly as ``kill -9`` would (no clean-up, no ``finally``); ``<point>:SIGINT`` sends a
Ctrl-C there instead, to test what the command line says of an interrupted run. Unset, a point
costs one dictionary lookup. The points sit where a stop is worst: files written but not
committed, a commit landed but not cleaned up after, a log entry half written.

``committing()`` makes the commit and Ctrl-C exclusive within a process: the command line,
once interrupted, calls ``stop_commits()`` and only then asks the log whether its run committed,
so a commit step running in another thread of the driver cannot land after that answer.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

POINTS = ("import-before-commit", "import-after-commit", "rewrite-before-commit", "rewrite-after-commit",
          "log-temp-written", "export-shard-written", "export-before-publish")

_commit_lock = threading.Lock()
_stopped = threading.Event()


def fault_point(name: str) -> None:
    wanted = os.environ.get("EVENTLAKE_KILL_AT")
    if not wanted or not wanted.startswith(name):
        return
    if wanted == name:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    elif wanted == f"{name}:SIGINT":
        os.kill(os.getpid(), signal.SIGINT)


@contextmanager
def committing() -> Iterator[None]:
    """Hold while writing a log entry; raises ``KeyboardInterrupt`` once the job was interrupted."""
    with _commit_lock:
        if _stopped.is_set():
            raise KeyboardInterrupt
        yield


def stop_commits(timeout: float = 30.0) -> None:
    """No commit starts in this process from now on; waits for one under way to end."""
    _stopped.set()
    if _commit_lock.acquire(timeout=timeout):
        _commit_lock.release()
