"""The canonical event schema: one Arrow schema that every source format maps into.

Modelled on the Retail ``UserEvent`` (snake_case of its proto field names), plus fields other
systems need, the record's origin, the catalog join result and a content fingerprint.
"""

from __future__ import annotations

import pyarrow as pa

RETAIL_EVENT_TYPES = (
    "add-to-cart",
    "remove-from-cart",
    "category-page-view",
    "detail-page-view",
    "home-page-view",
    "purchase-complete",
    "search",
    "shopping-cart-page-view",
)

# Catalog fields an import may copy into each stored product, with their Arrow types.
CATALOG_FIELD_TYPES: dict[str, pa.DataType] = {
    "title": pa.string(),
    "brands": pa.list_(pa.string()),
    "categories": pa.list_(pa.string()),
    "price": pa.float64(),
    "original_price": pa.float64(),
    "currency_code": pa.string(),
    "availability": pa.string(),
    "uri": pa.string(),
}
DEFAULT_CATALOG_FIELDS = ("title", "categories", "price")


def catalog_schema(fields: tuple[str, ...]) -> pa.Schema:
    """A catalog as the join reads it: the product id and the fields the store keeps."""
    return pa.schema([("id", pa.string())] + [(f, CATALOG_FIELD_TYPES[f]) for f in fields])

PARTITION_COLUMN = "event_date"

USER_INFO = pa.struct(
    [
        ("user_id", pa.string()),
        ("ip_address", pa.string()),
        ("user_agent", pa.string()),
        ("direct_user_request", pa.bool_()),
    ]
)
PURCHASE_TRANSACTION = pa.struct(
    [
        ("id", pa.string()),
        ("revenue", pa.float64()),
        ("tax", pa.float64()),
        ("cost", pa.float64()),
        ("currency_code", pa.string()),
    ]
)
ATTRIBUTES = pa.list_(
    pa.struct(
        [
            ("key", pa.string()),
            ("value", pa.struct([("text", pa.list_(pa.string())), ("numbers", pa.list_(pa.float64()))])),
        ]
    )
)


def product_details_type(catalog_fields: tuple[str, ...] = ()) -> pa.DataType:
    """``product_details`` with the product struct widened by the joined catalog fields."""
    product = pa.struct([("id", pa.string())] + [(f, CATALOG_FIELD_TYPES[f]) for f in catalog_fields])
    return pa.list_(pa.struct([("product", product), ("quantity", pa.int64())]))


# The event as a source describes it, before the join. Column order is the stored order.
EVENT_FIELDS: list[pa.Field] = [
    pa.field("event_type", pa.string()),
    pa.field("source_event_type", pa.string()),
    pa.field("event_id", pa.string()),
    pa.field("visitor_id", pa.string()),
    pa.field("session_id", pa.string()),
    pa.field("event_time", pa.timestamp("us", tz="UTC")),
    pa.field("experiment_ids", pa.list_(pa.string())),
    pa.field("attribution_token", pa.string()),
    pa.field("product_details", product_details_type()),
    pa.field("attributes", ATTRIBUTES),
    pa.field("cart_id", pa.string()),
    pa.field("purchase_transaction", PURCHASE_TRANSACTION),
    pa.field("search_query", pa.string()),
    pa.field("filter", pa.string()),
    pa.field("order_by", pa.string()),
    pa.field("offset", pa.int64()),
    pa.field("page_categories", pa.list_(pa.string())),
    pa.field("user_info", USER_INFO),
    pa.field("uri", pa.string()),
    pa.field("referrer_uri", pa.string()),
    pa.field("page_view_id", pa.string()),
    pa.field("entity", pa.string()),
    pa.field("event_value", pa.float64()),
    pa.field("impression", pa.list_(pa.string())),
    pa.field("recommendation_id", pa.string()),
    pa.field("request_id", pa.string()),
    pa.field("trace_info", pa.string()),
]
EVENT_SCHEMA = pa.schema(EVENT_FIELDS)

# Where the record came from: enough to find it again in the source file.
ORIGIN_FIELDS: list[pa.Field] = [
    pa.field("source_uri", pa.string()),
    pa.field("source_offset", pa.int64()),
]

