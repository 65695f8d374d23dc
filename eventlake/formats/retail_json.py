"""Google Cloud Retail ``UserEvent`` JSON lines -> canonical Arrow batches.

Two paths give the same result. The fast path hands whole blocks of lines to Arrow's JSON
reader. Lines it cannot take as they are (the quirks Google's own samples have: a single
``productDetails`` object, numbers as strings; snake_case names; ``attributes`` maps; broken
JSON) go one by one through ``normalize``, which either rewrites them into the dialect the fast
path reads or says which field broke which rule; the rewritten lines are then read by Arrow in
one call. A bad line costs its own slow parse, never a slow parse of its whole block.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from eventlake.errors import error_record
from eventlake.formats.arrow_util import camel_to_snake, convert, list_any, rows_where, snake_to_camel
from eventlake.formats.base import EventFormat, ParsedBlock, first_json_object, register_format
from eventlake.formats.lines import LineBlock, loads_record
from eventlake.io.files import ByteRange, read_blocks
from eventlake.schema import EVENT_SCHEMA, PARSED_SCHEMA

FORMAT_NAME = "retail"

# The dialect the fast path reads: Retail's proto3 JSON names, lists where Retail has repeated
# fields, every number as a double (integrality is checked after reading).
STRING, NUMBER, BOOL, ATTRIBUTES = "string", "number", "bool", "attributes"
SPEC: dict = {
    "eventType": STRING,
    "visitorId": STRING,
    "sessionId": STRING,
    "eventTime": STRING,
    "experimentIds": [STRING],
    "attributionToken": STRING,
    "productDetails": [{"product": {"id": STRING}, "quantity": NUMBER}],
    "attributes": ATTRIBUTES,
    "cartId": STRING,
    "purchaseTransaction": {
        "id": STRING,
        "revenue": NUMBER,
        "tax": NUMBER,
        "cost": NUMBER,
        "currencyCode": STRING,
    },
    "searchQuery": STRING,
    "filter": STRING,
    "orderBy": STRING,
    "offset": NUMBER,
    "pageCategories": [STRING],
    "userInfo": {"userId": STRING, "ipAddress": STRING, "userAgent": STRING, "directUserRequest": BOOL},
    "uri": STRING,
    "referrerUri": STRING,
    "pageViewId": STRING,
    "entity": STRING,
}
INTEGER_FIELDS = {"productDetails.quantity", "offset"}


def _arrow_type(spec) -> pa.DataType:
    if spec == STRING:
        return pa.string()
    if spec == NUMBER:
        return pa.float64()
    if spec == BOOL:
        return pa.bool_()
    if spec == ATTRIBUTES:
        value = pa.struct([("text", pa.list_(pa.string())), ("numbers", pa.list_(pa.float64()))])
        return pa.list_(pa.struct([("key", pa.string()), ("value", value)]))
    if isinstance(spec, list):
        return pa.list_(_arrow_type(spec[0]))
    return pa.struct([(name, _arrow_type(sub)) for name, sub in spec.items()])


DIALECT_SCHEMA = pa.schema([(name, _arrow_type(spec)) for name, spec in SPEC.items()])


def _holds_numbers(spec) -> bool:
    if spec in (NUMBER, ATTRIBUTES):
        return True
    if isinstance(spec, list):
        return _holds_numbers(spec[0])
    return isinstance(spec, dict) and any(_holds_numbers(sub) for sub in spec.values())


_NUMBER_COLUMNS = [name for name, spec in SPEC.items() if _holds_numbers(spec)]
_DIALECT_NAMES = frozenset(DIALECT_SCHEMA.names)
_STRICT_OPTIONS = pj.ParseOptions(explicit_schema=DIALECT_SCHEMA, unexpected_field_behavior="error")
_ROW_ERROR = re.compile(r"in row (\d+)")
# Lines the fast path would reject, sent straight to the slow path instead of costing a failed
# block read: Google's single productDetails object, and attributes (a map in Retail's JSON).
# Plain substring searches run at memory speed; other quirks (numbers as strings, snake_case,
# other spacing) are still caught, by the reader's error or by unknown-field detection.
# One scan of the whole block per marker: the name alone catches attributes with any spacing.
_QUIRKS = (b'"productDetails":{', b'"productDetails": {', b'"attributes"')
_SUB_MICROSECOND = r"(\.\d{6})\d{1,3}"
_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"


class FastFields:
    """The dialect fields the fast read asks Arrow for: the ones this source has shown so far.

    Every field in the explicit schema costs the reader time even when no line has it: the full
    dialect made a block of plain events a third slower to read than just its own fields, and
    the unused members of the objects it has (``purchaseTransaction.tax``, ``userInfo.userAgent``)
    cost another sixth. The first block is read with every field and shows which fields and
    members the source uses; a later block with one more is read again with it added, so the
    result never depends on what was learned. The table comes back with every dialect field.
    """

    def __init__(self):
        self.paths: set[str] | None = None  # dotted dialect paths seen with a value; None: all

    @property
    def names(self) -> set[str] | None:
        """The top-level fields the source has shown."""
        return None if self.paths is None else {p for p in self.paths if "." not in p}

    def options(self) -> pj.ParseOptions:
        if self.paths is None:
            schema = DIALECT_SCHEMA
        else:
            schema = pa.schema([pa.field(name, _narrowed(spec, name, self.paths)) for name, spec in SPEC.items()
                                if name in self.paths])
        return pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")

    def read(self, data: bytes | bytearray) -> pa.Table:
        """``data``'s lines as a table with every dialect column (absent ones all null)."""
        table = _read(data, self.options())
        seen = _used_paths(table)
        if self.paths is None:
            self.paths = seen
        elif seen - self.paths:  # inferred, not read as the dialect types: read again with them
            self.paths |= seen
            table = _read(data, self.options())
        columns, fields = [], []
        for field in DIALECT_SCHEMA:
            if field.name in table.column_names:
                column = table.column(field.name)
                columns.append(_widened(column.combine_chunks(), field.type) if column.type != field.type else column)
            else:
                columns.append(pa.nulls(len(table), field.type))
            fields.append(pa.field(field.name, columns[-1].type))
        for name in table.column_names:  # fields the dialect does not have: the caller refuses them
            if name not in _DIALECT_NAMES:
                columns.append(table.column(name))
                fields.append(table.schema.field(name))
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _used_paths(table: pa.Table) -> set[str]:
    """The dotted dialect paths that have a value in ``table`` (members of lists of objects
    under the list's name: ``productDetails.quantity``)."""
    out: set[str] = set()
    for name, spec in SPEC.items():
        if name in table.column_names and table.column(name).null_count < len(table):
            out.add(name)
            _add_used(table.column(name).combine_chunks(), spec, name, out)
    return out


