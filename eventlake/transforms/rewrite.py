"""Rewrite store files whose rows a job changes; the building block of rejoin and purge.

Each file is looked at first through the few columns the decision needs; only a file with rows
to change is read whole and written again, one row group at a time. Nothing is committed here:
the job's last step records every ``FileChange`` in one commit.
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
    """What a job does to the rows of one store file."""

    columns: list[str] | None  # the columns ``inspect`` needs (None: all)

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
    try:
        table = read_columns(store, add["path"], change.columns)
    except FileNotFoundError:
        return FileChange(add, {"vanished": 1})
    result = FileChange(add, change.inspect(table))
    if write and result.changed:
        date = add.get("partitionValues", {}).get(PARTITION_COLUMN)
        new = WrittenFile(new_file_path(date, run_id), date, imported_version=imported_version(add))
        try:
            result.new = rewrite_file(store, add["path"], new, change.apply)
        except FileNotFoundError:  # deleted between the look and the rewrite: as if gone at the look
            return FileChange(add, {"vanished": 1})
    return result


class RewriteFilesFn(beam.DoFn):
    """Add actions -> ``FileChange``s; a job's DoFn says, per file, how its rows change."""

    def __init__(self, store: str, run_id: str, write: bool):
        self._store, self._run_id, self._write = store, run_id, write

    def row_change(self, *side_inputs) -> RowChange:
        raise NotImplementedError

    def process(self, add: dict, *side_inputs):
        yield change_store_file(self._store, self._run_id, add, self.row_change(*side_inputs), self._write)
