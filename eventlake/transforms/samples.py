"""Training samples: exposures labelled by what followed, with the features seen at request time.

The rules, as PAI-Rec and EasyRec sample jobs apply them:

* An **exposure** is a stored event of an exposure type (``expose``) with a user, a request id
  and an item (one per product of the event). The same user, request and item exposed again is
  one sample: the earliest exposure (ties by fingerprint) is kept, the others are counted as
  ``duplicate_exposures``.
* A **label** event (a click, a cart, a buy) is claimed by at most one exposure of the same user
  and item: the exposure of its own request when the event carries a request id, otherwise the
  latest exposure at or before it (an as-of join; of two at one moment, the greater request
  id). It counts when it happened at or after that exposure and at most ``window`` later. An event no exposure claims is ``unattributed``. A
  claimed event sets its label to 1 and adds its ``event_value`` (none counts as 0) to
  ``<label>_value``.
* **Features** come from the callback logs (``<store>/_features``): the user record of the
  exposure's request and the item record of its request and item. When several were written
  for one, the first is used, and only when it was written at or before the exposure (a record
  written later, a backfill, would leak what the ranker never saw); otherwise the features are
  null and counted.

Everything here is Arrow and NumPy over one bucket of users (labels) or of requests (features);
``eventlake.pipelines.samples`` moves the buckets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.exporting import per_product
from eventlake.transforms.product_index import hash_strings

# The stored columns the samples job reads from the events and the features table.
EVENT_COLUMNS = ("event_type", "visitor_id", "event_time", "product_details.product.id", "request_id", "attributes",
                 "event_value", "event_fingerprint")
FEATURE_COLUMNS = ("module", "request_id", "item_id", "event_time", "event_fingerprint", "user_features",
                   "item_features", "context_features", "generate_features", "raw_features")
USER_FEATURES = ("user_features",)
ITEM_FEATURES = ("item_features", "context_features", "generate_features", "raw_features")

# One row per event and product, as the label pass reads it.
INTERACTION_SCHEMA = pa.schema([
    ("event_type", pa.string()), ("user", pa.string()), ("item", pa.string()), ("request_id", pa.string()),
    ("time", pa.int64()), ("value", pa.float64()), ("scene", pa.string()), ("fingerprint", pa.binary()),
])
_NO_PART = -1


@dataclass(frozen=True)
class SampleSpec:
    """What makes a sample: the exposure types, each label's event types, the window."""

    exposure_types: tuple[str, ...] = ("expose",)
    labels: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("click", ("detail-page-view",)), ("cart", ("add-to-cart",)), ("buy", ("purchase-complete",)))
    window_seconds: int = 1800

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.labels)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.exposure_types) | {t for _, types in self.labels for t in types}))


def attribute_text(attributes: pa.Array, key: str) -> pa.Array:
    """The first text value of attribute ``key`` of each event (null where it has none)."""
    n = len(attributes)
    if not n or attributes.null_count == n:
        return pa.nulls(n, pa.string())
    flat = pc.list_flatten(attributes)
    parents = pc.list_parent_indices(attributes).to_numpy()
    keep = pc.fill_null(pc.equal(pc.struct_field(flat, "key"), key), False).to_numpy(zero_copy_only=False)
    texts = pc.list_element(pc.struct_field(pc.struct_field(flat, "value"), "text").filter(pa.array(keep)), 0) \
        if keep.any() else pa.array([], pa.string())
    out = np.full(n, -1, np.int64)
    rows = parents[keep]
    out[rows[::-1]] = np.arange(len(rows))[::-1]  # the first such attribute of each event
    return pc.take(texts, pa.array(out, mask=out < 0)) if len(texts) else pa.nulls(n, pa.string())


