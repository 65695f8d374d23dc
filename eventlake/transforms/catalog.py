"""Read the product catalog into one Arrow file that every join worker maps.

The catalog travels between steps as a file, not as a side-input value: Beam's local runner
keeps many copies of a large singleton in the runner process (a 24 MB table cost 450 MB there
and as much again in each worker). The side input is a small ``CatalogFile``; each worker
process opens the Arrow IPC file once, memory-mapped when local, and builds its product index
once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from eventlake.errors import ERRORS
from eventlake.formats.base import SourceFileError, catalog_format_class, is_parquet
from eventlake.io.arrow_files import read_arrow, write_arrow
from eventlake.io.delta_log import join_path
from eventlake.io.files import (
    ByteRange,
    DamagedSourceError,
    lines_before,
    source_file,
    split_ranges,
)
from eventlake.schema import catalog_schema
from eventlake.transforms.product_index import ProductIndex

_BLOCK_BYTES = 8 << 20
SPLIT_BYTES = 8 << 20  # one block per range: even a mid-sized catalog is shared between workers


@dataclass(frozen=True)
class CatalogFile:
    """The run's catalog: an Arrow IPC file of ``id`` and the kept fields, one row per product."""

    path: str
    products: int
    failure: str | None = None  # a catalog file that could not be read whole: the job must fail


def latest_products(table: pa.Table) -> pa.Table:
    """One row per product id: the last row naming it wins, as the last update of a product does.

    Rows keep file order. Ids become dictionary codes, and numpy finds each code's last row: a
    quarter of the time Arrow's group-by took on 500k products.
    """
    if not len(table):
        return table
    codes = pc.dictionary_encode(table.column("id"), null_encoding="encode").combine_chunks().indices
    _, first_from_end = np.unique(codes.to_numpy()[::-1], return_index=True)
    if len(first_from_end) == len(table):
        return table.combine_chunks()
    return table.take(pa.array(np.sort(len(table) - 1 - first_from_end))).combine_chunks()


def write_catalog(path: str, table: pa.Table) -> CatalogFile:
    write_arrow(path, table)
    return CatalogFile(path, len(table))


def read_catalog(path: str) -> pa.Table:
    return read_arrow(path)


_loaded: dict[str, tuple[pa.Table, ProductIndex]] = {}
_loading = threading.Lock()


def load_catalog(catalog: CatalogFile) -> tuple[pa.Table, ProductIndex]:
    """The catalog table and its index, read once per worker process."""
    with _loading:
        if catalog.path not in _loaded:
            _loaded.clear()  # one run's catalog at a time
            table = read_catalog(catalog.path)
            _loaded[catalog.path] = (table, ProductIndex(table.column("id")))
        return _loaded[catalog.path]


class _ParseCatalogRangeFn(beam.DoFn):
    """One byte range of a catalog file -> a numbered part file; the numbers keep file order."""

    def __init__(self, fields: tuple[str, ...], temp_dir: str, format_name: str, field_map: dict[str, str],
                 options: dict | None = None):
        self._fields, self._temp_dir = fields, temp_dir
        self._format_name, self._field_map, self._options = format_name, field_map, options

    def setup(self):
        self._format = catalog_format_class(self._format_name)(self._fields, self._field_map, self._options)

    def process(self, element: tuple[int, ByteRange]):
        number, byte_range = element
        parts = []
        earlier_lines = None  # lines before the range: counted only when a line number is needed
        failure = None
        try:
            for table, errors in self._format.read_range(byte_range, _BLOCK_BYTES):
                for error in errors:
                    if error["line"] is not None and byte_range.start > 0 and not is_parquet(byte_range.path):
                        earlier_lines = lines_before(byte_range) if earlier_lines is None else earlier_lines
                        error["line"] += earlier_lines
                    yield beam.pvalue.TaggedOutput(ERRORS, error)
                parts.append(table)
        except (DamagedSourceError, SourceFileError) as error:
            failure = str(error)
        table = latest_products(pa.concat_tables(parts)) if parts else catalog_schema(self._fields).empty_table()
        part = write_catalog(join_path(self._temp_dir, f"catalog-part-{number:05d}.arrow"), table)
        yield number, CatalogFile(part.path, part.products, failure)


class _MergeCatalogPartsFn(beam.DoFn):
    """Merge the parts in the order of files and ranges; a later row of a product wins."""

    def __init__(self, fields: tuple[str, ...], temp_dir: str):
        self._fields, self._temp_dir = fields, temp_dir

    def process(self, parts: list[tuple[int, CatalogFile]]):
        parts = [f for _, f in sorted(parts, key=lambda p: p[0])]
        if len(parts) == 1:
            yield parts[0]
            return
        tables = [read_catalog(f.path) for f in parts]
        table = latest_products(pa.concat_tables(tables)) if tables else catalog_schema(self._fields).empty_table()
        merged = write_catalog(join_path(self._temp_dir, "catalog.arrow"), table)
        FileSystems.delete([f.path for f in parts])
        failures = [f.failure for f in parts if f.failure]
        yield CatalogFile(merged.path, merged.products, failures[0] if failures else None)


class ReadCatalog(beam.PTransform):
    """Catalog file paths -> ``products`` (a singleton ``CatalogFile``) and ``errors``.

    ``format_name`` is a registered catalog format (``retail``, ``personalize-items``, ...);
    ``field_map`` maps its source columns to catalog fields, where the format uses one;
    ``options`` are the format's own (the ``mapped`` format's column mapping).

    A damaged compressed catalog file does not stop the pipeline here: ``products.failure``
    names it, and the job's commit step refuses to commit.

    Files are cut into byte ranges of ``split_bytes`` that workers parse side by side (a 78 MB
    catalog took one core 2.3 s). The catalog file is written under ``temp_dir``; the job
    removes it when it ends.
    """

    def __init__(self, paths: list[str], fields: tuple[str, ...], temp_dir: str, split_bytes: int = SPLIT_BYTES,
                 format_name: str = "retail", field_map: dict[str, str] | None = None, options: dict | None = None):
        super().__init__()
        if not paths:
            raise ValueError("ReadCatalog needs at least one catalog file")
        self._paths, self._fields, self._temp_dir = list(paths), tuple(fields), temp_dir
        self._format = catalog_format_class(format_name)  # an unknown name fails here, not on a worker
        self._field_map, self._options = dict(field_map or {}), dict(options or {})
        self._format(self._fields, self._field_map, self._options)  # and so does a bad option
        self._split_bytes = split_bytes

    def expand(self, pbegin):
        ranges = [r for f in map(source_file, self._paths)  # in file order: a later file's product wins
                  for r in split_ranges([f], self._split_bytes if self._format.splittable_path(f.path) else 1 << 62)]
        parts = (
            pbegin
            | "ListCatalogRanges" >> beam.Create(list(enumerate(ranges)))
            | "ParseProducts" >> beam.ParDo(_ParseCatalogRangeFn(self._fields, self._temp_dir, self._format.name,
                                                                 self._field_map, self._options))
            .with_outputs(ERRORS, main="parts")
        )
        products = (
            parts.parts
            | "GatherCatalogParts" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
            | "MergeCatalogParts" >> beam.ParDo(_MergeCatalogPartsFn(self._fields, self._temp_dir))
        )
        return {"products": products, ERRORS: parts[ERRORS]}
