"""Google Cloud Retail ``Product`` JSON lines -> an Arrow catalog table for the join.

Products are rich and irregular, but the join needs a few fields only. Arrow's JSON reader reads
those fields for whole runs of lines at a time, in one of two dialects (prices as strings, as
Google's samples write them, or as numbers), and the rules are checked column by column. A line
neither dialect reads goes through ``_product`` on its own, which says what is wrong with it.
Invalid products are reported with file and line and left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from eventlake.errors import error_record
from eventlake.formats.arrow_util import camel_to_snake
from eventlake.formats.base import CatalogFormat, first_json_object, register_format
from eventlake.formats.lines import LineBlock, loads_record
from eventlake.io.files import ByteRange, read_blocks
from eventlake.schema import catalog_schema

_ROW_ERROR = re.compile(r"in row (\d+)")

AVAILABILITY = ("AVAILABILITY_UNSPECIFIED", "IN_STOCK", "OUT_OF_STOCK", "PREORDER", "BACKORDER")


class ProductError(ValueError):
    def __init__(self, field: str, reason: str, message: str):
        super().__init__(message)
        self.field, self.reason = field, reason


def parse_catalog_block(block: LineBlock, fields: tuple[str, ...]) -> tuple[pa.Table, list[dict]]:
    """Products of ``block`` (only ``id`` and ``fields``) and an error for each invalid line."""
    errors: list[dict] = []
    slow = _not_plain_objects(block)
    fast_rows = np.flatnonzero(~slow)
    pieces, read = [], []
    for rows, table in _read_runs(block, fast_rows):
        read.append(rows)
        pieces.append(_checked(block, rows, table, fields, errors))
    unread_mask = ~slow
    for rows in read:
        unread_mask[rows] = False
    unread = np.flatnonzero(unread_mask)
    slow_rows = []
    for i in np.flatnonzero(slow).tolist() + unread.tolist():
        raw = block.raw(i)
        try:
            slow_rows.append((i, _product(raw, fields)))
        except ProductError as exc:
            errors.append(_error(block, i, exc.field, exc.reason, f"catalog: {exc}"))
    schema = catalog_schema(fields)
    if slow_rows:
        slow_rows.sort(key=lambda item: item[0])
        pieces.append((np.array([i for i, _ in slow_rows]), pa.Table.from_pylist([p for _, p in slow_rows], schema=schema)))
    if not pieces:
        return schema.empty_table(), errors
    rows = np.concatenate([r for r, _ in pieces])
    table = pa.concat_tables([t for _, t in pieces])
    if len(rows) > 1 and np.any(np.diff(rows) < 0):  # file order: the last copy of an id wins
        table = table.take(pa.array(np.argsort(rows, kind="stable")))
    return table, errors


def _error(block: LineBlock, i: int, field: str, reason: str, message: str) -> dict:
    line = int(block.line_numbers[i])
    return error_record(block.source, line if line >= 0 else None, int(block.offsets[i]), field, reason, message, block.raw(i))


def _not_plain_objects(block: LineBlock) -> np.ndarray:
    if not len(block):
        return np.zeros(0, dtype=bool)
    buf = np.frombuffer(block.data, dtype=np.uint8)
    return (buf[block.starts] != ord("{")) | (buf[block.ends - 1] != ord("}"))


_PRICE_INFO = ("price", "originalPrice", "original_price", "currencyCode", "currency_code")


def _dialect(price: pa.DataType) -> pj.ParseOptions:
    price_info = pa.struct([(name, pa.string() if "urrency" in name else price) for name in _PRICE_INFO])
    schema = pa.schema([
        ("id", pa.string()), ("title", pa.string()), ("brands", pa.list_(pa.string())),
        ("categories", pa.list_(pa.string())), ("availability", pa.string()), ("uri", pa.string()),
        ("priceInfo", price_info), ("price_info", price_info),
    ])
    return pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")


_DIALECTS = (_dialect(pa.string()), _dialect(pa.float64()))


def _read_runs(block: LineBlock, rows: np.ndarray):
    """``(rows, table)`` for runs of consecutive ``rows`` that one dialect reads whole.

    A line that no dialect reads is left out, for the line-by-line path.
    """
    buffer = pa.py_buffer(block.data)
    start = 0
    while start < len(rows):
        part = rows[start:]
        best_length, best_dialect = 0, None
        for dialect in _DIALECTS:
            length, table = _read_prefix(block, buffer, part, dialect)
            if table is not None:
                yield part, table
                return
            if length > best_length:
                best_length, best_dialect = length, dialect
        if best_length:
            try:
                yield part[:best_length], _read(block, buffer, part[:best_length], best_dialect)
            except pa.ArrowInvalid:  # the reader named the wrong row: leave this line to the slow path
                best_length = 1
        start += max(best_length, 1)


def _read_prefix(block: LineBlock, buffer: pa.Buffer, rows: np.ndarray, dialect: pj.ParseOptions):
    """``(len(rows), table)`` when ``dialect`` reads every row, else ``(rows it reads first, None)``."""
    try:
        return len(rows), _read(block, buffer, rows, dialect)
    except pa.ArrowInvalid as exc:
        found = _ROW_ERROR.search(str(exc))
        return (min(int(found.group(1)), len(rows)) if found else 0), None


def _read(block: LineBlock, buffer: pa.Buffer, rows: np.ndarray, dialect: pj.ParseOptions) -> pa.Table:
    lo, hi = int(block.starts[rows[0]]), int(block.stops[rows[-1]])
    data = buffer.slice(lo, hi - lo)
    # The catalog is read before any event, while the other cores wait: let Arrow use them.
    options = pj.ReadOptions(use_threads=True, block_size=1 << 20)
    table = pj.read_json(pa.BufferReader(data), read_options=options, parse_options=dialect)
    if table.num_rows != len(rows):  # the lines between must be the given ones, blank lines aside
        raise pa.ArrowInvalid("row count mismatch")
    return table


def _checked(block, rows, table, fields, errors) -> tuple[np.ndarray, pa.Table]:
    """Check one dialect table column by column; return its valid rows as a catalog table."""
    n = table.num_rows
    bad = np.zeros(n, dtype=bool)

    def reject(mask, field, reason, message):
        hits = np.flatnonzero(np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False)) & ~bad)
        for i in hits:
            bad[i] = True
            errors.append(_error(block, int(rows[i]), field, reason, f"catalog: {message(i)}"))

    ids = table.column("id").combine_chunks()
    reject(pc.or_kleene(pc.is_null(ids), pc.equal(pc.utf8_length(ids), 0)), "id", "REQUIRED", lambda i: "product id is required")
    reject(pc.greater(pc.utf8_length(ids), 128), "id", "TOO_LONG", lambda i: "product id must be at most 128 characters")
    availability = table.column("availability").combine_chunks()
    reject(pc.and_(pc.is_valid(availability), pc.invert(pc.is_in(availability, pa.array(AVAILABILITY)))),
           "availability", "INVALID_VALUE",
           lambda i: f"availability must be one of {', '.join(AVAILABILITY)}, got {str(availability[int(i)].as_py())[:40]!r}")
    price_info = pc.coalesce(table.column("priceInfo").combine_chunks(), table.column("price_info").combine_chunks())
    values = {"id": ids, "title": table.column("title"), "brands": table.column("brands"),
              "categories": table.column("categories"), "availability": availability, "uri": table.column("uri")}
    for target, names in (("price", ("price",)), ("original_price", ("originalPrice", "original_price")),
                          ("currency_code", ("currencyCode", "currency_code"))):
        column = pc.coalesce(*[pc.struct_field(price_info, name) for name in names])
        if target != "currency_code":
            column = _numbers(column, f"priceInfo.{names[0]}", reject)
        values[target] = column
    keep = pa.array(~bad)
    schema = catalog_schema(fields)
    columns = [pc.cast(values[name], schema.field(name).type).filter(keep) for name in schema.names]
    return rows[~bad], pa.Table.from_arrays(columns, schema=schema)


_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(nan|inf|infinity)\s*$"


def _numbers(column: pa.Array, path: str, reject) -> pa.Array:
    """A price column as doubles; a string that is not a number, or a number that is not finite
    (bare ``NaN`` or the string ``"NaN"`` alike), is that product's error."""
    if pa.types.is_string(column.type):
        invalid = pc.and_(pc.is_valid(column), pc.invert(pc.match_substring_regex(column, _NUMBER, ignore_case=True)))
        reject(invalid, path, "INVALID_TYPE", lambda i: f"{path} must be a number")
        column = pc.cast(pc.if_else(invalid, pa.scalar(None, pa.string()), column), pa.float64())
    not_finite = pc.invert(pc.is_finite(column))
    reject(not_finite, path, "INVALID_VALUE", lambda i: f"{path} must be a finite number")
    return pc.if_else(not_finite, pa.scalar(None, pa.float64()), column)


