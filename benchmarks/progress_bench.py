"""What the progress bar costs: the same import with ``--progress`` and ``--no-progress``, in
alternating rounds, each on a pseudo-terminal (so the bar is really drawn) and into a new store.

Prints each round's wall times and the median ratio. Use the import benchmark's events:

    python benchmarks/import_bench.py --events 1000000 --keep /tmp/ib   # or any event files
    python benchmarks/progress_bench.py --events '/tmp/ib/events/*.jsonl' --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import shutil
import statistics
import sys
import tempfile
import time


def on_terminal(command: list[str]) -> float:
    """Wall seconds of ``command`` run on a pseudo-terminal, its output read and dropped."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    while True:
        try:
            if not os.read(fd, 1 << 16):
                break
        except OSError:
            break
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command[:3])} failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", required=True, help="event files or a glob")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="progress-bench-")
    eventlake = [sys.executable, "-m", "eventlake.cli", "import", "--events", args.events, "--max-error-ratio", "0.5"]
    ratios = []
    try:
        for round_ in range(args.rounds):
            times = {}
            for flag in (("--progress", "--no-progress") if round_ % 2 == 0 else ("--no-progress", "--progress")):
                store = os.path.join(work, "store")
                shutil.rmtree(store, ignore_errors=True)
                times[flag] = on_terminal([*eventlake, "--store", store, flag])
            ratios.append(times["--progress"] / times["--no-progress"])
            print(json.dumps({"round": round_ + 1, "progress_s": round(times["--progress"], 2),
                              "no_progress_s": round(times["--no-progress"], 2), "ratio": round(ratios[-1], 3)}))
        print(json.dumps({"median_ratio": round(statistics.median(ratios), 3)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
