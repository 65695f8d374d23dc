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
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from eventlake.errors import ERRORS
from eventlake.formats.retail_catalog import catalog_schema, parse_catalog_block
from eventlake.io.delta_log import join_path
from eventlake.io.files import ByteRange, read_all, read_blocks
from eventlake.transforms.product_index import ProductIndex

_BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class CatalogFile:
    """The run's catalog: an Arrow IPC file of ``id`` and the kept fields, one row per product."""

    path: str
    products: int


def latest_products(table: pa.Table) -> pa.Table:
    """One row per product id: the last row naming it wins, as the last update of a product does."""
    if not len(table):
        return table
    flipped = table.take(pa.array(range(len(table) - 1, -1, -1)))
    index = pa.Table.from_arrays([flipped.column("id"), pa.array(range(len(flipped)))], names=["id", "row"])
    rows = index.group_by("id", use_threads=False).aggregate([("row", "min")]).column("row_min")
    return flipped.take(rows.combine_chunks().sort()).combine_chunks()  # sorted: a deterministic file


def write_catalog(path: str, table: pa.Table) -> CatalogFile:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        sink = pa.PythonFile(handle, mode="w")
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    return CatalogFile(path, len(table))


def read_catalog(path: str) -> pa.Table:
    if "://" in path:
        return pa.ipc.open_file(pa.BufferReader(read_all(path))).read_all()
    return pa.ipc.open_file(pa.memory_map(path)).read_all()  # zero-copy: workers share the pages


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


class _ParseCatalogFileFn(beam.DoFn):
    def __init__(self, fields: tuple[str, ...], temp_dir: str):
        self._fields, self._temp_dir = fields, temp_dir

    def process(self, element: tuple[int, str]):
        number, path = element
        parts = []
        for block, _ in read_blocks(ByteRange(path, 0, -1), _BLOCK_BYTES):
            table, errors = parse_catalog_block(block, self._fields)
            for error in errors:
                yield beam.pvalue.TaggedOutput(ERRORS, error)
            parts.append(table)
        table = latest_products(pa.concat_tables(parts)) if parts else catalog_schema(self._fields).empty_table()
        yield number, write_catalog(join_path(self._temp_dir, f"catalog-part-{number:05d}.arrow"), table)


class _MergeCatalogFilesFn(beam.DoFn):
    """Merge the per-file parts in the order the files were given; later files win."""

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
        yield merged


class ReadCatalog(beam.PTransform):
    """Catalog file paths -> ``products`` (a singleton ``CatalogFile``) and ``errors``.

    The catalog file is written under ``temp_dir``; the job removes it when it ends.
    """

    def __init__(self, paths: list[str], fields: tuple[str, ...], temp_dir: str):
        super().__init__()
        self._paths, self._fields, self._temp_dir = list(paths), tuple(fields), temp_dir

    def expand(self, pbegin):
        parts = (
            pbegin
            | "ListCatalogFiles" >> beam.Create(list(enumerate(self._paths)))
            | "ParseRetailProducts" >> beam.ParDo(_ParseCatalogFileFn(self._fields, self._temp_dir)).with_outputs(
                ERRORS, main="parts")
        )
        products = (
            parts.parts
            | "GatherCatalogParts" >> beam.combiners.ToList()
            | "MergeCatalogParts" >> beam.ParDo(_MergeCatalogFilesFn(self._fields, self._temp_dir))
        )
        return {"products": products, ERRORS: parts[ERRORS]}
