"""Flat tables from the store, for pandas, DuckDB, Spark or BigQuery: Parquet or CSV.

One row per event and product (an event with no product keeps one row, with no item), with
the product's catalog fields as ``item_<field>`` columns beside the event's own. Parquet keeps
list columns as lists; CSV joins their values with ``|``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.exporting import (
    Converted,
    ExportFormat,
    ExportTable,
    joined_text,
    per_product,
    register_export,
    user_ids,
)

EVENT_COLUMNS = ("event_id", "event_type", "source_event_type", "visitor_id", "session_id", "event_time",
                 "event_value", "search_query", "page_categories", "impression", "recommendation_id", "request_id",
                 "attribution_token", "cart_id", "uri", "joined", "source_format", "event_date")
READ_COLUMNS = (*EVENT_COLUMNS, "user_info.user_id", "product_details", "purchase_transaction.id",
                "purchase_transaction.revenue", "purchase_transaction.currency_code")


class _FlatExport(ExportFormat):
    columns = READ_COLUMNS
    encoding = ""
    extension = ""

    def tables(self, survey: set[str]) -> list[ExportTable]:
        return [ExportTable("events", "events", self.extension, self.encoding)]

    def convert(self, batch: pa.RecordBatch, survey: set[str]) -> Converted:
        rows, products, quantity, parents, no_product = per_product(batch)
        if no_product.any():  # events without a product keep one row each, after the others
            empty = batch.filter(pa.array(no_product))
            rows = pa.concat_tables([pa.Table.from_batches([rows]), pa.Table.from_batches([empty])]).combine_chunks()
            products = pa.concat_arrays([products, pa.nulls(len(empty), products.type)])
            quantity = pa.concat_arrays([quantity, pa.nulls(len(empty), pa.int64())])
        names, arrays = [], []
        for column in EVENT_COLUMNS:
            names.append(column)
            arrays.append(rows.column(column))
            if column == "visitor_id":
                names.insert(-1, "user_id")
                arrays.insert(-1, user_ids(rows))
        names += ["item_id", "quantity"]
        arrays += [pc.struct_field(products, "id"), quantity]
        for i in range(1, products.type.num_fields):
            field = products.type.field(i)
            names.append(f"item_{field.name}")
            arrays.append(pc.struct_field(products, field.name))
        purchase = rows.column("purchase_transaction")
        for field in ("id", "revenue", "currency_code"):
            names.append(f"purchase_{field}")
            arrays.append(pc.struct_field(purchase, field))
        table = pa.table([a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays], names=names)
        return Converted(rows={"events": self._finish(table)})

    def _finish(self, table: pa.Table) -> pa.Table:
        return table


@register_export
class ParquetExport(_FlatExport):
    """One flat Parquet table."""

    name = "parquet"
    description = "flat Parquet: one row per event and product"
    encoding = "parquet"
    extension = ".parquet"


@register_export
class CsvExport(_FlatExport):
    """One flat CSV table; lists joined by ``|``."""

    name = "csv"
    description = "flat CSV: one row per event and product, lists joined by |"
    encoding = "csv"
    extension = ".csv"

    def _finish(self, table: pa.Table) -> pa.Table:
        columns = [joined_text(c.combine_chunks(), "|") if pa.types.is_list(c.type) else c for c in table.columns]
        return pa.table(columns, names=table.column_names)
