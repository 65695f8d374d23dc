"""Read the event store back as canonical batches: the start of every export.

``ReadEventStore`` fixes one store version when the pipeline is built, so that every step of a
job sees the same table; it reads only the files a filter can match (by date partition, the
log's event-time statistics and joined counts, as purge does), and of those only the row
groups whose statistics allow a match. ``since_version`` keeps the events that imports after
that version brought in: the log tags every data file with the version of the import its rows
came from, and rejoin and purge carry the tag over to the files they rewrite.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from eventlake.filters import EventFilter, TimeTerm, parse_filter
from eventlake.io import delta_log
from eventlake.io.delta_log import imported_version, join_path
from eventlake.io.object_store import is_missing
from eventlake.io.store import consecutive_groups
from eventlake.schema import (
    CATALOG_FIELD_TYPES,
    EVENT_FIELDS,
    FINGERPRINT_FIELD,
    FORMAT_FIELD,
    JOIN_FIELDS,
    ORIGIN_FIELDS,
    PARTITION_COLUMN,
    parquet_leaf_paths,
    product_details_type,
)

_KNOWN_FIELDS = {f.name: f for f in [*EVENT_FIELDS, *ORIGIN_FIELDS, *JOIN_FIELDS, FINGERPRINT_FIELD, FORMAT_FIELD]}
_PARTITION_FIELD = pa.field(PARTITION_COLUMN, pa.date32())
BATCH_ROWS = 131_072  # rows of one batch the reader gives


class StoreReadError(RuntimeError):
    """The store cannot be read as asked (no store, a version it does not have, a file gone)."""


class StoreChanged(StoreReadError):
    """A file of the version being read was deleted by a later job (a purge or rejoin): read again."""


@dataclass(frozen=True)
class StoreSelection:
    """The files of one store version that may hold the events asked for."""

    store: str
    version: int
    files: tuple[dict, ...]  # add actions, in (date, path) order
    files_total: int
    schema: pa.Schema  # the columns the reader gives, in the store's order


def table_columns(snapshot: delta_log.Snapshot) -> pa.Schema:
    """The store's logical columns as Arrow fields, from the log's schema and the canonical types."""
    fields = json.loads(snapshot.metadata["schemaString"])["fields"] if snapshot.metadata else []
    out = []
    for f in fields:
        if f["name"] == PARTITION_COLUMN:
            out.append(_PARTITION_FIELD)
        elif f["name"] == "product_details":
            out.append(pa.field("product_details", _product_details_type(f["type"])))
        elif f["name"] in _KNOWN_FIELDS:
            out.append(_KNOWN_FIELDS[f["name"]])
    return pa.schema(out)


def _product_details_type(delta_type: dict) -> pa.DataType:
    product = next(f for f in delta_type["elementType"]["fields"] if f["name"] == "product")
    names = tuple(f["name"] for f in product["type"]["fields"] if f["name"] in CATALOG_FIELD_TYPES)
    return product_details_type(names)


def columns_schema(store_schema: pa.Schema, names) -> pa.Schema:
    """``names`` as Arrow fields: the store's own, or the canonical type of a column the store
    does not have yet (such a column reads as null).

    A dotted name (``product_details.product.id``) reads only that part of a nested column:
    the column keeps its shape with the other fields left out. Reading a product's id alone
    took a thirtieth of the time of reading whole products with their catalog fields.
    """
    parts: dict[str, list[list[str]]] = {}
    for name in names:
        top, *rest = name.split(".")
        parts.setdefault(top, []).append(rest)
    out = []
    for top, paths in parts.items():
        if top in store_schema.names:
            field = store_schema.field(top)
        elif top in _KNOWN_FIELDS:
            field = _KNOWN_FIELDS[top]
        else:
            raise StoreReadError(f"columns: the store has no column {top!r}; it has {', '.join(store_schema.names)}")
        if all(paths):
            try:
                field = field.with_type(_narrowed(field.type, paths))
            except KeyError as exc:
                raise StoreReadError(f"columns: the column {top!r} has no field {exc.args[0]!r}") from None
        out.append(field)
    return pa.schema(out)


def _narrowed(data_type: pa.DataType, paths: list[list[str]]) -> pa.DataType:
    """``data_type`` with only the struct fields ``paths`` lead to (lists are passed through)."""
    if pa.types.is_list(data_type):
        return pa.list_(pa.field(data_type.value_field.name, _narrowed(data_type.value_type, paths)))
    if not pa.types.is_struct(data_type):
        return data_type
    if any(not p for p in paths):
        return data_type  # the whole of this struct is wanted
    fields = []
    for i in range(data_type.num_fields):
        child = data_type.field(i)
        below = [p[1:] for p in paths if p[0] == child.name]
        if below:
            fields.append(child.with_type(_narrowed(child.type, below)))
    missing = {p[0] for p in paths} - {f.name for f in fields}
    if missing:
        raise KeyError(sorted(missing)[0])
    return pa.struct(fields)


def select_files(store: str, event_filter: EventFilter | None = None, version: int | None = None,
                 since_version: int | None = None, columns: list[str] | None = None) -> StoreSelection:
    """The files a read needs; ``StoreReadError`` when the store, the version or a column is wrong."""
    try:
        snapshot = delta_log.read_snapshot(store, version)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise StoreReadError(f"cannot read the store {store}: {exc}") from None
    if not snapshot.exists:
        raise StoreReadError(f"there is no event store at {store}")
    if version is not None and snapshot.version != version:
        raise StoreReadError(f"the store {store} has no version {version} (its latest is {snapshot.version})")
    schema = table_columns(snapshot)
    if columns is not None:
        unknown = [c for c in columns if c.split(".")[0] not in schema.names]
        if unknown:
            raise StoreReadError(f"columns: the store has no column {unknown[0]!r}; it has {', '.join(schema.names)}")
        schema = columns_schema(schema, columns)
    files = sorted(snapshot.files.values(), key=lambda a: (a.get("partitionValues", {}).get(PARTITION_COLUMN) or "",
                                                           a["path"]))
    chosen = files
    if since_version is not None:
        if not -1 <= since_version <= snapshot.version:
            raise StoreReadError(f"since_version: the store has versions 0 to {snapshot.version}, not {since_version}")
        unknown = [a["path"] for a in files if imported_version(a) is None]
        if unknown:
            raise StoreReadError(f"since_version: the log does not say which import brought in the rows of "
                                 f"{unknown[0]} (a file rewritten by an older eventlake from several imports); "
                                 "export without --since-version once")
        chosen = [a for a in chosen if imported_version(a) > since_version]
    if event_filter is not None:
        chosen = [a for a in chosen if event_filter.may_match_file(a)]
    return StoreSelection(store, snapshot.version, tuple(chosen), len(files), schema)


def read_file_batches(store: str, add: dict, schema: pa.Schema, event_filter: EventFilter | None = None,
                      since_version: int | None = None, use_threads: bool = False) -> Iterator[pa.RecordBatch]:
    """The rows of one data file that pass the filter, a row group at a time, as ``schema``.

    A column the file lacks (one added to the store after the file was written) reads as null;
    the partition column comes from the log. ``StoreChanged`` when the file is gone.
    ``use_threads``: decode columns on Arrow's thread pool, for a reader alone in its process;
    pipeline workers read on their own thread (each has a CPU, and the pool made them contend:
    a 5M export took 8% longer).
    """
    if since_version is not None:
        brought_in = imported_version(add)
        if brought_in is None or brought_in <= since_version:
            return
    date = add.get("partitionValues", {}).get(PARTITION_COLUMN)
    wanted = [n for n in schema.names if n != PARTITION_COLUMN]
    with open_store_file(store, add) as handle:
        parquet = pq.ParquetFile(pa.PythonFile(handle, mode="r"))
        present = set(parquet.schema_arrow.names)
        needed = [n for n in (event_filter.columns if event_filter is not None else []) if n not in wanted]
        read = []
        for name in wanted:
            if name in present:
                read += parquet_leaf_paths(schema.field(name))
        read += [n for n in needed if n in present]
        groups = [g for g in range(parquet.num_row_groups)
                  if event_filter is None or _row_group_may_match(parquet.metadata.row_group(g), event_filter)]
        for chunk in _chunks(parquet.metadata, groups):
            # A column with no value in these row groups is not read (it reads as null, and an
            # empty list as null too): a third of an export's reading was of such columns.
            empty = set.intersection(*(_valueless_columns(parquet.metadata.row_group(g)) for g in chunk))
            table = parquet.read_row_groups(chunk, columns=[p for p in read if p.split(".")[0] not in empty],
                                            use_threads=use_threads)
            if event_filter is not None:
                table = table.filter(pa.array(event_filter.matches(table)))
            if not len(table):
                continue
            batch = _conform(table, schema, date)
            for start in range(0, len(batch), BATCH_ROWS):
                yield batch.slice(start, BATCH_ROWS)


def open_store_file(store: str, add: dict):
    """A data file opened for reading; ``StoreChanged`` when a later job has deleted it."""
    try:
        return FileSystems.open(join_path(store, add["path"]), compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as exc:
        if is_missing(exc):
            raise StoreChanged(f"the store file {add['path']} was removed by a later version while it was being "
                               "read; read the store again") from None
        raise


def _chunks(metadata: pq.FileMetaData, groups: list[int]) -> list[list[int]]:
    """Row groups read together, up to ``BATCH_ROWS`` rows a read: the store's row groups can be
    small (a few thousand rows), and a read per row group cost a third of an export."""
    return consecutive_groups(groups, lambda g: metadata.row_group(g).num_rows, BATCH_ROWS)


def _valueless_columns(group: pq.RowGroupMetaData) -> set[str]:
    """Top-level columns whose every leaf in the row group is null, by the footer's statistics."""
    empty, valued = set(), set()
    for i in range(group.num_columns):
        column = group.column(i)
        top = column.path_in_schema.split(".")[0]
        stats = column.statistics if column.is_stats_set else None
        if stats is not None and stats.null_count is not None and stats.null_count == column.num_values:
            empty.add(top)
        else:
            valued.add(top)
    return empty - valued


