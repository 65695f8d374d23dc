"""Rows of CSV, JSON-lines or Parquet files as Arrow tables, for formats whose records are flat
rows of named columns (PAI-Rec behavior logs, GA4's BigQuery export, config-mapped files).

Each file type is read a block at a time into one ``RowBlock``: a table of the records'
columns as the file holds them (CSV: strings; JSON lines: the types Arrow infers; Parquet: the
stored types), where each record is (byte offset and line; for Parquet the row index and the
1-based row number) and its raw text for error samples. A block of JSON lines that Arrow cannot
read as one table (a broken line, or a field that is a number on one line and a string on
another) is read line by line: broken lines become errors, and a field of mixed types becomes
text, so that the format's own rules decide about its values.

The helpers below turn columns into canonical values without a Python loop per row: text,
numbers and times in the units sources write them in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from eventlake.errors import error_record
from eventlake.formats.base import FormatOptionError, SourceFileError, is_parquet
from eventlake.formats.csv_records import read_csv_blocks
from eventlake.formats.lines import loads_record
from eventlake.io.decompress import open_source
from eventlake.io.files import ByteRange, DamagedSourceError, read_blocks, uncompressed_name

PARQUET_BATCH_ROWS = 65_536
FILE_TYPES = ("csv", "jsonl", "parquet")


@dataclass
class RowBlock:
    """Records of one block: their columns, where each is, and the records that could not be
    read as a row at all (broken JSON, a CSV row of the wrong width)."""

    source: str
    table: pa.Table
    offsets: np.ndarray  # byte offset of each row's record (Parquet: the row index)
    lines: np.ndarray  # 1-based line each starts on, -1 if not known yet (Parquet: the row number)
    raw_records: Callable[[np.ndarray], pa.BinaryArray]  # the raw text of the given rows
    errors: list[dict] = field(default_factory=list)
    lines_spanned: int = 0
    records: int = 0

    def raw(self, i: int) -> str:
        """Row ``i``'s record as text (its first line, as error samples keep it)."""
        value = self.raw_records(np.array([i]))[0].as_py()
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return text.split("\n", 1)[0].rstrip("\r")


def file_type_of(path: str, declared: str = "") -> str:
    """``csv``, ``jsonl`` or ``parquet``: the declared type, or the one the file's name says."""
    if declared:
        return declared
    name = uncompressed_name(path).lower()
    if is_parquet(name):
        return "parquet"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return "jsonl"


def read_rows(byte_range: ByteRange, block_bytes: int, file_type: str, kind: str,
              column_names: list[str] | None = None) -> Iterator[RowBlock]:
    """The records that start in ``byte_range`` as ``RowBlock``s. ``kind`` names what the file
    should hold, for messages; ``column_names`` names the fields of a CSV without a header."""
    if file_type == "csv":
        for block in read_csv_blocks(byte_range, block_bytes, kind, column_names=column_names):
            yield RowBlock(block.source, block.table, block.offsets, block.lines,
                           lambda rows, b=block: b.raw_records(rows), block.errors, block.lines_spanned, block.records)
    elif file_type == "parquet":
        yield from _parquet_rows(byte_range, kind)
    else:
        for block, line_count in read_blocks(byte_range, block_bytes):
            yield _json_rows(block, line_count)


def head_table(path: str, file_type: str, kind: str, column_names: list[str] | None = None) -> pa.Table:
    """The first rows of a file (its schema, for Parquet), to check its columns before a job runs."""
    if file_type == "parquet":
        try:
            with open_source(path, "uncompressed") as handle:
                return pq.ParquetFile(pa.PythonFile(handle, mode="r")).schema_arrow.empty_table()
        except (OSError, pa.ArrowException) as exc:
            raise SourceFileError(f"{path}: cannot be read as a Parquet file of {kind}: {exc}") from None
    for block in read_rows(ByteRange(path, 0, -1), 64 << 10, file_type, kind, column_names):
        return block.table  # the first block's rows are enough to show the columns
    return pa.table({})


