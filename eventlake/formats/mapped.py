"""Config-mapped files: any CSV, JSON-lines or Parquet event log, its columns named in a config.

For the sources no built-in format knows (public datasets such as OTTO, RetailRocket, Taobao,
or a team's own logs), ``format_options`` says which column fills which canonical field::

    format: mapped
    format_options:
      file_type: jsonl            # csv, jsonl or parquet; default: from the file name
      explode: events             # optional: each element of this list is one record
      fields:                     # canonical field -> column (dotted paths into nested JSON)
        visitor_id: session       # a parent's column: every element inherits it
        product_id: events.aid    # an element's field
        event_type: events.type
        event_time: events.ts
      time_unit: ms               # s, ms, us, rfc3339, or a strftime pattern such as %Y-%m-%d %H:%M:%S
      timezone: UTC               # for a pattern without an offset
      constants: {}               # canonical field -> a fixed value, for fields the file lacks
      event_types: {clicks: detail-page-view}   # the format's event-type map (event_type_map overrides)
      attributes: [category_id]   # columns kept as attributes
      required: [visitor_id, event_type, event_time, product_id]

``column_names`` names the fields of a CSV without a header (``header: false``). A mapping that
names a column the file lacks fails the file at start-up in one line, not once per row. A
record without a required field, or whose time or number does not read, is an error naming
the source column. With ``explode``, a parent whose list is missing or empty is one record and
one error.

The same options make a catalog format (``--catalog-format mapped``): ``fields`` maps ``id``
and catalog fields (``title``, ``categories``, ``price``, ...); list fields split text at
``list_separator`` (default ``|``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.errors import error_record
from eventlake.formats.base import (
    CatalogFormat,
    EventFormat,
    FormatOptionError,
    ParsedBlock,
    SourceFileError,
    canonical_batch,
    register_format,
)
from eventlake.formats.columns import attributes_from_columns, user_info_of
from eventlake.formats.csv_records import first_record_and_lines_before
from eventlake.formats.tabular import (
    FILE_TYPES,
    UNIX_UNITS,
    RowBlock,
    RowChecks,
    as_numbers,
    as_text,
    check_timezone,
    column_at,
    file_type_of,
    head_block,
    pattern_times,
    read_rows,
    rfc3339_times,
    unix_times,
)
from eventlake.io.files import ByteRange
from eventlake.schema import CATALOG_FIELD_TYPES, PURCHASE_TRANSACTION, catalog_schema, product_details_type

TEXT_FIELDS = ("visitor_id", "user_id", "session_id", "event_type", "event_id", "product_id", "request_id",
               "search_query", "uri", "referrer_uri", "page_view_id", "cart_id", "attribution_token",
               "recommendation_id", "purchase_id", "currency_code", "filter", "order_by")
NUMBER_FIELDS = ("event_value", "revenue", "quantity")
LIST_FIELDS = ("page_categories", "experiment_ids", "impression")
EVENT_FIELDS = (*TEXT_FIELDS, "event_time", *NUMBER_FIELDS, *LIST_FIELDS)
DEFAULT_REQUIRED = ("visitor_id", "event_type", "event_time")
_COMMON_OPTIONS = {
    "file_type": "csv, jsonl or parquet (default: from the file name)",
    "header": "false for a CSV without a header row (then give column_names)",
    "column_names": "the fields of a CSV without a header, in order",
    "fields": "canonical field -> source column (dotted paths into nested JSON)",
    "constants": "canonical field -> a fixed value",
}
_EVENT_OPTIONS = {
    **_COMMON_OPTIONS,
    "explode": "a list column whose elements are the records; they inherit the parent's columns",
    "time_unit": "s, ms, us, rfc3339 or a strftime pattern (default s)",
    "timezone": "the time zone of a strftime pattern without an offset (default UTC)",
    "event_types": "source event type -> canonical type (the config's event_type_map overrides it)",
    "attributes": "columns kept as attributes",
    "required": f"canonical fields every record must have (default {', '.join(DEFAULT_REQUIRED)})",
    "list_separator": "the separator of list fields given as text (default |)",
}


def _check_common(options: dict, known_fields: tuple[str, ...]) -> None:
    file_type = options.get("file_type", "")
    if file_type and file_type not in FILE_TYPES:
        raise FormatOptionError("file_type", f"{file_type!r} is not one of {', '.join(FILE_TYPES)}")
    fields = options.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        raise FormatOptionError("fields", "give a mapping of canonical field -> source column")
    for name, column in fields.items():
        if name not in known_fields:
            raise FormatOptionError(f"fields.{name}", f"not a field it can fill; choose from {', '.join(known_fields)}")
        if not isinstance(column, str) or not column:
            raise FormatOptionError(f"fields.{name}", "must name a source column")
    constants = options.get("constants", {})
    if not isinstance(constants, Mapping):
        raise FormatOptionError("constants", "must be a mapping of canonical field -> value")
    for name in constants:
        if name not in known_fields:
            raise FormatOptionError(f"constants.{name}", f"not a field it can fill; choose from {', '.join(known_fields)}")
    header = options.get("header", True)
    if not isinstance(header, bool):
        raise FormatOptionError("header", "must be true or false")
    names = options.get("column_names")
    if header is False and not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise FormatOptionError("column_names", "a CSV without a header needs its column names, in order")
    if names is not None and header is not False:
        raise FormatOptionError("column_names", "only for a CSV without a header (header: false)")


@register_format
class MappedEvents(EventFormat):
    """Any CSV, JSON-lines or Parquet event log, mapped to canonical fields by ``format_options``."""

    name = "mapped"
    suffixes = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet")
    description = "CSV, JSON lines or Parquet events mapped by a config (format_options.fields)"
    option_names = _EVENT_OPTIONS
    detectable = False  # nothing in a file says which mapping it needs

    @classmethod
    def check_options(cls, options) -> dict:
        options = super().check_options(options)
        _check_common(options, EVENT_FIELDS)
        unit = options.get("time_unit", "s")
        if not isinstance(unit, str) or not (unit in UNIX_UNITS or unit == "rfc3339" or "%" in unit):
            raise FormatOptionError("time_unit", f"{unit!r} is not s, ms, us, rfc3339 or a strftime pattern")
        check_timezone(options, "UTC")
        explode = options.get("explode")
        if explode is not None and (not isinstance(explode, str) or "." in explode):
            raise FormatOptionError("explode", "must name one top-level list column")
        for key in ("attributes", "required"):
            value = options.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise FormatOptionError(key, "must be a list of names")
        for name in options.get("required", []):
            if name not in EVENT_FIELDS:
                raise FormatOptionError("required", f"{name!r} is not a canonical field; choose from "
                                                    f"{', '.join(EVENT_FIELDS)}")
        if not isinstance(options.get("event_types", {}), Mapping):
            raise FormatOptionError("event_types", "must be a mapping of source type -> canonical type")
        has_time = "event_time" in options["fields"] or "event_time" in options.get("constants", {})
        if not has_time:
            raise FormatOptionError("fields.event_time", "every event needs a time: name its column")
        return options

    def __init__(self, options=None, **event_types):
        super().__init__(options, **event_types)
        self.event_type_map = {**self.options.get("event_types", {}), **(event_types.get("event_type_map") or {})}

    def lines_before(self, byte_range: ByteRange) -> int:
        if self._file_type(byte_range.path) == "parquet":
            return 0  # rows are numbered from the file's start already
        if self._file_type(byte_range.path) == "csv" and byte_range.start > 0:
            found = first_record_and_lines_before(byte_range.path, byte_range.start)
            return found[1] if found else 0
        return super().lines_before(byte_range)

    def check_file(self, path: str) -> None:
        file_type = self._file_type(path)
        _check_columns(head_block(path, file_type, "mapped events", _column_names(self.options)), self.options,
                       file_type)

    def _file_type(self, path: str) -> str:
        return file_type_of(path, self.options.get("file_type", ""))

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        for block in _mapped_rows(byte_range, block_bytes, self.options, "mapped events"):
            records = block.records
            block, empty_errors, parents = _explode(block, self.options.get("explode"))
            if parents is not None:  # each element is a record; a parent without any is one
                records += len(block.lines) - parents + len(empty_errors)
            batch, errors = _events(block, self.options, self.event_type_map)
            yield ParsedBlock(batch, block.errors + empty_errors + errors, lines=block.lines_spanned, records=records)


def _column_names(options: dict) -> list[str] | None:
    """The field names of a CSV without a header, when the options say it has none."""
    return options.get("column_names") if options.get("header", True) is False else None


def _mapped_rows(byte_range: ByteRange, block_bytes: int, options: dict, kind: str) -> Iterator[RowBlock]:
    """The range's row blocks, the file's columns checked against the mapping on its first one."""
    file_type = file_type_of(byte_range.path, options.get("file_type", ""))
    first = byte_range.start <= 0
    for block in read_rows(byte_range, block_bytes, file_type, kind, _column_names(options)):
        if first:
            _check_columns(block, options, file_type)
            first = False
        yield block


def _check_columns(block: RowBlock, options: dict, file_type: str) -> None:
    """Every column the mapping names is in the file: else one error for the file."""
    if not block.table.num_rows and file_type == "jsonl":
        return
    wanted = list(options["fields"].values()) + list(options.get("attributes", []))
    explode = options.get("explode")
    if explode:
        wanted.append(explode)
    missing = []
    for path in wanted:
        if explode and path.startswith(explode + "."):
            if explode not in block.table.column_names:
                continue  # named once, as the list column
            element = block.table.column(explode).type
            if (pa.types.is_list(element) or pa.types.is_large_list(element)) and pa.types.is_null(element.value_type):
                continue  # only empty lists so far: nothing says which fields their events have
            if not (pa.types.is_list(element) or pa.types.is_large_list(element)) or \
                    not _has_path(element.value_type, path[len(explode) + 1:]):
                missing.append(path)
        elif column_at(block.table, path) is None:
            missing.append(path)
    if missing:
        raise SourceFileError(f"{block.source}: the mapping names {', '.join(sorted(set(missing)))}, which the file lacks "
                              f"(it has {', '.join(block.table.column_names) or 'no column'})")


def _has_path(kind: pa.DataType, path: str) -> bool:
    for name in path.split("."):
        if not pa.types.is_struct(kind) or kind.get_field_index(name) < 0:
            return False
        kind = kind.field(name).type
    return True


def _explode(block: RowBlock, explode: str | None) -> tuple[RowBlock, list[dict], int | None]:
    """One row per element of the ``explode`` list, its parent's columns repeated; an error
    for each parent whose list is missing or empty. Returns the block, those errors and the
    number of parent rows (None without ``explode``)."""
    if not explode or explode not in block.table.column_names:
        return block, [], None
    lists = block.table.column(explode).combine_chunks()
    if not (pa.types.is_list(lists.type) or pa.types.is_large_list(lists.type)):
        raise SourceFileError(f"{block.source}: explode names {explode}, which is not a list")
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    empty = np.flatnonzero(lengths == 0)
    raws = block.raw_records(empty) if len(empty) else []
    errors = [error_record(block.source, int(block.lines[i]) if block.lines[i] >= 0 else None, int(block.offsets[i]),
                           explode, "REQUIRED", f"{explode} must list at least one event", raws[n].as_py())
              for n, i in enumerate(empty.tolist())]
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    elements = pc.list_flatten(lists)
    take = pa.array(parents, pa.int64())
    columns = {name: block.table.column(name).combine_chunks().take(take)
               for name in block.table.column_names if name != explode}
    columns[explode] = elements
    table = pa.table(columns)
    exploded = RowBlock(block.source, table, block.offsets[parents], block.lines[parents],
                        lambda rows: _parent_raws(block, parents, rows), block.errors, block.lines_spanned,
                        block.records)
    return exploded, errors, block.table.num_rows


def _parent_raws(block: RowBlock, parents: np.ndarray, rows: np.ndarray) -> pa.BinaryArray:
    picked = parents[rows]
    unique, which = np.unique(picked, return_inverse=True)
    return block.raw_records(unique).take(pa.array(which, pa.int64()))


def _source(table: pa.Table, options: dict, field: str) -> pa.Array | None:
    """A canonical field's values: its column, else its constant, else None."""
    column = options["fields"].get(field)
    if column is not None:
        values = column_at(table, column)
        if values is not None:
            return values
        return pa.nulls(table.num_rows)
    constants = options.get("constants", {})
    if field in constants:
        return pa.array([constants[field]] * table.num_rows)
    return None


