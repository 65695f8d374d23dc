"""Retail v2 user-event rules, checked column by column over a whole batch.

Each rule is a vectorised mask of the rows that break it. A row is reported once, for the first
rule it breaks, so that every rejected record is one error sample.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.errors import ERRORS, error_record
from eventlake.formats.arrow_util import list_any, take_rows
from eventlake.schema import RETAIL_EVENT_TYPES, SOURCE_DETAIL_FIELDS

PRODUCT_REQUIRED = ("add-to-cart", "detail-page-view", "purchase-complete")
QUANTITY_REQUIRED = ("add-to-cart", "purchase-complete")
CART_ID_ALLOWED = ("add-to-cart", "purchase-complete", "shopping-cart-page-view")
_SOURCE_DETAILS = [f.name for f in SOURCE_DETAIL_FIELDS]
_IPV4 = r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"


@dataclass(frozen=True)
class Rule:
    field: str
    reason: str
    message: str
    broken: Callable[[pa.RecordBatch], np.ndarray]


def _np(mask) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _col(batch: pa.RecordBatch, path: str) -> pa.Array:
    head, *rest = path.split(".")
    array = batch.column(head)
    for name in rest:
        array = pc.struct_field(array, name)
    return array


class _CheckedBatch:
    """A batch under check, with the event-type masks that many rules share computed once."""

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self._types = pc.dictionary_encode(batch.column("event_type"))
        self._masks: dict[tuple, np.ndarray] = {}

    def column(self, name: str) -> pa.Array:
        return self.batch.column(name)

    def __len__(self) -> int:
        return len(self.batch)

    def is_type(self, types) -> np.ndarray:
        key = tuple(types)
        if key not in self._masks:
            hits = pc.is_in(self._types.dictionary, pa.array(list(key), pa.string())).to_numpy(zero_copy_only=False)
            indices = self._types.indices.to_numpy(zero_copy_only=False)
            mask = np.zeros(len(self.batch), dtype=bool)
            valid = ~np.isnan(indices) if indices.dtype.kind == "f" else np.ones(len(indices), dtype=bool)
            mask[valid] = hits[indices[valid].astype(np.int64)]
            self._masks[key] = mask
        return self._masks[key]


def _is_type(batch, types) -> np.ndarray:
    return batch.is_type(types)


def _present(batch, path) -> np.ndarray:
    return _np(pc.is_valid(_col(batch, path)))


def _longer(batch, path, limit, in_bytes=False) -> np.ndarray:
    column = _col(batch, path)
    length = pc.binary_length(column) if in_bytes else pc.utf8_length(column)
    return _np(pc.greater(length, limit))


def _missing(batch, path) -> np.ndarray:
    column = _col(batch, path)
    return _np(pc.or_kleene(pc.is_null(column), pc.equal(pc.utf8_length(column), 0)))


def _non_empty_list(batch, path) -> np.ndarray:
    return _np(pc.greater(pc.list_value_length(batch.column(path)), 0))


def _products(batch) -> pa.StructArray:
    return pc.list_flatten(batch.column("product_details"))


def _product_ids(batch) -> pa.Array:
    return pc.struct_field(_products(batch), ["product", "id"])


def _any_product(batch, value_mask) -> np.ndarray:
    return list_any(batch.column("product_details"), _np(value_mask))


def _bad_ip(batch) -> np.ndarray:
    column = _col(batch, "user_info.ip_address")
    suspect = np.flatnonzero(_np(pc.and_(pc.is_valid(column), pc.invert(pc.match_substring_regex(column, _IPV4)))))
    out = np.zeros(len(batch), dtype=bool)
    values = column.take(pa.array(suspect, pa.int64())).to_pylist()
    # IPv6 and malformed values only: few, and the stdlib knows IPv6 best.
    for i, value in zip(suspect, values, strict=True):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            out[i] = True
    return out


def _attribute_values(batch) -> pa.StructArray:
    return pc.struct_field(pc.list_flatten(batch.column("attributes")), "value")


def _attribute_text_bad(batch) -> np.ndarray:
    text = pc.list_flatten(pc.struct_field(_attribute_values(batch), "text"))
    bad = pc.or_kleene(pc.equal(pc.utf8_length(text), 0), pc.greater(pc.utf8_length(text), 256))
    per_value = list_any(pc.struct_field(_attribute_values(batch), "text"), _np(bad))
    return list_any(batch.column("attributes"), per_value)


def _attribute_shape_bad(batch) -> np.ndarray:
    values = _attribute_values(batch)
    n_text = pc.fill_null(pc.list_value_length(pc.struct_field(values, "text")), 0)
    n_numbers = pc.fill_null(pc.list_value_length(pc.struct_field(values, "numbers")), 0)
    has_text, has_numbers = pc.greater(n_text, 0), pc.greater(n_numbers, 0)
    bad = pc.or_(pc.equal(has_text, has_numbers), pc.greater(pc.add(n_text, n_numbers), 400))
    return list_any(batch.column("attributes"), _np(bad))


def _attribute_key_bad(batch) -> np.ndarray:
    keys = pc.struct_field(pc.list_flatten(batch.column("attributes")), "key")
    bad = pc.or_kleene(pc.is_null(keys), pc.greater(pc.utf8_length(keys), 5000))
    return list_any(batch.column("attributes"), _np(bad))


def retail_rules(allowed_event_types: tuple[str, ...] = ()) -> list[Rule]:
    """The rules in the order they are reported."""
    types = tuple(RETAIL_EVENT_TYPES) + tuple(allowed_event_types)
    names = ", ".join(types)
    return [
        Rule("eventType", "REQUIRED", "eventType is required", lambda b: _missing(b, "event_type")),
        Rule("eventType", "INVALID_EVENT_TYPE", f"eventType must be one of: {names}", lambda b: ~_is_type(b, types)),
        Rule("visitorId", "REQUIRED", "visitorId is required", lambda b: _missing(b, "visitor_id")),
        Rule("visitorId", "TOO_LONG", "visitorId must be at most 128 characters", lambda b: _longer(b, "visitor_id", 128)),
        Rule("sessionId", "TOO_LONG", "sessionId must be at most 128 bytes", lambda b: _longer(b, "session_id", 128, True)),
        Rule("eventTime", "REQUIRED", "eventTime is required", lambda b: ~_present(b, "event_time")),
        Rule("userInfo.userId", "TOO_LONG", "userInfo.userId must be at most 128 characters",
             lambda b: _longer(b, "user_info.user_id", 128)),
        Rule("userInfo.userAgent", "TOO_LONG", "userInfo.userAgent must be at most 1000 characters",
             lambda b: _longer(b, "user_info.user_agent", 1000)),
        Rule("userInfo.ipAddress", "INVALID_IP_ADDRESS", "userInfo.ipAddress must be an IPv4 or IPv6 address", _bad_ip),
        Rule("productDetails", "REQUIRED",
             f"productDetails needs at least one entry for {', '.join(PRODUCT_REQUIRED)}",
             lambda b: _is_type(b, PRODUCT_REQUIRED) & ~_non_empty_list(b, "product_details")),
        Rule("productDetails.product.id", "REQUIRED", "every productDetails entry needs product.id",
             lambda b: _any_product(b, pc.fill_null(pc.equal(pc.utf8_length(_product_ids(b)), 0), True))),
        Rule("productDetails.product.id", "TOO_LONG", "productDetails.product.id must be at most 128 characters",
             lambda b: _any_product(b, pc.greater(pc.utf8_length(_product_ids(b)), 128))),
        Rule("productDetails.quantity", "REQUIRED",
             f"productDetails.quantity is required and must be positive for {', '.join(QUANTITY_REQUIRED)}",
             lambda b: _is_type(b, QUANTITY_REQUIRED)
             & _any_product(b, pc.fill_null(pc.less_equal(pc.struct_field(_products(b), "quantity"), 0), True))),
        Rule("purchaseTransaction", "REQUIRED", "purchaseTransaction is required for purchase-complete",
             lambda b: _is_type(b, ["purchase-complete"]) & ~_present(b, "purchase_transaction")),
        Rule("purchaseTransaction", "NOT_ALLOWED", "purchaseTransaction is only allowed on purchase-complete",
             lambda b: ~_is_type(b, ["purchase-complete"]) & _present(b, "purchase_transaction")),
        Rule("purchaseTransaction.revenue", "REQUIRED", "purchaseTransaction.revenue is required and must not be zero",
             lambda b: _present(b, "purchase_transaction")
             & _np(pc.fill_null(pc.equal(_col(b, "purchase_transaction.revenue"), 0), True))),
        Rule("purchaseTransaction.currencyCode", "INVALID_CURRENCY_CODE",
             "purchaseTransaction.currencyCode must be a 3-letter ISO 4217 code",
             lambda b: _present(b, "purchase_transaction")
             & ~_np(pc.match_substring_regex(_col(b, "purchase_transaction.currency_code"), r"^[A-Z]{3}$"))),
        Rule("purchaseTransaction.id", "TOO_LONG", "purchaseTransaction.id must be at most 128 characters",
             lambda b: _longer(b, "purchase_transaction.id", 128)),
        Rule("searchQuery", "REQUIRED", "a search event needs searchQuery or pageCategories",
             lambda b: _is_type(b, ["search"]) & ~_present(b, "search_query") & ~_non_empty_list(b, "page_categories")),
        Rule("searchQuery", "NOT_ALLOWED", "searchQuery is only allowed on search",
             lambda b: ~_is_type(b, ["search"]) & _present(b, "search_query")),
        Rule("searchQuery", "TOO_LONG", "searchQuery must be at most 5000 characters", lambda b: _longer(b, "search_query", 5000)),
        Rule("pageCategories", "REQUIRED", "pageCategories is required for category-page-view",
             lambda b: _is_type(b, ["category-page-view"]) & ~_non_empty_list(b, "page_categories")),
        Rule("pageCategories", "NOT_ALLOWED", "pageCategories is only allowed on category-page-view and search",
             lambda b: ~_is_type(b, ["category-page-view", "search"]) & _present(b, "page_categories")),
        Rule("cartId", "NOT_ALLOWED", f"cartId is only allowed on {', '.join(CART_ID_ALLOWED)}",
             lambda b: ~_is_type(b, CART_ID_ALLOWED) & _present(b, "cart_id")),
        Rule("orderBy", "NOT_ALLOWED", "orderBy is only allowed on search",
             lambda b: ~_is_type(b, ["search"]) & _present(b, "order_by")),
        Rule("offset", "NOT_ALLOWED", "offset is only allowed on search",
             lambda b: ~_is_type(b, ["search"]) & _present(b, "offset")),
        Rule("offset", "NEGATIVE", "offset must not be negative", lambda b: _np(pc.less(b.column("offset"), 0))),
        Rule("uri", "TOO_LONG", "uri must be at most 5000 characters", lambda b: _longer(b, "uri", 5000)),
        Rule("filter", "TOO_LONG", "filter must be at most 1000 characters", lambda b: _longer(b, "filter", 1000)),
        Rule("orderBy", "TOO_LONG", "orderBy must be at most 1000 characters", lambda b: _longer(b, "order_by", 1000)),
        Rule("attributes", "INVALID_ATTRIBUTE",
             "each attribute needs exactly one of text or numbers, with at most 400 values", _attribute_shape_bad),
        Rule("attributes", "INVALID_ATTRIBUTE", "attribute text values must be 1 to 256 characters", _attribute_text_bad),
        Rule("attributes", "INVALID_ATTRIBUTE", "attribute keys must be at most 5000 characters", _attribute_key_bad),
    ]


def check(batch: pa.RecordBatch, rules: list[Rule]) -> tuple[pa.RecordBatch, list[dict]]:
    """Split ``batch`` into the rows that keep every rule and one error per row that does not.

    Kept rows leave without ``source_line`` and ``source_record``. When rows are dropped, the
    kept ones come out grouped by event date: the copy is made anyway, and the store writer then
    slices the batch per date instead of copying it again.
    """
    failed = np.full(len(batch), -1, dtype=np.int32)
    checked = _CheckedBatch(batch)
    for index, rule in enumerate(rules):
        broken = rule.broken(checked)
        failed[(failed < 0) & broken] = index
    bad = np.flatnonzero(failed >= 0)
    valid = batch.drop_columns(_SOURCE_DETAILS)  # only error samples need the line and its text
    if not len(bad):
        return valid, []
    errors = []
    details = batch.select(["source_uri", "source_line", "source_offset", "source_record"]).take(pa.array(bad))
    for row, detail in zip(bad, details.to_pylist(), strict=True):
        rule = rules[failed[row]]
        line = detail["source_line"] if detail["source_line"] >= 0 else None
        errors.append(
            error_record(detail["source_uri"], line, detail["source_offset"], rule.field, rule.reason, rule.message,
                         detail["source_record"])
        )
    return take_rows(valid, _by_date(batch, np.flatnonzero(failed < 0))), errors


def _by_date(batch: pa.RecordBatch, rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by event date (stable); rows without a time were rejected above."""
    micros = pc.cast(batch.column("event_time"), pa.int64()).to_numpy(zero_copy_only=False)[rows]
    return rows[np.argsort(micros // 86_400_000_000, kind="stable")]


def map_event_types(batch: pa.RecordBatch, mapping: dict[str, str]) -> pa.RecordBatch:
    """Rename source event types to canonical ones (``source_event_type`` keeps the original)."""
    if not mapping:
        return batch
    source = batch.column("source_event_type")
    position = pc.index_in(source, value_set=pa.array(list(mapping)))
    mapped = pc.coalesce(pa.array(list(mapping.values())).take(position), source)
    return batch.set_column(batch.schema.get_field_index("event_type"), "event_type", mapped)


class _ValidateFn(beam.DoFn):
    def __init__(self, allowed_event_types: tuple[str, ...], event_type_map: dict[str, str]):
        self._allowed, self._map = allowed_event_types, event_type_map

    def setup(self):
        self._rules = retail_rules(self._allowed)

    def process(self, batch: pa.RecordBatch):
        valid, errors = check(map_event_types(batch, self._map), self._rules)
        for error in errors:
            yield beam.pvalue.TaggedOutput(ERRORS, error)
        if len(valid):
            yield valid


class ValidateRetailEvents(beam.PTransform):
    """Parsed batches -> batches that keep every Retail rule, plus an ``errors`` output.

    The kept batches are events and their origin: the source line and text stay behind, as
    only error samples use them.
    """

    def __init__(self, allowed_event_types: tuple[str, ...] = (), event_type_map: dict[str, str] | None = None):
        super().__init__()
        self._allowed, self._map = tuple(allowed_event_types), dict(event_type_map or {})

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.pvalue.DoOutputsTuple:
        return batches | (
            beam.ParDo(_ValidateFn(self._allowed, self._map)).with_output_types(pa.RecordBatch).with_outputs(ERRORS, main="events")
        )