def _product(raw: bytes, fields: tuple[str, ...]) -> dict:
    try:
        product = loads_record(raw)
    except orjson.JSONDecodeError as exc:
        raise ProductError("", "INVALID_JSON", f"line is not valid JSON: {exc}") from None
    if not isinstance(product, dict):
        raise ProductError("", "NOT_AN_OBJECT", "line is JSON but not an object")
    product_id = product.get("id")
    if not isinstance(product_id, str) or not product_id:
        raise ProductError("id", "REQUIRED", "product id is required")
    if len(product_id) > 128:
        raise ProductError("id", "TOO_LONG", "product id must be at most 128 characters")
    availability = product.get("availability")
    if availability is not None and availability not in AVAILABILITY:
        raise ProductError("availability", "INVALID_VALUE",
                           f"availability must be one of {', '.join(AVAILABILITY)}, got {str(availability)[:40]!r}")
    price_info = product.get("priceInfo") or product.get("price_info") or {}
    if not isinstance(price_info, dict):
        raise ProductError("priceInfo", "INVALID_TYPE", "priceInfo must be an object")
    values = {
        "title": _string(product, "title"),
        "brands": _strings(product, "brands"),
        "categories": _strings(product, "categories"),
        "price": _number(price_info, "price", "priceInfo.price"),
        "original_price": _number(price_info, "originalPrice", "priceInfo.originalPrice"),
        "currency_code": _string(price_info, "currencyCode", "priceInfo.currencyCode"),
        "availability": availability,
        "uri": _string(product, "uri"),
    }
    return {"id": product_id, **{f: values[f] for f in fields}}


