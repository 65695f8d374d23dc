"""Event store data files: write batches as date-partitioned Parquet, describe what was written.

Files are written at their final place under the store but are part of the table only once a
commit adds them; a failed job's files are never referenced and are removed when it can.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from eventlake.io.bloom import bloom_options, row_groups_that_may_hold
from eventlake.io.delta_log import IMPORTED_VERSION_TAG, join_path
from eventlake.io.object_store import delete_paths, is_missing
from eventlake.schema import PARTITION_COLUMN, parquet_leaf_paths

ROW_GROUP_ROWS = 131_072
MAX_BUFFERED_ROWS = 262_144  # rows held across all open files of one writer
MAX_FILE_ROWS = 2_000_000
# Row groups held by one writer's open files. A Parquet writer keeps every row group's metadata
# (about 600 bytes per column) until its file closes; with many dates open and small row
# groups that grew by about 3 MB per million events, so files close before it does.
MAX_OPEN_ROW_GROUPS = 512
MAX_KEPT_SLICES = 256  # a rewrite dropping more rows than this filters them out instead (keep_rows)


UNTYPED = "(no event type)"  # the summary's name for events whose source gives no type


@dataclass
class WrittenFile:
    """One data file: the fields of its Delta add action and its counts.

    Its rows' fingerprints stay in the file: dedupe reads them back one date at a time, so that
    nothing that grows with the run's size travels between steps.
    """

    path: str  # relative to the store
    date: str
    size: int = 0
    rows: int = 0
    joined: int = 0
    by_event_type: dict = field(default_factory=dict)
    min_time: int = 0  # microseconds since the epoch
    max_time: int = 0
    imported_version: int | None = None  # the import that brought the rows in; set when it commits

    def count(self, table: pa.Table) -> None:
        """Add a written slice's rows, joins, event types (a features table: modules) and time
        range to this file's counts."""
        times = pc.min_max(pc.cast(table.column("event_time"), pa.int64())).as_py()
        self.min_time = times["min"] if not self.rows else min(self.min_time, times["min"])
        self.max_time = times["max"] if not self.rows else max(self.max_time, times["max"])
        self.rows += len(table)
        if "joined" in table.column_names:  # a features table has no join, and counts by module
            self.joined += int(pc.sum(pc.cast(table.column("joined"), pa.int64())).as_py() or 0)
        kinds = table.column("event_type" if "event_type" in table.column_names else "module")
        for entry in pc.value_counts(kinds.combine_chunks()).to_pylist():
            kind = UNTYPED if entry["values"] is None else entry["values"]  # Personalize's EVENT_TYPE is optional
            self.by_event_type[kind] = self.by_event_type.get(kind, 0) + entry["counts"]

    def add_action(self) -> dict:
        stats = {
            "numRecords": self.rows,
            "minValues": {"event_time": _iso(self.min_time)},
            "maxValues": {"event_time": _iso(self.max_time)},
            "nullCount": {"event_time": 0},
        }
        return {
            "add": {
                "path": self.path,
                "partitionValues": {PARTITION_COLUMN: self.date},
                "size": self.size,
                "modificationTime": int(time.time() * 1000),
                "dataChange": True,
                "stats": json.dumps(stats, separators=(",", ":")),
                # Delta keeps no min/max for booleans; rejoin and purge skip files by this count.
                "tags": {"joined_rows": str(self.joined),
                         **({} if self.imported_version is None else {IMPORTED_VERSION_TAG: str(self.imported_version)})},
            }
        }


def file_rows(add: dict) -> int | None:
    """A data file's row count, from its add action's statistics (None when it has none)."""
    stats = json.loads(add.get("stats") or "{}")
    return stats.get("numRecords")


def file_joined_rows(add: dict) -> int | None:
    """How many of a data file's events are joined, from its add action's tag (None when untagged)."""
    joined = add.get("tags", {}).get("joined_rows")
    return None if joined is None else int(joined)


def remove_action(add: dict) -> dict:
    """The Delta remove action for a file the log added with ``add``."""
    return {
        "remove": {
            "path": add["path"],
            "deletionTimestamp": int(time.time() * 1000),
            "dataChange": True,
            "extendedFileMetadata": True,
            "partitionValues": add.get("partitionValues", {}),
            "size": add.get("size", 0),
        }
    }


def _iso(micros: int) -> str:
    return np.datetime64(int(micros), "us").astype("datetime64[ms]").astype(str) + "Z"