# Which format the record was read as (``eventlake.formats``). Not part of the content
# fingerprint, and last in the stored schema: stores made before it existed gain it as a
# column of its own, which their older files read as null.
FORMAT_FIELD = pa.field("source_format", pa.string())

# What the import adds: the join result and the content fingerprint used for dedupe.
JOIN_FIELDS: list[pa.Field] = [
    pa.field("joined", pa.bool_()),
    pa.field("missing_product_ids", pa.list_(pa.string())),
]
FINGERPRINT_FIELD = pa.field("event_fingerprint", pa.binary())

# A parsed batch, between parse and validation: the event, its origin, and its line number and
# raw text so that a rule broken later can still be reported with the record that broke it.
SOURCE_DETAIL_FIELDS: list[pa.Field] = [pa.field("source_line", pa.int64()), pa.field("source_record", pa.binary())]
PARSED_SCHEMA = pa.schema(EVENT_FIELDS + ORIGIN_FIELDS + SOURCE_DETAIL_FIELDS + [FORMAT_FIELD])


def stored_schema(catalog_fields: tuple[str, ...] = DEFAULT_CATALOG_FIELDS) -> pa.Schema:
    """The columns of a stored Parquet file (the partition column lives in the log, not the file)."""
    fields = [
        pa.field("product_details", product_details_type(catalog_fields)) if f.name == "product_details" else f
        for f in EVENT_FIELDS
    ]
    return pa.schema(fields + ORIGIN_FIELDS + JOIN_FIELDS + [FINGERPRINT_FIELD, FORMAT_FIELD])


def table_schema(catalog_fields: tuple[str, ...] = DEFAULT_CATALOG_FIELDS) -> pa.Schema:
    """The logical table: stored columns plus the ``event_date`` partition column."""
    return stored_schema(catalog_fields).append(pa.field(PARTITION_COLUMN, pa.date32()))


# The features table (``<store>/_features``): what a ranking service logged at request time,
# one row per request (``module`` user) or per request and item (``module`` item). Feature
# fields hold JSON objects as text, as PAI-Rec writes them; ``event_time`` is ``request_time``
# as a UTC timestamp, the column the table is partitioned and deduplicated by, as events are.
FEATURE_FIELDS: list[pa.Field] = [
    pa.field("module", pa.string()),
    pa.field("request_id", pa.string()),
    pa.field("scene", pa.string()),
    pa.field("request_time", pa.int64()),
    pa.field("event_time", pa.timestamp("us", tz="UTC")),
    pa.field("user_id", pa.string()),
    pa.field("item_id", pa.string()),
    pa.field("user_features", pa.string()),
    pa.field("item_features", pa.string()),
    pa.field("raw_features", pa.string()),
    pa.field("generate_features", pa.string()),
    pa.field("context_features", pa.string()),
    pa.field("request_info", pa.string()),
]
FEATURE_CONTENT_COLUMNS = tuple(f.name for f in FEATURE_FIELDS)
PARSED_FEATURE_SCHEMA = pa.schema(FEATURE_FIELDS + ORIGIN_FIELDS + [FINGERPRINT_FIELD] + SOURCE_DETAIL_FIELDS
                                  + [FORMAT_FIELD])


def feature_stored_schema() -> pa.Schema:
    """The columns of a features table's Parquet file."""
    return pa.schema(FEATURE_FIELDS + ORIGIN_FIELDS + [FINGERPRINT_FIELD, FORMAT_FIELD])


def feature_table_schema() -> pa.Schema:
    return feature_stored_schema().append(pa.field(PARTITION_COLUMN, pa.date32()))


def parquet_leaf_paths(field: pa.Field, prefix: str = "") -> list[str]:
    """The Parquet column paths of a field's leaves (``product_details.list.element.product.id``):
    how a reader picks nested columns and a writer's per-column settings name them."""
    name = prefix + field.name
    data_type = field.type
    if pa.types.is_list(data_type):
        return parquet_leaf_paths(pa.field("element", data_type.value_type), name + ".list.")
    if pa.types.is_struct(data_type):
        return [p for i in range(data_type.num_fields) for p in parquet_leaf_paths(data_type.field(i), name + ".")]
    return [name]

