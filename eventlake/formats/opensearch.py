"""Alibaba OpenSearch behavior data: the documents its bulk behavior push takes.

A file holds ``{"cmd": "add", "fields": {...}}`` documents: as one JSON array (pretty-printed or
not), an array per line, or one document per line. Each document is one record, reported at the
line where it starts. The rules are OpenSearch's: ``cmd`` is ``add``; ``item_id``, ``bhv_type``,
``reach_time`` (10-digit Unix seconds), ``user_id``, ``rn``, ``trace_info``, ``item_type``,
``sdk_type``, ``sdk_version`` and ``trace_id`` are required; ``bhv_type`` is one of the seven
behaviors (or a type the config's ``allowed_event_types`` adds); ``biz_id`` is numeric and ``login`` 0 or 1 when given;
with ``trace_id`` ``ALIBABA``, ``trace_info`` must be the URL-encoded JSON that search returned.

Mapping: ``user_id`` -> ``visitor_id`` and ``user_info.user_id``; ``item_id`` -> the product;
``rn`` -> ``request_id``; ``trace_info`` as it is; ``bhv_value`` -> ``event_value``;
``bhv_time`` when given, else ``reach_time`` -> ``event_time``; every other field -> an
attribute. Default event types: ``click`` -> ``detail-page-view``, ``cart`` -> ``add-to-cart``,
``buy`` -> ``purchase-complete``; ``expose``, ``like``, ``collect``, ``comment`` keep their names.

Items (``--catalog-format opensearch-items``): ``ITEM_INFO`` documents of the same shape.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from eventlake.errors import error_record
from eventlake.formats.base import (
    SNIFF_BYTES,
    CatalogFormat,
    EventFormat,
    ParsedBlock,
    RecordRejected,
    canonical_batch,
    first_json_object,
    register_format,
)
from eventlake.formats.columns import attributes_from_columns, attributes_from_records, one_product_each, user_info_of
from eventlake.formats.json_documents import documents
from eventlake.formats.lines import LineBlock
from eventlake.formats.rules import Rule, as_mask
from eventlake.io.decompress import open_source
from eventlake.io.files import ByteRange, DamagedSourceError, read_blocks
from eventlake.schema import CATALOG_FIELD_TYPES, catalog_schema

BEHAVIORS = ("expose", "click", "like", "collect", "comment", "cart", "buy")
REQUIRED = ("item_id", "bhv_type", "reach_time", "user_id", "rn", "trace_info", "item_type", "sdk_type",
            "sdk_version", "trace_id")
MAPPED = {"item_id", "bhv_type", "reach_time", "user_id", "rn", "trace_info", "bhv_value", "bhv_time"}
_BATCH = 50_000  # documents per batch
_SCALARS = (str, int, float)


@register_format
class OpenSearchBehavior(EventFormat):
    """Alibaba OpenSearch behavior documents (``cmd``/``fields``), as pushed to its bulk endpoint."""

    name = "opensearch"
    suffixes = (".json", ".jsonl")
    splittable = False  # an array of documents may span the whole file
    default_event_type_map = {"click": "detail-page-view", "cart": "add-to-cart", "buy": "purchase-complete"}
    description = "Alibaba OpenSearch behavior documents ({cmd: add, fields: {...}})"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        text = head.lstrip()
        if text.startswith(b"["):
            return all(key in text[:4096] for key in (b'"cmd"', b'"fields"', b'"bhv_type"'))
        first = first_json_object(head)
        return isinstance(first, dict) and "cmd" in first and isinstance(first.get("fields"), dict) \
            and "bhv_type" in first["fields"]

    def rules(self, allowed_event_types: tuple[str, ...] = ()) -> list[Rule]:
        types = pa.array(list(BEHAVIORS) + list(allowed_event_types), pa.string())
        return [Rule("fields.bhv_type", "INVALID_EVENT_TYPE",
                     f"bhv_type must be one of {', '.join(BEHAVIORS + tuple(allowed_event_types))}",
                     lambda b: ~as_mask(pc.is_in(b.column("source_event_type"), value_set=types)))]

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        with open_source(byte_range.path, byte_range.compression) as handle:
            start = handle.read(SNIFF_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n")
        if not start.startswith(b"["):
            # A document per line (arrays on a line of their own are allowed): lines at a time,
            # most of them read by Arrow.
            for block, line_count in read_blocks(byte_range, block_bytes):
                batch, errors, records = _parse_lines(self, block)
                yield ParsedBlock(batch, errors, lines=line_count, records=records)
            return
        yield from self._read_documents(byte_range)

    def _read_documents(self, byte_range: ByteRange) -> Iterator[ParsedBlock]:
        """A file that is one JSON array (pretty-printed or not): documents read one by one."""
        rows, errors, records = [], [], 0
        lines, docs = _file_documents(byte_range)
        for doc, raw, where, problem in docs:
            records += 1
            if problem is not None:
                errors.append(error_record(*where, "", "INVALID_JSON", problem, raw))
                continue
            try:
                rows.append((doc.line, where[2], raw, self._event(doc.value)))
            except RecordRejected as exc:
                errors.append(error_record(*where, exc.field, exc.reason, str(exc), raw))
            if len(rows) >= _BATCH:
                yield ParsedBlock(_batch(byte_range.path, rows), errors, lines=0, records=records)
                rows, errors, records = [], [], 0
        yield ParsedBlock(_batch(byte_range.path, rows), errors, lines=lines, records=records)

    def _event(self, document) -> dict:
        if not isinstance(document, dict):
            raise RecordRejected("", "INVALID_DOCUMENT", f"a behavior document is a JSON object, not {_kind(document)}")
        cmd = document.get("cmd")
        if not isinstance(cmd, str) or cmd.lower() != "add":
            raise RecordRejected("cmd", "INVALID_VALUE", f"cmd must be \"add\", got {json.dumps(cmd)[:40]}")
        fields = document.get("fields")
        if not isinstance(fields, dict):
            raise RecordRejected("fields", "REQUIRED", "fields must be an object of behavior fields")
        for name in REQUIRED:
            value = fields.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise RecordRejected(f"fields.{name}", "REQUIRED", f"{name} is required")
            if not isinstance(value, _SCALARS) or isinstance(value, bool):
                raise RecordRejected(f"fields.{name}", "INVALID_VALUE", f"{name} must be a string or a number")
        behavior = str(fields["bhv_type"])  # checked against the allowed types in ``rules``
        reach = _seconds(fields, "reach_time")
        when = _seconds(fields, "bhv_time") if fields.get("bhv_time") not in (None, "") else reach
        if "biz_id" in fields and not str(fields["biz_id"]).isdigit():
            raise RecordRejected("fields.biz_id", "INVALID_VALUE", f"biz_id must be numeric, got {str(fields['biz_id'])[:40]!r}")
        if "login" in fields and str(fields["login"]) not in ("0", "1"):
            raise RecordRejected("fields.login", "INVALID_VALUE", "login must be 0 or 1")
        value = None
        if fields.get("bhv_value") not in (None, ""):
            try:
                value = float(fields["bhv_value"])
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value):
                raise RecordRejected("fields.bhv_value", "INVALID_VALUE", "bhv_value must be a finite number")
        trace_info = str(fields["trace_info"])
        if str(fields["trace_id"]).upper() == "ALIBABA":
            try:
                decoded = json.loads(urllib.parse.unquote(trace_info))
            except ValueError:
                decoded = None
            if not isinstance(decoded, dict):
                raise RecordRejected("fields.trace_info", "INVALID_TRACE_INFO",
                                "with trace_id ALIBABA, trace_info must be the URL-encoded JSON that search returned "
                                "(ops_request_misc)")
        return {
            "event_type": behavior, "visitor_id": str(fields["user_id"]), "item_id": str(fields["item_id"]),
            "seconds": when, "request_id": str(fields["rn"]), "trace_info": trace_info, "event_value": value,
            "fields": fields,  # every field but the mapped ones becomes an attribute
        }


def _file_documents(byte_range: ByteRange) -> tuple[int, Iterator]:
    """A whole file's line count, and each of its documents: the document, its raw text, where
    it is (file, line, byte offset) and, for one that is not valid JSON, why (with the hint for
    the vendor's slip)."""
    data = _read_whole(byte_range)
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    text = data[bom:].decode("utf-8", "replace")
    offsets = _ByteOffsets(text, bom)

    def each():
        for doc in documents(text):
            raw = text[doc.start:doc.end]
            problem = None if doc.problem is None else _json_hint(doc.problem, raw)
            yield doc, raw, (byte_range.path, doc.line, offsets.at(doc.start)), problem

    return text.count("\n") + (0 if text.endswith("\n") or not text else 1), each()


def _read_whole(byte_range: ByteRange) -> bytes:
    with open_source(byte_range.path, byte_range.compression) as handle:
        try:
            return handle.read()
        except DamagedSourceError:
            raise
        except (OSError, EOFError) as exc:
            raise DamagedSourceError(f"{byte_range.path}: cannot be read: {exc}") from None


class _ByteOffsets:
    """Character offsets -> byte offsets in the UTF-8 file (equal for ASCII text)."""

    def __init__(self, text: str, base: int):
        self._ascii, self._base = text.isascii(), base
        if not self._ascii:
            widths = np.array([len(c.encode("utf-8", "replace")) for c in text], dtype=np.int64)
            self._before = np.concatenate(([0], np.cumsum(widths)))

    def at(self, position: int) -> int:
        return self._base + (position if self._ascii else int(self._before[position]))


def _seconds(fields: dict, name: str) -> int:
    value = fields[name]
    if isinstance(value, int) and not isinstance(value, bool) and 1_000_000_000 <= value <= 9_999_999_999:
        return value
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if len(text) == 10 and text.isdigit():
        return int(text)
    if re.fullmatch(r"\d{13}", text):
        raise RecordRejected(f"fields.{name}", "INVALID_VALUE",
                        f"{name} {text} looks like milliseconds; OpenSearch wants 10-digit Unix seconds")
    raise RecordRejected(f"fields.{name}", "INVALID_VALUE", f"{name} must be 10-digit Unix seconds, got {text[:40]!r}")


def _json_hint(problem: str, raw: str) -> str:
    if re.search(r'\{\s*"[^"]*"\s*,\s*"[^"]*"\s*\}', raw):
        return (f"not valid JSON: {problem}; a pair written as {{\"key\", \"value\"}} (as in the vendor's sample) "
                "must be \"key\": \"value\"")
    return f"not valid JSON: {problem}"


def _kind(value) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}.get(
        type(value), "null")