def write_options(schema: pa.Schema, rows_per_group: int | None = None) -> dict:
    """Parquet settings: zstd; no dictionary for columns nearly unique per row; with
    ``rows_per_group``, Bloom filters of the user columns sized for row groups that big.

    Fingerprints and offsets never repeat and nobody filters on them: dictionary pages and
    min/max statistics for them cost write time and buy nothing. Event times (microseconds)
    hardly repeat either, but readers filter on them, so they keep their statistics. Every
    nested leaf has statistics too (the writer names columns by leaf path): their null counts
    tell readers which columns a file leaves empty, so that a read skips them, for 3% more
    write time. The Bloom filters (``eventlake.io.bloom``) let a purge of one user skip the
    files that do not hold the user.
    """
    unique = {"event_fingerprint", "source_offset"}
    names = [n for n in schema.names if n not in unique]
    leaves = [p for f in schema if f.name in names for p in parquet_leaf_paths(f)]
    options = {"compression": "zstd", "use_dictionary": [n for n in names if n != "event_time"], "write_statistics": leaves}
    blooms = bloom_options([p for f in schema for p in parquet_leaf_paths(f)], rows_per_group) if rows_per_group else {}
    return {**options, "bloom_filter_options": blooms} if blooms else options


def new_file_path(date: str, run_id: str) -> str:
    """A fresh data file's path, relative to the store: the run's files are recognisable by name."""
    return f"{PARTITION_COLUMN}={date}/part-{run_id}-{uuid.uuid4().hex[:12]}.parquet"


class _OpenFile:
    def __init__(self, store: str, date: str, run_id: str):
        self.info = WrittenFile(path=new_file_path(date, run_id), date=date)
        self.handle = FileSystems.create(join_path(store, self.info.path), compression_type=CompressionTypes.UNCOMPRESSED)
        self.sink = pa.PythonFile(self.handle, mode="w")
        self.writer: pq.ParquetWriter | None = None  # made at the first write, which sizes the Bloom filters
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.row_groups = 0


class StoreFileWriter:
    """Buffers batches per event date and writes them as Parquet row groups; bounded memory.

    Memory is bounded in rows (``MAX_BUFFERED_ROWS`` waiting to be written) and in row groups
    (``MAX_OPEN_ROW_GROUPS`` whose metadata the open files hold), never in the input's size.
    """

    def __init__(self, store: str, run_id: str, schema: pa.Schema):
        self.store, self.run_id, self.schema = store, run_id, schema
        self.open: dict[str, _OpenFile] = {}
        self.buffered = 0
        self.row_groups = 0
        self.finished: list[WrittenFile] = []

    def add(self, batch: pa.RecordBatch) -> None:
        if not len(batch):
            return
        batch = batch.select(self.schema.names)
        for date, part in split_by_date(batch):
            self._append(date, part)
        if self.buffered > MAX_BUFFERED_ROWS:
            # Parts are slices of a sorted batch and keep all of it alive: flushing every file
            # releases them all, so memory stays within the limit whatever the mix of dates.
            for f in list(self.open.values()):
                self._flush(f)
        if self.row_groups > MAX_OPEN_ROW_GROUPS:
            # Close the biggest files first, down to half the limit: a hot date's file closes,
            # cold dates' files stay open to grow, and not every flush closes a file.
            for f in sorted(self.open.values(), key=lambda f: f.row_groups, reverse=True):
                if self.row_groups <= MAX_OPEN_ROW_GROUPS // 2:
                    break
                self._close(f)

    def _append(self, date: str, part: pa.RecordBatch) -> None:
        f = self.open.get(date)
        if f is None:
            f = self.open[date] = _OpenFile(self.store, date, self.run_id)
        f.pending.append(part)
        f.pending_rows += len(part)
        self.buffered += len(part)
        if f.pending_rows >= ROW_GROUP_ROWS:
            self._flush(f)

    def _flush(self, f: _OpenFile) -> None:
        if not f.pending:
            return
        table = pa.Table.from_batches(f.pending, schema=self.schema)
        if f.writer is None:
            f.writer = pq.ParquetWriter(f.sink, self.schema, **write_options(self.schema, rows_per_group=len(table)))
        f.writer.write_table(table, row_group_size=max(len(table), 1))
        f.info.count(table)
        f.row_groups += 1
        self.row_groups += 1
        self.buffered -= f.pending_rows
        f.pending, f.pending_rows = [], 0
        if f.info.rows >= MAX_FILE_ROWS:
            self._close(f)

    def _close(self, f: _OpenFile) -> None:
        self._flush(f)
        if f.writer is not None:
            f.writer.close()
        if not f.sink.closed:
            f.sink.close()
        if not f.handle.closed:
            f.handle.close()
        self.row_groups -= f.row_groups
        info = f.info
        info.size = file_size(self.store, info.path)
        self.finished.append(info)
        del self.open[info.date]

    def close_full(self) -> list[WrittenFile]:
        """Files that reached their size limit since the last call."""
        finished, self.finished = self.finished, []
        return finished

    def close(self) -> list[WrittenFile]:
        for f in list(self.open.values()):
            self._close(f)
        finished, self.finished = self.finished, []
        return finished

    def abort(self) -> None:
        """The bundle failed (a full disk, say): let go of every open file without writing more.
        The half-written files stay for the next job's clean-up; an open handle would keep the
        file system busy and, when the writer is collected, fail again with a traceback."""
        for f in self.open.values():
            for closable in (f.writer, f.sink, f.handle):
                if closable is None:
                    continue
                try:
                    closable.close()
                except Exception:  # noqa: BLE001, S110 - already failing: the first error is the one to report
                    pass
        self.open.clear()


