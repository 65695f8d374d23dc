"""Purge pruning: a purge of one day out of sixty against a purge that must read every file.

Imports N synthetic events spread over 60 days, then runs, each as a whole process on its own
copy of the store:
  - the baseline: ``purge --force`` of one visitor, whose events are in every file;
  - ``purge --force`` of one day (an eventTime range), which the log's statistics narrow down;
  - the same two as dry runs;
  - the peer: ``deltalake``'s own ``DeltaTable.delete`` of the same visitor on another copy, as a
    process (delta-rs leaves the superseded files for its vacuum; eventlake deletes them).
Prints the files and bytes each scanned, the wall-time ratios against the baseline, and the
visitor purge's ratio to delta-rs's delete in each of ``--repeat`` rounds (each job on a fresh copy,
in turn) and their median, all from the same run.

    pip install -e '.[bench]' && python benchmarks/purge_bench.py --events 600000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from import_bench import generate  # noqa: E402 - the same synthetic events as the import benchmark

DAYS = 60
ONE_DAY = 'eventTime >= "2024-06-01T00:00:00Z" eventTime < "2024-06-02T00:00:00Z"'
ONE_VISITOR = 'visitorId = "visitor-7"'
DELTA_RS_DELETE = """
import sys, deltalake
table = deltalake.DeltaTable(sys.argv[1])
print(table.delete("visitor_id = 'visitor-7'")["num_deleted_rows"])
"""


def eventlake(*args: str) -> tuple[float, dict]:
    """Run one eventlake job as a process; wall seconds and its summary."""
    with tempfile.NamedTemporaryFile(suffix=".json") as summary:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "eventlake.cli", *args, "--summary", summary.name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"eventlake {args[0]} failed: {done.stderr.decode()[-2000:]}")
        return seconds, json.load(open(summary.name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of the visitor purge against delta-rs, in turn; the median ratio is the figure")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="eventlake-purge-bench-", dir=args.workdir)
    try:
        os.makedirs(os.path.join(work, "events"))
        generate(work, args.events, 4, days=DAYS)
        store = os.path.join(work, "store")
        eventlake("import", "--events", os.path.join(work, "events", "*.jsonl"),
                  "--catalog", os.path.join(work, "catalog.jsonl"), "--store", store)
        results = {}
        for name, expression, force in (("visitor", ONE_VISITOR, True), ("one_day", ONE_DAY, True),
                                        ("visitor_dry", ONE_VISITOR, False), ("one_day_dry", ONE_DAY, False)):
            copy = os.path.join(work, f"store-{name}")
            shutil.copytree(store, copy)
            seconds, s = eventlake("purge", "--store", copy, "--filter", expression, *(["--force"] if force else []))
            results[name] = {"seconds": round(seconds, 2), "purged": s["purged"], "files_total": s["files_total"],
                             "files_scanned": s["files_scanned"], "files_ruled_out": s.get("files_ruled_out", 0),
                             "files_rewritten": s["files_rewritten"],
                             "mb_scanned": round(s["bytes_scanned"] / 2**20, 1)}
            shutil.rmtree(copy)
        rounds = []  # (eventlake, delta-rs) seconds, in turn, each on a fresh copy
        for round_ in range(args.repeat):
            if round_:  # the first round's eventlake time is the visitor purge's above
                copy = os.path.join(work, "store-again")
                shutil.copytree(store, copy)
                lake, _ = eventlake("purge", "--store", copy, "--filter", ONE_VISITOR, "--force")
                shutil.rmtree(copy)
            else:
                lake = results["visitor"]["seconds"]
            copy = os.path.join(work, "store-delta-rs")
            shutil.copytree(store, copy)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", DELTA_RS_DELETE, copy], capture_output=True, text=True,
                                  check=True)
            rounds.append((lake, time.perf_counter() - start))
            shutil.rmtree(copy)
            assert int(done.stdout.split()[-1]) == results["visitor"]["purged"], (done.stdout, results["visitor"])
        results["visitor_vs_delta_rs_delete"] = {
            "rounds": [{"eventlake_seconds": round(a, 2), "delta_rs_seconds": round(b, 2), "ratio": round(a / b, 2)}
                       for a, b in rounds],
            "median_ratio": round(statistics.median(a / b for a, b in rounds), 2)}
        base, dry = results["visitor"], results["visitor_dry"]
        results["one_day_vs_all_files"] = {
            "files_scanned": round(results["one_day"]["files_scanned"] / base["files_scanned"], 3),
            "bytes_scanned": round(results["one_day"]["mb_scanned"] / base["mb_scanned"], 3),
            "wall_force": round(results["one_day"]["seconds"] / base["seconds"], 2),
            "wall_dry_run": round(results["one_day_dry"]["seconds"] / dry["seconds"], 2),
        }
        print(json.dumps({"events": args.events, "days": DAYS, **results}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