def _add_used(array: pa.Array, spec, path: str, out: set[str]) -> None:
    if isinstance(spec, list):
        if pa.types.is_list(array.type):
            _add_used(array.flatten(), spec[0], path, out)
    elif isinstance(spec, dict) and pa.types.is_struct(array.type):
        for i in range(array.type.num_fields):
            name = array.type.field(i).name
            child = array.field(i)
            if name in spec and child.null_count < len(child):
                out.add(f"{path}.{name}")
                _add_used(child, spec[name], f"{path}.{name}", out)


def _narrowed(spec, path: str, paths: set[str]) -> pa.DataType:
    """The dialect type at ``path`` with only the object members in ``paths`` (all of them when
    none is: an object seen only empty)."""
    if isinstance(spec, list):
        return pa.list_(_narrowed(spec[0], path, paths))
    if isinstance(spec, dict):
        kept = [(name, _narrowed(sub, f"{path}.{name}", paths)) for name, sub in spec.items() if f"{path}.{name}" in paths]
        return pa.struct(kept) if kept else _arrow_type(spec)
    return _arrow_type(spec)


def _widened(array: pa.Array, target: pa.DataType) -> pa.Array:
    """``array`` with the members ``target`` has and it lacks added as nulls; members the
    target does not have are kept (after the target's), for the unknown-field check."""
    if pa.types.is_struct(target) and pa.types.is_struct(array.type):
        have = {array.type.field(i).name: i for i in range(array.type.num_fields)}
        children, fields = [], []
        for member in target:
            child = array.field(have[member.name]) if member.name in have else pa.nulls(len(array), member.type)
            if member.name in have and child.type != member.type:
                child = _widened(child, member.type)
            children.append(child)
            fields.append(pa.field(member.name, child.type))
        for name, i in have.items():
            if target.get_field_index(name) < 0:
                children.append(array.field(i))
                fields.append(array.type.field(i))
        return pa.StructArray.from_arrays(children, fields=fields, mask=array.is_null() if array.null_count else None)
    if pa.types.is_list(target) and pa.types.is_list(array.type):
        first, last = array.offsets[0].as_py(), array.offsets[-1].as_py()
        values = _widened(array.values.slice(first, last - first), target.value_type)
        return pa.ListArray.from_arrays(pc.subtract(array.offsets, first), values,
                                        mask=array.is_null() if array.null_count else None)
    return array


