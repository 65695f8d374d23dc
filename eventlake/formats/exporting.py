"""The contract every export format keeps, its registry, and the column work exports share.

An export format turns canonical batches read from the store into the tables its system
ingests (``convert``), names the files they go to (``tables``), and may write files beside
them (a schema, a readiness report, an items file). Reading the store, splitting, sharding,
compressing and publishing the output are shared (``pipelines.export``), so a new export is one
class registered with ``register_export``; packages add theirs through the
``eventlake.exports`` entry-point group.

Some outputs depend on the whole export (Personalize writes ``EVENT_VALUE`` only when some
event has one): a format names the columns it needs for that in ``survey_columns`` and says
what it found in a batch with ``survey``; the markers of every batch are united before any
row is written.
"""

from __future__ import annotations

import abc
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EXPORT_ENTRY_POINT_GROUP = "eventlake.exports"
ENCODINGS = ("csv", "tsv", "jsonl", "parquet")


@dataclass(frozen=True)
class ExportTable:
    """One kind of output file.

    ``stem`` and ``extension`` make its name (``interactions`` + ``.csv``); a split adds the
    part (``interactions.train.csv``) and sharding a folder of parts. ``single_file`` outputs
    (RecBole reads exactly ``<name>.inter``) are never sharded. ``header`` is a text header
    written as is (RecBole's typed header); CSV takes its header from the column names.
    """

    name: str
    stem: str
    extension: str
    encoding: str
    single_file: bool = False
    header: str | None = None
    split: bool = True  # a split divides it (interactions); item and user files are whole


@dataclass
class Converted:
    """What a format made of one batch: rows per output table, and the events it left out, by why."""

    rows: dict[str, pa.Table] = field(default_factory=dict)
    skipped: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class ExportOptions:
    """Choices every format may read: the dataset name (RecBole's file stem), compression."""

    name: str = "events"
    compression: str | None = None


class ExportFormat(abc.ABC):
    """One target system's dataset files."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]]  # the stored columns ``convert`` reads (``a.b``: part of one)
    survey_columns: ClassVar[tuple[str, ...]] = ()  # top-level columns whose presence shapes the output
    survey_contents: ClassVar[tuple[str, ...]] = ()  # of those, the ones ``survey`` must read, not just find
    uses_catalog: ClassVar[bool] = False  # writes an items file from --catalog
    item_id_columns: ClassVar[dict[str, str]] = {}  # table -> its item id column, checked against --catalog

    def __init__(self, options: ExportOptions | None = None):
        self.options = options or ExportOptions()

    def survey(self, batch: pa.RecordBatch) -> set[str]:
        """The ``survey_columns`` that hold a value in this batch; united over the export. (Without
        a filter the job reads this off the Parquet footers' null counts instead, and reads only
        the ``survey_contents`` columns: a batch may hold some of the columns only.)"""
        names = batch.schema.names
        return {c for c in self.survey_columns if c in names and batch.column(c).null_count < len(batch)}

    @abc.abstractmethod
    def tables(self, survey: set[str]) -> list[ExportTable]:
        """The output tables, given the export's survey."""

    @abc.abstractmethod
    def convert(self, batch: pa.RecordBatch, survey: set[str]) -> Converted:
        """Rows for each output table from one batch of stored events (``columns``)."""

    def item_tables(self, catalog: pa.Table) -> list[tuple[ExportTable, pa.Table]]:
        """Files made from the catalog (``id`` and the catalog fields), when ``uses_catalog``."""
        return []

    def observe(self, converted: Converted, observed: dict) -> dict:
        """``observed`` (numbers for ``finish``'s report, ``{}`` at first) with one batch's rows
        counted in; a shard folds its batches in turn, so a count can stop once it has decided."""
        return observed

    def merge(self, a: dict, b: dict) -> dict:
        """Two shards' ``observed`` as one."""
        return a or b

    def finish(self, survey: set[str], observed: dict, catalog: pa.Table | None,
               item_ids_missing: int | None) -> tuple[dict[str, bytes], dict]:
        """Files to write beside the data (name -> bytes) and a report for the summary."""
        return {}, {}