def head_block(path: str, file_type: str, kind: str, column_names: list[str] | None = None) -> RowBlock:
    """``head_table`` as a block, for a format's column check before a job runs (its columns are
    what is checked: it carries no record origins)."""
    return RowBlock(path, head_table(path, file_type, kind, column_names), np.zeros(0, np.int64),
                    np.zeros(0, np.int64), lambda rows: pa.array([], pa.binary()))


def _parquet_rows(byte_range: ByteRange, kind: str) -> Iterator[RowBlock]:
    """The rows of the row groups whose data starts in ``byte_range`` (a large file is read in
    several ranges side by side, as text files are); offsets are row indexes in the file."""
    try:
        handle = open_source(byte_range.path, "uncompressed")
        with handle:
            parquet = pq.ParquetFile(pa.PythonFile(handle, mode="r"))
            for group, first in _groups_in(parquet.metadata, byte_range):
                for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group]):
                    table = pa.Table.from_batches([batch])
                    rows = np.arange(first, first + len(table), dtype=np.int64)
                    yield RowBlock(byte_range.path, table, rows, rows + 1, lambda r, t=table: _row_texts(t, r),
                                   lines_spanned=0, records=len(table))
                    first += len(table)
    except DamagedSourceError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise SourceFileError(f"{byte_range.path}: cannot be read as a Parquet file of {kind}: {exc}") from None


def _groups_in(metadata: pq.FileMetaData, byte_range: ByteRange) -> list[tuple[int, int]]:
    """``(row group, index of its first row in the file)`` of the groups that start in the range."""
    end = byte_range.end if byte_range.end >= 0 else float("inf")
    out, first = [], 0
    for group in range(metadata.num_row_groups):
        meta = metadata.row_group(group)
        chunk = meta.column(0) if meta.num_columns else None
        starts = [chunk.data_page_offset] if chunk is not None else [0]
        if chunk is not None and chunk.has_dictionary_page and chunk.dictionary_page_offset:
            starts.append(chunk.dictionary_page_offset)
        if byte_range.start <= min(starts) < end or (byte_range.start == 0 and end == float("inf")):
            out.append((group, first))
        first += meta.num_rows
    return out


SMALL_REQUEST = 1024  # rows: error samples; a whole batch asks for far more


def _row_texts(table: pa.Table, rows: np.ndarray) -> pa.BinaryArray:
    """Parquet rows as JSON-like text for error samples, built column by column (one
    ``json.dumps`` per row took six times as long as reading the file). Nested columns are
    written out in full only for a few rows (the samples a format rejects itself); in a whole
    batch they stand as ``"..."``, and the row number names the record exactly either way."""
    picked = table.take(pa.array(rows, pa.int64()))
    if not picked.num_columns:
        return pa.array([b"{}"] * len(rows), pa.binary())
    parts = []
    for name, column in zip(picked.column_names, picked.columns, strict=True):
        column = column.combine_chunks()
        kind = column.type
        if pa.types.is_nested(kind):
            text = pa.array([None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                             for v in column.to_pylist()], pa.string()) if len(rows) <= SMALL_REQUEST \
                else pa.repeat(pa.scalar('"..."'), len(column))
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            text = pc.cast(column, pa.string())
        else:
            escaped = pc.replace_substring(pc.cast(column, pa.string()), "\\", "\\\\")
            quoted = pc.replace_substring(escaped, '"', '\\"')
            text = pc.binary_join_element_wise('"', quoted, '"', "")
        parts.append(pc.binary_join_element_wise(json.dumps(name) + ": ", pc.fill_null(text, "null"), ""))
    body = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, ", ")
    return pc.cast(pc.binary_join_element_wise("{", body, "}", ""), pa.binary())


