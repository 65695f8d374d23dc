"""Train / validation / test splits of an export, with no event in two parts.

``time:0.8,0.1,0.1`` cuts the export at two points in time, the times below which 80% and 90%
of its events lie; events at a cut time go to the earlier part, so one moment is never split.
``leave-last:N`` holds out, per user, the last N events for test and the N before them for
validation, always leaving a user's first event in train: a user with k events gives
``min(N, k - 1)`` to test and ``min(N, k - 1 - test)`` to validation. Ties in time are ordered
by the event's fingerprint, so the split is the same on every run.

Both need the whole export before any row is written: the time cut from a histogram of event
seconds, merged over all files; the held-out events by grouping users into buckets (by a hash
of the user id), each bucket sorted on one worker, the held-out events' fingerprints written
to a file the writers map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.exporting import user_ids
from eventlake.io.delta_log import join_path
from eventlake.transforms.catalog import read_catalog, write_catalog
from eventlake.transforms.product_index import ProductIndex, hash_strings

TRAIN, VALID, TEST = 0, 1, 2
PART_NAMES = {2: ("train", "test"), 3: ("train", "valid", "test")}
HOLDOUT_BUCKETS = 16
_SPEC = re.compile(r"^(time):([0-9.]+(?:,[0-9.]+){1,2})$|^(leave-last):([1-9][0-9]*)$")


class SplitError(ValueError):
    """A split spec that cannot be used; the message shows the accepted forms."""


@dataclass(frozen=True)
class SplitSpec:
    kind: str  # "time" or "leave-last"
    fractions: tuple[float, ...] = ()
    last: int = 0

    @property
    def parts(self) -> tuple[str, ...]:
        return PART_NAMES[len(self.fractions)] if self.kind == "time" else PART_NAMES[3]

    @property
    def columns(self) -> tuple[str, ...]:
        """The stored columns assigning a part needs."""
        if self.kind == "time":
            return ("event_time",)
        return ("event_time", "event_fingerprint", "visitor_id", "user_info.user_id")


def parse_split(text: str) -> SplitSpec:
    found = _SPEC.match(text.strip())
    if not found:
        raise SplitError(f"split: {text!r} is not a split; use time:TRAIN,VALID,TEST fractions summing to 1 "
                         "(time:0.8,0.1,0.1 or time:0.9,0.1) or leave-last:N (leave-last:1)")
    if found.group(1):
        fractions = tuple(float(f) for f in found.group(2).split(","))
        if abs(sum(fractions) - 1) > 1e-9 or any(f <= 0 for f in fractions):
            raise SplitError(f"split: the fractions of {text!r} must be positive and sum to 1")
        return SplitSpec("time", fractions)
    return SplitSpec("leave-last", last=int(found.group(4)))


# time: a histogram of event seconds, then the cut points ---------------------------------


def event_seconds(batch: pa.RecordBatch) -> np.ndarray:
    micros = pc.cast(batch.column("event_time"), pa.int64()).to_numpy(zero_copy_only=False)
    return np.floor_divide(micros, 1_000_000)


class TimeHistogram(beam.CombineFn):
    """Batches -> (distinct event seconds, events at each), sorted."""

    def create_accumulator(self):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)

    def add_input(self, accumulator, batch: pa.RecordBatch):
        seconds, counts = np.unique(event_seconds(batch), return_counts=True)
        return self.merge_accumulators([accumulator, (seconds, counts)])

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        seconds = np.concatenate([a[0] for a in accumulators])
        counts = np.concatenate([a[1] for a in accumulators])
        distinct, where = np.unique(seconds, return_inverse=True)
        return distinct, np.bincount(where, weights=counts, minlength=len(distinct)).astype(np.int64)

    def extract_output(self, accumulator):
        return accumulator


def time_cuts(histogram: tuple[np.ndarray, np.ndarray], fractions: tuple[float, ...]) -> list[int]:
    """The last second of each part but the final one."""
    seconds, counts = histogram
    if not len(seconds):
        return [0] * (len(fractions) - 1)
    cumulative = np.cumsum(counts)
    targets = np.cumsum(fractions)[:-1] * cumulative[-1]
    return [int(seconds[min(np.searchsorted(cumulative, t, side="left"), len(seconds) - 1)]) for t in targets]


def time_parts(batch: pa.RecordBatch, cuts: list[int]) -> np.ndarray:
    return np.searchsorted(np.asarray(cuts, np.int64), event_seconds(batch), side="left").astype(np.int8)


# leave-last: users grouped into buckets, the held-out events named by fingerprint ----------


def bucket_users(batch: pa.RecordBatch, buckets: int = HOLDOUT_BUCKETS):
    """``(bucket, table of user, time, fingerprint)`` for the batch's events, one per bucket."""
    users = user_ids(batch)
    table = pa.table({"user": users, "time": pc.cast(batch.column("event_time"), pa.int64()),
                      "fingerprint": batch.column("event_fingerprint")})
    which = hash_strings(users) % np.uint64(buckets)
    for bucket in np.unique(which):
        yield int(bucket), table.filter(pa.array(which == bucket))