def interactions(batch: pa.RecordBatch, spec: SampleSpec) -> pa.Table:
    """The batch's exposures and label events, one row per product (an event with no product is
    one row with a null item, which no rule can use and the counts show)."""
    types = batch.column("event_type")
    keep = pc.fill_null(pc.is_in(types, value_set=pa.array(spec.event_types)), False)
    batch = batch.filter(keep)
    rows, products, _, _, no_product = per_product(batch, ["event_type", "visitor_id", "event_time", "request_id",
                                                          "event_value", "event_fingerprint", "attributes"])
    rows = pa.Table.from_batches([rows])
    items = pc.struct_field(products, "id") if len(products) else pa.array([], pa.string())
    if no_product.any():  # each event without a product: one row that no rule can use, so it is counted
        rows = pa.concat_tables([rows, pa.Table.from_batches([batch.filter(pa.array(no_product))]).select(rows.schema.names)])
        items = pa.concat_arrays([items, pa.nulls(int(no_product.sum()), pa.string())])
    rows = rows.combine_chunks()
    is_exposure = pc.is_in(rows.column("event_type"), value_set=pa.array(spec.exposure_types))
    scene = pc.if_else(is_exposure, attribute_text(rows.column("attributes"), "scene"), pa.scalar(None, pa.string())) \
        if len(rows) else pa.array([], pa.string())
    table = pa.table({
        "event_type": rows.column("event_type"), "user": rows.column("visitor_id"), "item": items,
        "request_id": rows.column("request_id"),
        "time": pc.cast(rows.column("event_time"), pa.int64()), "value": rows.column("event_value"),
        "scene": scene, "fingerprint": rows.column("event_fingerprint"),
    }, schema=INTERACTION_SCHEMA)
    return table


def buckets_of(keys: pa.Array, buckets: int) -> np.ndarray:
    """Each row's bucket by a hash of ``keys`` (users for labels, requests for features)."""
    if buckets == 1:
        return np.zeros(len(keys), np.int64)
    return (hash_strings(keys) % np.uint64(buckets)).astype(np.int64)


def split_by_bucket(table: pa.Table, which: np.ndarray):
    """``(bucket, rows)`` for each bucket that has rows."""
    if not len(table):
        return
    order = np.argsort(which, kind="stable")
    sorted_which = which[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_which[1:] != sorted_which[:-1])))
    ends = np.concatenate((starts[1:], [len(order)]))
    taken = table.take(pa.array(order))
    for start, end in zip(starts, ends, strict=True):
        yield int(sorted_which[start]), taken.slice(start, end - start)


