"""Rewrite store files whose rows a job changes; the building block of rejoin and purge.

Each file is looked at first through the few columns the decision needs; only a file with rows
to change is read whole and written again, in a second step spread evenly over the workers.
Nothing is committed here: the job's last step records every ``FileChange`` in one commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import apache_beam as beam
import pyarrow as pa

from eventlake.io.delta_log import imported_version
from eventlake.io.store import WrittenFile, new_file_path, read_columns, rewrite_file
from eventlake.schema import PARTITION_COLUMN


class RowChange(Protocol):
    """What a job does to the rows of one store file.

    It may also have ``detail_columns`` and ``detail(table)``: more counts for a file with rows
    to change, from ``columns`` and ``detail_columns`` read again for that file alone. A purge
    reads its event types so, for the few files it changes: reading them for every file cost a
    third of the look at a store.
    """

    columns: list[str] | None  # the columns ``inspect`` needs (None: all)
    # (column path, values) pairs that every row to change has, or None: a file whose Bloom
    # filters rule a pair out has no row to change and is not read (a purge of one visitor).
    holding: list[tuple[str, tuple[str, ...]]] | None

    def inspect(self, table: pa.Table) -> dict:
        """Counts for the summary; ``changed`` (rows that would change) decides the rewrite."""

    def apply(self, table: pa.Table) -> pa.Table:
        """The rows as they should be stored (any subset of ``table``'s, in any number)."""


@dataclass
class FileChange:
    """One store file as a rewriting job left it."""

    add: dict  # the file's add action in the version the job read
    counts: dict = field(default_factory=dict)
    new: WrittenFile | None = None  # written replacement; None when unchanged or in a dry run

    @property
    def changed(self) -> bool:
        return self.counts.get("changed", 0) > 0

    @property
    def vanished(self) -> bool:
        """The file was gone when the job came to read it: another job rewrote it meanwhile."""
        return bool(self.counts.get("vanished"))


def change_store_file(store: str, run_id: str, add: dict, change: RowChange, write: bool) -> FileChange:
    """Inspect one file and, when ``write`` and rows change, write its replacement."""
    result = inspect_store_file(store, add, change)
    return write_replacement(store, run_id, result, change) if write and result.changed else result


def inspect_store_file(store: str, add: dict, change: RowChange) -> FileChange:
    """One file's counts, from the columns ``change`` needs; vanished when the file is gone.

    With ``change.holding``, only the row groups that may hold it are read; a file that has
    none counts ``{"changed": 0, "ruled_out": 1}``.
    """
    holding = getattr(change, "holding", None)
    try:
        table = read_columns(store, add["path"], change.columns, holding)
        if table is None:
            return FileChange(add, {"changed": 0, "ruled_out": 1})
        counts = change.inspect(table)
        more = getattr(change, "detail_columns", None)
        if more and counts.get("changed"):
            if change.columns is not None:  # else the look read every column already
                table = read_columns(store, add["path"], list(dict.fromkeys([*change.columns, *more])), holding)
            counts.update(change.detail(table))
    except FileNotFoundError:
        return FileChange(add, {"vanished": 1})
    return FileChange(add, counts)


def write_replacement(store: str, run_id: str, inspected: FileChange, change: RowChange) -> FileChange:
    """``inspected``'s file written again with ``change`` applied; vanished when the file is gone."""
    add = inspected.add
    date = add.get("partitionValues", {}).get(PARTITION_COLUMN)
    new = WrittenFile(new_file_path(date, run_id), date, imported_version=imported_version(add))
    try:
        return FileChange(add, inspected.counts, rewrite_file(store, add["path"], new, change.apply))
    except FileNotFoundError:  # deleted between the look and the rewrite: as if gone at the look
        return FileChange(add, {"vanished": 1})


class RewriteFilesFn(beam.DoFn):
    """Add actions -> inspected ``FileChange``s; a job's DoFn says, per file, how its rows change.

    A file with rows to change (when the job writes) goes to the ``REWRITE`` output, for
    ``RewriteStoreFiles`` to write its replacement in a second step.
    """

    REWRITE = "rewrite"

    def __init__(self, store: str, run_id: str, write: bool):
        self._store, self._run_id, self._write = store, run_id, write

    def row_change(self, *side_inputs) -> RowChange:
        raise NotImplementedError

    def process(self, add: dict, *side_inputs):
        inspected = inspect_store_file(self._store, add, self.row_change(*side_inputs))
        yield beam.pvalue.TaggedOutput(self.REWRITE, inspected) if self._write and inspected.changed else inspected

    def write(self, inspected: FileChange, *side_inputs) -> FileChange:
        return write_replacement(self._store, self._run_id, inspected, self.row_change(*side_inputs))


class _WriteReplacementFn(beam.DoFn):
    def __init__(self, files: RewriteFilesFn):
        self._files = files

    def setup(self):
        self._files.setup()

    def process(self, inspected: FileChange, *side_inputs):
        yield self._files.write(inspected, *side_inputs)


class RewriteStoreFiles(beam.PTransform):
    """Add actions -> one ``FileChange`` per file: every file inspected, then the ones with rows
    to change written again.

    Two steps, because a job often rewrites few of the files it looks at (a purge of one
    visitor: 16 of 184): spread over the workers again after the look, those few are shared
    evenly, where in one step one worker wrote 13 of them while the other sat idle.
    """

    def __init__(self, files: RewriteFilesFn, *side_inputs):
        super().__init__()
        self._files, self._side_inputs = files, side_inputs

    def expand(self, adds: beam.PCollection[dict]) -> beam.PCollection[FileChange]:
        looked = adds | "Inspect" >> beam.ParDo(self._files, *self._side_inputs).with_outputs(
            RewriteFilesFn.REWRITE, main="unchanged")
        rewritten = (
            looked[RewriteFilesFn.REWRITE]
            | "SpreadRewrites" >> beam.Reshuffle()
            | "Rewrite" >> beam.ParDo(_WriteReplacementFn(self._files), *self._side_inputs)
        )
        return (looked.unchanged, rewritten) | "AllFiles" >> beam.Flatten()