def held_out(table: pa.Table, last: int) -> pa.Table:
    """``fingerprint, part`` of the events a user's last ``last`` (test) and the ones before (valid)."""
    if not len(table):
        return pa.table({"id": pa.array([], pa.binary()), "part": pa.array([], pa.int8())})
    order = pc.sort_indices(table, [("user", "ascending"), ("time", "ascending"), ("fingerprint", "ascending")])
    table = table.take(order)
    users = pc.dictionary_encode(table.column("user")).combine_chunks().indices.to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.concatenate(([True], users[1:] != users[:-1])))
    sizes = np.diff(np.concatenate((starts, [len(table)])))
    index_in_user = np.arange(len(table)) - np.repeat(starts, sizes)
    size = np.repeat(sizes, sizes)
    from_end = size - 1 - index_in_user
    test_n = np.minimum(last, size - 1)
    valid_n = np.minimum(last, size - 1 - test_n)
    part = np.full(len(table), TRAIN, np.int8)
    part[from_end < test_n] = TEST
    part[(from_end >= test_n) & (from_end < test_n + valid_n)] = VALID
    keep = part != TRAIN
    return pa.table({"id": pc.filter(table.column("fingerprint"), pa.array(keep)), "part": pa.array(part[keep])})


class _HoldOutFn(beam.DoFn):
    def __init__(self, last: int, scratch: str):
        self._last, self._scratch = last, scratch

    def process(self, element):
        bucket, tables = element
        out = held_out(pa.concat_tables(list(tables)), self._last)
        yield write_catalog(join_path(self._scratch, f"holdout-{bucket:03d}.arrow"), out).path


class HoldOutLastEvents(beam.PTransform):
    """Batches (with user, time and fingerprint columns) -> a singleton list of Arrow files
    naming the held-out events and their part."""

    def __init__(self, last: int, scratch: str):
        super().__init__()
        self._last, self._scratch = last, scratch

    def expand(self, batches):
        return (
            batches
            | "BucketUsers" >> beam.FlatMap(bucket_users)
            | "GroupUsers" >> beam.GroupByKey()
            | "HoldOutLast" >> beam.ParDo(_HoldOutFn(self._last, self._scratch))
            | "GatherHoldOuts" >> beam.combiners.ToList()
        )


class HeldOutParts:
    """Each event's part, from the held-out files (loaded once per writer)."""

    def __init__(self, paths: list[str]):
        tables = [read_catalog(p) for p in sorted(paths)]
        table = pa.concat_tables(tables) if tables else pa.table({"id": pa.array([], pa.binary()),
                                                                  "part": pa.array([], pa.int8())})
        self._parts = table.column("part").to_numpy()
        self._index = ProductIndex(table.column("id"))

    def parts(self, batch: pa.RecordBatch) -> np.ndarray:
        at = self._index.positions(batch.column("event_fingerprint"))
        out = np.full(len(batch), TRAIN, np.int8)
        found = at >= 0
        out[found] = self._parts[at[found]]
        return out
