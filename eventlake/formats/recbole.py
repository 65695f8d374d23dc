"""RecBole atomic files from the store: ``<name>.inter`` and, with a catalog, ``<name>.item``.

RecBole reads tab-separated files whose header names each column with its type
(``user_id:token``, ``timestamp:float``, ``categories:token_seq``); a ``token_seq`` value is its
tokens separated by spaces, so a token keeps no space of its own (``Home & Garden`` becomes
``Home_&_Garden``). Values hold no tab or line break and are not quoted. RecBole loads one file
per kind, so these outputs are never sharded. ``<name>.user`` would hold user features: the
store keeps none, so it is not written.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.exporting import (
    Converted,
    ExportFormat,
    ExportTable,
    epoch_seconds,
    per_product,
    register_export,
    user_ids,
)

ITEM_FIELDS = {"title": "title:token_seq", "brands": "brands:token_seq", "categories": "categories:token_seq",
               "price": "price:float", "original_price": "original_price:float",
               "currency_code": "currency_code:token", "availability": "availability:token"}


@register_export
class RecBoleExport(ExportFormat):
    """RecBole atomic files."""

    name = "recbole"
    description = "RecBole atomic files: <name>.inter, <name>.item"
    columns = ("event_type", "source_event_type", "visitor_id", "user_info.user_id", "event_time",
               "product_details.product.id", "event_value")
    survey_columns = ("event_value",)
    uses_catalog = True
    item_id_columns = {"inter": "item_id:token"}

    def _inter_columns(self, survey: set[str]) -> list[str]:
        return ["user_id:token", "item_id:token", "timestamp:float", "event_type:token"] + \
            (["rating:float"] if "event_value" in survey else [])

    def tables(self, survey: set[str]) -> list[ExportTable]:
        header = "\t".join(self._inter_columns(survey))
        return [ExportTable("inter", self.options.name, ".inter", "tsv", single_file=True, header=header)]

    def convert(self, batch: pa.RecordBatch, survey: set[str]) -> Converted:
        out = Converted()
        rows, products, _, _, no_product = per_product(batch, ["visitor_id", "user_info", "event_time", "event_type",
                                                               "source_event_type", "event_value"])
        out.skipped["no item id"] = int(no_product.sum())
        values = {"user_id:token": token(user_ids(rows)), "item_id:token": token(pc.struct_field(products, "id")),
                  "timestamp:float": epoch_seconds(rows.column("event_time")),
                  "event_type:token": token(pc.coalesce(rows.column("event_type"), rows.column("source_event_type"))),
                  "rating:float": rows.column("event_value")}
        names = self._inter_columns(survey)
        out.rows["inter"] = pa.table([values[n] for n in names], names=names)
        return out

    def item_tables(self, catalog: pa.Table) -> list[tuple[ExportTable, pa.Table]]:
        columns, names = [token(catalog.column("id").combine_chunks())], ["item_id:token"]
        for field, name in ITEM_FIELDS.items():
            if field not in catalog.column_names or catalog.column(field).null_count == len(catalog):
                continue
            values = catalog.column(field).combine_chunks()
            if name.endswith(":token_seq"):
                values = token_seq(values)
            elif name.endswith(":token"):
                values = token(values)
            columns.append(values)
            names.append(name)
        header = "\t".join(names)
        return [(ExportTable("item", self.options.name, ".item", "tsv", single_file=True, header=header, split=False),
                 pa.table(columns, names=names))]


def token(values: pa.Array) -> pa.Array:
    """A value as one RecBole token: whitespace runs become ``_``."""
    return pc.replace_substring_regex(values, r"\s+", "_")


def token_seq(values: pa.Array) -> pa.Array:
    """Text or a list of tokens as a space-separated ``token_seq``."""
    if pa.types.is_list(values.type):
        flat = token(pc.list_flatten(values))
        offsets = pc.subtract(values.offsets, values.offsets[0])
        return pc.binary_join(pa.ListArray.from_arrays(offsets, flat, mask=pc.is_null(values)), " ")
    return pc.replace_substring_regex(values, r"\s+", " ")