def _either(obj: dict, key: str):
    """``obj[key]``, or its snake_case spelling (proto3 JSON parsers accept both)."""
    value = obj.get(key)
    return obj.get(camel_to_snake(key)) if value is None else value


def _string(obj: dict, key: str, path: str | None = None):
    value = _either(obj, key)
    if value is not None and not isinstance(value, str):
        raise ProductError(path or key, "INVALID_TYPE", f"{path or key} must be a string")
    return value


def _strings(obj: dict, key: str):
    value = obj.get(key)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise ProductError(key, "INVALID_TYPE", f"{key} must be a list of strings")
    return value


def _number(obj: dict, key: str, path: str):
    value = _either(obj, key)
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ProductError(path, "INVALID_TYPE", f"{path} must be a number") from None
    if not math.isfinite(number):
        raise ProductError(path, "INVALID_VALUE", f"{path} must be a finite number")
    return number


@register_format
class RetailProducts(CatalogFormat):
    """Google Cloud Retail ``Product`` JSON lines, as Retail's product import and export write them."""

    name = "retail"
    suffixes = (".json", ".jsonl")
    description = "Google Cloud Retail Product JSON lines"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = first_json_object(head)
        return isinstance(first, dict) and "id" in first and not {"cmd", "itemId", "items"} & set(first)

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[tuple[pa.Table, list[dict]]]:
        for block, _ in read_blocks(byte_range, block_bytes):
            yield parse_catalog_block(block, self.fields)
