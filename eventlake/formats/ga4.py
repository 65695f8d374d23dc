"""Google Analytics 4 events as exported to BigQuery, read as Retail reads them (``user_event_ga4``).

Input: the export's rows as JSON lines (BigQuery writes 64-bit integers as strings there) or
Parquet: ``event_timestamp`` (microseconds), ``event_name``, ``user_pseudo_id``, ``user_id``,
``event_params`` (a repeated key with ``string_value`` / ``int_value`` / ``float_value`` /
``double_value``), ``items[]``, ``ecommerce``, ``device``, ``geo``, ``traffic_source``.

Mapping: ``user_pseudo_id`` -> ``visitor_id``; ``user_id`` -> ``user_info.user_id``; the
``ga_session_id`` param -> ``session_id``; ``page_location`` -> ``uri``; ``page_referrer`` ->
``referrer_uri``; ``items[]`` -> ``product_details`` (``item_id``, ``quantity``); the
``search_term`` param -> ``search_query`` on searches; ``item_list_name`` (param, else the
first item's) -> ``page_categories`` on list views; on purchases ``ecommerce.transaction_id``,
``purchase_revenue`` (else the ``value`` param), ``tax_value`` (else ``tax``) and the ``currency``
param -> ``purchase_transaction``; the device category, operating system, browser, country,
region, city and traffic source, medium and name -> attributes.

Event names: ``view_item`` -> detail-page-view, ``add_to_cart`` -> add-to-cart,
``remove_from_cart`` -> remove-from-cart, ``purchase`` -> purchase-complete, ``view_item_list`` ->
category-page-view, ``view_search_results`` and ``search`` -> search, ``view_cart`` ->
shopping-cart-page-view, and ``page_view`` of the site's root -> home-page-view. Any other event
(``session_start``, ``page_view`` of another page, ...) is skipped with reason
``UNMAPPED_EVENT``, not an error, unless the config's ``event_type_map`` maps its name or
``allowed_event_types`` allows it. After mapping Retail's rules apply, and GA4's own: a purchase
needs a transaction id, revenue and a currency.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.base import (
    EventFormat,
    ParsedBlock,
    canonical_batch,
    first_json_object,
    register_format,
)
from eventlake.formats.columns import attributes_from_columns, user_info_of
from eventlake.formats.rules import Rule, as_mask, column_at, is_type
from eventlake.formats.tabular import RowBlock, RowChecks, as_numbers, as_text, file_type_of, read_rows, unix_times
from eventlake.formats.tabular import column_at as table_column  # a table's; rules.column_at reads a batch
from eventlake.io.files import ByteRange
from eventlake.schema import PURCHASE_TRANSACTION, product_details_type

EVENT_NAMES = {
    "view_item": "detail-page-view", "add_to_cart": "add-to-cart", "remove_from_cart": "remove-from-cart",
    "purchase": "purchase-complete", "view_item_list": "category-page-view", "view_search_results": "search",
    "search": "search", "view_cart": "shopping-cart-page-view",
}
HOME = "home-page-view"
UNMAPPED = "UNMAPPED_EVENT"
NOT_SET = "(not set)"  # what GA4 writes where it has no value
ATTRIBUTES = {"device.category": "device_category", "device.operating_system": "device_os",
              "device.web_info.browser": "browser", "geo.country": "country", "geo.region": "region",
              "geo.city": "city", "traffic_source.source": "traffic_source", "traffic_source.medium": "traffic_medium",
              "traffic_source.name": "traffic_campaign"}
_VALUE_FIELDS = ("string_value", "int_value", "double_value", "float_value")


@register_format
class Ga4Events(EventFormat):
    """Google Analytics 4 BigQuery export rows (JSON lines or Parquet)."""

    name = "ga4"
    suffixes = (".json", ".jsonl", ".parquet")
    default_event_type_map = EVENT_NAMES
    description = "Google Analytics 4 events as exported to BigQuery (JSON lines or Parquet)"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = first_json_object(head)
        return isinstance(first, dict) and {"event_name", "event_timestamp", "user_pseudo_id"} <= set(first)

    def rules(self, allowed_event_types: tuple[str, ...] = ()) -> list:
        from eventlake.formats.retail_rules import retail_rules

        purchase = ["purchase-complete"]
        return [
            Rule("ecommerce.transaction_id", "REQUIRED", "a purchase needs ecommerce.transaction_id",
                 lambda b: is_type(b, purchase) & _missing(b, "purchase_transaction.id")),
            Rule("ecommerce.purchase_revenue", "REQUIRED", "a purchase needs its revenue (ecommerce.purchase_revenue "
                 "or the value param)", lambda b: is_type(b, purchase) & _missing(b, "purchase_transaction.revenue")),
            Rule("event_params.currency", "REQUIRED", "a purchase needs a currency (the currency param)",
                 lambda b: is_type(b, purchase) & _missing(b, "purchase_transaction.currency_code")),
            *retail_rules(allowed_event_types),
        ]

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        kept_names = set(self.event_type_map) | set(self.allowed_event_types)
        for block in read_rows(byte_range, block_bytes, file_type_of(byte_range.path), "GA4 export rows"):
            batch, errors, skipped = _to_canonical(block, kept_names, self.event_type_map)
            yield ParsedBlock(batch, block.errors + errors, lines=block.lines_spanned, records=block.records,
                              skipped={UNMAPPED: skipped} if skipped else {})


def _missing(batch, path: str) -> np.ndarray:
    values = column_at(batch, path)
    if pa.types.is_string(values.type):
        return as_mask(pc.or_kleene(pc.is_null(values), pc.equal(pc.utf8_length(values), 0)))
    return ~as_mask(pc.is_valid(values))


def _to_canonical(block: RowBlock, kept_names: set[str], names_map: dict) -> tuple[pa.RecordBatch, list[dict], int]:
    table = block.table
    n = table.num_rows
    check = RowChecks(block)
    if not n:
        return canonical_batch({}, block.source, np.zeros(0, np.int64), np.zeros(0, np.int64),
                               pa.array([], pa.binary()), Ga4Events.name), [], 0
    names = _text(table, "event_name")
    params = _Params(table.column("event_params").combine_chunks() if "event_params" in table.column_names else None, n)
    page = params.get("page_location")
    home = _is_root(page) & as_mask(pc.equal(names, "page_view"))
    known = as_mask(pc.is_in(names, value_set=pa.array(sorted(kept_names), pa.string()))) | home
    skip = as_mask(pc.is_valid(names)) & ~known
    check.reject(pc.is_null(names), "event_name", "REQUIRED", "event_name is required")
    check.bad[skip] = True  # left out by the documented rule: counted as skipped, not as errors
    skipped = int(np.count_nonzero(skip))

    times, bad = unix_times(_column(table, "event_timestamp", n), "us")
    check.reject(bad, "event_timestamp", "INVALID_TIME", "event_timestamp must be whole microseconds since 1970")
    check.reject(pc.is_null(times), "event_timestamp", "REQUIRED", "event_timestamp is required")
    visitors = _text(table, "user_pseudo_id")
    check.reject(pc.is_null(visitors), "user_pseudo_id", "REQUIRED", "user_pseudo_id is required")

    revenue, bad_revenue = as_numbers(_coalesce(_column(table, "ecommerce.purchase_revenue", n),
                                                params.get("value", number=True)))
    check.reject(bad_revenue, "ecommerce.purchase_revenue", "INVALID_VALUE", "purchase_revenue must be a number")
    tax, bad_tax = as_numbers(_coalesce(_column(table, "ecommerce.tax_value", n), params.get("tax", number=True)))
    check.reject(bad_tax, "ecommerce.tax_value", "INVALID_VALUE", "tax_value must be a number")

    keep = pa.array(check.kept, pa.int64())
    kept = len(check.kept)
    event_names = names.take(keep)
    types = pc.if_else(pa.array(home[check.kept]), pa.scalar(HOME), _rename(event_names, names_map))
    is_search = as_mask(pc.equal(types, "search"))
    is_list = as_mask(pc.equal(types, "category-page-view"))
    is_purchase = as_mask(pc.equal(types, "purchase-complete"))
    list_name = _coalesce(params.get("item_list_name"), _first_item(table, "item_list_name", n)).take(keep)
    transaction = _not_set(_text(table, "ecommerce.transaction_id")).take(keep)
    currency = params.get("currency").take(keep)
    canonical = {
        "event_type": types,
        "source_event_type": event_names,
        "visitor_id": visitors.take(keep),
        "session_id": params.get("ga_session_id").take(keep),
        "user_info": user_info_of(_not_set(_text(table, "user_id")).take(keep)),
        "event_time": times.take(keep),
        "product_details": _products(table, keep),
        "search_query": _only(params.get("search_term").take(keep), is_search),
        "page_categories": _only(pa.ListArray.from_arrays(pa.array(np.arange(kept + 1, dtype=np.int32)), list_name,
                                                          mask=pc.is_null(list_name)), is_list),
        "purchase_transaction": _purchase(transaction, revenue.take(keep), tax.take(keep), currency, is_purchase),
        "uri": page.take(keep),
        "referrer_uri": params.get("page_referrer").take(keep),
        "attributes": _attributes(table, keep),
    }
    batch = canonical_batch(canonical, block.source, block.offsets[check.kept], block.lines[check.kept],
                            block.raw_records(check.kept), Ga4Events.name)
    return batch, check.errors, skipped


def _column(table: pa.Table, path: str, n: int) -> pa.Array:
    found = table_column(table, path)
    return pa.nulls(n, pa.string()) if found is None else found


def _text(table: pa.Table, path: str) -> pa.Array:
    return as_text(_column(table, path, table.num_rows))


def _not_set(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, NOT_SET), pa.scalar(None, pa.string()), values)


def _coalesce(first: pa.Array, second: pa.Array) -> pa.Array:
    if pa.types.is_null(first.type) or not first.null_count:
        return second if pa.types.is_null(first.type) else first
    return pc.coalesce(as_text(first), as_text(second))


class _Params:
    """A block's ``event_params``, flattened once: each parameter is then one lookup, not a
    flatten of every row's parameters per key (a block asks for eight)."""

    def __init__(self, params: pa.Array | None, n: int):
        self.n = n
        self.empty = params is None or not len(params)
        if self.empty:
            return
        entries = pc.list_flatten(params)
        self.keys = pc.struct_field(entries, "key")
        self.owners = pc.list_parent_indices(params).to_numpy(zero_copy_only=False)
        self.values = pc.struct_field(entries, "value")
        self.present = [f for f in _VALUE_FIELDS if self.values.type.get_field_index(f) >= 0]

    def get(self, key: str, number: bool = False) -> pa.Array:
        """Each row's value of the parameter ``key`` (the first if it repeats) as text, null where
        the row has none. ``number``: the numeric values first."""
        if self.empty:
            return pa.nulls(self.n, pa.string())
        hits = np.flatnonzero(as_mask(pc.equal(self.keys, key)))
        if not len(hits):
            return pa.nulls(self.n, pa.string())
        order = [f for f in ("int_value", "double_value", "float_value", "string_value") if f in self.present] \
            if number else self.present
        texts = [as_text(pc.struct_field(self.values, f).take(pa.array(hits))) for f in order]
        value = texts[0] if len(texts) == 1 else pc.coalesce(*texts)
        position = np.full(self.n, -1, dtype=np.int64)
        position[self.owners[hits][::-1]] = np.arange(len(hits))[::-1]  # the first value of each row wins
        return value.take(pa.array(position, mask=position < 0))


