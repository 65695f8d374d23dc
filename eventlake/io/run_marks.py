"""Which runs are still alive: the test vacuum and every job's clean-up use before deleting.

A run writes its data files at their final place before it commits, so an unreferenced file is
either a leftover of a dead run or the work of a live one. Each run marks itself in
``_tmp/<run id>/running`` before it writes anything. On local disk the driver holds an
exclusive ``flock`` on the mark until it ends: the kernel drops it when the process dies, even
by ``kill -9``, so a mark that can be locked belongs to a dead run. Object stores have no
locks: there a run counts as alive while its mark is younger than ``REMOTE_LIVE_SECONDS``.
"""

from __future__ import annotations

import fcntl
import os
import re
import time

from eventlake.io.delta_log import join_path

RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
MARK = "running"
REMOTE_LIVE_SECONDS = 24 * 3600

_held: dict[str, int] = {}  # run id -> the descriptor whose lock marks it alive


def mark_path(store: str, run_id: str) -> str:
    return join_path(store, "_tmp", run_id, MARK)


def mark_alive(store: str, run_id: str) -> None:
    """Mark ``run_id`` alive until ``release`` or the end of this process."""
    path = mark_path(store, run_id)
    if "://" in store:
        from eventlake.io.files import write_bytes

        write_bytes(path, f"{os.getpid()}\n".encode())
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_EX)  # a new file nobody else knows of: never waits
    _held[run_id] = descriptor


def release(run_id: str) -> None:
    descriptor = _held.pop(run_id, None)
    if descriptor is not None:
        os.close(descriptor)


def is_alive(store: str, run_id: str, listing: dict[str, tuple[int, float]], now: float | None = None) -> bool:
    """Whether ``run_id`` may still be writing to ``store`` (``listing``: the store's files)."""
    if run_id in _held:
        return True
    mark = f"_tmp/{run_id}/{MARK}"
    if mark not in listing:
        return False  # never marked, or cleaned up: its run is over
    if "://" in store:
        return (now or time.time()) - listing[mark][1] < REMOTE_LIVE_SECONDS
    try:
        descriptor = os.open(join_path(store, mark), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def run_of(relative_path: str) -> str | None:
    """The run id a store file's path names (data files, scratch folders), or None."""
    found = RUN_ID.search(relative_path)
    return found.group(0) if found else None
