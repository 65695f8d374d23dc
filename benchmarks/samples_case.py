"""A generated training-samples case and an independent DuckDB query for its samples.

``generate(folder, requests)`` writes PAI-Rec logs as Parquet: ``behavior.parquet`` (exposures,
20 items per request; clicks, carts and buys at known rates, some inside and some outside the
30-minute window, some without a request id, some on items never shown; a few repeated
exposures) and ``features.parquet`` (a user record and item records per request, some missing,
some written again later, some written only after the request). ``duckdb_samples`` computes
the samples from the stored Parquet files with SQL written from the rules, not from our code:
``ROW_NUMBER`` for the repeated exposures, a join on the request and an ``ASOF JOIN`` for label
events, the first feature record by ``ROW_NUMBER``, a time filter for the as-of-known-time rule.

Used by ``tests/pipelines/test_samples.py`` (100k requests) and ``samples_bench.py`` (10x).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

T0 = 1_709_251_200  # 2024-03-01 00:00:00 UTC
ITEMS_PER_REQUEST = 20
LABELS = {"click": "detail-page-view", "cart": "add-to-cart", "buy": "purchase-complete"}


def generate(folder, requests: int, seed: int = 7) -> dict:
    """Write the two logs; returns their paths and row counts."""
    rng = np.random.default_rng(seed)
    users = max(1, requests // 5)
    r = np.arange(requests)
    request_ids = np.asarray(_ids("req", r).to_numpy(zero_copy_only=False), dtype=object)
    user_of = rng.integers(0, users, requests)
    # every request at a second of its own, so that no two exposures of a user tie in time
    request_time = T0 + r * 7 + rng.integers(0, 7, requests)
    scene = np.array(["home", "detail", "cart"], dtype=object)[rng.integers(0, 3, requests)]
    k = ITEMS_PER_REQUEST
    exposure_request = np.repeat(r, k)
    item = rng.integers(0, 50_000, requests * k)
    n = len(item)
    # exposures (a few shown twice, a second later)
    again = rng.random(n) < 0.01
    rows = [(exposure_request, item, np.full(n, "expr", dtype=object), request_time[exposure_request],
             np.ones(n, bool), np.full(n, np.nan))]
    rows.append((exposure_request[again], item[again], np.full(again.sum(), "expr", dtype=object),
                 request_time[exposure_request[again]] + 1, np.ones(again.sum(), bool), np.full(again.sum(), np.nan)))
    # label events: delays up to an hour (half the window's width outside it), a few before the exposure
    for event, rate in (("click", 0.10), ("cart", 0.03), ("buy", 0.01)):
        hit = rng.random(n) < rate
        m = int(hit.sum())
        delay = rng.integers(-60, 3600, m)
        with_request = rng.random(m) < 0.7
        value = np.round(rng.uniform(1, 200, m), 2) if event == "buy" else np.full(m, np.nan)
        rows.append((exposure_request[hit], item[hit], np.full(m, event, dtype=object),
                     request_time[exposure_request[hit]] + delay, with_request, value))
    # clicks on items the request never showed
    stray = rng.random(requests) < 0.05
    m = int(stray.sum())
    rows.append((r[stray], rng.integers(50_000, 60_000, m), np.full(m, "click", dtype=object),
                 request_time[stray] + 30, np.ones(m, bool), np.full(m, np.nan)))
    req, items, events, times, keep_request, values = (np.concatenate(c) for c in zip(*rows, strict=True))
    behavior = pa.table({
        "uid": _ids("u", user_of[req]),
        "item_id": _ids("i", items),
        "event": pa.array(events, pa.string()),
        "time": pa.array(times, pa.int64()),
        "request_id": pa.array(request_ids[req], pa.string(), mask=~keep_request),
        "scene": pa.array(scene[req], pa.string()),
        "event_value": pa.array(values, pa.float64(), mask=np.isnan(values)),
    })
    pq.write_table(behavior, f"{folder}/behavior.parquet")
    # features: a user record for 95% of requests (for 2% only one written after the request), an
    # item record for 90% of exposures, and a later second record for 5% of requests
    has_user = rng.random(requests) < 0.95
    late = rng.random(requests) < 0.02
    user_time = np.where(late, request_time + 600, request_time)
    again_user = rng.random(requests) < 0.05
    has_item = rng.random(n) < 0.90
    ages = rng.integers(18, 70, requests)
    cities = np.array(["beijing", "hangzhou", "shanghai"], dtype=object)[rng.integers(0, 3, requests)]
    users_json = _json_of({"age": pa.array(np.concatenate([ages[has_user], ages[again_user] + 1])),
                           "city": pa.array(np.concatenate([cities[has_user], cities[again_user]]), pa.string())})
    user_rows = pa.table({
        "module": pa.array(["user"] * len(users_json), pa.string()),
        "request_id": pa.array(np.concatenate([request_ids[has_user], request_ids[again_user]]), pa.string()),
        "request_time": pa.array(np.concatenate([user_time[has_user], request_time[again_user] + 900]), pa.int64()),
        "user_id": _ids("u", np.concatenate([user_of[has_user], user_of[again_user]])),
        "user_features": users_json,
    })
    prices = np.round(rng.uniform(1, 500, n), 2)
    item_rows = pa.table({
        "module": pa.array(["item"] * int(has_item.sum()), pa.string()),
        "request_id": pa.array(request_ids[exposure_request[has_item]], pa.string()),
        "request_time": pa.array(request_time[exposure_request[has_item]], pa.int64()),
        "user_id": _ids("u", user_of[exposure_request[has_item]]),
        "item_id": _ids("i", item[has_item]),
        "item_features": _json_of({"price": pa.array(prices[has_item])}),
        "context_features": _json_of({"position": pa.array(np.flatnonzero(has_item) % k)}),
    })
    features = pa.concat_tables([user_rows, item_rows], promote_options="default")
    pq.write_table(features, f"{folder}/features.parquet")
    return {"behavior": f"{folder}/behavior.parquet", "features": f"{folder}/features.parquet",
            "behavior_rows": len(behavior), "feature_rows": len(features)}


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _json_of(columns: dict[str, pa.Array]) -> pa.Array:
    """``{"key": value, ...}`` per row, built by Arrow (text values quoted)."""
    parts = []
    for i, (key, values) in enumerate(columns.items()):
        text = pc.cast(values, pa.string())
        if pa.types.is_string(values.type):
            text = pc.binary_join_element_wise('"', text, '"', "")
        parts += [("{" if i == 0 else ", ") + f'"{key}": ', text]
    return pc.binary_join_element_wise(*parts, "}", "")


def duckdb_samples(con, event_files: list[str], feature_files: list[str], window_minutes: int = 30) -> str:
    """Create the table ``reference`` of the samples; returns the SQL it ran."""
    sql = f"""
    CREATE OR REPLACE TEMP TABLE ev AS
      SELECT event_type, visitor_id AS u, d.product.id AS i, request_id AS r, event_time AS t,
             coalesce(event_value, 0) AS v, event_fingerprint AS f,
             list_filter(attributes, lambda a: a.key = 'scene')[1].value.text[1] AS scene
      FROM (SELECT *, unnest(product_details) AS d FROM read_parquet({json.dumps(event_files)}));
    CREATE OR REPLACE TEMP TABLE ex AS
      SELECT * EXCLUDE (n) FROM (
        SELECT *, row_number() OVER (PARTITION BY u, i, r ORDER BY t, f) AS n FROM ev
        WHERE event_type = 'expose' AND u IS NOT NULL AND i IS NOT NULL AND r IS NOT NULL) WHERE n = 1;
    CREATE OR REPLACE TEMP TABLE lab AS
      SELECT *, CASE event_type {' '.join(f"WHEN '{t}' THEN '{n}'" for n, t in LABELS.items())} END AS label
      FROM ev WHERE event_type IN ({', '.join(f"'{t}'" for t in LABELS.values())});
    CREATE OR REPLACE TEMP TABLE claims AS
      SELECT l.label, e.u, e.i, e.r, l.v FROM lab l JOIN ex e ON l.u = e.u AND l.i = e.i AND l.r = e.r
        WHERE l.t >= e.t AND l.t <= e.t + INTERVAL {window_minutes} MINUTE
      UNION ALL
      SELECT l.label, e.u, e.i, e.r, l.v FROM (SELECT * FROM lab WHERE r IS NULL) l
        ASOF JOIN ex e ON l.u = e.u AND l.i = e.i AND l.t >= e.t
        WHERE l.t <= e.t + INTERVAL {window_minutes} MINUTE;
    CREATE OR REPLACE TEMP TABLE labelled AS
      SELECT u, i, r, {', '.join(f"max((label = '{n}')::TINYINT) AS {n}" for n in LABELS)},
             {', '.join(f"coalesce(sum(v) FILTER (WHERE label = '{n}'), 0) AS {n}_value" for n in LABELS)}
      FROM claims GROUP BY u, i, r;
    CREATE OR REPLACE TEMP TABLE fe AS SELECT * FROM read_parquet({json.dumps(feature_files)});
    CREATE OR REPLACE TEMP TABLE fu AS SELECT * EXCLUDE (n) FROM (
      SELECT request_id, event_time, user_features,
             row_number() OVER (PARTITION BY request_id ORDER BY event_time, event_fingerprint) AS n
      FROM fe WHERE module = 'user') WHERE n = 1;
    CREATE OR REPLACE TEMP TABLE fi AS SELECT * EXCLUDE (n) FROM (
      SELECT request_id, item_id, event_time, item_features, context_features, generate_features, raw_features,
             row_number() OVER (PARTITION BY request_id, item_id ORDER BY event_time, event_fingerprint) AS n
      FROM fe WHERE module = 'item') WHERE n = 1;
    CREATE OR REPLACE TEMP TABLE reference AS
      SELECT e.r AS request_id, e.scene, e.u AS user_id, e.i AS item_id, e.t AS exposure_time,
             {', '.join(f"coalesce(l.{n}, 0)::TINYINT AS {n}" for n in LABELS)},
             {', '.join(f"coalesce(l.{n}_value, 0) AS {n}_value" for n in LABELS)},
             CASE WHEN fu.event_time <= e.t THEN fu.user_features END AS user_features,
             {', '.join(f"CASE WHEN fi.event_time <= e.t THEN fi.{c} END AS {c}" for c in
                        ("item_features", "context_features", "generate_features", "raw_features"))}
      FROM ex e LEFT JOIN labelled l ON l.u = e.u AND l.i = e.i AND l.r = e.r
      LEFT JOIN fu ON fu.request_id = e.r
      LEFT JOIN fi ON fi.request_id = e.r AND fi.item_id = e.i;
    """
    con.execute(sql)
    return sql


__all__ = ["LABELS", "duckdb_samples", "generate"]