def columns_with_values(store: str, add: dict, names) -> set[str] | None:
    """Which of the top-level columns ``names`` hold any value in a data file, from its Parquet
    footer alone (leaf values against null counts); None when the footer lacks statistics."""
    with open_store_file(store, add) as handle:
        metadata = pq.ParquetFile(pa.PythonFile(handle, mode="r")).metadata
    found = set()
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for i in range(group.num_columns):
            column = group.column(i)
            top = column.path_in_schema.split(".")[0]
            if top not in names or top in found:
                continue
            if not column.is_stats_set or column.statistics.null_count is None:
                return None
            if column.num_values > column.statistics.null_count:
                found.add(top)
    return found


def _conform(table: pa.Table, schema: pa.Schema, date: str | None) -> pa.RecordBatch:
    arrays = []
    for f in schema:
        if f.name == PARTITION_COLUMN:
            day = None if date is None else dt.date.fromisoformat(date)
            arrays.append(pa.repeat(pa.scalar(day, pa.date32()), len(table)))
        elif f.name in table.column_names:
            arrays.append(table.column(f.name).combine_chunks().cast(f.type))
        else:
            arrays.append(pa.nulls(len(table), f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _row_group_may_match(group: pq.RowGroupMetaData, event_filter: EventFilter) -> bool:
    """False when the row group's event-time statistics rule every row out."""
    terms = [t for t in event_filter.terms if isinstance(t, TimeTerm)]
    if not terms:
        return True
    for i in range(group.num_columns):
        column = group.column(i)
        if column.path_in_schema == "event_time" and column.is_stats_set and column.statistics.has_min_max:
            low, high = column.statistics.min, column.statistics.max
            if isinstance(low, dt.datetime) and isinstance(high, dt.datetime):
                low, high = (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc) for t in (low, high))
                return all(t.may_match(low, high) for t in terms)
    return True


class ReadStoreFileFn(beam.DoFn):
    """Add actions -> the batches of each file's rows that pass the filter (``ReadEventStore``'s
    engine, and the export's narrow passes)."""

    def __init__(self, store: str, schema: pa.Schema, filter_text: str | None, since_version: int | None):
        self._store, self._schema, self._filter_text, self._since = store, schema, filter_text, since_version

    def setup(self):
        self._filter = parse_filter(self._filter_text) if self._filter_text else None

    def process(self, add: dict) -> Iterator[pa.RecordBatch]:
        yield from read_file_batches(self._store, add, self._schema, self._filter, self._since)


class ReadEventStore(beam.PTransform):
    """A pipeline root -> the store's events as ``pa.RecordBatch``es of the stored columns.

    Args:
        store: the event store (local path, ``gs://`` or ``s3://``).
        filter: a filter in the purge language (``eventType = purchase-complete``, ...); only
            files and row groups that can match are read.
        columns: the columns to give (default all, ``event_date`` included); a filter may use
            others.
        version: the store version to read (default: the latest when the pipeline is built).
        since_version: only events that imports after this version brought in.

    The version read is ``selection.version``; a bad filter, version or column raises at
    construction (``FilterError``, ``StoreReadError``), not on a worker.
    """

    def __init__(self, store: str, filter: str | None = None, columns: list[str] | None = None,  # noqa: A002
                 version: int | None = None, since_version: int | None = None):
        super().__init__()
        self._filter_text = filter or None
        event_filter = parse_filter(filter) if self._filter_text else None
        self._since = since_version
        self.selection = select_files(store, event_filter, version, since_version, columns)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[pa.RecordBatch]:
        s = self.selection
        return (
            pbegin
            | "ListStoreFiles" >> beam.Create(list(s.files), reshuffle=True)
            | "ReadStoreFiles" >> beam.ParDo(ReadStoreFileFn(s.store, s.schema, self._filter_text, self._since))
        )


def read_events_table(store: str, filter: str | None = None, columns: list[str] | None = None,  # noqa: A002
                      version: int | None = None, since_version: int | None = None) -> pa.Table:
    """The events as one Arrow table, read in this process (for notebooks and small stores)."""
    event_filter = parse_filter(filter) if filter else None
    selection = select_files(store, event_filter, version, since_version, columns)
    batches = [b for add in selection.files
               for b in read_file_batches(store, add, selection.schema, event_filter, since_version, use_threads=True)]
    return pa.Table.from_batches(batches, schema=selection.schema)

