"""Retail Product lines -> catalog table: the block reader agrees with the line-by-line reader."""

import json

import orjson

from eventlake.formats.retail_catalog import ProductError, _product, parse_catalog_block
from eventlake.schema import CATALOG_FIELD_TYPES
from tests.conftest import block_of

ALL_FIELDS = tuple(CATALOG_FIELD_TYPES)
LINES = [
    {"id": "a", "title": "A", "categories": ["x"], "priceInfo": {"price": "16", "currencyCode": "USD"},
     "images": [{"uri": "u", "height": "300"}], "attributes": [{"key": "k", "value": {"text": ["t"]}}]},
    {"id": "b", "priceInfo": {"price": 2.5, "originalPrice": 3}, "availability": "IN_STOCK"},  # numbers
    {"id": "c", "price_info": {"price": "1e2", "original_price": "7", "currency_code": "EUR"}},  # snake_case
    {"id": "d", "priceInfo": {"price": "cheap"}},  # not a number
    {"id": "e", "availability": "INVALID_VALUE"},
    {"title": "no id"},
    {"id": "f", "title": 5},  # wrong type: neither dialect reads it
    {"id": "g" * 129},
    {"id": "h", "brands": ["B"], "uri": "https://h", "priceInfo": {"price": "4.25"}},
]


def catalog_text() -> bytes:
    lines = [json.dumps(line) for line in LINES]
    lines.insert(3, "")  # a blank line is not a product
    lines.insert(5, "{not json")
    lines.append("[1, 2]")
    return ("\n".join(lines) + "\n").encode()


def test_block_reader_agrees_with_the_line_by_line_reader():
    table, errors = parse_catalog_block(block_of(catalog_text()), ALL_FIELDS)
    expected = []
    for line in catalog_text().splitlines():
        if line.strip():
            try:
                expected.append(_product(line, ALL_FIELDS))
            except ProductError:
                pass
    assert table.to_pylist() == expected
    assert [p["id"] for p in expected] == ["a", "b", "c", "h"]
    assert expected[2]["price"] == 100.0 and expected[2]["currency_code"] == "EUR"


def test_each_invalid_line_is_one_error_with_its_line_and_field():
    _, errors = parse_catalog_block(block_of(catalog_text()), ALL_FIELDS)
    got = sorted((e["line"], e["field"], e["reason"]) for e in errors)
    assert got == [
        (5, "priceInfo.price", "INVALID_TYPE"),
        (6, "", "INVALID_JSON"),
        (7, "availability", "INVALID_VALUE"),
        (8, "id", "REQUIRED"),
        (9, "title", "INVALID_TYPE"),
        (10, "id", "TOO_LONG"),
        (12, "", "NOT_AN_OBJECT"),
    ]
    assert all(orjson.loads(e["record"]) is not None for e in errors if e["reason"] != "INVALID_JSON")


def test_alternating_price_spellings_are_all_read():
    lines = [json.dumps({"id": f"p{i}", "priceInfo": {"price": str(i) if i % 2 else i}}) for i in range(50)]
    table, errors = parse_catalog_block(block_of(("\n".join(lines) + "\n").encode()), ("price",))
    assert not errors
    assert table.column("price").to_pylist() == [float(i) for i in range(50)]


def test_not_finite_prices_are_refused_bare_quoted_or_line_by_line():
    lines = [b'{"id": "a", "priceInfo": {"price": NaN}}', b'{"id": "b", "priceInfo": {"price": "NaN"}}',
             b'{"id": "c", "priceInfo": {"price": Infinity}}', b'{"id": "d", "priceInfo": {"price": "-inf"}}',
             b'{"id": "e", "priceInfo": {"price": 2}}']
    table, errors = parse_catalog_block(block_of(b"\n".join(lines) + b"\n"), ("price",))
    assert table.column("id").to_pylist() == ["e"]
    assert sorted((e["line"], e["field"], e["reason"]) for e in errors) == [
        (i, "priceInfo.price", "INVALID_VALUE") for i in range(1, 5)]
    for raw in lines[:4]:
        try:
            _product(raw, ("price",))
        except ProductError as exc:
            assert exc.reason == "INVALID_VALUE"
        else:
            raise AssertionError(f"{raw!r} was accepted")
