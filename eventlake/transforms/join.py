"""Join events against the product catalog, vectorised over a batch.

An event is joined when every product id it names is in the catalog (an event that names no
product is joined). Unjoined events are kept with the ids that were missing, so that a later
rejoin can fix them.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.schema import product_details_type
from eventlake.transforms.catalog import load_catalog
from eventlake.transforms.product_index import ProductIndex


def join_catalog(batch: pa.RecordBatch, catalog: pa.Table | None, fields: tuple[str, ...],
                 index: ProductIndex | None = None) -> pa.RecordBatch:
    """``batch`` with ``product_details`` widened by ``fields`` and ``joined``/``missing_product_ids``.

    Pass the catalog's ``index`` when joining many batches against one catalog. With no catalog
    (``None``) nothing is joined: the catalog fields, ``joined`` and ``missing_product_ids`` are
    null, so the events are neither joined nor unjoined until a rejoin.
    """
    if catalog is None:
        return _not_joined(batch, fields)
    details = batch.column("product_details")
    entries = pc.list_flatten(details)
    ids = pc.struct_field(entries, ["product", "id"])
    rows = (index or ProductIndex(catalog.column("id"))).positions(ids)
    missing = rows < 0
    position = pa.array(rows, mask=missing)
    parents = pc.list_parent_indices(details).to_numpy()

    missing_count = np.bincount(parents[missing], minlength=len(batch))
    missing_offsets = np.concatenate(([0], np.cumsum(missing_count))).astype(np.int32)
    missing_ids = pa.ListArray.from_arrays(pa.array(missing_offsets), ids.filter(pa.array(missing)))
    joined = pa.array(missing_count == 0)

    product_fields = [ids] + [
        # Take from the chunks: combining them first copied the whole column out of the shared map.
        catalog.column(f).take(position).combine_chunks() if len(catalog) else pa.nulls(len(ids), catalog.schema.field(f).type)
        for f in fields
    ]
    new_details = _with_products(details, entries, product_fields, fields)
    columns, names = [], []
    for name in batch.schema.names:
        columns.append(new_details if name == "product_details" else batch.column(name))
        names.append(name)
    return pa.RecordBatch.from_arrays(columns + [joined, missing_ids], names=names + ["joined", "missing_product_ids"])


def _with_products(details: pa.Array, entries: pa.Array, product_fields: list[pa.Array],
                   fields: tuple[str, ...]) -> pa.ListArray:
    """``product_details`` again over the same rows (offsets of the flattened entries, nulls
    kept), each product made of ``product_fields`` (its id, then ``fields``)."""
    target = product_details_type(fields)
    entry_type = target.value_type
    product = pa.StructArray.from_arrays(product_fields, fields=list(entry_type.field("product").type))
    new_entries = pa.StructArray.from_arrays([product, pc.struct_field(entries, "quantity")], fields=list(entry_type))
    lengths = pc.fill_null(pc.list_value_length(details), 0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.concatenate(([0], np.cumsum(lengths))).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, new_entries, type=target, mask=details.is_null())


def _not_joined(batch: pa.RecordBatch, fields: tuple[str, ...]) -> pa.RecordBatch:
    details = batch.column("product_details")
    entries = pc.list_flatten(details)
    ids = pc.struct_field(entries, ["product", "id"])
    product_type = product_details_type(fields).value_type.field("product").type
    new_details = _with_products(details, entries, [ids] + [pa.nulls(len(ids), product_type.field(f).type) for f in fields],
                                 fields)
    columns = [new_details if n == "product_details" else batch.column(n) for n in batch.schema.names]
    nothing = [pa.nulls(len(batch), pa.bool_()), pa.nulls(len(batch), pa.list_(pa.string()))]
    return pa.RecordBatch.from_arrays(columns + nothing, names=batch.schema.names + ["joined", "missing_product_ids"])


class _JoinFn(beam.DoFn):
    def __init__(self, fields: tuple[str, ...]):
        self._fields = fields

    def process(self, batch: pa.RecordBatch, catalog):
        if not catalog.path:  # the run has no catalog
            yield join_catalog(batch, None, self._fields)
            return
        table, index = load_catalog(catalog)
        yield join_catalog(batch, table, self._fields, index)


class JoinCatalog(beam.PTransform):
    """Batches -> batches joined against ``catalog`` (a singleton side input of a ``CatalogFile``)."""

    def __init__(self, catalog: beam.pvalue.AsSingleton, fields: tuple[str, ...]):
        super().__init__()
        self._catalog, self._fields = catalog, tuple(fields)

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.PCollection[pa.RecordBatch]:
        return batches | beam.ParDo(_JoinFn(self._fields), self._catalog).with_output_types(pa.RecordBatch)
