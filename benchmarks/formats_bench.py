"""Import speed of each source format against the Retail JSON path, in the same run.

Writes the same N synthetic events (same visitors, products, times and types) once per format,
and one Retail catalog, then times ``eventlake import --format F`` for each as a whole process,
rounds alternating the formats. Prints events per second of each and its ratio to Retail's in
the same round, then the median ratio. Only a ratio from one run means anything: the machines
here are shared.

    pip install -e '.[bench]' && python benchmarks/formats_bench.py --events 1000000
    python benchmarks/formats_bench.py --events 1000000 --repeat 3 --formats retail personalize

Targets (issue 13): Personalize CSV at least as fast as Retail JSON; the JSON formats at least
0.7x Retail. ``pairec-parquet`` is the PAI-Rec rows as Parquet (a MaxCompute table's export);
``mapped-otto`` is OTTO-shaped sessions of five events read through ``configs/otto.yaml``;
``ga4`` is the same events as GA4's BigQuery export writes them to JSON lines; ``pairec-callback``
is callback bodies of five items each (every item an exposure, so types differ from Retail's);
``pairec-feature-log`` is one item feature record per event, through ``eventlake features import``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

FORMATS = ("retail", "personalize", "personalize-events", "opensearch", "pairec-behavior", "pairec-parquet",
           "mapped-otto", "ga4", "pairec-callback", "pairec-feature-log")
GA4_EVENTS = {"detail-page-view": "view_item", "add-to-cart": "add_to_cart", "purchase-complete": "purchase",
              "home-page-view": "page_view"}
FORMAT_OF = {"pairec-parquet": "pairec-behavior", "mapped-otto": "mapped"}  # labels that are not a format's name
CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "configs")
FLAGS = {"mapped-otto": ["--config", os.path.join(CONFIGS, "otto.yaml")]}  # OTTO-shaped sessions, the shipped mapping
OTTO_TYPES = {"detail-page-view": "clicks", "add-to-cart": "carts", "purchase-complete": "orders",
              "home-page-view": "clicks"}
PAIREC_EVENTS = {"detail-page-view": "click", "add-to-cart": "cart", "purchase-complete": "buy",
                 "home-page-view": "expr"}
TYPES = ("detail-page-view", "add-to-cart", "purchase-complete", "home-page-view")
OPENSEARCH_TYPES = {"detail-page-view": "click", "add-to-cart": "cart", "purchase-complete": "buy",
                    "home-page-view": "expose"}
START = 1_714_521_600  # 2024-05-01T00:00:00Z


def events(n: int, seed: int = 7):
    rng = random.Random(seed)
    products = max(n // 10, 10)
    for i in range(n):
        yield (f"visitor-{rng.randrange(n // 20 + 1)}", f"P{rng.randrange(products):08d}",
               START + rng.randrange(30 * 86_400), TYPES[rng.randrange(len(TYPES))], i)


def ga4_row(visitor: str, product: str, seconds: int, kind: str, i: int) -> dict:
    """One event as GA4's BigQuery export writes it to JSON (64-bit integers as strings)."""
    home = kind == "home-page-view"
    params = [{"key": "ga_session_id", "value": {"int_value": str(i // 5), "string_value": None}},
              {"key": "page_location", "value": {"int_value": None,
                                                 "string_value": "https://shop.example/" + ("" if home else product)}}]
    ecommerce = {"transaction_id": None, "purchase_revenue": None, "tax_value": None}
    if kind == "purchase-complete":
        params.append({"key": "currency", "value": {"int_value": None, "string_value": "USD"}})
        ecommerce = {"transaction_id": f"T{i}", "purchase_revenue": 10.0, "tax_value": 1.0}
    return {"event_date": time.strftime("%Y%m%d", time.gmtime(seconds)), "event_timestamp": str(seconds * 1_000_000),
            "event_name": GA4_EVENTS[kind], "user_pseudo_id": visitor, "user_id": None, "event_params": params,
            "items": [] if home else [{"item_id": product, "quantity": "1", "price": 10.0}], "ecommerce": ecommerce,
            "device": {"category": "desktop"}, "geo": {"country": "Germany"}}


def write_inputs(directory: str, n: int) -> dict[str, str]:
    """One file per format holding the same events; returns format -> path."""
    paths = {
        "retail": os.path.join(directory, "events.jsonl"),
        "personalize": os.path.join(directory, "interactions.csv"),
        "personalize-events": os.path.join(directory, "putevents.jsonl"),
        "opensearch": os.path.join(directory, "behavior.json"),
        "pairec-behavior": os.path.join(directory, "pairec.csv"),
        "pairec-parquet": os.path.join(directory, "pairec.parquet"),
        "mapped-otto": os.path.join(directory, "otto.jsonl"),
        "ga4": os.path.join(directory, "ga4.jsonl"),
        "pairec-callback": os.path.join(directory, "callback.jsonl"),
        "pairec-feature-log": os.path.join(directory, "features.jsonl"),
    }
    with open(paths["retail"], "w") as retail, open(paths["personalize"], "w") as csv_file, \
            open(paths["personalize-events"], "w") as put, open(paths["opensearch"], "w") as behavior, \
            open(paths["pairec-behavior"], "w") as pairec, open(paths["mapped-otto"], "w") as otto, \
            open(paths["ga4"], "w") as ga4, open(paths["pairec-callback"], "w") as callback, \
            open(paths["pairec-feature-log"], "w") as features:
        csv_file.write("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n")
        pairec.write("uid,item_id,event,time,scene,request_id\n")
        request: list[dict] = []
        session: list[dict] = []
        for visitor, product, seconds, kind, i in events(n):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
            line = {"eventType": kind, "visitorId": visitor, "sessionId": f"s-{i}", "eventTime": stamp,
                    "productDetails": [{"product": {"id": product}, "quantity": 1}]}
            if kind == "purchase-complete":
                line["purchaseTransaction"] = {"revenue": 10.0, "currencyCode": "USD"}
            if kind == "home-page-view":
                del line["productDetails"]
            retail.write(json.dumps(line) + "\n")
            csv_file.write(f"{visitor},{product},{seconds},{kind}\n")
            request.append({"eventType": kind, "sentAt": seconds, "itemId": product, "eventId": f"e-{i}"})
            if len(request) == 5:
                put.write(json.dumps({"trackingId": "t-1", "sessionId": f"s-{i}", "userId": visitor,
                                      "eventList": request}) + "\n")
                request = []
            behavior.write(json.dumps({"cmd": "add", "fields": {
                "item_id": product, "bhv_type": OPENSEARCH_TYPES[kind], "reach_time": str(seconds), "user_id": visitor,
                "rn": f"r-{i}", "trace_info": "-", "item_type": "item", "sdk_type": "opensearch_sdk",
                "sdk_version": "3.2.0", "trace_id": "other"}}) + "\n")
            pairec.write(f"{visitor},{product},{PAIREC_EVENTS[kind]},{seconds},home,r-{i}\n")
            session.append({"aid": int(product[1:]), "ts": seconds * 1000, "type": OTTO_TYPES[kind]})
            ga4.write(json.dumps(ga4_row(visitor, product, seconds, kind, i)) + "\n")
            features.write(json.dumps({"request_id": f"r-{i}", "module": "item", "scene": "home", "request_time": seconds,
                                       "user_id": visitor, "item_id": product,
                                       "item_features": json.dumps({"price": 10.0, "ctr": 0.1})}) + "\n")
            if len(session) == 5:
                otto.write(json.dumps({"session": i, "events": session}) + "\n")
                callback.write(json.dumps({"uid": visitor, "request_id": f"r-{i}", "scene_id": "home",
                                           "request_time": seconds, "features": {"age": 30},
                                           "item_list": [{"item_id": f"P{e['aid']:08d}"} for e in session]}) + "\n")
                session = []
        if session:
            otto.write(json.dumps({"session": n, "events": session}) + "\n")
            callback.write(json.dumps({"uid": "v-last", "request_id": "r-last", "scene_id": "home",
                                       "request_time": START, "item_list": [{"item_id": f"P{e['aid']:08d}"}
                                                                            for e in session]}) + "\n")
        if request:
            put.write(json.dumps({"trackingId": "t-1", "sessionId": "s-last", "eventList": request}) + "\n")
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    pq.write_table(pcsv.read_csv(paths["pairec-behavior"]), paths["pairec-parquet"])  # time as int64, as MaxCompute
    with open(os.path.join(directory, "catalog.jsonl"), "w") as out:
        for i in range(max(n // 10, 10)):
            out.write(json.dumps({"id": f"P{i:08d}", "title": f"Product {i}", "categories": [f"Cat{i % 50}"]}) + "\n")
    return paths


def time_import(work: str, fmt: str, path: str) -> tuple[float, dict]:
    store = os.path.join(work, f"store-{fmt}")
    shutil.rmtree(store, ignore_errors=True)
    summary = os.path.join(work, f"summary-{fmt}.json")
    if fmt == "pairec-feature-log":  # feature logs go to the features table, not the events
        command = ["features", "import", path, "--features-store", store]
    else:
        command = ["import", *FLAGS.get(fmt, []), "--format", FORMAT_OF.get(fmt, fmt), "--events", path,
                   "--catalog", os.path.join(work, "catalog.jsonl"), "--store", store]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "eventlake.cli", *command, "--summary", summary],
                   check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    with open(summary) as handle:
        return seconds, json.load(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; each times every format once")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--workdir", help="keep inputs and stores here (default: a temporary folder)")
    args = parser.parse_args()
    formats = ["retail", *[f for f in args.formats if f != "retail"]]
    work = args.workdir or tempfile.mkdtemp(prefix="formats-bench-")
    os.makedirs(work, exist_ok=True)
    paths = write_inputs(work, args.events)
    ratios: dict[str, list[float]] = {f: [] for f in formats}
    print(f"{args.events} events per format; inputs in {work}")
    print(f"{'round':<6}{'format':<20}{'seconds':>9}{'events/s':>12}{'stored':>10}{'errors':>8}{'vs retail':>11}")
    for round_ in range(args.repeat):
        order = formats if round_ % 2 == 0 else [formats[0], *reversed(formats[1:])]
        results = {}
        for fmt in order:
            seconds, summary = time_import(work, fmt, paths[fmt])
            results[fmt] = (seconds, summary)
        base = args.events / results["retail"][0]
        for fmt in formats:
            seconds, summary = results[fmt]
            rate = args.events / seconds
            ratios[fmt].append(rate / base)
            print(f"{round_ + 1:<6}{fmt:<20}{seconds:>9.2f}{rate:>12,.0f}{summary['stored']:>10}{summary['errors']:>8}"
                  f"{rate / base:>10.2f}x")
    print("median speed relative to retail: " + ", ".join(f"{f} {statistics.median(r):.2f}x" for f, r in ratios.items()))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
