"""Google Cloud Retail's user-event rules (Retail v2 ``UserEvent``), as vectorised masks."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.arrow_util import list_any
from eventlake.formats.rules import (
    Rule,
    any_product,
    as_mask,
    column_at,
    is_type,
    longer,
    missing,
    non_empty_list,
    present,
    product_ids,
    products,
)
from eventlake.schema import RETAIL_EVENT_TYPES

PRODUCT_REQUIRED = ("add-to-cart", "detail-page-view", "purchase-complete")
QUANTITY_REQUIRED = ("add-to-cart", "purchase-complete")
CART_ID_ALLOWED = ("add-to-cart", "purchase-complete", "shopping-cart-page-view")
_IPV4 = r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"


def _bad_ip(batch) -> np.ndarray:
    column = column_at(batch, "user_info.ip_address")
    suspect = np.flatnonzero(as_mask(pc.and_(pc.is_valid(column), pc.invert(pc.match_substring_regex(column, _IPV4)))))
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
    per_value = list_any(pc.struct_field(_attribute_values(batch), "text"), as_mask(bad))
    return list_any(batch.column("attributes"), per_value)


def _attribute_shape_bad(batch) -> np.ndarray:
    values = _attribute_values(batch)
    n_text = pc.fill_null(pc.list_value_length(pc.struct_field(values, "text")), 0)
    n_numbers = pc.fill_null(pc.list_value_length(pc.struct_field(values, "numbers")), 0)
    has_text, has_numbers = pc.greater(n_text, 0), pc.greater(n_numbers, 0)
    bad = pc.or_(pc.equal(has_text, has_numbers), pc.greater(pc.add(n_text, n_numbers), 400))
    return list_any(batch.column("attributes"), as_mask(bad))


def _attribute_key_bad(batch) -> np.ndarray:
    keys = pc.struct_field(pc.list_flatten(batch.column("attributes")), "key")
    bad = pc.or_kleene(pc.is_null(keys), pc.greater(pc.utf8_length(keys), 5000))
    return list_any(batch.column("attributes"), as_mask(bad))


def retail_rules(allowed_event_types: tuple[str, ...] = ()) -> list[Rule]:
    """The rules in the order they are reported."""
    types = tuple(RETAIL_EVENT_TYPES) + tuple(allowed_event_types)
    names = ", ".join(types)
    return [
        Rule("eventType", "REQUIRED", "eventType is required", lambda b: missing(b, "event_type")),
        Rule("eventType", "INVALID_EVENT_TYPE", f"eventType must be one of: {names}", lambda b: ~is_type(b, types)),
        Rule("visitorId", "REQUIRED", "visitorId is required", lambda b: missing(b, "visitor_id")),
        Rule("visitorId", "TOO_LONG", "visitorId must be at most 128 characters", lambda b: longer(b, "visitor_id", 128)),
        Rule("sessionId", "TOO_LONG", "sessionId must be at most 128 bytes", lambda b: longer(b, "session_id", 128, True)),
        Rule("eventTime", "REQUIRED", "eventTime is required", lambda b: ~present(b, "event_time")),
        Rule("userInfo.userId", "TOO_LONG", "userInfo.userId must be at most 128 characters",
             lambda b: longer(b, "user_info.user_id", 128)),
        Rule("userInfo.userAgent", "TOO_LONG", "userInfo.userAgent must be at most 1000 characters",
             lambda b: longer(b, "user_info.user_agent", 1000)),
        Rule("userInfo.ipAddress", "INVALID_IP_ADDRESS", "userInfo.ipAddress must be an IPv4 or IPv6 address", _bad_ip),
        Rule("productDetails", "REQUIRED",
             f"productDetails needs at least one entry for {', '.join(PRODUCT_REQUIRED)}",
             lambda b: is_type(b, PRODUCT_REQUIRED) & ~non_empty_list(b, "product_details")),
        Rule("productDetails.product.id", "REQUIRED", "every productDetails entry needs product.id",
             lambda b: any_product(b, pc.fill_null(pc.equal(pc.utf8_length(product_ids(b)), 0), True))),
        Rule("productDetails.product.id", "TOO_LONG", "productDetails.product.id must be at most 128 characters",
             lambda b: any_product(b, pc.greater(pc.utf8_length(product_ids(b)), 128))),
        Rule("productDetails.quantity", "REQUIRED",
             f"productDetails.quantity is required and must be positive for {', '.join(QUANTITY_REQUIRED)}",
             lambda b: is_type(b, QUANTITY_REQUIRED)
             & any_product(b, pc.fill_null(pc.less_equal(pc.struct_field(products(b), "quantity"), 0), True))),
        Rule("purchaseTransaction", "REQUIRED", "purchaseTransaction is required for purchase-complete",
             lambda b: is_type(b, ["purchase-complete"]) & ~present(b, "purchase_transaction")),
        Rule("purchaseTransaction", "NOT_ALLOWED", "purchaseTransaction is only allowed on purchase-complete",
             lambda b: ~is_type(b, ["purchase-complete"]) & present(b, "purchase_transaction")),
        Rule("purchaseTransaction.revenue", "REQUIRED", "purchaseTransaction.revenue is required and must not be zero",
             lambda b: present(b, "purchase_transaction")
             & as_mask(pc.fill_null(pc.equal(column_at(b, "purchase_transaction.revenue"), 0), True))),
        Rule("purchaseTransaction.currencyCode", "INVALID_CURRENCY_CODE",
             "purchaseTransaction.currencyCode must be a 3-letter ISO 4217 code",
             lambda b: present(b, "purchase_transaction")
             & ~as_mask(pc.match_substring_regex(column_at(b, "purchase_transaction.currency_code"), r"^[A-Z]{3}$"))),
        Rule("purchaseTransaction.id", "TOO_LONG", "purchaseTransaction.id must be at most 128 characters",
             lambda b: longer(b, "purchase_transaction.id", 128)),
        Rule("searchQuery", "REQUIRED", "a search event needs searchQuery or pageCategories",
             lambda b: is_type(b, ["search"]) & ~present(b, "search_query") & ~non_empty_list(b, "page_categories")),
        Rule("searchQuery", "NOT_ALLOWED", "searchQuery is only allowed on search",
             lambda b: ~is_type(b, ["search"]) & present(b, "search_query")),
        Rule("searchQuery", "TOO_LONG", "searchQuery must be at most 5000 characters", lambda b: longer(b, "search_query", 5000)),
        Rule("pageCategories", "REQUIRED", "pageCategories is required for category-page-view",
             lambda b: is_type(b, ["category-page-view"]) & ~non_empty_list(b, "page_categories")),
        Rule("pageCategories", "NOT_ALLOWED", "pageCategories is only allowed on category-page-view and search",
             lambda b: ~is_type(b, ["category-page-view", "search"]) & present(b, "page_categories")),
        Rule("cartId", "NOT_ALLOWED", f"cartId is only allowed on {', '.join(CART_ID_ALLOWED)}",
             lambda b: ~is_type(b, CART_ID_ALLOWED) & present(b, "cart_id")),
        Rule("orderBy", "NOT_ALLOWED", "orderBy is only allowed on search",
             lambda b: ~is_type(b, ["search"]) & present(b, "order_by")),
        Rule("offset", "NOT_ALLOWED", "offset is only allowed on search",
             lambda b: ~is_type(b, ["search"]) & present(b, "offset")),
        Rule("offset", "NEGATIVE", "offset must not be negative", lambda b: as_mask(pc.less(b.column("offset"), 0))),
        Rule("uri", "TOO_LONG", "uri must be at most 5000 characters", lambda b: longer(b, "uri", 5000)),
        Rule("filter", "TOO_LONG", "filter must be at most 1000 characters", lambda b: longer(b, "filter", 1000)),
        Rule("orderBy", "TOO_LONG", "orderBy must be at most 1000 characters", lambda b: longer(b, "order_by", 1000)),
        Rule("attributes", "INVALID_ATTRIBUTE",
             "each attribute needs exactly one of text or numbers, with at most 400 values", _attribute_shape_bad),
        Rule("attributes", "INVALID_ATTRIBUTE", "attribute text values must be 1 to 256 characters", _attribute_text_bad),
        Rule("attributes", "INVALID_ATTRIBUTE", "attribute keys must be at most 5000 characters", _attribute_key_bad),
    ]