def split_by_date(batch: pa.RecordBatch):
    """``(date, rows of that date)`` pairs: slices of the batch sorted by date.

    One ``take`` of the whole batch and zero-copy slices: a ``take`` per date costs a pass over
    the whole batch each for nested columns, which made the split cost more than the write.
    """
    days = pc.cast(pc.cast(batch.column("event_time"), pa.timestamp("us")), pa.date32())
    numbers = days.cast(pa.int32()).to_numpy(zero_copy_only=False)
    first = numbers[0]
    if (numbers == first).all():
        yield _date_text(first), batch
        return
    if np.all(numbers[1:] >= numbers[:-1]):  # already grouped (validation hands batches over so)
        ordered = numbers
    else:
        order = np.argsort(numbers, kind="stable")
        ordered = numbers[order]
        batch = batch.take(pa.array(order))
    bounds = np.flatnonzero(np.diff(ordered)) + 1
    for lo, hi in zip(np.concatenate(([0], bounds)), np.concatenate((bounds, [len(ordered)])), strict=True):
        yield _date_text(ordered[lo]), batch.slice(lo, hi - lo)


def _date_text(days: int) -> str:
    return str(np.datetime64(int(days), "D"))


def file_size(store: str, relative_path: str) -> int:
    return FileSystems.match([join_path(store, relative_path)])[0].metadata_list[0].size_in_bytes


def read_columns(store: str, relative_path: str, columns: list[str] | None = None,
                 holding: list[tuple[str, tuple[str, ...]]] | None = None) -> pa.Table | None:
    """A data file's ``columns``; ``FileNotFoundError`` when another job deleted it.

    With ``holding`` ((column path, values) pairs), only the row groups whose Bloom filters
    may hold, for every pair, one of its values; None when that is no row group at all.
    """
    path = join_path(store, relative_path)
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            # ParquetFile.read: read_table's dataset scan cost a quarter more for a few columns
            parquet = pq.ParquetFile(pa.PythonFile(handle, mode="r"))
            if holding:
                groups = row_groups_that_may_hold(parquet, handle, holding)
                if not groups:
                    return None
                if len(groups) < parquet.num_row_groups:
                    return parquet.read_row_groups(groups, columns=columns, use_threads=False)
            return parquet.read(columns=columns, use_threads=False)
    except Exception as exc:
        if is_missing(exc):
            raise FileNotFoundError(path) from None
        raise


def delete_files(store: str, relative_paths: list[str]) -> None:
    """Delete data files; ones already gone are fine."""
    delete_paths([join_path(store, p) for p in relative_paths])


class _WriteStoreFilesFn(beam.DoFn):
    def __init__(self, store: str, run_id: str, schema: pa.Schema):
        self._args = (store, run_id, schema)

    def start_bundle(self):
        self._writer = StoreFileWriter(*self._args)

    def process(self, batch: pa.RecordBatch):
        try:
            self._writer.add(batch)
        except BaseException:
            self._writer.abort()
            raise
        yield from self._writer.close_full()

    def finish_bundle(self):
        try:
            finished = self._writer.close()
        except BaseException:
            self._writer.abort()
            raise
        for info in finished:
            yield WindowedValue(info, MIN_TIMESTAMP, [GlobalWindow()])


