import json

import pyarrow as pa

from eventlake.formats.retail_json import parse_block
from eventlake.transforms.fingerprint import content_keys, fingerprints
from eventlake.transforms.join import join_catalog
from tests.conftest import block_of

A = b'{"eventType":"add-to-cart","visitorId":"v","eventTime":"2022-02-23T10:27:42Z","cartId":"c","productDetails":[{"product":{"id":"p1"},"quantity":2}]}'
A_REORDERED = b'{"productDetails":{"quantity":"2.0","product":{"id":"p1"}},"cartId":"c","eventTime":"2022-02-23T12:27:42+02:00","visitorId":"v","eventType":"add-to-cart"}'
A_OTHER_QUANTITY = A.replace(b'"quantity":2', b'"quantity":3')
A_OTHER_CART = A.replace(b'"cartId":"c"', b'"cartId":"c2"')


def test_same_content_same_fingerprint_whatever_the_spelling():
    batch, _ = parse_block(block_of(b"\n".join([A, A_REORDERED, A_OTHER_QUANTITY, A_OTHER_CART])))
    prints = fingerprints(batch).to_pylist()
    assert prints[0] == prints[1]
    assert len(set(prints)) == 3
    assert all(len(p) == 16 for p in prints)


def test_null_and_empty_string_differ():
    with_empty = A.replace(b'"cartId":"c"', b'"cartId":""')
    without = A.replace(b'"cartId":"c",', b"")
    batch, _ = parse_block(block_of(with_empty + b"\n" + without))
    first, second = fingerprints(batch).to_pylist()
    assert first != second


def test_join_marks_missing_products_and_copies_catalog_fields():
    two = A.replace(b'}]}', b'},{"product":{"id":"gone"},"quantity":1}]}')
    home = b'{"eventType":"home-page-view","visitorId":"v","eventTime":"2022-02-23T10:27:42Z"}'
    batch, _ = parse_block(block_of(b"\n".join([A, two, home])))
    catalog = pa.table({"id": ["p1"], "title": ["Pen"], "price": [1.5]})
    joined = join_catalog(batch, catalog, ("title", "price")).to_pylist()
    assert [r["joined"] for r in joined] == [True, False, True]
    assert [r["missing_product_ids"] for r in joined] == [[], ["gone"], []]
    assert joined[0]["product_details"] == [{"product": {"id": "p1", "title": "Pen", "price": 1.5}, "quantity": 2}]
    assert joined[1]["product_details"][1] == {"product": {"id": "gone", "title": None, "price": None}, "quantity": 1}
    assert joined[2]["product_details"] is None


# Every field kind, unicode, separators inside values, empty strings and lists, nulls in lists.
PINNED_EVENTS = [
    {"eventType": "home-page-view", "visitorId": "v1", "eventTime": "2024-05-01T10:00:00Z"},
    {"eventType": "add-to-cart", "visitorId": "vé", "sessionId": "", "eventTime": "2024-05-01T10:00:00.123456+02:00",
     "cartId": "c|1", "productDetails": [{"product": {"id": "p1"}, "quantity": 2}, {"product": {"id": "p,2"}, "quantity": 1}],
     "userInfo": {"userId": "u", "ipAddress": "10.0.0.1", "userAgent": "UA", "directUserRequest": True}},
    {"eventType": "purchase-complete", "visitorId": "v3", "eventTime": "2024-05-02T00:00:00Z",
     "productDetails": [{"product": {"id": "p1"}, "quantity": 1}],
     "purchaseTransaction": {"id": "t", "revenue": 12.5, "tax": 1, "currencyCode": "EUR"},
     "attributes": {"color": {"text": ["red", ""]}, "size": {"numbers": [1, 2.5]}}, "experimentIds": ["e1", "e2"]},
    {"eventType": "search", "visitorId": "v4", "eventTime": "2024-05-03T00:00:00Z", "searchQuery": "pens", "offset": 10,
     "orderBy": "price", "filter": "x", "pageCategories": ["A > B", "C"], "uri": "https://x/y", "referrerUri": "r",
     "pageViewId": "pv", "attributionToken": "tok", "entity": "ent"},
    {"eventType": "detail-page-view", "visitorId": "v5", "eventTime": "2024-05-04T00:00:00Z",
     "productDetails": [{"product": {"id": "p9"}}], "userInfo": {"ipAddress": "::1"}, "pageCategories": []},
]


def test_the_fingerprint_format_is_pinned():
    """Stored fingerprints are compared with new ones: any change here breaks dedupe against old stores."""
    batch, errors = parse_block(block_of(b"\n".join(json.dumps(e).encode() for e in PINNED_EVENTS)))
    assert not errors
    assert content_keys(batch)[0].as_py() == "14:home-page-view|14:home-page-view|~|2:v1|~|1714557600000000" + "|~" * 21
    assert content_keys(batch)[1].as_py() == (
        "11:add-to-cart|11:add-to-cart|~|2:vé|0:|1714550400123456|~|~|[{,{,2:p1,},2,},{,{,3:p,2,},1,}]|~|3:c|1"
        + "|~" * 6 + "|{,1:u,8:10.0.0.1,2:UA,true,}" + "|~" * 9)
    assert [f.hex() for f in fingerprints(batch).to_pylist()] == [
        "fb10272f6304f89619fae1de3f3d6638", "5910ba827a1d41ed8703f4da1f45e3c3", "bc3d6b95e7a7a556857fa4adee1629fa",
        "29b69c02d2225254b43a19d07370e719", "da878be4c941db7898f9a52e96ef4db0",
    ]
    for i in range(len(batch)):  # one row alone takes other code paths (all-null columns)
        assert fingerprints(batch.slice(i, 1)).to_pylist() == fingerprints(batch).to_pylist()[i : i + 1]