def _first_item(table: pa.Table, field: str, n: int) -> pa.Array:
    if "items" not in table.column_names:
        return pa.nulls(n, pa.string())
    items = table.column("items").combine_chunks()
    kind = items.type
    if not pa.types.is_list(kind) or not pa.types.is_struct(kind.value_type) or kind.value_type.get_field_index(field) < 0:
        return pa.nulls(n, pa.string())
    return as_text(pc.struct_field(_first_elements(items), field))


def _first_elements(items: pa.ListArray) -> pa.StructArray:
    lengths = pc.fill_null(pc.list_value_length(items), 0).to_numpy(zero_copy_only=False)
    starts = items.offsets.to_numpy()[:-1] - items.offsets[0].as_py()
    index = np.where(lengths > 0, starts, -1)
    return pc.list_flatten(items).take(pa.array(index, mask=index < 0))


_ROOT = r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*/?([?#].*)?$"


def _is_root(pages: pa.Array) -> np.ndarray:
    """Rows whose page is a site's root (``https://shop.example/``, a query string allowed)."""
    return as_mask(pc.match_substring_regex(pages, _ROOT))


def _rename(names: pa.Array, mapping: dict) -> pa.Array:
    if not mapping:
        return names
    position = pc.index_in(names, value_set=pa.array(list(mapping), pa.string()))
    return pc.coalesce(pa.array(list(mapping.values()), pa.string()).take(position), names)


def _only(values: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(mask), values, pa.scalar(None, values.type))


def _products(table: pa.Table, keep: pa.Array) -> pa.Array:
    """``items[]`` -> ``product_details`` (id and quantity); no items: null."""
    details = product_details_type()
    n = len(keep)
    if "items" not in table.column_names:
        return pa.nulls(n, details)
    items = table.column("items").combine_chunks().take(keep)
    if not pa.types.is_list(items.type) or not pa.types.is_struct(items.type.value_type):
        return pa.nulls(n, details)
    items = pc.if_else(pc.greater(pc.fill_null(pc.list_value_length(items), 0), 0), items,
                       pa.scalar(None, items.type))
    flat = pc.list_flatten(items)
    kind = flat.type
    ids = _not_set(as_text(pc.struct_field(flat, "item_id"))) if kind.get_field_index("item_id") >= 0 \
        else pa.nulls(len(flat), pa.string())
    quantity = pa.nulls(len(flat), pa.int64())
    if kind.get_field_index("quantity") >= 0:
        numbers, _ = as_numbers(pc.struct_field(flat, "quantity"))
        quantity = pc.cast(pc.floor(numbers), pa.int64())
    product = pa.StructArray.from_arrays([ids], fields=list(details.value_type.field("product").type))
    entries = pa.StructArray.from_arrays([product, quantity], fields=list(details.value_type))
    offsets = pc.subtract(items.offsets, items.offsets[0])
    return pa.ListArray.from_arrays(offsets, entries, type=details, mask=pc.is_null(items))


def _purchase(ids, revenue, tax, currency, is_purchase: np.ndarray) -> pa.StructArray:
    n = len(ids)
    arrays = [ids, revenue, tax, pa.nulls(n, pa.float64()), currency]
    arrays = [pc.cast(a, f.type) for a, f in zip(arrays, PURCHASE_TRANSACTION, strict=True)]
    return pa.StructArray.from_arrays(arrays, fields=list(PURCHASE_TRANSACTION), mask=pa.array(~is_purchase))


def _attributes(table: pa.Table, keep: pa.Array) -> pa.Array | None:
    names, columns = [], []
    for path, name in ATTRIBUTES.items():
        values = _column(table, path, table.num_rows)
        if values.null_count == len(values):
            continue
        names.append(name)
        columns.append(_not_set(as_text(values)).take(keep))
    return attributes_from_columns(names, columns) if names else None


__all__ = ["Ga4Events"]
