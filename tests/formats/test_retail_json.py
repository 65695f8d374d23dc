import json

import numpy as np
import pytest

from eventlake.formats import retail_json
from eventlake.formats.retail_json import parse_block
from tests.conftest import block_of

GOOD = {"eventType": "search", "visitorId": "v1", "eventTime": "2022-02-23T10:27:42Z", "searchQuery": "jeans"}


def line(**fields) -> bytes:
    return json.dumps({**GOOD, **fields}).encode()


def parse(*lines: bytes):
    return parse_block(block_of(b"\n".join(lines) + b"\n"))


def test_google_sample_quirks_are_accepted(retail_data):
    batch, errors = parse_block(block_of((retail_data / "user_events.json").read_bytes()))
    assert errors == []
    assert batch.num_rows == 4
    detail = batch.to_pylist()[3]
    assert detail["product_details"] == [{"product": {"id": "GGCOGAEC100616"}, "quantity": 3}]
    assert detail["event_time"].isoformat() == "2022-02-23T10:27:42+00:00"


def test_numbers_as_strings_snake_case_and_offsets_parse_like_the_plain_form():
    plain = json.dumps({"eventType": "add-to-cart", "visitorId": "v", "eventTime": "2022-02-23T12:27:42+02:00",
                        "productDetails": [{"product": {"id": "p"}, "quantity": 2}], "cartId": "c"}).encode()
    quirky = json.dumps({"event_type": "add-to-cart", "visitor_id": "v", "event_time": "2022-02-23T10:27:42.000Z",
                         "product_details": {"product": {"id": "p"}, "quantity": "2"}, "cart_id": "c"}).encode()
    batch, errors = parse(plain, quirky)
    assert errors == []
    rows = batch.drop_columns(["source_offset", "source_line", "source_record"]).to_pylist()
    assert rows[0] == rows[1]


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (b'{"eventType": "search",', "", "INVALID_JSON"),
        (b"[1, 2]", "", "NOT_AN_OBJECT"),
        (b'{"eventType": "s\xff"}', "", "INVALID_UTF8"),
        (line(visitorId=12), "visitorId", "INVALID_TYPE"),
        (line(colour="red"), "colour", "UNKNOWN_FIELD"),
        (line(userInfo={"userId": "u", "shoe": 1}), "userInfo.shoe", "UNKNOWN_FIELD"),
        (line(eventTime="2022-02-23 10:27:42"), "eventTime", "INVALID_EVENT_TIME"),
        (line(eventTime="2022-13-23T10:27:42Z"), "eventTime", "INVALID_EVENT_TIME"),
        (line(offset=1.5), "offset", "INVALID_TYPE"),
        (line(productDetails=[{"product": {"id": "p"}, "quantity": "many"}]), "productDetails[0].quantity", "INVALID_TYPE"),
    ],
)
def test_a_bad_line_is_one_error_naming_line_and_field(raw, field, reason):
    batch, errors = parse(line(), raw, line(visitorId="v3"))
    assert batch.num_rows == 2
    assert [(e["line"], e["field"], e["reason"]) for e in errors] == [(2, field, reason)]
    assert errors[0]["source"] == "events.json"
    assert errors[0]["record"]


def test_bad_lines_do_not_send_the_whole_block_to_the_slow_path(monkeypatch):
    slow_lines = []
    original = retail_json._read_slow
    monkeypatch.setattr(retail_json, "_read_slow", lambda b, rows, e: slow_lines.extend(rows) or original(b, rows, e))
    lines = [line(visitorId=f"v{i}") for i in range(2000)]
    for i in range(0, 2000, 200):
        lines[i] = b'{"broken": '
    lines[1001] = line(visitorId=7)  # well-formed JSON that only Arrow's reader rejects
    batch, errors = parse(*lines)
    assert batch.num_rows == 2000 - 11 and len(errors) == 11
    # Only the bad lines go one by one: the broken ones, and the one Arrow's reader named.
    assert sorted(slow_lines) == [*range(0, 1000, 200), 1000, 1001, *range(1200, 2000, 200)]


