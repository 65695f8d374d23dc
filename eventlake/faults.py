"""Named points where the fault-injection tests kill a job, to prove what a kill leaves behind.

``EVENTLAKE_KILL_AT=<point>`` makes the process group die by ``SIGKILL`` when it reaches that
point, exactly as ``kill -9`` would (no clean-up, no ``finally``). Unset, a point costs one
dictionary lookup. The points sit where a kill is worst: files written but not committed, a
commit landed but not cleaned up after, a log entry half written.
"""

from __future__ import annotations

import os
import signal

POINTS = ("import-before-commit", "import-after-commit", "rewrite-before-commit", "rewrite-after-commit",
          "log-temp-written")


def fault_point(name: str) -> None:
    if os.environ.get("EVENTLAKE_KILL_AT") == name:
        os.killpg(os.getpgid(0), signal.SIGKILL)