def _batch(source: str, rows: list) -> pa.RecordBatch:
    """Documents read from a whole file: ``(line, offset, raw text, event)`` each."""
    raws = pa.array([r[2].encode("utf-8") for r in rows], pa.binary())
    return _event_batch(source, [r[3] for r in rows], np.array([r[1] for r in rows], dtype=np.int64),
                        np.array([r[0] for r in rows], dtype=np.int64), raws)


def _event_batch(source: str, events: list[dict], offsets: np.ndarray, lines: np.ndarray,
                 raws: pa.Array) -> pa.RecordBatch:
    """Checked events (``OpenSearchBehavior._event``) and where each is -> a canonical batch."""
    visitors = pa.array([e["visitor_id"] for e in events], pa.string())
    types = pa.array([e["event_type"] for e in events], pa.string())
    columns = {
        "event_type": types,
        "source_event_type": types,
        "visitor_id": visitors,
        "user_info": user_info_of(visitors),
        "event_time": pa.array(np.array([e["seconds"] for e in events], dtype=np.int64) * 1_000_000,
                               pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "product_details": one_product_each([e["item_id"] for e in events]),
        "event_value": pa.array([e["event_value"] for e in events], pa.float64()),
        "request_id": pa.array([e["request_id"] for e in events], pa.string()),
        "trace_info": pa.array([e["trace_info"] for e in events], pa.string()),
        "attributes": attributes_from_records([e["fields"] for e in events], MAPPED),
    }
    return canonical_batch(columns, source, offsets, lines, raws, OpenSearchBehavior.name)


@register_format
class OpenSearchItems(CatalogFormat):
    """Alibaba OpenSearch ``ITEM_INFO`` documents (``cmd`` ``add``, ``fields`` with ``item_id``).

    ``title`` -> title, ``category_path`` -> categories (one path per item), ``price`` -> price,
    ``brand`` -> brands; the config's ``catalog_field_map`` can name other fields.
    """

    name = "opensearch-items"
    suffixes = (".json", ".jsonl")
    splittable = False
    description = "Alibaba OpenSearch ITEM_INFO documents ({cmd: add, fields: {item_id, ...}})"
    DEFAULT_SOURCES = {"title": "title", "categories": "category_path", "price": "price", "brands": "brand"}

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        text = head.lstrip()[:4096]
        return b'"cmd"' in text and b'"fields"' in text and b'"item_id"' in text and b'"bhv_type"' not in text

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[tuple[pa.Table, list[dict]]]:
        sources = {**self.DEFAULT_SOURCES, **{field: column for column, field in self.field_map.items()}}
        products, errors = [], []
        for doc, raw, where, problem in _file_documents(byte_range)[1]:
            if problem is not None:
                errors.append(error_record(*where, "", "INVALID_JSON", f"catalog: {problem}", raw))
                continue
            try:
                products.append(self._product(doc.value, sources))
            except RecordRejected as exc:
                errors.append(error_record(*where, exc.field, exc.reason, f"catalog: {exc}", raw))
        yield pa.Table.from_pylist(products, schema=catalog_schema(self.fields)), errors

    def _product(self, document, sources: dict[str, str]) -> dict:
        if not isinstance(document, dict) or not isinstance(document.get("fields"), dict):
            raise RecordRejected("fields", "REQUIRED", "an item document needs fields")
        cmd = document.get("cmd")
        if not isinstance(cmd, str) or cmd.lower() != "add":
            raise RecordRejected("cmd", "INVALID_VALUE", f"cmd must be \"add\", got {json.dumps(cmd)[:40]}")
        fields = document["fields"]
        item = fields.get("item_id")
        if item is None or isinstance(item, bool) or not isinstance(item, _SCALARS) or not str(item).strip():
            raise RecordRejected("fields.item_id", "REQUIRED", "item_id is required")
        product = {"id": str(item)}
        for field in self.fields:
            value = fields.get(sources.get(field, field))
            kind = CATALOG_FIELD_TYPES[field]
            if value is None or value == "":
                product[field] = None
            elif pa.types.is_list(kind):
                product[field] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
            elif pa.types.is_floating(kind):
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    number = math.nan
                if isinstance(value, bool) or not math.isfinite(number):
                    raise RecordRejected(f"fields.{sources.get(field, field)}", "INVALID_VALUE",
                                    f"{sources.get(field, field)} must be a finite number")
                product[field] = number
            else:
                product[field] = str(value)
        return product


# The fast path's reading of a behavior line: the mapped and required fields as strings, the
# rest inferred. A line Arrow cannot read so (a number where a string is, broken JSON) sends its
# block to the one-by-one path.
_STRING_FIELDS = sorted(set(REQUIRED) | {"bhv_value", "bhv_time", "biz_id", "login"})
_LINE_SCHEMA = pa.schema([("cmd", pa.string()), ("fields", pa.struct([(f, pa.string()) for f in _STRING_FIELDS]))])
_LINE_OPTIONS = pj.ParseOptions(explicit_schema=_LINE_SCHEMA, unexpected_field_behavior="infer")


def _parse_lines(fmt: OpenSearchBehavior, block: LineBlock) -> tuple[pa.RecordBatch, list[dict], int]:
    """One block of lines: rows Arrow reads and vectorised checks clear go straight to columns;
    every other line goes through ``_event`` one by one, which gives the exact error."""
    n = len(block)
    first = np.frombuffer(block.data, dtype=np.uint8)[block.starts] if n else np.zeros(0, dtype=np.uint8)
    fast = np.flatnonzero(first == ord("{"))
    batches, errors = [], []
    slow = np.ones(n, dtype=bool)
    if len(fast):
        try:
            table = pj.read_json(pa.BufferReader(block.only(fast)), parse_options=_LINE_OPTIONS,
                                 read_options=pj.ReadOptions(use_threads=False, block_size=max(len(block.data), 1)))
        except pa.ArrowInvalid:
            table = None
        if table is not None and table.num_rows == len(fast):
            cleared = _cleared(table)
            rows = fast[cleared]
            if len(rows):
                batches.append(_fast_batch(block, rows, table.filter(pa.array(cleared))))
            slow[rows] = False
    records = n - int(slow.sum())  # one per line read by Arrow; the others count their documents below
    rows = []
    for i in np.flatnonzero(slow).tolist():
        raw = block.raw(i)
        line = int(block.line_numbers[i])
        where = (block.source, line if line >= 0 else None, int(block.offsets[i]))
        values = _line_documents(raw)
        records += len(values)
        for value, problem in values:
            if problem is not None:
                errors.append(error_record(*where, "", "INVALID_JSON", _json_hint(problem, raw.decode("utf-8", "replace")),
                                           raw))
                continue
            try:
                rows.append((i, fmt._event(value)))
            except RecordRejected as exc:
                errors.append(error_record(*where, exc.field, exc.reason, str(exc), raw))
    if rows:
        batches.append(_slow_batch(block, rows))
    if len(batches) > 1:  # back in file order
        batch = pa.concat_batches(batches)
        order = np.argsort(batch.column("source_offset").to_numpy(), kind="stable")
        batch = batch.take(pa.array(order))
    else:
        batch = batches[0] if batches else _slow_batch(block, [])
    return batch, errors, records


def _line_documents(raw: bytes) -> list[tuple[object, str | None]]:
    """The documents of one line: one, or the elements of an array; broken ones with the problem."""
    try:
        value = orjson.loads(raw)
        return [(v, None) for v in value] if isinstance(value, list) else [(value, None)]
    except orjson.JSONDecodeError:
        return [(d.value, d.problem) for d in documents(raw.decode("utf-8", "replace"))] or [(None, "empty line")]


def _text(table: pa.Table, name: str) -> pa.Array:
    return pc.struct_field(table.column("fields").combine_chunks(), name)


def _cleared(table: pa.Table) -> np.ndarray:
    """Rows every rule surely accepts; the others are checked one by one."""
    def mask(array) -> np.ndarray:
        return pc.fill_null(array, False).to_numpy(zero_copy_only=False)

    def matches(name: str, pattern: str, optional: bool = False) -> np.ndarray:
        values = _text(table, name)
        hit = mask(pc.match_substring_regex(values, pattern))
        if optional:
            hit |= mask(pc.or_kleene(pc.is_null(values), pc.equal(values, "")))
        return hit

    ok = mask(pc.equal(pc.utf8_lower(table.column("cmd").combine_chunks()), "add"))
    for name in REQUIRED:
        ok &= mask(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(_text(table, name))), 0))
    ok &= matches("reach_time", r"^\d{10}$") & matches("bhv_time", r"^\d{10}$", optional=True)
    ok &= mask(pc.is_null(_text(table, "biz_id"))) | matches("biz_id", r"^\d+$")
    ok &= mask(pc.is_null(_text(table, "login"))) | mask(pc.is_in(_text(table, "login"), pa.array(["0", "1"])))
    ok &= matches("bhv_value", r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,2})?$", optional=True)
    fields = table.column("fields").type
    for child in fields:
        if child.name in _STRING_FIELDS:
            continue
        if not (pa.types.is_string(child.type) or pa.types.is_integer(child.type) or pa.types.is_floating(child.type)
                or pa.types.is_boolean(child.type) or pa.types.is_null(child.type)):
            ok &= mask(pc.is_null(_text(table, child.name)))  # nested values: the one-by-one path writes them
    alibaba = mask(pc.equal(pc.utf8_upper(_text(table, "trace_id")), "ALIBABA")) & ok
    if alibaba.any():
        infos = _text(table, "trace_info").filter(pa.array(alibaba))
        good = {v for v in pc.unique(infos).to_pylist() if _decodes(v)}
        ok[np.flatnonzero(alibaba)] = np.array([v in good for v in infos.to_pylist()], dtype=bool)
    return ok