def test_fast_and_slow_paths_give_identical_batches(monkeypatch):
    lines = [
        line(),
        line(eventType="purchase-complete", productDetails=[{"product": {"id": "p"}, "quantity": 3}],
             purchaseTransaction={"id": "t", "revenue": 9.5, "currencyCode": "EUR"}, searchQuery=None),
        line(userInfo={"userId": "u", "ipAddress": "10.0.0.1", "directUserRequest": True}, pageCategories=["a", "b"]),
        line(experimentIds=["e1"], uri="https://x", referrerUri="https://y", pageViewId="pv", sessionId="s"),
    ]
    fast, _ = parse(*lines)
    monkeypatch.setattr(retail_json, "_QUIRKS", (b"{",))  # every line takes the slow path
    slow, _ = parse(*lines)
    assert fast.equals(slow)


def test_attributes_map_becomes_a_sorted_list():
    batch, errors = parse(line(attributes={"b": {"numbers": [1, "2"]}, "a": {"text": ["x"]}}))
    assert errors == []
    assert batch.column("attributes").to_pylist()[0] == [
        {"key": "a", "value": {"text": ["x"], "numbers": None}},
        {"key": "b", "value": {"text": None, "numbers": [1.0, 2.0]}},
    ]


def test_records_keep_their_raw_text_and_offset():
    batch, _ = parse(line(), line(visitorId="v2"))
    assert batch.column("source_record").to_pylist()[1].strip() == line(visitorId="v2")
    assert batch.column("source_offset").to_pylist() == [0, len(line()) + 1]
    assert np.array_equal(batch.column("source_line").to_numpy(), [1, 2])


def test_fields_learned_from_earlier_blocks_never_change_a_later_result():
    """The fast read asks only for fields seen so far; a block with new ones parses as if fresh."""
    fields = retail_json.FastFields()
    first = block_of(b"\n".join(line(searchQuery=f"q{i}") for i in range(5)) + b"\n")
    parse_block(first, fields)
    assert fields.names == {"eventType", "visitorId", "eventTime", "searchQuery"}
    later = [
        line(uri="https://shop.example/a", offset=3, orderBy="price"),
        line(uri="https://shop.example/b", offset="4"),  # a number as a string in a field not learned yet
        line(userInfo={"userId": "u", "ipAddress": "10.0.0.1"}, pageCategories=["Sale"]),
        b'{"eventType": "search", "visitorId": "v", "eventTime": "2022-02-23T10:27:42Z", "filter": 7}',  # wrong type
        line(),
    ]
    block = block_of(b"\n".join(later) + b"\n")
    learned_batch, learned_errors = parse_block(block, fields)
    fresh_batch, fresh_errors = parse_block(block)
    assert learned_batch.equals(fresh_batch) and learned_errors == fresh_errors
    assert learned_batch.num_rows + len(learned_errors) == len(later)
    assert {"uri", "offset", "orderBy", "userInfo", "pageCategories"} <= fields.names


def test_members_learned_from_earlier_blocks_never_change_a_later_result():
    """Objects are read with only the members seen so far: a later block with new members, a
    member of the wrong type or one the dialect does not have parses as if fresh."""
    fields = retail_json.FastFields()
    purchase = {**PURCHASE, "purchaseTransaction": {"revenue": 5.5, "currencyCode": "USD"}}
    first = block_of(b"\n".join([line(**purchase), line(userInfo={"userId": "u1"})]) + b"\n")
    parse_block(first, fields)
    assert {"purchaseTransaction.revenue", "userInfo.userId", "productDetails.product.id"} <= fields.paths
    assert not {"purchaseTransaction.tax", "userInfo.ipAddress"} & fields.paths
    later = [
        line(**{**purchase, "purchaseTransaction": {"revenue": 5.5, "tax": 1, "currencyCode": "USD"}}),  # new member
        line(userInfo={"userId": "u2", "ipAddress": "10.0.0.1", "userAgent": "x"}),
        line(**{**purchase, "purchaseTransaction": {"revenue": "6.5", "currencyCode": "USD"}}),  # a number as text
        line(userInfo={"userId": "u3", "shoeSize": 42}),  # a member the dialect does not have
        line(userInfo={"userId": 7}),  # the wrong type
        line(userInfo={}),
        line(**{**PURCHASE, "productDetails": [{"product": {"id": "p", "title": "T"}, "quantity": 2}]}),
        line(),
    ]
    block = block_of(b"\n".join(later) + b"\n")
    learned_batch, learned_errors = parse_block(block, fields)
    fresh_batch, fresh_errors = parse_block(block)
    assert learned_batch.equals(fresh_batch) and learned_errors == fresh_errors
    assert {(e["field"], e["reason"]) for e in learned_errors} >= {("userInfo.shoeSize", "UNKNOWN_FIELD"),
                                                                   ("userInfo.userId", "INVALID_TYPE")}
    assert {"purchaseTransaction.tax", "userInfo.ipAddress", "userInfo.userAgent"} <= fields.paths


