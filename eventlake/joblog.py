"""``--log-format json``: one JSON line on stderr per stage of a job, for log collectors.

Stages: ``start`` (the job and the flags given, not their values: a value can name what a
purge deletes), ``run`` (a pipeline starts: runner and workers), ``summary`` (status, version
and the summary's counts), and ``failed`` (the one-line message and the exit code) when it failed. With the default ``text`` format nothing is written here: the command prints
its summary table, and a failure as one line.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

_state = {"format": "text", "job": "", "started": 0.0}


def configure(log_format: str, job: str) -> None:
    _state.update(format=log_format, job=job, started=time.time())


def enabled() -> bool:
    return _state["format"] == "json"


def stage(name: str, **fields) -> None:
    """Write the stage's line (nothing unless the format is json)."""
    if not enabled():
        return
    line = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "job": _state["job"], "stage": name, "elapsed_seconds": round(time.time() - _state["started"], 3), **fields}
    print(json.dumps(line, default=str), file=sys.stderr, flush=True)


__all__ = ["configure", "enabled", "stage"]