class FieldError(ValueError):
    """A line breaks a type or shape rule at ``field``."""

    def __init__(self, field: str, reason: str, message: str):
        super().__init__(message)
        self.field, self.reason = field, reason


def parse_block(block: LineBlock, fields: FastFields | None = None) -> tuple[pa.RecordBatch, list[dict]]:
    """Parse the lines of ``block``: a ``PARSED_SCHEMA`` batch plus an error for every other line.

    Pass the same ``fields`` for the blocks of one source to read them faster.
    """
    fields = fields or FastFields()
    errors: list[dict] = []
    n = len(block)
    slow = np.zeros(n, dtype=bool)
    rejected = np.zeros(n, dtype=bool)
    _check_utf8(block, rejected, errors)
    _mark_suspicious(block, slow)
    slow &= ~rejected

    tables, table_rows = [], []
    fast_rows = np.flatnonzero(~slow & ~rejected)
    for rows, table in _read_fast(block, fast_rows, slow, fields):
        extra = _rows_with_unknown_fields(table) | _rows_with_non_finite_numbers(table)
        if extra.any():
            slow[rows[extra]] = True
            keep = np.flatnonzero(~extra)
            rows, table = rows[keep], table.take(pa.array(keep))
        tables.append(table)
        table_rows.append(rows)

    slow_rows = np.flatnonzero(slow)
    if len(slow_rows):
        rows, table = _read_slow(block, slow_rows, errors)
        tables.append(table)
        table_rows.append(rows)

    rows = np.concatenate(table_rows) if table_rows else np.zeros(0, dtype=np.int64)
    if tables:
        dialect = pa.concat_tables([t.select(DIALECT_SCHEMA.names) for t in tables], promote_options="permissive")
    else:
        dialect = DIALECT_SCHEMA.empty_table()
    if len(rows) > 1 and np.any(np.diff(rows) < 0):  # keep file order, whichever path a line took
        order = np.argsort(rows, kind="stable")
        dialect, rows = dialect.take(pa.array(order)), rows[order]
    batch = _to_canonical(block, dialect, rows, errors)
    return batch, errors


def _check_utf8(block: LineBlock, rejected: np.ndarray, errors: list[dict]) -> None:
    if block.data.isascii():  # most event files are: a scan without decoding
        return
    try:
        block.data.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    for i in range(len(block)):
        raw = block.raw(i)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            rejected[i] = True
            errors.append(_error(block, i, "", "INVALID_UTF8", f"line is not valid UTF-8 (byte {exc.start})"))


def _mark_suspicious(block: LineBlock, slow: np.ndarray) -> None:
    """Send lines that are not a plain ``{...}`` or that show a known quirk to the slow path."""
    if not len(block):
        return
    buf = np.frombuffer(block.data, dtype=np.uint8)
    slow |= buf[block.starts] != ord("{")
    slow |= buf[block.ends - 1] != ord("}")
    positions = [at for marker in _QUIRKS for at in _find_all(block.data, marker)]
    if positions:
        slow[np.searchsorted(block.starts, np.asarray(positions), side="right") - 1] = True


def _find_all(data: bytes, marker: bytes):
    at = data.find(marker)
    while at >= 0:
        yield at
        at = data.find(marker, at + 1)


