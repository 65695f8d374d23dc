"""Training samples at scale against DuckDB computing the same samples, in the same run.

Generates the samples case (``samples_case.py``: N requests of 20 items, label events at known
rates, features per request), imports it (events and features, not timed), then times as whole
processes:
  - ``eventlake samples`` with its default flags;
  - a DuckDB script running the reference query over the store's current Parquet files and
    writing the samples to Parquet.
Checks that both wrote the same number of samples and positives, prints the wall times, the
ratio, and each one's peak memory (PSS summed over its processes, from one more run of each:
sampling slows a job). ``--requests`` takes several sizes, to see memory against the run's size.

    pip install -e '.[bench]' && python benchmarks/samples_bench.py --requests 1000000
    python benchmarks/samples_bench.py --requests 100000 300000 1000000   # memory against size
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from import_bench import run  # noqa: E402 - wall time and PSS-summed peak memory of a process tree
from samples_case import generate  # noqa: E402

DUCKDB_SAMPLES = """
import json, sys, deltalake, duckdb
sys.path.insert(0, sys.argv[3])
from samples_case import duckdb_samples
store, out = sys.argv[1:3]
uris = lambda table: [f.removeprefix("file://") for f in deltalake.DeltaTable(table).file_uris()]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
duckdb_samples(con, uris(store), uris(store + "/_features"))
con.execute(f"COPY reference TO '{out}' (FORMAT parquet)")
print(json.dumps(con.execute("SELECT count(*), sum(click), sum(cart), sum(buy) FROM reference").fetchone()))
"""


def eventlake(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "eventlake.cli", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"eventlake {args[0]} failed: {done.stderr[-2000:]}")


def one_size(work: str, requests: int, memory: bool) -> dict:
    case = generate(work, requests)
    store = os.path.join(work, "store")
    eventlake("import", "--events", case["behavior"], "--format", "pairec-behavior", "--store", store)
    eventlake("features", "import", case["features"], "--store", store)
    summary = os.path.join(work, "summary.json")
    ours_command = [sys.executable, "-m", "eventlake.cli", "samples", "--store", store, "--output",
                    os.path.join(work, "out"), "--summary", summary, "--overwrite"]
    duck_out = os.path.join(work, "duck.parquet")
    duck_command = [sys.executable, "-c", DUCKDB_SAMPLES, store, duck_out, os.path.dirname(os.path.abspath(__file__))]
    ours, _ = run(ours_command)
    duck, _ = run(duck_command)
    s = json.load(open(summary))
    done = subprocess.run(duck_command, capture_output=True, text=True, check=True)
    count, click, cart, buy = json.loads(done.stdout)
    if (count, click, cart, buy) != (s["samples"], s["positives"]["click"], s["positives"]["cart"],
                                     s["positives"]["buy"]):
        sys.exit(f"DuckDB and eventlake disagree: {count, click, cart, buy} against {s['samples'], s['positives']}")
    result = {"requests": requests, "exposures": s["exposures"], "samples": s["samples"],
              "eventlake_s": round(ours, 2), "duckdb_s": round(duck, 2), "ratio": round(ours / duck, 2),
              "workers": s.get("workers")}
    if memory:
        _, ours_peak = run(ours_command, sample_memory=True)
        _, duck_peak = run(duck_command, sample_memory=True)
        result.update(eventlake_peak_mb=ours_peak >> 20, duckdb_peak_mb=duck_peak >> 20)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--keep", help="work in this folder and keep it")
    args = parser.parse_args()
    for requests in args.requests:
        work = args.keep or tempfile.mkdtemp(prefix="samples-bench-")
        try:
            print(json.dumps(one_size(work, requests, not args.no_memory)), flush=True)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