def _events(block: RowBlock, options: dict, event_types: dict) -> tuple[pa.RecordBatch, list[dict]]:
    table = block.table
    check = RowChecks(block)
    where = {f: options["fields"].get(f, f) for f in EVENT_FIELDS}  # the name an error gives a field
    values: dict[str, pa.Array | None] = {}
    for field in TEXT_FIELDS:
        source = _source(table, options, field)
        values[field] = None if source is None else as_text(source)
    if values["visitor_id"] is None and values["user_id"] is not None:
        values["visitor_id"] = values["user_id"]
        where["visitor_id"] = where["user_id"]
    for field in options.get("required", DEFAULT_REQUIRED):
        present = values.get(field) if field in TEXT_FIELDS else _source(table, options, field)
        if present is None:
            raise SourceFileError(f"{block.source}: {field} is required, but the mapping gives it no column or constant")
        check.reject(pc.is_null(present), where[field], "REQUIRED", f"{where[field]} is required")

    times, bad = _times(_source(table, options, "event_time"), options)
    unit = options.get("time_unit", "s")
    check.reject(bad, where["event_time"], "INVALID_TIME",
                 lambda i: f"{where['event_time']} must be a time in {unit}, got "
                           f"{as_text(_source(table, options, 'event_time'))[i].as_py()!r}"[:200])
    check.reject(pc.is_null(times), where["event_time"], "REQUIRED", f"{where['event_time']} is required")
    numbers = {}
    for field in NUMBER_FIELDS:
        source = _source(table, options, field)
        if source is None:
            continue
        numbers[field], broken = as_numbers(source)
        check.reject(broken, where[field], "INVALID_VALUE",
                     lambda i, s=source, f=field: f"{where[f]} must be a finite number, got {as_text(s)[i].as_py()!r}")
    separator = options.get("list_separator", "|")
    lists = {}
    for field in LIST_FIELDS:
        source = _source(table, options, field)
        if source is not None:
            lists[field] = pc.split_pattern(as_text(source), separator) if not pa.types.is_list(source.type) \
                else pc.cast(source, pa.list_(pa.string()))

    keep = pa.array(check.kept, pa.int64())
    kept = len(check.kept)

    def k(array):
        return None if array is None else array.take(keep)

    products = k(values["product_id"])
    quantity = k(numbers.get("quantity"))
    source_types = k(values["event_type"])
    canonical = {
        "event_type": _mapped_types(source_types, event_types),
        "source_event_type": source_types,
        "visitor_id": k(values["visitor_id"]),
        "user_info": user_info_of(k(values["user_id"]) if values["user_id"] is not None
                                  else pa.nulls(kept, pa.string())),
        "event_time": k(times),
        "product_details": None if products is None else _products(products, quantity),
        "purchase_transaction": _purchase(k(values["purchase_id"]), k(numbers.get("revenue")),
                                          k(values["currency_code"]), kept),
        "event_value": k(numbers.get("event_value")),
        "attributes": _attributes(table, options.get("attributes", []), keep),
        **{f: k(values[f]) for f in ("session_id", "event_id", "request_id", "search_query", "uri", "referrer_uri",
                                     "page_view_id", "cart_id", "attribution_token", "recommendation_id", "filter",
                                     "order_by")},
        **{f: k(a) for f, a in lists.items()},
    }
    batch = canonical_batch(canonical, block.source, block.offsets[check.kept], block.lines[check.kept],
                            block.raw_records(check.kept), MappedEvents.name)
    return batch, check.errors