def _json_rows(block, line_count: int) -> RowBlock:
    """A block of JSON lines: Arrow reads it whole when it can; else line by line."""
    try:
        table = pj.read_json(pa.py_buffer(block.data), read_options=pj.ReadOptions(use_threads=False,
                                                                                   block_size=max(len(block.data), 1 << 20)))
        if table.num_rows == len(block):
            return RowBlock(block.source, table, block.offsets, block.line_numbers, block.records_each, [],
                            line_count, len(block))
    except pa.ArrowInvalid:
        pass
    objects, good, errors = [], [], []
    for i in range(len(block)):
        raw = block.raw(i)
        try:
            value = loads_record(raw)
        except orjson.JSONDecodeError as exc:
            errors.append(error_record(block.source, _line(block, i), int(block.offsets[i]), "", "INVALID_JSON",
                                       f"not valid JSON: {exc}", raw))
            continue
        if not isinstance(value, dict):
            errors.append(error_record(block.source, _line(block, i), int(block.offsets[i]), "", "INVALID_RECORD",
                                       "a record is a JSON object", raw))
            continue
        objects.append(value)
        good.append(i)
    rows = np.array(good, dtype=np.int64)
    table = _table_of(objects)
    return RowBlock(block.source, table, block.offsets[rows], block.line_numbers[rows],
                    lambda r, rows=rows: block.records_each(rows[r]), errors, line_count, len(block))


def _line(block, i: int) -> int | None:
    line = int(block.line_numbers[i])
    return line if line >= 0 else None


def _table_of(objects: list[dict]) -> pa.Table:
    """Records whose fields may change type from one to the next: such a field becomes text
    (JSON text for objects and arrays), for the format's rules to judge."""
    if not objects:
        return pa.table({})
    keys: dict[str, None] = {}  # every record's keys (``Table.from_pylist`` would take the first one's only)
    for record in objects:
        keys.update(dict.fromkeys(record))
    columns = {}
    for key in keys:
        values = [r.get(key) for r in objects]
        try:
            columns[key] = pa.array(values)
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        try:  # numbers in one record and strings in another, inside nested values (GA4's int_value)
            columns[key] = pa.array([_leaves_as_text(v) for v in values])
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # an object here, a string there: keep the JSON text
            columns[key] = pa.array([None if v is None else v if isinstance(v, str) else
                                     json.dumps(v, ensure_ascii=False) for v in values], pa.string())
    return pa.table(columns)


