"""Amazon Personalize: item-interactions CSV, as Personalize's bulk dataset import takes it.

Columns are found by name in any order (``USER_ID``, ``ITEM_ID``, ``TIMESTAMP`` required;
``EVENT_TYPE``, ``EVENT_VALUE``, ``IMPRESSION``, ``RECOMMENDATION_ID`` optional); every other
column is interaction metadata and becomes an attribute, pipe-separated values as a list. The
rules are Personalize's: ids of at most 256 characters, whole Unix seconds, a finite event
value, categorical metadata of at most 1000 characters.

Mapping: ``USER_ID`` -> ``visitor_id`` and ``user_info.user_id``; ``ITEM_ID`` -> the one
product id; ``TIMESTAMP`` -> ``event_time``; ``EVENT_TYPE`` -> ``source_event_type`` and, through
the config's ``event_type_map`` (none by default: Personalize types are the user's own words),
``event_type``; ``EVENT_VALUE`` -> ``event_value``; ``IMPRESSION`` -> ``impression``;
``RECOMMENDATION_ID`` -> ``recommendation_id``.

Items CSV (``--catalog-format personalize-items``): ``ITEM_ID`` plus metadata columns; the
config's ``catalog_field_map`` says which column fills which catalog field (``GENRE:
categories``), and a column named like a catalog field (``TITLE``, ``PRICE``) fills it by
itself. List fields take the pipe-separated values as a list.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.errors import error_record
from eventlake.formats.base import (
    CatalogFormat,
    EventFormat,
    ParsedBlock,
    SourceFileError,
    canonical_batch,
    csv_header,
    first_json_object,
    register_format,
)
from eventlake.formats.columns import attributes_from_columns, one_product_each, user_info_of
from eventlake.formats.csv_records import CsvBlock, first_record_and_lines_before, read_csv_blocks
from eventlake.formats.personalize.put_items import put_items_products
from eventlake.io.files import ByteRange, read_blocks, uncompressed_name
from eventlake.schema import CATALOG_FIELD_TYPES, catalog_schema

REQUIRED = ("USER_ID", "ITEM_ID", "TIMESTAMP")
OPTIONAL = ("EVENT_TYPE", "EVENT_VALUE", "IMPRESSION", "RECOMMENDATION_ID")
ID_LIMIT = 256
METADATA_LIMIT = 1000
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


@register_format
class PersonalizeInteractions(EventFormat):
    """Amazon Personalize item-interactions CSV (the bulk import's dataset files)."""

    name = "personalize"
    suffixes = (".csv",)
    splittable = True  # a range that starts mid-file finds its first record by counting quotes
    description = "Amazon Personalize interactions CSV (USER_ID, ITEM_ID, TIMESTAMP, ...)"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return set(REQUIRED) <= csv_header(head)

    def __init__(self, options=None, **event_types):
        super().__init__(options, **event_types)
        self._found: dict[tuple[str, int], tuple[int, int] | None] = {}  # what lines_before read, for read_range

    def lines_before(self, byte_range: ByteRange) -> int:
        if byte_range.start <= 0:
            return 0
        found = first_record_and_lines_before(byte_range.path, byte_range.start)
        self._found[(byte_range.path, byte_range.start)] = found  # one scan of the prefix serves both
        return found[1] if found else 0

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        found = self._found.pop((byte_range.path, byte_range.start), None)
        for block in read_csv_blocks(byte_range, block_bytes, "Amazon Personalize interactions", found):
            columns = _columns_by_name(block)
            batch, errors = _to_canonical(block, columns)
            yield ParsedBlock(batch, block.errors + errors, lines=block.lines_spanned, records=block.records)


def _columns_by_name(block: CsvBlock) -> dict[str, str]:
    """Canonical upper-case column name -> the header's own spelling; a file error if a required one is missing."""
    names = {name.upper(): name for name in block.table.column_names}
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise SourceFileError(
            f"{block.source}: the header has no {', '.join(missing)} column (Personalize interactions need "
            f"{', '.join(REQUIRED)}; this file has {', '.join(block.table.column_names)})")
    return names


class _Rejections:
    """Rows rejected so far, each with the first rule it broke."""

    def __init__(self, block: CsvBlock):
        self.block = block
        self.bad = np.zeros(block.table.num_rows, dtype=bool)
        self.errors: list[dict] = []

    def reject(self, mask: np.ndarray, field: str, reason: str, message) -> None:
        """``message`` is a string, or a function of the row's index that returns one."""
        rows = np.flatnonzero(mask & ~self.bad)
        self.bad[rows] = True
        for i in rows.tolist():
            text = message(i) if callable(message) else message
            self.errors.append(error_record(self.block.source, int(self.block.lines[i]), int(self.block.offsets[i]),
                                            field, reason, text, self.block.raw(i)))


def _mask(array) -> np.ndarray:
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def _to_canonical(block: CsvBlock, names: dict[str, str]) -> tuple[pa.RecordBatch, list[dict]]:
    table = block.table
    check = _Rejections(block)

    def text(name: str) -> pa.Array | None:
        return table.column(names[name]).combine_chunks() if name in names else None

    def empty(values: pa.Array) -> np.ndarray:
        return _mask(pc.equal(pc.utf8_length(values), 0))

    def too_long(values: pa.Array, limit: int) -> np.ndarray:
        return _mask(pc.greater(pc.utf8_length(values), limit))

    for name in ("USER_ID", "ITEM_ID"):
        values = text(name)
        check.reject(empty(values), name, "REQUIRED", f"{name} is required")
        check.reject(too_long(values, ID_LIMIT), name, "TOO_LONG", f"{name} must be at most {ID_LIMIT} characters")

    timestamps = text("TIMESTAMP")
    check.reject(empty(timestamps), "TIMESTAMP", "REQUIRED", "TIMESTAMP is required")
    digits = _mask(pc.match_substring_regex(timestamps, r"^\d{1,18}$"))
    check.reject(~digits, "TIMESTAMP", "INVALID_TIMESTAMP",
                 lambda i: f"TIMESTAMP must be whole Unix seconds, got {timestamps[i].as_py()[:40]!r}")
    seconds = pc.cast(pc.if_else(pa.array(digits & ~check.bad), timestamps, "0"), pa.int64())
    over = _mask(pc.greater(seconds, MAX_SECONDS))
    check.reject(over, "TIMESTAMP", "INVALID_TIMESTAMP", lambda i: _scale_hint(seconds[i].as_py()))

    for name in ("EVENT_TYPE", "RECOMMENDATION_ID"):
        values = text(name)
        if values is not None:
            check.reject(too_long(values, ID_LIMIT), name, "TOO_LONG", f"{name} must be at most {ID_LIMIT} characters")

    event_value = None
    values = text("EVENT_VALUE")
    if values is not None:
        given = ~empty(values) & ~check.bad
        event_value = _floats(values, given)
        finite = _mask(pc.is_finite(event_value))
        check.reject(given & ~finite, "EVENT_VALUE", "INVALID_VALUE",
                     lambda i: f"EVENT_VALUE must be a finite number, got {values[i].as_py()[:40]!r}")

    impression = None
    values = text("IMPRESSION")
    if values is not None:
        impression = pc.split_pattern(pc.if_else(pa.array(empty(values)), None, values), "|")
        pieces = pc.list_flatten(impression)
        piece_bad = _mask(pc.or_(pc.equal(pc.utf8_length(pieces), 0), pc.greater(pc.utf8_length(pieces), ID_LIMIT)))
        check.reject(_rows_with(impression, piece_bad), "IMPRESSION", "INVALID_IMPRESSION",
                     f"IMPRESSION must be item ids of 1 to {ID_LIMIT} characters, separated by '|'")

    metadata = [name for upper, name in names.items() if upper not in REQUIRED + OPTIONAL]
    for name in metadata:
        check.reject(too_long(text(name.upper()), METADATA_LIMIT), name, "TOO_LONG",
                     f"{name} must be at most {METADATA_LIMIT} characters")

    keep = np.flatnonzero(~check.bad)
    take = pa.array(keep, pa.int64())

    def kept(values: pa.Array | None) -> pa.Array | None:
        return None if values is None else values.take(take)

    users = kept(text("USER_ID"))
    event_types = kept(text("EVENT_TYPE"))
    if event_types is not None:
        event_types = pc.if_else(pc.equal(pc.utf8_length(event_types), 0), None, event_types)
    recommendation = kept(text("RECOMMENDATION_ID"))
    if recommendation is not None:
        recommendation = pc.if_else(pc.equal(pc.utf8_length(recommendation), 0), None, recommendation)
    columns = {
        "event_type": event_types,
        "source_event_type": event_types,
        "visitor_id": users,
        "user_info": user_info_of(users),
        "event_time": pc.multiply(seconds.take(take), 1_000_000).cast(pa.timestamp("us", tz="UTC")),
        "product_details": one_product_each(kept(text("ITEM_ID"))),
        "event_value": kept(event_value),
        "impression": kept(impression),
        "recommendation_id": recommendation,
        "attributes": _attributes(table, metadata, keep),
    }
    batch = canonical_batch(columns, block.source, block.offsets[keep], block.lines[keep], block.raw_records(keep),
                            PersonalizeInteractions.name)
    return batch, check.errors


def _scale_hint(value: int) -> str:
    if value // 1000 <= MAX_SECONDS:
        return f"TIMESTAMP {value} looks like milliseconds; Personalize wants Unix seconds"
    if value // 1_000_000 <= MAX_SECONDS:
        return f"TIMESTAMP {value} looks like microseconds; Personalize wants Unix seconds"
    return f"TIMESTAMP {value} is out of range for Unix seconds"


def _floats(values: pa.Array, given: np.ndarray) -> pa.Array:
    """``values`` as doubles where ``given`` (NaN where a value is not a number; null elsewhere)."""
    trimmed = pc.utf8_trim_whitespace(values)
    numeric = _mask(pc.match_substring_regex(trimmed, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"))
    usable = given & numeric
    parsed = pc.cast(pc.if_else(pa.array(usable), trimmed, "0"), pa.float64())
    return pc.if_else(pa.array(usable), parsed, pc.if_else(pa.array(given), float("nan"), None))


def _rows_with(lists: pa.ListArray, value_mask: np.ndarray) -> np.ndarray:
    """Rows of ``lists`` with at least one value flagged in ``value_mask`` (flattened order)."""
    if not value_mask.any():
        return np.zeros(len(lists), dtype=bool)
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    owners = np.repeat(np.arange(len(lists)), lengths)
    out = np.zeros(len(lists), dtype=bool)
    out[owners[value_mask]] = True
    return out


def _attributes(table: pa.Table, metadata: list[str], keep: np.ndarray) -> pa.Array | None:
    """Metadata columns -> ``attributes``: per row, one text attribute per non-empty column,
    its value split at ``|`` (Personalize's separator of categorical values)."""
    if not metadata:
        return None
    take = pa.array(keep, pa.int64())
    columns = []
    for name in metadata:
        column = table.column(name).combine_chunks().take(take)
        columns.append(pc.if_else(pc.equal(pc.utf8_length(column), 0), None, column))  # empty: not given
    return attributes_from_columns(metadata, columns, separator="|", rows_without_null=False)


@register_format
class PersonalizeItems(CatalogFormat):
    """Amazon Personalize items: the items CSV (``ITEM_ID`` and metadata columns), or PutItems
    request bodies one per line (``.json``/``.jsonl``: ``items`` of ``itemId`` and ``properties``)."""

    name = "personalize-items"
    suffixes = (".csv", ".json", ".jsonl")
    splittable = False
    description = "Amazon Personalize items CSV (ITEM_ID and metadata columns) or PutItems bodies"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = first_json_object(head)
        if isinstance(first, dict):
            return isinstance(first.get("items"), list)
        return "ITEM_ID" in csv_header(head) and "USER_ID" not in csv_header(head)

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[tuple[pa.Table, list[dict]]]:
        if uncompressed_name(byte_range.path).endswith(".csv"):
            for block in read_csv_blocks(byte_range, block_bytes, "Amazon Personalize items"):
                yield self._products(block)
            return
        for block, _ in read_blocks(byte_range, block_bytes):
            yield put_items_products(block, self.fields, self.field_map)

    def _sources(self, block: CsvBlock) -> dict[str, str]:
        """Catalog field -> the header's column that fills it."""
        names = {name.upper(): name for name in block.table.column_names}
        if "ITEM_ID" not in names:
            raise SourceFileError(f"{block.source}: the header has no ITEM_ID column (Personalize items need it; this "
                                  f"file has {', '.join(block.table.column_names)})")
        sources = {field: names[field.upper()] for field in self.fields if field.upper() in names}
        for column, field in self.field_map.items():
            if column.upper() not in names:
                raise SourceFileError(f"{block.source}: catalog_field_map names column {column}, which the header "
                                      f"lacks (it has {', '.join(block.table.column_names)})")
            if field in self.fields:
                sources[field] = names[column.upper()]
        return sources

    def _products(self, block: CsvBlock) -> tuple[pa.Table, list[dict]]:
        sources = self._sources(block)
        table = block.table
        check = _Rejections(block)
        ids = table.column(next(n for n in table.column_names if n.upper() == "ITEM_ID")).combine_chunks()
        check.reject(_mask(pc.equal(pc.utf8_length(ids), 0)), "ITEM_ID", "REQUIRED", "catalog: ITEM_ID is required")
        check.reject(_mask(pc.greater(pc.utf8_length(ids), ID_LIMIT)), "ITEM_ID", "TOO_LONG",
                     f"catalog: ITEM_ID must be at most {ID_LIMIT} characters")
        columns = {"id": ids}
        for field in self.fields:
            kind = CATALOG_FIELD_TYPES[field]
            if field not in sources:
                columns[field] = pa.nulls(len(ids), kind)
                continue
            values = table.column(sources[field]).combine_chunks()
            blank = pc.equal(pc.utf8_length(values), 0)
            if pa.types.is_list(kind):
                columns[field] = pc.split_pattern(pc.if_else(blank, None, values), "|")
            elif pa.types.is_floating(kind):
                given = ~_mask(blank)
                numbers = _floats(values, given)
                check.reject(given & ~_mask(pc.is_finite(numbers)), sources[field], "INVALID_VALUE",
                             lambda i, v=values, c=sources[field]: f"catalog: {c} must be a finite number, got "
                                                                   f"{v[i].as_py()[:40]!r}")
                columns[field] = numbers
            else:
                columns[field] = pc.if_else(blank, None, values)
        keep = pa.array(np.flatnonzero(~check.bad), pa.int64())
        products = pa.table({name: column.take(keep) for name, column in columns.items()})
        return products.cast(catalog_schema(self.fields)), check.errors