def _mapped_types(types: pa.Array | None, mapping: dict) -> pa.Array | None:
    """Source types renamed by the format's map (the config's ``event_type_map`` included)."""
    if types is None or not mapping:
        return types
    position = pc.index_in(types, value_set=pa.array(list(mapping), pa.string()))
    return pc.coalesce(pa.array(list(mapping.values()), pa.string()).take(position), types)


def _times(values: pa.Array, options: dict) -> tuple[pa.Array, np.ndarray]:
    unit = options.get("time_unit", "s")
    if unit in UNIX_UNITS:
        return unix_times(values, unit)
    if unit == "rfc3339":
        return rfc3339_times(values)
    return pattern_times(values, unit, str(options.get("timezone", "UTC")))


def _products(ids: pa.Array, quantity: pa.Array | None) -> pa.ListArray:
    """One product per row (none where the id is null), with its quantity when mapped."""
    details = product_details_type()
    present = ids.is_valid().to_numpy(zero_copy_only=False)
    offsets = np.concatenate(([0], np.cumsum(present))).astype(np.int32)
    keep = pa.array(np.flatnonzero(present), pa.int64())
    product = pa.StructArray.from_arrays([ids.take(keep)], fields=list(details.value_type.field("product").type))
    counts = pa.nulls(len(keep), pa.int64()) if quantity is None else pc.cast(quantity.take(keep), pa.int64(), safe=False)
    entries = pa.StructArray.from_arrays([product, counts], fields=list(details.value_type))
    return pa.ListArray.from_arrays(pa.array(offsets), entries, type=details,
                                    mask=None if present.all() else pa.array(~present))