def _codes(*columns: pa.ChunkedArray) -> list[np.ndarray]:
    """Each column's values as integer codes shared across the columns (null: -1)."""
    joined = pa.chunked_array([c for column in columns for c in column.chunks], type=pa.string())
    encoded = pc.dictionary_encode(joined).combine_chunks()
    indices = encoded.indices
    codes = pc.fill_null(indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    out, start = [], 0
    for column in columns:
        out.append(codes[start:start + len(column)])
        start += len(column)
    return out


def label_exposures(table: pa.Table, spec: SampleSpec, split_last: int = 0) -> tuple[pa.Table, Counter]:
    """One bucket of users' interactions -> its samples (exposures with labels and values, and
    with ``split_last`` a ``part`` column: 0 train, 1 valid, 2 test) and the counts."""
    stats: Counter = Counter()
    types = table.column("event_type")
    is_exposure = pc.is_in(types, value_set=pa.array(spec.exposure_types)).to_numpy(zero_copy_only=False)
    user_codes, item_codes, request_codes = _codes(table.column("user"), table.column("item"),
                                                   table.column("request_id"))
    times = table.column("time").to_numpy()
    # exposures: skipped by rule, then one per user, request and item
    missing = {"no_user": user_codes < 0, "no_item": item_codes < 0, "no_request_id": request_codes < 0}
    usable = is_exposure.copy()
    for reason, mask in missing.items():
        hit = usable & mask
        stats[f"exposures_skipped.{reason}"] += int(hit.sum())
        usable &= ~mask
    stats["exposures"] += int(is_exposure.sum())
    candidates = np.flatnonzero(usable)
    fingerprints = table.column("fingerprint").take(pa.array(candidates))
    # by the request id itself, not its code: the order of exposures at one moment (which one an
    # event without a request id goes to) must not depend on the order files were read in
    order = pc.sort_indices(pa.table({"u": user_codes[candidates], "i": item_codes[candidates],
                                      "r": table.column("request_id").take(pa.array(candidates)),
                                      "t": times[candidates], "f": fingerprints}),
                            [("u", "ascending"), ("i", "ascending"), ("r", "ascending"), ("t", "ascending"),
                             ("f", "ascending")]).to_numpy()
    ordered = candidates[order]
    key = np.stack([user_codes[ordered], item_codes[ordered], request_codes[ordered]], axis=1)
    first = np.ones(len(ordered), bool)
    if len(ordered) > 1:
        first[1:] = (key[1:] != key[:-1]).any(axis=1)
    exposures = ordered[first]
    stats["duplicate_exposures"] += int(len(ordered) - len(exposures))
    n = len(exposures)
    exposure_frame = pd.DataFrame({"u": user_codes[exposures], "i": item_codes[exposures],
                                   "r": request_codes[exposures], "t": times[exposures],
                                   "x": np.arange(n, dtype=np.int64)})
    values = table.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
    values = np.nan_to_num(values, nan=0.0)
    columns: dict[str, pa.Array] = {
        "request_id": table.column("request_id").take(pa.array(exposures)),
        "scene": table.column("scene").take(pa.array(exposures)),
        "user_id": table.column("user").take(pa.array(exposures)),
        "item_id": table.column("item").take(pa.array(exposures)),
        "exposure_time": pc.cast(pa.array(times[exposures], pa.int64()), pa.timestamp("us", tz="UTC")),
    }
    label_values = {}
    window = spec.window_seconds * 1_000_000
    for name, label_types in spec.labels:
        events = np.flatnonzero(pc.is_in(types, value_set=pa.array(label_types)).to_numpy(zero_copy_only=False)
                                & ~is_exposure)
        claimed = _claims(events, user_codes, item_codes, request_codes, times, exposure_frame, window)
        hit = claimed >= 0
        stats[f"label_events.{name}"] += len(events)
        stats[f"unattributed.{name}"] += int((~hit).sum())
        flags = np.zeros(n, np.int8)
        flags[claimed[hit]] = 1
        sums = np.bincount(claimed[hit], weights=values[events[hit]], minlength=n) if n else np.zeros(0)
        columns[name] = pa.array(flags)
        label_values[f"{name}_value"] = pa.array(sums.astype(np.float64))
        stats[f"positives.{name}"] += int(flags.sum())
    columns.update(label_values)
    columns["fingerprint"] = table.column("fingerprint").take(pa.array(exposures))
    if split_last:
        columns["part"] = pa.array(_leave_last(user_codes[exposures], times[exposures], split_last))
    stats["samples"] += n
    return pa.table(columns), stats


def _claims(events: np.ndarray, users: np.ndarray, items: np.ndarray, requests: np.ndarray, times: np.ndarray,
            exposures: pd.DataFrame, window: int) -> np.ndarray:
    """For each label event, the index of the exposure that claims it (-1: none)."""
    out = np.full(len(events), -1, np.int64)
    usable = (users[events] >= 0) & (items[events] >= 0)
    if not len(exposures) or not usable.any():
        return out
    frame = pd.DataFrame({"u": users[events], "i": items[events], "r": requests[events], "t": times[events],
                          "e": np.arange(len(events), dtype=np.int64)})[usable]
    with_request = frame[frame["r"] >= 0]
    if len(with_request):  # its own request's exposure
        matched = with_request.merge(exposures, on=["u", "i", "r"], how="inner", suffixes=("", "_x"))
        inside = (matched["t"] >= matched["t_x"]) & (matched["t"] - matched["t_x"] <= window)
        matched = matched[inside]
        out[matched["e"].to_numpy()] = matched["x"].to_numpy()
    without = frame[frame["r"] < 0]
    if len(without):  # the latest exposure of the same user and item at or before it
        left = without.sort_values("t", kind="stable")
        right = exposures.sort_values("t", kind="stable").rename(columns={"t": "t_x"})
        right["t"] = right["t_x"]
        found = pd.merge_asof(left, right[["u", "i", "t", "t_x", "x"]], on="t", by=["u", "i"], direction="backward",
                              tolerance=window, allow_exact_matches=True)
        found = found[found["x"].notna()]
        out[found["e"].to_numpy()] = found["x"].to_numpy().astype(np.int64)
    return out


def _leave_last(users: np.ndarray, times: np.ndarray, last: int) -> np.ndarray:
    """Per user, the last ``last`` samples by exposure time as test (2), the ``last`` before them
    as validation (1), always leaving a user's first sample in train (0)."""
    n = len(users)
    if not n:
        return np.zeros(0, np.int8)
    order = np.lexsort((np.arange(n), times, users))
    u = users[order]
    starts = np.flatnonzero(np.concatenate(([True], u[1:] != u[:-1])))
    sizes = np.diff(np.concatenate((starts, [n])))
    index_in_user = np.arange(n) - np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    from_end = size - 1 - index_in_user
    test_n = np.minimum(last, size - 1)
    valid_n = np.minimum(last, size - 1 - test_n)
    part = np.zeros(n, np.int8)
    part[from_end < test_n] = 2
    part[(from_end >= test_n) & (from_end < test_n + valid_n)] = 1
    out = np.empty(n, np.int8)
    out[order] = part
    return out


def first_features(features: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The first user record of each request and the first item record of each request and item
    (earliest ``event_time``, ties by fingerprint), with the time each was written."""
    modules = features.column("module")
    out = []
    for module, keys, names in (("user", ["request_id"], USER_FEATURES),
                                ("item", ["request_id", "item_id"], ITEM_FEATURES)):
        rows = features.filter(pc.fill_null(pc.equal(modules, module), False))
        rows = rows.sort_by([(k, "ascending") for k in keys] + [("event_time", "ascending"),
                                                                ("event_fingerprint", "ascending")])
        codes = [_codes(rows.column(k))[0] for k in keys]
        first = np.ones(len(rows), bool)
        if len(rows) > 1:
            first[1:] = np.logical_or.reduce([c[1:] != c[:-1] for c in codes])
        rows = rows.filter(pa.array(first))
        renamed = {"event_time": f"{module}_written"}
        out.append(pa.table({renamed.get(c, c): rows.column(c) for c in [*keys, "event_time", *names]}))
    return out[0], out[1]


def attach_features(samples: pa.Table, features: pa.Table | None) -> tuple[pa.Table, Counter]:
    """Samples with the user and item features of their request (as-of-known-time: a record
    written after the exposure is not used), and how many got none."""
    stats: Counter = Counter()
    n = len(samples)
    if features is None or not len(features):
        features = pa.table({c: pa.array([], t) for c, t in _FEATURE_TYPES.items()})
    users, items = first_features(features)
    order_key = "_row"
    table = samples.append_column(order_key, pa.array(np.arange(n, dtype=np.int64)))
    table = table.join(users, keys="request_id", join_type="left outer", use_threads=False)
    table = table.join(items, keys=["request_id", "item_id"], join_type="left outer", use_threads=False)
    table = table.sort_by(order_key)
    exposed = table.column("exposure_time")
    columns = {name: table.column(name) for name in samples.column_names}
    for module, names in (("user", USER_FEATURES), ("item", ITEM_FEATURES)):
        written = table.column(f"{module}_written")
        found = pc.is_valid(written)
        in_time = pc.fill_null(pc.less_equal(written, exposed), False)
        stats[f"exposures_without_{module}_features"] += n - int(pc.sum(in_time).as_py() or 0)
        stats[f"{module}_features_written_after_exposure"] += int(pc.sum(pc.and_(found, pc.invert(in_time)))
                                                                 .as_py() or 0)
        for name in names:
            columns[name] = pc.if_else(in_time, table.column(name), pa.scalar(None, pa.string()))
    return pa.table(columns), stats


_FEATURE_TYPES = {"module": pa.string(), "request_id": pa.string(), "item_id": pa.string(),
                  "event_time": pa.timestamp("us", tz="UTC"), "event_fingerprint": pa.binary(),
                  **{name: pa.string() for name in USER_FEATURES + ITEM_FEATURES}}


def empty_features() -> pa.Table:
    return pa.table({c: pa.array([], t) for c, t in _FEATURE_TYPES.items()})


__all__ = ["EVENT_COLUMNS", "FEATURE_COLUMNS", "SampleSpec", "attach_features", "attribute_text", "buckets_of",
           "first_features", "interactions", "label_exposures", "split_by_bucket"]