def _leaves_as_text(value):
    """``value`` with every scalar inside it as a string (objects and lists keep their shape)."""
    if isinstance(value, dict):
        return {k: _leaves_as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_leaves_as_text(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


class RowChecks:
    """Rows of a block rejected so far, each with the first rule it broke."""

    def __init__(self, block: RowBlock):
        self.block = block
        self.bad = np.zeros(block.table.num_rows, dtype=bool)
        self.errors: list[dict] = []

    def reject(self, mask, field_name: str, reason: str, message) -> None:
        """``mask``: rows that break the rule (an array or a boolean Arrow array, null = kept);
        ``message``: a string, or a function of the row's index that returns one."""
        mask = as_bools(mask)
        rows = np.flatnonzero(mask & ~self.bad)
        if not len(rows):
            return
        self.bad[rows] = True
        raws = self.block.raw_records(rows)
        for n, i in enumerate(rows.tolist()):
            line = int(self.block.lines[i])
            self.errors.append(error_record(self.block.source, line if line >= 0 else None, int(self.block.offsets[i]),
                                            field_name, reason, message(i) if callable(message) else message, raws[n].as_py()))

    @property
    def kept(self) -> np.ndarray:
        return np.flatnonzero(~self.bad)


def as_bools(mask) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def column_at(table: pa.Table, path: str) -> pa.Array | None:
    """The column at a dotted path (``device.category`` reads into a struct), or None when the
    table lacks it."""
    head, *rest = path.split(".")
    if head not in table.column_names:
        return None
    array = table.column(head).combine_chunks()
    for name in rest:
        if not pa.types.is_struct(array.type) or array.type.get_field_index(name) < 0:
            return None
        array = pc.struct_field(array, name)
    return array


def as_text(values: pa.Array) -> pa.Array:
    """Any scalar column as strings, blank strings as null (a CSV's empty field is no value).
    Whole numbers read as floats print without ``.0``; objects and lists print as JSON."""
    kind = values.type
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_floating(kind):
        whole = as_bools(pc.and_(pc.is_finite(values), pc.equal(pc.floor(values), values)))
        if whole.any():
            ints = pc.cast(pc.if_else(pa.array(whole), values, 0.0), pa.int64(), safe=False)
            values = pc.if_else(pa.array(whole), pc.cast(ints, pa.string()), pc.cast(values, pa.string()))
    elif pa.types.is_boolean(kind):
        values = pc.if_else(values, "true", "false")
    elif pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        texts = [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values.to_pylist()]
        values = pa.array(texts, pa.string())
    elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        values = pc.cast(values, pa.string())
    values = pc.cast(values, pa.string())
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(pc.utf8_length(trimmed), 0), pa.scalar(None, pa.string()), values)


_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def as_numbers(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """A column as doubles, and a mask of the rows whose value is given but not a finite number."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        numbers = pc.cast(values, pa.float64())
        return numbers, as_bools(pc.invert(pc.is_finite(numbers)))
    text = pc.utf8_trim_whitespace(as_text(values))
    numeric = as_bools(pc.match_substring_regex(text, _NUMBER))
    given = as_bools(pc.is_valid(text))
    numbers = pc.cast(pc.if_else(pa.array(numeric), text, "0"), pa.float64())
    numbers = pc.if_else(pa.array(numeric), numbers, pa.scalar(None, pa.float64()))
    bad = (given & ~numeric) | as_bools(pc.invert(pc.is_finite(numbers)))
    return numbers, bad


UNIX_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_MICROS = pa.timestamp("us", tz="UTC")


def unix_times(values: pa.Array, unit: str) -> tuple[pa.Array, np.ndarray]:
    """Unix times in ``s``, ``ms`` or ``us`` (numbers or digit strings) -> UTC timestamps, and a
    mask of the given values that are not whole numbers."""
    if pa.types.is_integer(values.type):
        whole = pc.cast(values, pa.int64())
        bad = np.zeros(len(values), dtype=bool)
    else:
        text = pc.utf8_trim_whitespace(as_text(values))
        digits = as_bools(pc.match_substring_regex(text, r"^-?\d{1,18}(\.0*)?$"))
        bad = as_bools(pc.is_valid(text)) & ~digits
        text = pc.replace_substring_regex(text, r"\.0*$", "")
        whole = pc.if_else(pa.array(digits), pc.cast(pc.if_else(pa.array(digits), text, "0"), pa.int64()),
                           pa.scalar(None, pa.int64()))
    micros = pc.multiply_checked(whole, UNIX_UNITS[unit]) if unit != "us" else whole
    return pc.cast(micros, pa.int64()).cast(_MICROS), bad


def pattern_times(values: pa.Array, pattern: str, timezone: str) -> tuple[pa.Array, np.ndarray]:
    """Times written by a strftime ``pattern`` without an offset, read in ``timezone`` -> UTC
    timestamps, and a mask of the given values the pattern does not read."""
    text = pc.utf8_trim_whitespace(as_text(values))
    local = pc.strptime(text, format=pattern, unit="us", error_is_null=True)
    bad = as_bools(pc.is_valid(text)) & ~as_bools(pc.is_valid(local))
    if "%z" in pattern or "%Z" in pattern:
        return pc.cast(local, _MICROS), bad
    utc = pc.assume_timezone(local, timezone, ambiguous="earliest", nonexistent="earliest")
    return pc.cast(utc, _MICROS), bad


def rfc3339_times(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """RFC 3339 times with an offset (``2024-03-01T10:00:00Z``) -> UTC timestamps, and a mask of
    the given values that are not such times."""
    from eventlake.formats.retail_json import _RFC3339, _parse_times

    text = pc.utf8_trim_whitespace(as_text(values))
    well_formed = pc.match_substring_regex(text, _RFC3339)
    times = _parse_times(pa.chunked_array([text]), pa.chunked_array([well_formed]))
    return times, as_bools(pc.is_valid(text)) & ~as_bools(pc.is_valid(times))


def check_timezone(options: dict, default: str) -> str:
    """The ``timezone`` option (or ``default``) if it is an IANA time zone this machine knows;
    ``FormatOptionError`` naming the option otherwise."""
    import zoneinfo

    name = str(options.get("timezone", default))
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise FormatOptionError("timezone", f"{name!r} is not an IANA time zone (such as Asia/Shanghai or UTC)") from None
    return name


__all__ = ["FILE_TYPES", "RowBlock", "RowChecks", "as_numbers", "as_text", "check_timezone", "column_at",
           "file_type_of", "pattern_times", "read_rows", "rfc3339_times", "unix_times"]