def _purchase(ids, revenue, currency, n: int) -> pa.Array | None:
    if ids is None and revenue is None and currency is None:
        return None
    parts = [ids, revenue, None, None, currency]
    arrays = [pa.nulls(n, f.type) if a is None else pc.cast(a, f.type) for a, f in zip(parts, PURCHASE_TRANSACTION,
                                                                                        strict=True)]
    given = np.zeros(n, dtype=bool)
    for a in (ids, revenue, currency):
        if a is not None:
            given |= a.is_valid().to_numpy(zero_copy_only=False)
    return pa.StructArray.from_arrays(arrays, fields=list(PURCHASE_TRANSACTION), mask=pa.array(~given))


def _attributes(table: pa.Table, columns: list[str], keep: pa.Array) -> pa.Array | None:
    if not columns:
        return None
    values = []
    for path in columns:
        column = column_at(table, path).take(keep)
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        values.append(column if numeric else as_text(column))
    return attributes_from_columns([c.rsplit(".", 1)[-1] for c in columns], values)


@register_format
class MappedCatalog(CatalogFormat):
    """Any CSV, JSON-lines or Parquet product file, mapped to catalog fields by options."""

    name = "mapped"
    suffixes = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet")
    description = "CSV, JSON lines or Parquet products mapped by a config (catalog_format_options.fields)"
    option_names = {**_COMMON_OPTIONS, "list_separator": "the separator of list fields given as text (default |)"}
    detectable = False

    @classmethod
    def check_options(cls, options) -> dict:
        options = super().check_options(options)
        _check_common(options, ("id", *CATALOG_FIELD_TYPES))
        if "id" not in options["fields"]:
            raise FormatOptionError("fields.id", "name the column that holds the product id")
        return options

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[tuple[pa.Table, list[dict]]]:
        for block in _mapped_rows(byte_range, block_bytes, self.options, "a mapped catalog"):
            products, errors = self._products(block)
            yield products, block.errors + errors

    def _products(self, block: RowBlock) -> tuple[pa.Table, list[dict]]:
        table, options = block.table, self.options
        check = RowChecks(block)
        id_column = options["fields"]["id"]
        ids = as_text(_source(table, options, "id"))
        check.reject(pc.is_null(ids), id_column, "REQUIRED", f"catalog: {id_column} is required")
        columns = {"id": ids}
        separator = options.get("list_separator", "|")
        for field in self.fields:
            kind, source = CATALOG_FIELD_TYPES[field], _source(table, options, field)
            if source is None:
                columns[field] = pa.nulls(table.num_rows, kind)
            elif pa.types.is_list(kind):
                columns[field] = pc.cast(source, kind) if pa.types.is_list(source.type) else \
                    pc.split_pattern(as_text(source), separator)
            elif pa.types.is_floating(kind):
                numbers, bad = as_numbers(source)
                column = options["fields"].get(field, field)
                check.reject(bad, column, "INVALID_VALUE", f"catalog: {column} must be a finite number")
                columns[field] = numbers
            else:
                columns[field] = as_text(source)
        keep = pa.array(check.kept, pa.int64())
        products = pa.table({name: column.take(keep) for name, column in columns.items()})
        return products.cast(catalog_schema(self.fields)), check.errors


__all__ = ["MappedCatalog", "MappedEvents"]
