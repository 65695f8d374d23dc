"""Drop duplicate events, one event date at a time.

Equal events have equal event times, so duplicates never cross a date partition: each date is
deduplicated on its own, in parallel, reading only that date's fingerprints back from the files
just written and from the store's files of that date. Memory follows the largest date, not the
run. The first copy (by source file, then byte offset) is the one kept.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.io import delta_log
from eventlake.io.store import WrittenFile, read_columns, rewrite_without
from eventlake.schema import PARTITION_COLUMN

_KEY_COLUMNS = ["event_fingerprint", "source_uri", "source_offset"]


def fingerprint_words(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """16-byte fingerprints as an ``(n, 2)`` array of uint64, read straight from Arrow's buffer."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    array = array.cast(pa.binary())
    if not len(array):
        return np.zeros((0, 2), dtype=np.uint64)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    if array.null_count or np.any(np.diff(offsets) != 16):
        raise ValueError("event_fingerprint values must all be 16 bytes")
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.view(np.uint64).reshape(-1, 2)


def order_keys(source_uri: pa.Array | pa.ChunkedArray, offsets: np.ndarray, source_index: dict[str, int]) -> np.ndarray:
    """A sortable position of each row across all sources of a run: source first, then offset."""
    encoded = pc.dictionary_encode(source_uri.combine_chunks() if isinstance(source_uri, pa.ChunkedArray) else source_uri)
    lookup = np.array([source_index[s] for s in encoded.dictionary.to_pylist()], dtype=np.int64)
    return (lookup[encoded.indices.to_numpy()] << 40) + np.asarray(offsets, dtype=np.int64)


def first_new(keys: np.ndarray, order: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Mask of the rows to keep: the first of each key by ``order``, and none whose key is ``known``.

    One sort by the high word finds the rows that share it with another (duplicates, or a rare
    64-bit collision); only those need the full sort by key and order. A third of the time of
    sorting everything by three keys.
    """
    hi = np.concatenate((known[:, 0], keys[:, 0]))
    lo = np.concatenate((known[:, 1], keys[:, 1]))
    rank = np.concatenate((np.full(len(known), -1, dtype=np.int64), order))  # known keys sort first
    keep = rank >= 0
    by_hi = np.argsort(hi)
    same = hi[by_hi[1:]] == hi[by_hi[:-1]]
    shared = np.zeros(len(hi), dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    tied = by_hi[shared]
    if len(tied):
        ordered = tied[np.lexsort((rank[tied], lo[tied], hi[tied]))]
        leads = np.ones(len(ordered), dtype=bool)
        leads[1:] = (hi[ordered[1:]] != hi[ordered[:-1]]) | (lo[ordered[1:]] != lo[ordered[:-1]])
        keep[ordered] = leads & (rank[ordered] >= 0)
    return keep[len(known) :]


def dedupe_files(store: str, files: list[WrittenFile], known_paths: Iterable[str],
                 source_index: dict[str, int]) -> list[WrittenFile]:
    """``files`` (one date) without repeats among them or of events in ``known_paths``.

    Files that lose rows are rewritten; a file left empty comes back with ``rows == 0``.
    """
    files = [f for f in files if f.rows]
    if not files:
        return []
    keys, orders = [], []
    for f in files:
        table = read_columns(store, f.path, _KEY_COLUMNS)
        keys.append(fingerprint_words(table.column("event_fingerprint")))
        orders.append(order_keys(table.column("source_uri"), table.column("source_offset").to_numpy(), source_index))
    known = [fingerprint_words(t.column(0)) for t in (_known_prints(store, p) for p in known_paths) if t is not None]
    keep = first_new(np.concatenate(keys), np.concatenate(orders),
                     np.concatenate(known) if known else np.zeros((0, 2), dtype=np.uint64))
    out, start = [], 0
    for f in files:
        rows = keep[start : start + f.rows]
        start += f.rows
        out.append(f if rows.all() else rewrite_without(store, f, rows))
    return out


def _known_prints(store: str, path: str) -> pa.Table | None:
    """A stored file's fingerprints; None when a purge or rejoin replaced it meanwhile.

    Its replacement is newer than the version this run compares against, so the commit step
    checks the run's events against it.
    """
    try:
        return read_columns(store, path, ["event_fingerprint"])
    except FileNotFoundError:
        return None


def files_of_date(snapshot: delta_log.Snapshot, date: str) -> list[str]:
    return [path for path, add in snapshot.files.items() if add.get("partitionValues", {}).get(PARTITION_COLUMN) == date]


class _DedupeDateFn(beam.DoFn):
    def __init__(self, store: str, base_version: int, source_index: dict[str, int]):
        self._store, self._base_version, self._source_index = store, base_version, source_index

    def setup(self):
        self._snapshot = delta_log.read_snapshot(self._store, self._base_version)

    def process(self, element: tuple[str, Iterable[WrittenFile]]):
        date, files = element
        yield from dedupe_files(self._store, list(files), files_of_date(self._snapshot, date), self._source_index)


class DropDuplicates(beam.PTransform):
    """Written files -> the same files without duplicate events (some rewritten, some emptied).

    Duplicates are looked for within the run and in the store as of ``base_version``; the commit
    step checks files that other jobs committed after that version.
    """

    def __init__(self, store: str, base_version: int, source_index: dict[str, int]):
        super().__init__()
        self._fn = _DedupeDateFn(store, base_version, source_index)

    def expand(self, written: beam.PCollection[WrittenFile]) -> beam.PCollection[WrittenFile]:
        return (
            written
            | "KeyByDate" >> beam.Map(lambda f: (f.date, f))
            | "GroupByDate" >> beam.GroupByKey()
            | "DropDuplicatesOfDate" >> beam.ParDo(self._fn)
        )