class WriteStoreFiles(beam.PTransform):
    """Joined batches -> Parquet files under ``store``, one ``WrittenFile`` per file (not committed)."""

    def __init__(self, store: str, run_id: str, schema: pa.Schema):
        super().__init__()
        self._fn = _WriteStoreFilesFn(store, run_id, schema)

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[WrittenFile]:
        return batches | beam.ParDo(self._fn)


def rewrite_without(store: str, info: WrittenFile, keep: np.ndarray) -> WrittenFile:
    """Write ``info``'s file again with only the ``keep`` rows, then remove the old file.

    When no row is left no file is written, and the result has ``rows == 0``.
    """
    start = 0

    def kept(table: pa.Table) -> pa.Table:
        nonlocal start
        rows = keep[start : start + len(table)]
        start += len(table)
        return keep_rows(table, rows)

    new = rewrite_file(store, info.path, WrittenFile(info.path.replace(".parquet", "-d.parquet"), info.date), kept)
    delete_files(store, [info.path])
    return new


def rewrite_file(store: str, path: str, new: WrittenFile, change) -> WrittenFile:
    """Write ``new`` (an empty ``WrittenFile``) with ``change(rows)`` of ``path``'s rows.

    The rows are read and written in runs of whole row groups of up to ``ROW_GROUP_ROWS`` rows,
    each written as one row group: memory follows the run, not the file, and an import's small
    row groups (a few thousand rows each) come out merged, which cost a sixth less than one
    write per row group and reads faster later. A file whose rows all go is not written: the
    result then has ``rows == 0``. ``FileNotFoundError`` when another job has deleted ``path``.
    """
    target = join_path(store, new.path)
    try:
        opened = FileSystems.open(join_path(store, path), compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as exc:
        if is_missing(exc):  # another job's commit deleted it since it was inspected
            raise FileNotFoundError(join_path(store, path)) from None
        raise
    with opened as source:
        parquet = pq.ParquetFile(pa.PythonFile(source, mode="r"))
        runs = consecutive_groups(list(range(parquet.num_row_groups)),
                                  lambda g: parquet.metadata.row_group(g).num_rows, ROW_GROUP_ROWS)
        writer = handle = None
        try:
            for run in runs:
                table = change(parquet.read_row_groups(run, use_threads=False))
                if not len(table):
                    continue
                if writer is None:
                    handle = FileSystems.create(target, compression_type=CompressionTypes.UNCOMPRESSED)
                    biggest = max(sum(parquet.metadata.row_group(g).num_rows for g in r) for r in runs)
                    writer = pq.ParquetWriter(pa.PythonFile(handle, mode="w"), table.schema,
                                              **write_options(table.schema, rows_per_group=biggest))
                writer.write_table(table, row_group_size=max(len(table), 1))
                new.count(table)
        finally:
            if writer is not None:
                writer.close()
                handle.close()
    if new.rows:
        new.size = file_size(store, new.path)
    return new


def keep_rows(table: pa.Table, keep: np.ndarray) -> pa.Table:
    """``table``'s rows where ``keep`` is true, in order.

    A rewrite usually drops a handful of rows (a purged visitor, a few duplicates): the rows
    between them are kept as zero-copy slices, where a filter copies every nested column (50 ms
    for a 41k-row file, 15% of its rewrite). Many dropped rows are filtered as usual.
    """
    dropped = np.flatnonzero(~keep)
    if not len(dropped):
        return table
    if len(dropped) > MAX_KEPT_SLICES:
        return table.filter(pa.array(keep))
    starts, ends = np.concatenate(([0], dropped + 1)), np.concatenate((dropped, [len(keep)]))
    slices = [table.slice(a, b - a) for a, b in zip(starts, ends, strict=True) if b > a]
    return pa.concat_tables(slices) if slices else table.slice(0, 0)


def consecutive_groups(items: list, size_of, limit: int) -> list[list]:
    """``items`` in order, cut into runs whose sizes sum to at most ``limit`` (an item larger than
    ``limit`` is a run of its own)."""
    out, current, total = [], [], 0
    for item in items:
        n = size_of(item)
        if current and total + n > limit:
            out.append(current)
            current, total = [], 0
        current.append(item)
        total += n
    if current:
        out.append(current)
    return out
