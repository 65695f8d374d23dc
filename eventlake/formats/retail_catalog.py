"""Google Cloud Retail ``Product`` JSON lines -> an Arrow catalog table for the join.

Catalogs are small next to event streams and their products are rich and irregular, so each
line is parsed on its own; invalid products are reported with file and line and left out.
"""

from __future__ import annotations

import orjson
import pyarrow as pa

from eventlake.errors import error_record
from eventlake.formats.lines import LineBlock
from eventlake.schema import CATALOG_FIELD_TYPES

AVAILABILITY = ("AVAILABILITY_UNSPECIFIED", "IN_STOCK", "OUT_OF_STOCK", "PREORDER", "BACKORDER")


def catalog_schema(fields: tuple[str, ...]) -> pa.Schema:
    return pa.schema([("id", pa.string())] + [(f, CATALOG_FIELD_TYPES[f]) for f in fields])


class ProductError(ValueError):
    def __init__(self, field: str, reason: str, message: str):
        super().__init__(message)
        self.field, self.reason = field, reason


def parse_catalog_block(block: LineBlock, fields: tuple[str, ...]) -> tuple[pa.Table, list[dict]]:
    """Products of ``block`` (only ``id`` and ``fields``) and an error for each invalid line."""
    rows, errors = [], []
    for i in range(len(block)):
        raw = block.raw(i)
        try:
            rows.append(_product(raw, fields))
        except ProductError as exc:
            line = int(block.line_numbers[i])
            errors.append(error_record(block.source, line if line >= 0 else None, int(block.offsets[i]),
                                       exc.field, exc.reason, f"catalog: {exc}", raw))
    return pa.Table.from_pylist(rows, schema=catalog_schema(fields)), errors


def _product(raw: bytes, fields: tuple[str, ...]) -> dict:
    try:
        product = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProductError("", "INVALID_JSON", f"line is not valid JSON: {exc}") from None
    if not isinstance(product, dict):
        raise ProductError("", "NOT_AN_OBJECT", "line is JSON but not an object")
    product_id = product.get("id")
    if not isinstance(product_id, str) or not product_id:
        raise ProductError("id", "REQUIRED", "product id is required")
    if len(product_id) > 128:
        raise ProductError("id", "TOO_LONG", "product id must be at most 128 characters")
    availability = product.get("availability")
    if availability is not None and availability not in AVAILABILITY:
        raise ProductError("availability", "INVALID_VALUE",
                           f"availability must be one of {', '.join(AVAILABILITY)}, got {str(availability)[:40]!r}")
    price_info = product.get("priceInfo") or product.get("price_info") or {}
    if not isinstance(price_info, dict):
        raise ProductError("priceInfo", "INVALID_TYPE", "priceInfo must be an object")
    values = {
        "title": _string(product, "title"),
        "brands": _strings(product, "brands"),
        "categories": _strings(product, "categories"),
        "price": _number(price_info, "price", "priceInfo.price"),
        "original_price": _number(price_info, "originalPrice", "priceInfo.originalPrice"),
        "currency_code": _string(price_info, "currencyCode", "priceInfo.currencyCode"),
        "availability": availability,
        "uri": _string(product, "uri"),
    }
    return {"id": product_id, **{f: values[f] for f in fields}}


def _string(obj: dict, key: str, path: str | None = None):
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ProductError(path or key, "INVALID_TYPE", f"{path or key} must be a string")
    return value


def _strings(obj: dict, key: str):
    value = obj.get(key)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise ProductError(key, "INVALID_TYPE", f"{key} must be a list of strings")
    return value


def _number(obj: dict, key: str, path: str):
    value = obj.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ProductError(path, "INVALID_TYPE", f"{path} must be a number") from None