def _read_fast(block: LineBlock, rows: np.ndarray, slow: np.ndarray, fields: FastFields):
    """Read ``rows`` with Arrow; a line Arrow names as bad goes to the slow path, the rest is kept.

    Yields ``(rows, table)`` pieces. An error that names no row sends the remaining lines to the
    slow path: correct, only slower, and not seen with the dialect above.
    """
    start = 0
    while start < len(rows):
        part = rows[start:]
        try:
            yield part, fields.read(block.only(part))
            return
        except pa.ArrowInvalid as exc:
            found = _ROW_ERROR.search(str(exc))
            if not found or int(found.group(1)) >= len(part):
                slow[part] = True
                return
            bad = int(found.group(1))
        slow[part[bad]] = True
        if bad:
            head = part[:bad]
            try:
                yield head, fields.read(block.only(head))
            except pa.ArrowInvalid:
                slow[head] = True
        start += bad + 1


def _read(data: bytes | bytearray, options: pj.ParseOptions) -> pa.Table:
    read_options = pj.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 16))
    return pj.read_json(pa.BufferReader(data), read_options=read_options, parse_options=options)


def _rows_with_unknown_fields(table: pa.Table) -> np.ndarray:
    """Rows where Arrow's inference found a field the dialect does not have."""
    mask = np.zeros(table.num_rows, dtype=bool)
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name not in DIALECT_SCHEMA.names:
            mask |= column.is_valid().to_numpy(zero_copy_only=False)
        else:
            mask |= _extra_in(column, DIALECT_SCHEMA.field(name).type)
    return mask


def _rows_with_non_finite_numbers(table: pa.Table) -> np.ndarray:
    """Rows with a NaN or an infinity in a number field: Arrow's reader takes bare ``NaN`` and
    ``Infinity`` as numbers, and the slow path rejects them by field, as not finite. A check of
    the few number columns after the read costs less than a scan of the block for the words."""
    mask = np.zeros(table.num_rows, dtype=bool)
    for name in _NUMBER_COLUMNS:
        column = table.column(name)
        if column.null_count < len(column):
            mask |= _non_finite_in(column.combine_chunks())
    return mask


def _non_finite_in(array: pa.Array) -> np.ndarray:
    if pa.types.is_floating(array.type):
        return pc.fill_null(pc.invert(pc.is_finite(array)), False).to_numpy(zero_copy_only=False)
    if pa.types.is_struct(array.type):
        mask = np.zeros(len(array), dtype=bool)
        for i in range(array.type.num_fields):
            mask |= _non_finite_in(array.field(i))
        return mask
    if pa.types.is_list(array.type):
        return list_any(array, _non_finite_in(array.flatten()))
    return np.zeros(len(array), dtype=bool)


def _extra_in(array: pa.Array, expected: pa.DataType) -> np.ndarray:
    if array.type == expected:
        return np.zeros(len(array), dtype=bool)
    if pa.types.is_struct(array.type) and pa.types.is_struct(expected):
        mask = np.zeros(len(array), dtype=bool)
        known = {f.name: f.type for f in expected}
        for i in range(array.type.num_fields):
            child, name = array.field(i), array.type.field(i).name
            mask |= _extra_in(child, known[name]) if name in known else child.is_valid().to_numpy(zero_copy_only=False)
        return mask
    if pa.types.is_list(array.type) and pa.types.is_list(expected):
        return list_any(array, _extra_in(array.flatten(), expected.value_type))
    return array.is_valid().to_numpy(zero_copy_only=False)


