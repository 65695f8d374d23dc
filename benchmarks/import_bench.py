"""Import speed and memory against a DuckDB baseline measured in the same run.

Generates N synthetic Retail events (about 1% bad lines, 10% unknown products) in several
files and a catalog of N/10 products (``--catalog-products K`` holds it at K), then times, as
whole processes:
  - ``eventlake import`` (every Retail rule, dedupe, error samples, an atomic commit);
  - a DuckDB script doing the same shape of job on the same files: every field of the record
    read, the catalog's title, categories and price left-joined, Parquet partitioned by event
    date (the fair baseline);
  - the floor: DuckDB reading four columns into one Parquet file.
eventlake runs with its default flags (``--workers N`` forces N local worker processes).
Prints the wall times and the ratio to the fair baseline for each round, then the median ratio
and each one's peak memory (PSS summed over its processes), taken in one more run of each:
sampling slows a job.

    pip install -e '.[bench]' && python benchmarks/import_bench.py --events 1000000 5000000
    python benchmarks/import_bench.py --events 1000000 5000000 10000000 --catalog-products 500000
    python benchmarks/import_bench.py --events 5000000 --repeat 3   # rounds alternate the two jobs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

TYPES = [("detail-page-view", 60), ("add-to-cart", 15), ("search", 15), ("purchase-complete", 5), ("home-page-view", 5)]


def generate(directory: str, n: int, files: int, seed: int = 7, days: int = 30, products: int | None = None) -> None:
    """Events over ``days`` days from 2024-05-01 in ``directory/events``, and ``catalog.jsonl``.

    The catalog has ``products`` products, by default N/10.
    """
    rng = random.Random(seed)
    dates = [(datetime.date(2024, 5, 1) + datetime.timedelta(days=d)).isoformat() for d in range(days)]
    products = products or max(n // 10, 10)
    with open(os.path.join(directory, "catalog.jsonl"), "w") as out:
        for i in range(products):
            out.write(json.dumps({"id": f"P{i:08d}", "title": f"Product {i}", "categories": [f"Cat{i % 50}"],
                                  "priceInfo": {"price": f"{(i % 300) + 0.99:.2f}", "currencyCode": "USD"},
                                  "availability": "IN_STOCK"}) + "\n")
    kinds = [t for t, weight in TYPES for _ in range(weight)]
    per_file = n // files
    for f in range(files):
        with open(os.path.join(directory, "events", f"events-{f:02d}.jsonl"), "w") as out:
            lines = []
            for i in range(f * per_file, (f + 1) * per_file if f < files - 1 else n):
                kind = kinds[rng.randrange(100)]
                product = f"P{rng.randrange(products):08d}" if rng.random() >= 0.10 else f"X{i:09d}"
                stamp = f"{dates[i % days]}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{i % 1000:03d}Z"
                head = f'{{"eventType":"{kind}","visitorId":"visitor-{rng.randrange(n // 20 + 1)}","sessionId":"s-{i}","eventTime":"{stamp}"'
                roll = rng.random()
                if roll < 0.004:
                    lines.append(head[: rng.randrange(10, len(head))])  # truncated line
                    continue
                if roll < 0.007:
                    kind = "unknown-type"
                    head = head.replace('"eventType":"', '"eventType":"x-', 1)
                if kind == "search":
                    body = f',"searchQuery":"query {rng.randrange(1000)}"'
                elif kind == "home-page-view":
                    body = ""
                elif kind == "purchase-complete":
                    body = (f',"productDetails":[{{"product":{{"id":"{product}"}},"quantity":{1 + rng.randrange(3)}}}]'
                            f',"purchaseTransaction":{{"id":"t-{i}","revenue":{10 + rng.randrange(500)}.5,"currencyCode":"USD"}}')
                else:
                    quantity = f',"quantity":{1 + rng.randrange(3)}' if kind == "add-to-cart" else ""
                    body = f',"productDetails":[{{"product":{{"id":"{product}"}}{quantity}}}]'
                if roll > 0.997:
                    body += ',"userInfo":{"ipAddress":"999.1.1.1"}'  # fails validation
                elif roll > 0.5:
                    body += f',"userInfo":{{"userId":"u-{rng.randrange(10**6)}","ipAddress":"10.{rng.randrange(256)}.{rng.randrange(256)}.1"}}'
                lines.append(head + body + "}")
            out.write("\n".join(lines) + "\n")


DUCKDB_SCRIPT = """
import duckdb, sys
events, catalog, out = sys.argv[1:4]
con = duckdb.connect()
con.execute(f'''
COPY (
  SELECT e.*, c.title, c.categories, c.price, (c.id IS NOT NULL OR e.pid IS NULL) AS joined,
         CAST(e.eventTime AS DATE) AS event_date
  FROM (SELECT *, productDetails[1].product.id AS pid
        FROM read_json('{events}', format='newline_delimited', ignore_errors=true,
             columns={{eventType: 'VARCHAR', visitorId: 'VARCHAR', sessionId: 'VARCHAR', eventTime: 'TIMESTAMPTZ',
                      searchQuery: 'VARCHAR', productDetails: 'STRUCT(product STRUCT(id VARCHAR), quantity BIGINT)[]',
                      purchaseTransaction: 'STRUCT(id VARCHAR, revenue DOUBLE, currencyCode VARCHAR)',
                      userInfo: 'STRUCT(userId VARCHAR, ipAddress VARCHAR)'}})) e
  LEFT JOIN (SELECT id, title, categories, priceInfo.price::DOUBLE AS price
             FROM read_json('{catalog}', format='newline_delimited')) c
    ON c.id = e.pid
) TO '{out}' (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE_OR_IGNORE)
''')
"""

# The floor: the least a job over these files can do (four columns read, one file written).
DUCKDB_FLOOR_SCRIPT = """
import duckdb, sys
events, out = sys.argv[1], sys.argv[3]
duckdb.connect().execute(f'''
COPY (SELECT eventType, visitorId, eventTime, productDetails[1].product.id AS pid
      FROM read_json('{events}', format='newline_delimited', ignore_errors=true,
           columns={{eventType: 'VARCHAR', visitorId: 'VARCHAR', eventTime: 'TIMESTAMPTZ',
                    productDetails: 'STRUCT(product STRUCT(id VARCHAR))[]'}}))
TO '{out}.parquet' (FORMAT parquet)
''')
"""


def run(command: list[str], sample_memory: bool = False) -> tuple[float, int]:
    """Wall seconds and, when sampled, the peak memory (bytes): PSS summed over the process tree.

    PSS splits pages that forked workers share, so the sum is the memory the job really holds;
    a plain RSS sum would count Beam's libraries once per worker process. Reading PSS walks a
    process's page tables (7 to 9 ms for a 500 MB worker, which stalls meanwhile): sampled ten
    times a second, the import ran a tenth slower. So times come from runs that are not sampled.
    """
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        peak = 0
        while sample_memory and process.poll() is None:
            try:
                tree = [process] + process.children(recursive=True)
                peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)
        process.wait()
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            stderr.seek(0)
            sys.exit(f"{command[:3]} failed: {stderr.read().decode(errors='replace')[-2000:]}")
    return seconds, peak


def fresh(work: str, command: list[str], sample_memory: bool = False) -> tuple[float, int]:
    """``run`` with no output left from an earlier round: a second import would skip every file."""
    for leftover in ("store", "duck", "duck.parquet"):
        path = os.path.join(work, leftover)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    return run(command, sample_memory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None,
                        help="force N local worker processes (default: eventlake's own choice)")
    parser.add_argument("--workdir", default=None, help="where to generate the data (default: the system's temp dir)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time both R times in turn; the median ratio is the figure (shared machines are noisy)")
    parser.add_argument("--catalog-products", type=int, default=None,
                        help="hold the catalog at this many products (default N/10) to see memory follow the events alone")
    args = parser.parse_args()
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    for n in args.events:
        work = tempfile.mkdtemp(prefix="eventlake-bench-", dir=args.workdir)
        try:
            os.makedirs(os.path.join(work, "events"))
            generate(work, n, args.files, products=args.catalog_products)
            size = sum(os.path.getsize(os.path.join(work, "events", f)) for f in os.listdir(os.path.join(work, "events")))
            summary = os.path.join(work, "summary.json")
            eventlake = [sys.executable, "-m", "eventlake.cli", "import", "--events", os.path.join(work, "events", "*.jsonl"),
                         "--catalog", os.path.join(work, "catalog.jsonl"), "--store", os.path.join(work, "store"),
                         "--summary", summary]
            if args.workers:
                eventlake += [f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"]
            inputs = [os.path.join(work, "events", "*.jsonl"), os.path.join(work, "catalog.jsonl"),
                      os.path.join(work, "duck")]
            duck = [sys.executable, "-c", DUCKDB_SCRIPT, *inputs]
            floor = [sys.executable, "-c", DUCKDB_FLOOR_SCRIPT, *inputs]
            ratios = []
            for round_ in range(1, args.repeat + 1):
                duck_seconds, _ = fresh(work, duck)
                floor_seconds, _ = fresh(work, floor)
                lake_seconds, _ = fresh(work, eventlake)
                ratios.append(lake_seconds / duck_seconds)
                print(json.dumps({"events": n, "round": round_, "duckdb_seconds": round(duck_seconds, 2),
                                  "floor_seconds": round(floor_seconds, 2), "eventlake_seconds": round(lake_seconds, 2),
                                  "ratio": round(ratios[-1], 2), "ratio_to_floor": round(lake_seconds / floor_seconds, 2)}),
                      flush=True)
            _, duck_peak = fresh(work, duck, sample_memory=True)
            _, lake_peak = fresh(work, eventlake, sample_memory=True)
            s = json.load(open(summary))
            assert s["records"] == s["stored"] + s["duplicates"] + s["errors"] + s["skipped"]
            print(json.dumps({
                "events": n, "products": args.catalog_products or max(n // 10, 10), "input_mb": round(size / 2**20),
                "rounds": args.repeat, "median_ratio": round(statistics.median(ratios), 2),
                "eventlake_peak_mb": round(lake_peak / 2**20), "duckdb_peak_mb": round(duck_peak / 2**20),
                "stored": s["stored"], "errors": s["errors"], "unjoined": s["unjoined"], "duplicates": s["duplicates"],
                "workers": s.get("workers"),
            }), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
