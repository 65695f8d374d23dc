"""Alibaba PAI-Rec callback feature logs: what the ranker saw at request time, for training samples.

PAI-Rec's callback writes one record per request (``module`` ``user``: ``request_id``,
``scene``, ``request_time``, ``user_id``, ``user_features``, ``request_info``) and one per
request and item (``module`` ``item``: also ``item_id``, ``item_features``, ``raw_features``,
``generate_features``, ``context_features``) to its message queue, and from there to a table.
Read here as that table's rows: JSON lines, CSV with a header, or Parquet.

Rules: ``module`` is ``user`` or ``item``; ``request_id`` and ``request_time`` (Unix seconds as
PAI-Rec writes them, or milliseconds) are present; item records carry an ``item_id``; every
feature field that is given is a JSON object (as text, or an object in JSON lines).

``eventlake features import`` stores them in a features table beside the events
(``<store>/_features``), partitioned by the request's date; duplicates (the queue delivers at
least once) are dropped by content, as events are.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.base import EventFormat, ParsedBlock, first_json_object, register_format
from eventlake.formats.tabular import (
    RowBlock,
    RowChecks,
    as_bools,
    as_text,
    column_at,
    file_type_of,
    read_rows,
    unix_times,
)
from eventlake.io.files import ByteRange
from eventlake.schema import FEATURE_CONTENT_COLUMNS, FEATURE_FIELDS, PARSED_FEATURE_SCHEMA
from eventlake.transforms.fingerprint import fingerprints

MODULES = ("user", "item")
TEXT_COLUMNS = ("module", "request_id", "scene", "user_id", "item_id")
FEATURE_COLUMNS = ("user_features", "item_features", "raw_features", "generate_features", "context_features",
                   "request_info")
MILLISECONDS_FROM = 10_000_000_000  # request times at or above are milliseconds (after 2286 as seconds)


@register_format
class PaiRecFeatureLog(EventFormat):
    """PAI-Rec callback feature log records (module user / item), for ``eventlake features import``."""

    name = "pairec-feature-log"
    suffixes = (".csv", ".json", ".jsonl", ".parquet")
    table = "features"
    description = "Alibaba PAI-Rec callback feature logs (module user / item records)"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = first_json_object(head)
        return isinstance(first, dict) and {"module", "request_id", "request_time"} <= set(first)

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        for block in read_rows(byte_range, block_bytes, file_type_of(byte_range.path), "PAI-Rec feature log records"):
            batch, errors = _to_features(block)
            yield ParsedBlock(batch, block.errors + errors, lines=block.lines_spanned, records=block.records)


def _to_features(block: RowBlock) -> tuple[pa.RecordBatch, list[dict]]:
    table = block.table
    n = table.num_rows
    check = RowChecks(block)

    def column(name: str) -> pa.Array:
        found = column_at(table, name) if n else None
        return as_text(found) if found is not None else pa.nulls(n, pa.string())

    values = {name: column(name) for name in TEXT_COLUMNS + FEATURE_COLUMNS}
    time_text = column("request_time")
    for name, given in (("module", values["module"]), ("request_id", values["request_id"]), ("request_time", time_text)):
        check.reject(pc.is_null(given), name, "REQUIRED", f"{name} is required")
    check.reject(pc.invert(pc.is_in(values["module"], value_set=pa.array(MODULES))), "module", "INVALID_VALUE",
                 lambda i: f"module must be user or item, got {values['module'][i].as_py()!r}"[:200])
    check.reject(pc.and_(pc.equal(values["module"], "item"), pc.is_null(values["item_id"])), "item_id", "REQUIRED",
                 "an item record needs item_id")
    request_time, micros = _request_times(time_text, check)
    for name in FEATURE_COLUMNS:
        _reject_non_objects(check, values[name], name)

    keep = pa.array(check.kept, pa.int64())
    out = {name: values[name].take(keep) for name in TEXT_COLUMNS + FEATURE_COLUMNS}
    out["request_time"] = request_time.take(keep)
    out["event_time"] = micros.take(keep)
    kept = len(check.kept)
    columns = [out[f.name] for f in FEATURE_FIELDS]
    columns += [pa.repeat(pa.scalar(block.source, pa.string()), kept), pa.array(block.offsets[check.kept], pa.int64())]
    features = pa.RecordBatch.from_arrays(columns, names=[f.name for f in FEATURE_FIELDS] + ["source_uri", "source_offset"])
    columns += [fingerprints(features, FEATURE_CONTENT_COLUMNS), pa.array(block.lines[check.kept], pa.int64()),
                block.raw_records(check.kept), pa.repeat(pa.scalar(PaiRecFeatureLog.name, pa.string()), kept)]
    return pa.RecordBatch.from_arrays(columns, schema=PARSED_FEATURE_SCHEMA), check.errors


def _request_times(text: pa.Array, check: RowChecks) -> tuple[pa.Array, pa.Array]:
    """``request_time`` (as text) as written (whole seconds or milliseconds) and as a UTC timestamp."""
    text = pc.utf8_trim_whitespace(text)
    digits = as_bools(pc.match_substring_regex(text, r"^\d{1,16}$"))
    check.reject(as_bools(pc.is_valid(text)) & ~digits, "request_time", "INVALID_TIME",
                 lambda i: f"request_time must be whole Unix seconds, got {text[i].as_py()[:40]!r}")
    whole = pc.cast(pc.if_else(pa.array(digits), text, "0"), pa.int64())
    whole = pc.if_else(pa.array(digits), whole, pa.scalar(None, pa.int64()))
    millis = as_bools(pc.greater_equal(whole, MILLISECONDS_FROM))
    seconds_times, _ = unix_times(whole, "s")
    milli_times, _ = unix_times(whole, "ms")
    return whole, pc.if_else(pa.array(millis), milli_times, seconds_times)


def _reject_non_objects(check: RowChecks, values: pa.Array, name: str) -> None:
    """Feature fields hold JSON objects: each given value must parse as one."""
    rows = np.flatnonzero(as_bools(pc.is_valid(values)) & ~check.bad)
    if not len(rows):
        return
    bad = np.zeros(len(values), dtype=bool)
    for i, text in zip(rows.tolist(), values.take(pa.array(rows)).to_pylist(), strict=True):
        try:
            bad[i] = not isinstance(orjson.loads(text), dict)
        except orjson.JSONDecodeError:
            bad[i] = True
    check.reject(bad, name, "INVALID_FEATURES", f"{name} must be a JSON object (as text), as PAI-Rec writes features")


__all__ = ["PaiRecFeatureLog"]
