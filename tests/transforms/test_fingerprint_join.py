import pyarrow as pa

from eventlake.formats.retail_json import parse_block
from eventlake.transforms.fingerprint import fingerprints
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
