"""Export speed against DuckDB doing the same job on the same store, in the same run.

Imports N synthetic Retail events (the import benchmark's generator) into a store once, then
times, as whole processes and in alternating rounds:
  - ``eventlake export --format personalize`` against a DuckDB script that reads the store's
    Parquet files (the current version's, from the log) and writes the same interactions CSV
    (one row per event and product; USER_ID, ITEM_ID, TIMESTAMP in Unix seconds, EVENT_TYPE);
  - ``eventlake export --format parquet`` against DuckDB writing the same flat Parquet.
Each round checks that both wrote the same number of rows. Prints wall times and ratios per
round, then the median ratios. Only a ratio from one run means anything: the machines are shared.

    pip install -e '.[bench]' && python benchmarks/export_bench.py --events 5000000
    python benchmarks/export_bench.py --events 1000000 --repeat 3 --workers 2   # force 2 worker processes

Target (issue 14): at most 1.5x DuckDB's wall time for each format.
"""

from __future__ import annotations

import argparse
import glob
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

DUCKDB_SCRIPT = r"""
import json, sys, duckdb
files, fmt, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
con = duckdb.connect()
events = "read_parquet(" + json.dumps(files).replace('"', "'") + ")"
if fmt == "personalize":
    query = f'''select coalesce(e.user_info.user_id, e.visitor_id) as USER_ID, d.product.id as ITEM_ID,
                floor(epoch_us(e.event_time) / 1000000)::bigint as TIMESTAMP,
                coalesce(e.event_type, e.source_event_type) as EVENT_TYPE
                from (select *, unnest(product_details) as d from {events}) e'''
    con.execute(f"copy ({query}) to '{out}/interactions.csv' (header)")
else:
    # events without a product keep one row, as eventlake's flat tables do
    query = f'''select e.* exclude (product_details, user_info, attributes, purchase_transaction),
                coalesce(e.user_info.user_id, e.visitor_id) as user_id, p.d.product.id as item_id,
                p.d.quantity as quantity, p.d.product.title as item_title,
                p.d.product.categories as item_categories, p.d.product.price as item_price,
                e.purchase_transaction.id as purchase_id, e.purchase_transaction.revenue as purchase_revenue,
                e.purchase_transaction.currency_code as purchase_currency_code
                from {events} e left join lateral (select unnest(e.product_details) as d) p on true'''
    con.execute(f"copy ({query}) to '{out}/events.parquet' (format parquet, compression zstd)")
"""


def run(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode:
        sys.exit(f"{command[2:4]} failed: {done.stderr.decode()[-2000:]}")
    return time.perf_counter() - start


def duckdb_rows(path: str) -> int:
    import duckdb

    if path.endswith(".csv"):
        return duckdb.sql(f"select count(*) from read_csv('{path}')").fetchall()[0][0]
    return duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchall()[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None,
                        help="force N local worker processes (default: eventlake's own choice from the input's size)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--formats", nargs="+", default=["personalize", "parquet"])
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="eventlake-export-bench-", dir=args.workdir)
    beam = [f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"] if args.workers else []
    try:
        os.makedirs(os.path.join(work, "events"))
        generate(work, args.events, args.files)
        store = os.path.join(work, "store")
        run([sys.executable, "-m", "eventlake.cli", "import", "--events", os.path.join(work, "events", "*.jsonl"),
             "--catalog", os.path.join(work, "catalog.jsonl"), "--store", store, *beam])
        shutil.rmtree(os.path.join(work, "events"))
        from eventlake.io.delta_log import read_snapshot

        snapshot = read_snapshot(store)
        files = [os.path.join(store, p) for p in sorted(snapshot.files)]
        stored = sum(json.loads(a["stats"])["numRecords"] for a in snapshot.files.values())
        ratios: dict[str, list[float]] = {f: [] for f in args.formats}
        for round_ in range(1, args.repeat + 1):
            for fmt in args.formats:
                duck_out, lake_out = os.path.join(work, "duck"), os.path.join(work, "lake")
                for path in (duck_out, lake_out):
                    shutil.rmtree(path, ignore_errors=True)
                os.makedirs(duck_out)
                duck = run([sys.executable, "-c", DUCKDB_SCRIPT, json.dumps(files), fmt, duck_out])
                summary = os.path.join(work, "summary.json")
                lake = run([sys.executable, "-m", "eventlake.cli", "export", "--store", store, "--format", fmt,
                            "--output", lake_out, "--summary", summary, *beam])
                s = json.load(open(summary))
                duck_file = glob.glob(os.path.join(duck_out, "*"))[0]
                assert s["rows_written"] == duckdb_rows(duck_file), (s["rows_written"], duck_file)
                ratios[fmt].append(lake / duck)
                print(json.dumps({"format": fmt, "round": round_, "events": stored, "rows": s["rows_written"],
                                  "output_files": len(s["files_written"]), "duckdb_seconds": round(duck, 2),
                                  "eventlake_seconds": round(lake, 2), "ratio": round(lake / duck, 2)}), flush=True)
        print(json.dumps({"events": stored, "store_files": len(files), "workers": s.get("workers"),
                          "median_ratio": {f: round(statistics.median(r), 2) for f, r in ratios.items()}}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
