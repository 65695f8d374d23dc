"""Alibaba PAI-Rec behavior logs: the user-behavior table PAI-Rec's data preparation reads.

A row per behavior, as CSV with a header, JSON lines, or Parquet (a MaxCompute table exported
to files). Columns by name: ``uid`` (or ``user_id``), ``item_id``, ``event``, ``time`` (or
``event_time``) and ``scene`` (or ``scene_id``) are required; ``request_id``, ``event_value``
and ``exp_id`` are optional; every other column becomes an attribute. A file that lacks a
required column is one error for the file, not one per row.

Rules: a time is 10-digit Unix seconds, or 14-digit ``YYYYMMDDhhmmss`` read in the option
``timezone`` (default ``Asia/Shanghai``, where PAI-Rec's tables usually come from); ids hold
none of the characters PAI-Rec uses as separators in its feature strings (``:``, ``;``, ``#``
and the control characters 0x02, 0x03, 0x1D); ``event_value`` is a finite number.

Mapping: ``uid`` -> ``visitor_id`` and ``user_info.user_id``; ``item_id`` -> the product;
``event`` -> ``source_event_type`` (default map: ``click`` -> ``detail-page-view``, ``cart`` ->
``add-to-cart``, ``buy`` -> ``purchase-complete``, ``expr`` -> ``expose``); ``request_id`` as
it is; ``event_value`` -> ``event_value``; ``exp_id`` -> ``experiment_ids``; ``scene`` -> the
attribute ``scene``, which the training-samples job matches callback logs on.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.base import (
    EventFormat,
    ParsedBlock,
    SourceFileError,
    canonical_batch,
    csv_header,
    first_json_object,
    register_format,
)
from eventlake.formats.columns import attributes_from_columns, one_product_each, user_info_of
from eventlake.formats.csv_records import first_record_and_lines_before
from eventlake.formats.tabular import (
    RowBlock,
    RowChecks,
    as_bools,
    as_numbers,
    as_text,
    check_timezone,
    file_type_of,
    head_block,
    pattern_times,
    read_rows,
    unix_times,
)
from eventlake.io.files import ByteRange

# canonical column -> the names a behavior table may give it, first one wins
REQUIRED = {"uid": ("uid", "user_id"), "item_id": ("item_id",), "event": ("event",), "time": ("time", "event_time"),
            "scene": ("scene", "scene_id")}
OPTIONAL = {"request_id": ("request_id",), "event_value": ("event_value",), "exp_id": ("exp_id",)}
RESERVED = {":": "':'", ";": "';'", "#": "'#'", "\x02": "0x02", "\x03": "0x03", "\x1d": "0x1D"}
RESERVED_PATTERN = "[" + "".join(RESERVED) + "]"  # any of them: one pass over a column finds the rows to name


def reserved_in(value: str) -> str:
    """How an error names the first reserved character ``value`` holds (in ``RESERVED``'s order)."""
    return next(shown for char, shown in RESERVED.items() if char in value)
ID_COLUMNS = ("uid", "item_id", "scene")
DEFAULT_TIMEZONE = "Asia/Shanghai"


@register_format
class PaiRecBehavior(EventFormat):
    """Alibaba PAI-Rec behavior log rows (uid, item_id, event, time, scene, ...)."""

    name = "pairec-behavior"
    suffixes = (".csv", ".json", ".jsonl", ".parquet")
    default_event_type_map = {"click": "detail-page-view", "cart": "add-to-cart", "buy": "purchase-complete",
                              "expr": "expose"}
    description = "Alibaba PAI-Rec behavior log rows as CSV, JSON lines or Parquet"
    option_names = {"timezone": "the time zone of 14-digit YYYYMMDDhhmmss times (default Asia/Shanghai)"}

    @classmethod
    def check_options(cls, options) -> dict:
        options = super().check_options(options)
        check_timezone(options, DEFAULT_TIMEZONE)
        return options

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = first_json_object(head)
        names = {k.upper() for k in first} if isinstance(first, dict) else csv_header(head)
        return all(any(n.upper() in names for n in aliases) for aliases in REQUIRED.values())

    def check_file(self, path: str) -> None:
        _columns(head_block(path, file_type_of(path), "PAI-Rec behavior rows"), always=True)

    def lines_before(self, byte_range: ByteRange) -> int:
        if file_type_of(byte_range.path) == "csv" and byte_range.start > 0:
            found = first_record_and_lines_before(byte_range.path, byte_range.start)
            return found[1] if found else 0
        return super().lines_before(byte_range)

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        timezone = str(self.options.get("timezone", DEFAULT_TIMEZONE))
        kind = "PAI-Rec behavior rows"
        for block in read_rows(byte_range, block_bytes, file_type_of(byte_range.path), kind):
            batch, errors = _to_canonical(block, _columns(block), timezone)
            yield ParsedBlock(batch, block.errors + errors, lines=block.lines_spanned, records=block.records)


def _columns(block: RowBlock, always: bool = False) -> dict[str, str]:
    """Canonical column -> the file's own column name; a file error when a required one is missing."""
    by_lower = {name.lower(): name for name in block.table.column_names}
    found = {}
    for canonical, aliases in {**REQUIRED, **OPTIONAL}.items():
        name = next((by_lower[a] for a in aliases if a in by_lower), None)
        if name is not None:
            found[canonical] = name
    if block.table.num_rows or always:
        missing = [" or ".join(aliases) for canonical, aliases in REQUIRED.items() if canonical not in found]
        if missing:
            raise SourceFileError(f"{block.source}: no {', '.join(missing)} column (PAI-Rec behavior rows need uid, "
                                  f"item_id, event, time and scene; this file has {', '.join(block.table.column_names)})")
    return found


def _to_canonical(block: RowBlock, names: dict[str, str], timezone: str) -> tuple[pa.RecordBatch, list[dict]]:
    n = block.table.num_rows
    check = RowChecks(block)
    if not n:
        return canonical_batch({}, block.source, np.zeros(0, np.int64), np.zeros(0, np.int64), pa.array([], pa.binary()),
                               PaiRecBehavior.name), check.errors

    def text(canonical: str) -> pa.Array | None:
        return as_text(block.table.column(names[canonical]).combine_chunks()) if canonical in names else None

    columns = {c: text(c) for c in (*REQUIRED, "request_id", "exp_id")}
    for canonical in REQUIRED:
        check.reject(pc.is_null(columns[canonical]), names[canonical], "REQUIRED", f"{names[canonical]} is required")
    for canonical in ID_COLUMNS:
        _reject_reserved(check, columns[canonical], names[canonical])

    times = _times(block.table.column(names["time"]).combine_chunks(), timezone, check, names["time"])
    event_value = None
    if "event_value" in names:
        event_value, bad = as_numbers(block.table.column(names["event_value"]).combine_chunks())
        check.reject(bad, names["event_value"], "INVALID_VALUE", lambda i: f"{names['event_value']} must be a finite "
                     f"number, got {block.table.column(names['event_value'])[i].as_py()!r}"[:200])

    keep = pa.array(check.kept, pa.int64())

    def kept(values: pa.Array | None) -> pa.Array | None:
        return None if values is None else values.take(keep)

    users, events, scenes = kept(columns["uid"]), kept(columns["event"]), kept(columns["scene"])
    experiments = kept(columns["exp_id"])
    if experiments is not None:
        experiments = pa.ListArray.from_arrays(pa.array(np.arange(len(experiments) + 1, dtype=np.int32)),
                                               experiments, mask=pc.is_null(experiments))
    used = {names[c] for c in names}
    others = [c for c in block.table.column_names if c not in used]
    attribute_columns = [scenes] + [_attribute(block.table.column(c).combine_chunks().take(keep)) for c in others]
    canonical = {
        "event_type": events,
        "source_event_type": events,
        "visitor_id": users,
        "user_info": user_info_of(users),
        "event_time": kept(times),
        "product_details": one_product_each(kept(columns["item_id"])),
        "event_value": kept(event_value),
        "experiment_ids": experiments,
        "request_id": kept(columns["request_id"]),
        "attributes": attributes_from_columns(["scene", *others], attribute_columns),
    }
    batch = canonical_batch(canonical, block.source, block.offsets[check.kept], block.lines[check.kept],
                            block.raw_records(check.kept), PaiRecBehavior.name)
    return batch, check.errors


def _reject_reserved(check: RowChecks, values: pa.Array, column: str) -> None:
    """One regex pass per column (a pass per character took a quarter of the parse time); only
    the rows it finds are looked at again, to name the character."""
    check.reject(pc.match_substring_regex(values, RESERVED_PATTERN), column, "RESERVED_CHARACTER",
                 lambda i: f"{column} must not contain {reserved_in(values[i].as_py())}, which PAI-Rec reserves as a "
                           "separator")


def _times(values: pa.Array, timezone: str, check: RowChecks, column: str) -> pa.Array:
    """10-digit Unix seconds or 14-digit ``YYYYMMDDhhmmss`` in ``timezone``."""
    text = pc.utf8_trim_whitespace(as_text(values))
    seconds = as_bools(pc.match_substring_regex(text, r"^\d{10}$"))
    stamp = as_bools(pc.match_substring_regex(text, r"^\d{14}$"))
    millis = as_bools(pc.match_substring_regex(text, r"^\d{13}$"))
    check.reject(millis, column, "INVALID_TIME",
                 lambda i: f"{column} {text[i].as_py()} looks like milliseconds; PAI-Rec wants 10-digit Unix seconds "
                           "or YYYYMMDDhhmmss")
    check.reject(as_bools(pc.is_valid(text)) & ~seconds & ~stamp, column, "INVALID_TIME",
                 lambda i: f"{column} must be 10-digit Unix seconds or 14-digit YYYYMMDDhhmmss, got {text[i].as_py()[:40]!r}")
    from_seconds, _ = unix_times(pc.if_else(pa.array(seconds), text, pa.scalar(None, pa.string())), "s")
    from_stamp, unreadable = pattern_times(pc.if_else(pa.array(stamp), text, pa.scalar(None, pa.string())),
                                           "%Y%m%d%H%M%S", timezone)
    check.reject(unreadable, column, "INVALID_TIME",
                 lambda i: f"{column} {text[i].as_py()} is not a date and time (YYYYMMDDhhmmss)")
    return pc.coalesce(from_seconds, from_stamp)


def _attribute(values: pa.Array) -> pa.Array:
    """An extra column as an attribute: numbers stay numbers, everything else is text."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        return values
    return as_text(values)


__all__ = ["PaiRecBehavior"]