def test_attributes_with_any_spacing_parse_alike():
    spaced = line().replace(b"}", b', "attributes"  :  {"k": {"text": ["x"]}}}')
    compact = line().replace(b"}", b',"attributes":{"k":{"text":["x"]}}}')
    batch, errors = parse(spaced, compact)
    assert errors == []
    assert batch.column("attributes").to_pylist() == [[{"key": "k", "value": {"text": ["x"], "numbers": None}}]] * 2


PURCHASE = {"eventType": "purchase-complete", "productDetails": [{"product": {"id": "p"}, "quantity": 1}]}


@pytest.mark.parametrize("spelling", [b"NaN", b'"NaN"', b"Infinity", b'"Infinity"', b"-Infinity", b'"-Infinity"'])
def test_not_finite_numbers_are_refused_alike_bare_or_quoted(spelling):
    raw = line(**PURCHASE).replace(b'"quantity": 1}]', b'"quantity": 1}], "purchaseTransaction": '
                                   b'{"revenue": ' + spelling + b', "currencyCode": "USD"}')
    batch, errors = parse(raw, line(visitorId="NaN"))  # a NaN in a string value is just text
    assert batch.num_rows == 1 and batch.column("visitor_id").to_pylist() == ["NaN"]
    assert [(e["field"], e["reason"]) for e in errors] == [("purchaseTransaction.revenue", "INVALID_VALUE")]
    assert "finite" in errors[0]["message"]


@pytest.mark.parametrize(("body", "field"), [
    (b'"productDetails": [{"product": {"id": "p"}, "quantity": NaN}]', "productDetails[0].quantity"),
    (b'"offset": -Infinity', "offset"),
    (b'"attributes": [{"key": "k", "value": {"numbers": [1.5, Infinity]}}]', "attributes.k.numbers[1]"),
])
def test_a_bare_not_finite_number_is_refused_in_every_number_field(body, field):
    """Arrow's reader takes the bare words as numbers: the rows that have them go the slow way
    and are refused by field there, wherever the number is."""
    raw = line().replace(b"}", b", " + body + b"}", 1)
    batch, errors = parse(raw, line())
    assert batch.num_rows == 1
    assert [(e["field"], e["reason"]) for e in errors] == [(field, "INVALID_VALUE")]


@pytest.mark.parametrize(("text", "stored"), [
    ("2022-02-23T10:27:42.1234567Z", "2022-02-23T10:27:42.123456+00:00"),
    ("2022-02-23T10:27:42.12345678+02:00", "2022-02-23T08:27:42.123456+00:00"),
    ("2022-02-23T10:27:42.999999999Z", "2022-02-23T10:27:42.999999+00:00"),  # truncated, not rounded up
    ("2022-02-23T10:27:42.5Z", "2022-02-23T10:27:42.500000+00:00"),
])
def test_up_to_nine_fraction_digits_are_stored_at_microseconds(text, stored):
    batch, errors = parse(line(eventTime=text))
    assert errors == []
    assert batch.column("event_time")[0].as_py().isoformat() == stored


def test_ten_fraction_digits_are_still_refused():
    _, errors = parse(line(eventTime="2022-02-23T10:27:42.1234567890Z"))
    assert [e["reason"] for e in errors] == ["INVALID_EVENT_TIME"]


def test_a_bare_inf_is_not_json_and_is_refused():
    """Arrow's reader takes ``Inf`` too (no JSON parser does): the row is refused, never stored
    with an infinite revenue."""
    raw = line(**PURCHASE).replace(b'"quantity": 1}]', b'"quantity": 1}], "purchaseTransaction": {"revenue": Inf}')
    batch, errors = parse(raw)
    assert batch.num_rows == 0 and [e["reason"] for e in errors] == ["INVALID_JSON"]
