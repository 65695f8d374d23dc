"""Rejoin at scale against a DuckDB script rewriting the same store, in the same run.

Imports N synthetic events (the import benchmark's), then writes a changed catalog: every tenth
product retitled, and products for a third of the ids the events name but the first catalog
lacked. Then times, each as a whole process on its own copy of the store:
  - ``eventlake rejoin --scope all``, ``joined`` and ``unjoined``;
  - a DuckDB script reading the store's current Parquet files, joining every product of every
    event to the new catalog and writing the whole table again, partitioned by event date.
Checks that DuckDB's joined count equals eventlake's for scope ``all``, and prints the ratios.

    pip install -e '.[bench]' && python benchmarks/rejoin_bench.py --events 5000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from import_bench import generate  # noqa: E402 - the same synthetic events as the import benchmark

DUCKDB_REJOIN = """
import json, sys, deltalake, duckdb
store, catalog, out = sys.argv[1:4]
files = json.dumps([f.removeprefix("file://") for f in deltalake.DeltaTable(store).file_uris()])
con = duckdb.connect()
con.execute(f'''
CREATE TEMP TABLE catalog AS SELECT id, title, categories, priceInfo.price::DOUBLE AS price
  FROM read_json('{catalog}', format='newline_delimited');
CREATE TEMP TABLE ev AS SELECT row_number() OVER () AS rid, * FROM read_parquet({files}, hive_partitioning=true);
CREATE TEMP TABLE agg AS
  SELECT f.rid,
         list(struct_pack(product := struct_pack(id := f.d.product.id, title := c.title, categories := c.categories,
                                                 price := c.price), quantity := f.d.quantity) ORDER BY f.pos)
           AS product_details,
         bool_and(c.id IS NOT NULL) AS joined,
         list(f.d.product.id ORDER BY f.pos) FILTER (WHERE c.id IS NULL) AS missing_product_ids
  FROM (SELECT rid, unnest(product_details) AS d, generate_subscripts(product_details, 1) AS pos FROM ev) f
  LEFT JOIN catalog c ON c.id = f.d.product.id GROUP BY f.rid;
COPY (SELECT ev.* EXCLUDE (rid, product_details, joined, missing_product_ids),
             coalesce(agg.product_details, ev.product_details) AS product_details,
             coalesce(agg.joined, true) AS joined, agg.missing_product_ids
      FROM ev LEFT JOIN agg USING (rid)) TO '{out}' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE_OR_IGNORE);
''')
print(con.execute(f"SELECT sum(joined::INT) FROM read_parquet('{out}/**/*.parquet')").fetchone()[0])
"""


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{command[:4]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def changed_catalog(work: str, events: int) -> str:
    """The first catalog with every tenth product retitled, plus products for a third of the
    ids it lacked (the generator's ``X<n>`` ids)."""
    path = os.path.join(work, "catalog-new.jsonl")
    with open(os.path.join(work, "catalog.jsonl")) as old, open(path, "w") as new:
        for i, line in enumerate(old):
            product = json.loads(line)
            if i % 10 == 0:
                product["title"] += " (new)"
            new.write(json.dumps(product) + "\n")
        for i in range(0, events, 3):
            new.write(json.dumps({"id": f"X{i:09d}", "title": f"Late product {i}", "categories": ["Late"],
                                  "priceInfo": {"price": "1.00"}}) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="eventlake-rejoin-bench-", dir=args.workdir)
    cli = [sys.executable, "-m", "eventlake.cli"]
    try:
        os.makedirs(os.path.join(work, "events"))
        generate(work, args.events, 4)
        store = os.path.join(work, "store")
        timed([*cli, "import", "--events", os.path.join(work, "events", "*.jsonl"), "--catalog",
               os.path.join(work, "catalog.jsonl"), "--store", store])
        catalog = changed_catalog(work, args.events)
        copy = os.path.join(work, "store-duck")
        shutil.copytree(store, copy)
        duck_seconds, out = timed([sys.executable, "-c", DUCKDB_REJOIN, copy, catalog, os.path.join(work, "duck")])
        shutil.rmtree(copy)
        results = {"events": args.events, "duckdb_seconds": round(duck_seconds, 2), "duckdb_joined": int(out.split()[-1])}
        for scope in ("all", "joined", "unjoined"):
            copy = os.path.join(work, f"store-{scope}")
            shutil.copytree(store, copy)
            summary = os.path.join(work, f"rejoin-{scope}.json")
            seconds, _ = timed([*cli, "rejoin", "--store", copy, "--catalog", catalog, "--scope", scope,
                                "--summary", summary])
            s = json.load(open(summary))
            results[scope] = {"seconds": round(seconds, 2), "ratio": round(seconds / duck_seconds, 2),
                              "events_changed": s["events_changed"], "files_rewritten": s["files_rewritten"],
                              "files_scanned": s["files_scanned"], "workers": s.get("workers")}
            if scope == "all":
                joined = s["rejoined"]
                assert joined == results["duckdb_joined"], (joined, results["duckdb_joined"])
            shutil.rmtree(copy)
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