_exports: dict[str, type[ExportFormat]] = {}
_loaded = False


def register_export(cls):
    """Make an ``ExportFormat`` subclass available by its ``name``; usable as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, ExportFormat)):
        raise TypeError(f"{cls!r} is not an ExportFormat subclass")
    existing = _exports.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"an export format named {cls.name!r} is registered already ({existing.__module__})")
    _exports[cls.name] = cls
    return cls


def _load() -> None:
    global _loaded
    from eventlake.formats import flat_export, recbole, retail_export  # noqa: F401 - registering
    from eventlake.formats.personalize import export  # noqa: F401 - registering

    if _loaded:
        return
    _loaded = True
    for entry in entry_points(group=EXPORT_ENTRY_POINT_GROUP):
        register_export(entry.load())


def export_names() -> list[str]:
    _load()
    return sorted(_exports)


def export_class(name: str) -> type[ExportFormat]:
    _load()
    try:
        return _exports[name]
    except KeyError:
        raise KeyError(f"unknown export format {name!r}; known: {', '.join(sorted(_exports))}") from None


# Column work the formats share -------------------------------------------------------------


def user_ids(batch: pa.RecordBatch) -> pa.Array:
    """The user an event belongs to: ``user_info.user_id``, else ``visitor_id``."""
    user = pc.struct_field(batch.column("user_info"), "user_id")
    return pc.coalesce(user, batch.column("visitor_id")) if len(batch) else batch.column("visitor_id")


def epoch_seconds(times: pa.Array) -> pa.Array:
    """Whole Unix seconds (floor) of UTC timestamps."""
    micros = pc.cast(times, pa.int64())
    micros = micros.combine_chunks() if isinstance(micros, pa.ChunkedArray) else micros
    seconds = np.floor_divide(micros.to_numpy(zero_copy_only=False), 1_000_000)  # Arrow's divide truncates
    return pa.array(seconds, pa.int64(), mask=micros.is_null().to_numpy(zero_copy_only=False) if micros.null_count else None)


def per_product(batch: pa.RecordBatch, columns: list[str] | None = None
                ) -> tuple[pa.RecordBatch, pa.Array, pa.Array, np.ndarray, np.ndarray]:
    """One row per event and product: the events' ``columns`` (default all) repeated, their
    product structs and quantities, each row's event (its index in ``batch``), and a mask of
    the events that name no product."""
    details = batch.column("product_details")
    rows = batch.select(columns) if columns is not None else batch
    parents = pc.list_parent_indices(details).to_numpy() if len(details) else np.zeros(0, np.int64)
    flat = pc.list_flatten(details)
    lengths = pc.fill_null(pc.list_value_length(details), 0).to_numpy(zero_copy_only=False)
    products = pc.struct_field(flat, "product") if len(flat) else pa.nulls(0, details.type.value_type.field("product").type)
    has_quantity = details.type.value_type.get_field_index("quantity") >= 0  # a reader may leave it out
    quantity = pc.struct_field(flat, "quantity") if len(flat) and has_quantity else pa.nulls(len(flat), pa.int64())
    if len(parents) == len(batch):  # one product each, the common case: no copy
        return rows, products, quantity, parents, lengths == 0
    if (lengths <= 1).all():  # none or one: a filter, a tenth of the time of a take
        return rows.filter(pa.array(lengths == 1)), products, quantity, parents, lengths == 0
    return rows.take(pa.array(parents, pa.int64())), products, quantity, parents, lengths == 0


def joined_text(lists: pa.Array, separator: str) -> pa.Array:
    """List<string> -> one string per row, values joined by ``separator`` (null for null or empty)."""
    if not len(lists):
        return pa.array([], pa.string())
    out = pc.binary_join(lists, separator)
    empty = pc.equal(pc.fill_null(pc.list_value_length(lists), 0), 0)
    return pc.if_else(empty, pa.scalar(None, pa.string()), out)


def count_true(mask) -> int:
    return int(np.count_nonzero(mask)) if isinstance(mask, np.ndarray) else int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