def _decodes(trace_info: str) -> bool:
    try:
        return isinstance(json.loads(urllib.parse.unquote(trace_info)), dict)
    except ValueError:
        return False


def _fast_batch(block: LineBlock, rows: np.ndarray, table: pa.Table) -> pa.RecordBatch:
    types = _text(table, "bhv_type")
    visitors = _text(table, "user_id")
    when = pc.if_else(pc.equal(pc.fill_null(_text(table, "bhv_time"), ""), ""), _text(table, "reach_time"),
                      _text(table, "bhv_time"))
    value = _text(table, "bhv_value")
    fields = table.column("fields").type
    attribute_names = sorted(f.name for f in fields if f.name not in MAPPED)
    columns = {
        "event_type": types,
        "source_event_type": types,
        "visitor_id": visitors,
        "user_info": user_info_of(visitors),
        "event_time": pc.multiply(pc.cast(when, pa.int64()), 1_000_000).cast(pa.timestamp("us", tz="UTC")),
        "product_details": one_product_each(_text(table, "item_id")),
        "event_value": pc.cast(pc.if_else(pc.equal(pc.fill_null(value, ""), ""), None, value), pa.float64()),
        "request_id": _text(table, "rn"),
        "trace_info": _text(table, "trace_info"),
        "attributes": _attributes_of_children(table, attribute_names),
    }
    return canonical_batch(columns, block.source, block.offsets[rows], block.line_numbers[rows],
                           block.records(rows), OpenSearchBehavior.name)


def _attributes_of_children(table: pa.Table, names: list[str]) -> pa.Array:
    """``attributes`` from the struct's other children, in name order, as the one-by-one path
    orders them: numbers as numbers, the rest as text."""
    kept = [name for name in names if not pa.types.is_null(_text(table, name).type)]
    return attributes_from_columns(kept, [_text(table, name) for name in kept])


def _slow_batch(block: LineBlock, rows: list) -> pa.RecordBatch:
    """Events read one by one from lines of ``block``: ``(line index, event)`` each; the
    events of one line (an array on it) share its raw text."""
    lines = np.array([i for i, _ in rows], dtype=np.int64)
    raws = block.records_each(lines)
    return _event_batch(block.source, [e for _, e in rows], block.offsets[lines], block.line_numbers[lines], raws)
