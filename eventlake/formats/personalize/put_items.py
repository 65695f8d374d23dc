"""Amazon Personalize PutItems request bodies, one per line, as catalog products.

Each listed item is one product: ``itemId`` (1 to 256 characters) is its id, and ``properties``
(a JSON string holding a flat object, as the API takes it) fill catalog fields. Property keys
are the items schema's field names in camel case (``genre`` for ``GENRE``), so a key matches a
catalog field or a ``catalog_field_map`` column whatever its case and underscores.
"""

from __future__ import annotations

import json
import math

import orjson
import pyarrow as pa

from eventlake.errors import error_record
from eventlake.formats.lines import LineBlock
from eventlake.schema import CATALOG_FIELD_TYPES, catalog_schema

ID_LIMIT = 256


def _plain(name: str) -> str:
    return name.replace("_", "").lower()


def put_items_products(block: LineBlock, fields: tuple[str, ...], field_map: dict[str, str]):
    """The products of the block's requests, and an error for each item or line that is not one."""
    sources = {_plain(f): f for f in fields}  # a property named like a field fills it
    sources.update({_plain(column): field for column, field in field_map.items() if field in fields})
    products, errors = [], []
    for i in range(len(block)):
        line = int(block.line_numbers[i])
        where = (block.source, line if line >= 0 else None, int(block.offsets[i]))
        try:
            request = orjson.loads(block.raw(i))
        except orjson.JSONDecodeError as exc:
            errors.append(error_record(*where, "", "INVALID_JSON", f"catalog: not valid JSON: {exc}", block.raw(i)))
            continue
        items = request.get("items") if isinstance(request, dict) else None
        if not isinstance(items, list) or not items:
            errors.append(error_record(*where, "items", "REQUIRED", "catalog: a PutItems request needs items",
                                       block.raw(i)))
            continue
        for n, item in enumerate(items):
            try:
                products.append(_product(item, n, fields, sources))
            except ValueError as exc:
                field, message = exc.args
                errors.append(error_record(*where, field, "INVALID_ITEM", f"catalog: {message}", block.raw(i)))
    return pa.Table.from_pylist(products, schema=catalog_schema(fields)), errors


def _product(item, n: int, fields: tuple[str, ...], sources: dict[str, str]) -> dict:
    at = f"items[{n}]"
    if not isinstance(item, dict):
        raise ValueError(at, f"{at} must be an object")
    item_id = item.get("itemId")
    if not isinstance(item_id, str) or not 1 <= len(item_id) <= ID_LIMIT:
        raise ValueError(f"{at}.itemId", f"{at}.itemId must be 1 to {ID_LIMIT} characters")
    properties = item.get("properties")
    values = {}
    if properties is not None:
        try:
            values = json.loads(properties) if isinstance(properties, str) else None
        except ValueError:
            values = None
        if not isinstance(values, dict) or any(isinstance(v, dict | list) for v in values.values()):
            raise ValueError(f"{at}.properties", f"{at}.properties must be a string holding a flat JSON object")
    product: dict = {"id": item_id, **{f: None for f in fields}}
    for key, value in values.items():
        field = sources.get(_plain(key))
        if field is None or value is None or value == "":
            continue
        kind = CATALOG_FIELD_TYPES[field]
        if pa.types.is_list(kind):
            product[field] = str(value).split("|")
        elif pa.types.is_floating(kind):
            number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
            if isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    number = math.nan
            if not math.isfinite(number):
                raise ValueError(f"{at}.properties.{key}", f"{key} must be a finite number")
            product[field] = number
        else:
            product[field] = str(value)
    return product