def _read_slow(block: LineBlock, rows: np.ndarray, errors: list[dict]) -> tuple[np.ndarray, pa.Table]:
    """Normalize lines one by one, then read the normalized lines with Arrow in one call."""
    kept, lines = [], []
    for i in rows:
        try:
            record = loads_record(block.raw(i))
        except orjson.JSONDecodeError as exc:
            errors.append(_error(block, i, "", "INVALID_JSON", f"line is not valid JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            errors.append(_error(block, i, "", "NOT_AN_OBJECT", "line is JSON but not an object"))
            continue
        try:
            lines.append(orjson.dumps(normalize(record, SPEC, "")))
        except FieldError as exc:
            errors.append(_error(block, i, exc.field, exc.reason, str(exc)))
            continue
        kept.append(i)
    kept_rows = np.asarray(kept, dtype=np.int64)
    if not lines:
        return kept_rows, DIALECT_SCHEMA.empty_table()
    return kept_rows, _read(b"\n".join(lines), _STRICT_OPTIONS)


def normalize(value, spec, path: str):
    """Rewrite one parsed value into the fast path's dialect, or raise ``FieldError``."""
    if value is None:
        return None
    where = path or "record"
    if spec == STRING:
        if not isinstance(value, str):
            raise FieldError(path, "INVALID_TYPE", f"{where} must be a string, got {_kind(value)}")
        return value
    if spec == NUMBER:
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise FieldError(path, "INVALID_TYPE", f"{where} must be a number, got {value[:40]!r}") from None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            raise FieldError(path, "INVALID_TYPE", f"{where} must be a number, got {_kind(value)}")
        if number != number or number in (float("inf"), float("-inf")):
            raise FieldError(path, "INVALID_VALUE", f"{where} must be a finite number")
        return number
    if spec == BOOL:
        if not isinstance(value, bool):
            raise FieldError(path, "INVALID_TYPE", f"{where} must be true or false, got {_kind(value)}")
        return value
    if spec == ATTRIBUTES:
        return _normalize_attributes(value, path)
    if isinstance(spec, list):
        if isinstance(value, dict) and path == "productDetails":
            value = [value]  # Google's samples write a single productDetails object
        if not isinstance(value, list):
            raise FieldError(path, "INVALID_TYPE", f"{where} must be a list, got {_kind(value)}")
        return [normalize(item, spec[0], f"{path}[{i}]" if path else str(i)) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        raise FieldError(path, "INVALID_TYPE", f"{where} must be an object, got {_kind(value)}")
    out = {}
    for key, item in value.items():
        name = key if key in spec else snake_to_camel(key)
        child_path = f"{path}.{name}" if path else name
        if name not in spec:
            if item is None:
                continue
            raise FieldError(f"{path}.{key}" if path else key, "UNKNOWN_FIELD", f"unknown field {key!r}")
        if name in out:
            raise FieldError(child_path, "DUPLICATE_FIELD", f"{child_path} is given twice")
        out[name] = normalize(item, spec[name], child_path)
    return out


def _normalize_attributes(value, path: str) -> list:
    """Retail's ``map<string, CustomAttribute>``, or a list of ``{key, value}``, as a sorted list."""
    if isinstance(value, list):
        pairs = []
        for i, item in enumerate(value):
            if not isinstance(item, dict) or set(item) - {"key", "value"}:
                raise FieldError(f"{path}[{i}]", "INVALID_TYPE", f"{path}[{i}] must be an object with key and value")
            pairs.append((item.get("key"), item.get("value")))
    elif isinstance(value, dict):
        pairs = list(value.items())
    else:
        raise FieldError(path, "INVALID_TYPE", f"{path} must be an object, got {_kind(value)}")
    spec = {"text": [STRING], "numbers": [NUMBER]}
    out = []
    for key, attribute in sorted(pairs, key=lambda kv: str(kv[0])):
        if not isinstance(key, str):
            raise FieldError(path, "INVALID_TYPE", f"{path} keys must be strings")
        out.append({"key": key, "value": normalize(attribute, spec, f"{path}.{key}")})
    return out


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _error(block: LineBlock, i: int, field: str, reason: str, message: str) -> dict:
    line = int(block.line_numbers[i])
    return error_record(
        block.source, line if line >= 0 else None, int(block.offsets[i]), field, reason, message, block.raw(i)
    )


def _to_canonical(block: LineBlock, dialect: pa.Table, rows: np.ndarray, errors: list[dict]) -> pa.RecordBatch:
    """Dialect table (one row per line in ``rows``) -> ``PARSED_SCHEMA`` batch, type errors out."""
    bad = np.zeros(dialect.num_rows, dtype=bool)
    quantity = pc.struct_field(pc.list_flatten(dialect.column("productDetails")), "quantity")
    _reject(dialect, rows, bad, _not_integer(quantity), "productDetails.quantity", block, errors, list_of="productDetails")
    _reject(dialect, rows, bad, _not_integer(dialect.column("offset")), "offset", block, errors)

    event_time_text = dialect.column("eventTime")
    well_formed = pc.match_substring_regex(event_time_text, _RFC3339)
    event_time = _parse_times(event_time_text, well_formed)
    unparsable = pc.and_(pc.is_valid(event_time_text), pc.is_null(event_time))
    for i in rows_where(unparsable):
        if not bad[i]:
            bad[i] = True
            value = event_time_text[int(i)].as_py()
            errors.append(
                _error(block, rows[i], "eventTime", "INVALID_EVENT_TIME",
                       f"eventTime must be an RFC 3339 timestamp with a UTC offset, got {value[:60]!r}")
            )

    keep = np.flatnonzero(~bad)
    if len(keep) < dialect.num_rows:
        dialect, rows, event_time = dialect.take(pa.array(keep)), rows[keep], event_time.take(pa.array(keep))
    columns = []
    for field in EVENT_SCHEMA:
        camel = snake_to_camel(field.name)
        if field.name == "event_time":
            columns.append(event_time)
        elif field.name == "source_event_type":
            columns.append(dialect.column("eventType").combine_chunks())
        elif camel in DIALECT_SCHEMA.names:
            columns.append(convert(dialect.column(camel).combine_chunks(), field.type, camel_to_snake))
        else:
            columns.append(pa.nulls(dialect.num_rows, field.type))
    columns.append(pa.repeat(pa.scalar(block.source, pa.string()), len(rows)))
    columns.append(pa.array(block.offsets[rows], pa.int64()))
    columns.append(pa.array(block.line_numbers[rows], pa.int64()))
    columns.append(block.records(rows))
    columns.append(pa.repeat(pa.scalar(FORMAT_NAME, pa.string()), len(rows)))
    return pa.RecordBatch.from_arrays(columns, schema=PARSED_SCHEMA)


def _not_integer(values) -> pa.Array:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    too_big = pc.greater(pc.abs(values), 2.0**53)
    return pc.or_(pc.not_equal(pc.floor(values), values), too_big)


def _reject(dialect, rows, bad, mask, field, block, errors, list_of: str | None = None) -> None:
    if list_of:
        hit = list_any(dialect.column(list_of).combine_chunks(), pc.fill_null(mask, False).to_numpy(zero_copy_only=False))
        targets = np.flatnonzero(hit)
    else:
        targets = rows_where(mask)
    for i in targets:
        if not bad[i]:
            bad[i] = True
            errors.append(_error(block, rows[i], field, "INVALID_TYPE", f"{field} must be a whole number"))


def _parse_times(text: pa.ChunkedArray, well_formed: pa.ChunkedArray) -> pa.Array:
    """Times at microsecond precision: protobuf's JSON printer writes up to nine fraction digits,
    and the digits past the sixth are cut off (truncated, never rounded up into the next second)."""
    text = pc.if_else(well_formed, text, pa.scalar(None, pa.string())).combine_chunks()
    if pc.any(pc.match_substring_regex(text, _SUB_MICROSECOND)).as_py():
        text = pc.replace_substring_regex(text, _SUB_MICROSECOND, r"\1")
    target = pa.timestamp("us", tz="UTC")
    try:
        return pc.cast(text, target)
    except pa.ArrowInvalid:  # a well-formed but impossible date (month 13): value by value
        out = []
        for value in text:
            try:
                out.append(pc.cast(value, target))
            except pa.ArrowInvalid:
                out.append(pa.scalar(None, target))
        return pa.array([v.as_py() for v in out], target)


@register_format
class RetailFormat(EventFormat):
    """Google Cloud Retail ``UserEvent`` JSON lines: the format of Retail's own import and export."""

    name = FORMAT_NAME
    suffixes = (".json", ".jsonl")
    description = "Google Cloud Retail UserEvent JSON lines"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = first_json_object(head)
        return isinstance(first, dict) and bool({"eventType", "event_type"} & set(first)) and bool(
            {"visitorId", "visitor_id"} & set(first))

    def __init__(self, options=None, **event_types):
        super().__init__(options, **event_types)
        self._fields = FastFields()

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        for block, line_count in read_blocks(byte_range, block_bytes):
            batch, errors = parse_block(block, self._fields)
            yield ParsedBlock(batch, errors, lines=line_count, records=len(block))

    def rules(self, allowed_event_types: tuple[str, ...] = ()) -> list:
        from eventlake.formats.retail_rules import retail_rules

        return retail_rules(allowed_event_types)
