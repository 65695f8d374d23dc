"""Read the product catalog into one Arrow table (id + the fields the store keeps)."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from eventlake.errors import ERRORS
from eventlake.formats.retail_catalog import catalog_schema, parse_catalog_block
from eventlake.io.files import ByteRange, read_blocks

_BLOCK_BYTES = 8 << 20


class _ReadCatalogFileFn(beam.DoFn):
    def __init__(self, fields: tuple[str, ...]):
        self._fields = fields

    def process(self, path: str):
        for block, _ in read_blocks(ByteRange(path, 0, -1), _BLOCK_BYTES):
            table, errors = parse_catalog_block(block, self._fields)
            for error in errors:
                yield beam.pvalue.TaggedOutput(ERRORS, error)
            yield table


class _CombineCatalogFn(beam.CombineFn):
    """Concatenate catalog parts; the last line naming a product id wins."""

    def __init__(self, fields: tuple[str, ...]):
        self._schema = catalog_schema(fields)

    def create_accumulator(self):
        return []

    def add_input(self, parts, table):
        parts.append(table)
        return parts

    def merge_accumulators(self, accumulators):
        return [t for parts in accumulators for t in parts]

    def extract_output(self, parts):
        table = pa.concat_tables(parts) if parts else self._schema.empty_table()
        if not len(table):
            return self._schema.empty_table()
        flipped = table.take(pa.array(range(len(table) - 1, -1, -1)))
        index = pa.Table.from_arrays([flipped.column("id"), pa.array(range(len(flipped)))], names=["id", "row"])
        rows = index.group_by("id", use_threads=False).aggregate([("row", "min")]).column("row_min")
        return flipped.take(rows).combine_chunks()


class ReadCatalog(beam.PTransform):
    """Catalog file paths -> ``products`` (one table, a singleton) and ``errors``."""

    def __init__(self, paths: list[str], fields: tuple[str, ...]):
        super().__init__()
        self._paths, self._fields = list(paths), tuple(fields)

    def expand(self, pbegin):
        parts = (
            pbegin
            | "ListCatalogFiles" >> beam.Create(self._paths)
            | "ParseRetailProducts" >> beam.ParDo(_ReadCatalogFileFn(self._fields)).with_output_types(pa.Table).with_outputs(ERRORS, main="tables")
        )
        products = parts.tables | "CombineCatalog" >> beam.CombineGlobally(_CombineCatalogFn(self._fields)).with_output_types(pa.Table)
        return {"products": products, ERRORS: parts[ERRORS]}
