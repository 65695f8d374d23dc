import json

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from eventlake.formats.retail_json import parse_block
from eventlake.formats.retail_rules import retail_rules
from eventlake.transforms.validate import ValidateRetailEvents, check
from tests.conftest import block_of, local_pipeline

BASE = {"visitorId": "v1", "eventTime": "2022-02-23T10:27:42Z"}
PRODUCT = [{"product": {"id": "p1"}, "quantity": 1}]
PURCHASE = {"id": "t1", "revenue": 10.5, "currencyCode": "USD"}

VALID = [
    {"eventType": "home-page-view"},
    {"eventType": "search", "searchQuery": "jeans", "offset": 0, "orderBy": "price"},
    {"eventType": "search", "pageCategories": ["Apparel"]},
    {"eventType": "category-page-view", "pageCategories": ["Apparel"]},
    {"eventType": "detail-page-view", "productDetails": [{"product": {"id": "p1"}}]},
    {"eventType": "add-to-cart", "productDetails": PRODUCT, "cartId": "c1"},
    {"eventType": "purchase-complete", "productDetails": PRODUCT, "purchaseTransaction": PURCHASE},
    {"eventType": "shopping-cart-page-view", "cartId": "c1"},
    {"eventType": "remove-from-cart", "userInfo": {"ipAddress": "2001:db8::1", "userId": "u"}},
    {"eventType": "home-page-view", "attributes": {"k": {"text": ["a"]}, "n": {"numbers": [1]}}},
]

BROKEN = [
    ({"eventType": "invalid"}, "eventType", "INVALID_EVENT_TYPE"),
    ({"eventType": "home-page-view", "visitorId": None}, "visitorId", "REQUIRED"),
    ({"eventType": "home-page-view", "visitorId": "v" * 129}, "visitorId", "TOO_LONG"),
    ({"eventType": "home-page-view", "sessionId": "é" * 65}, "sessionId", "TOO_LONG"),
    ({"eventType": "home-page-view", "eventTime": None}, "eventTime", "REQUIRED"),
    ({"eventType": "home-page-view", "userInfo": {"userId": "u" * 129}}, "userInfo.userId", "TOO_LONG"),
    ({"eventType": "home-page-view", "userInfo": {"userAgent": "a" * 1001}}, "userInfo.userAgent", "TOO_LONG"),
    ({"eventType": "home-page-view", "userInfo": {"ipAddress": "300.1.1.1"}}, "userInfo.ipAddress", "INVALID_IP_ADDRESS"),
    ({"eventType": "detail-page-view"}, "productDetails", "REQUIRED"),
    ({"eventType": "detail-page-view", "productDetails": [{"quantity": 1}]}, "productDetails.product.id", "REQUIRED"),
    ({"eventType": "detail-page-view", "productDetails": [{"product": {"id": "p" * 129}}]}, "productDetails.product.id", "TOO_LONG"),
    ({"eventType": "add-to-cart", "productDetails": [{"product": {"id": "p"}}]}, "productDetails.quantity", "REQUIRED"),
    ({"eventType": "add-to-cart", "productDetails": [{"product": {"id": "p"}, "quantity": 0}]}, "productDetails.quantity", "REQUIRED"),
    ({"eventType": "purchase-complete", "productDetails": PRODUCT}, "purchaseTransaction", "REQUIRED"),
    ({"eventType": "home-page-view", "purchaseTransaction": PURCHASE}, "purchaseTransaction", "NOT_ALLOWED"),
    ({"eventType": "purchase-complete", "productDetails": PRODUCT, "purchaseTransaction": {**PURCHASE, "revenue": 0}},
     "purchaseTransaction.revenue", "REQUIRED"),
    ({"eventType": "purchase-complete", "productDetails": PRODUCT, "purchaseTransaction": {**PURCHASE, "currencyCode": "usd"}},
     "purchaseTransaction.currencyCode", "INVALID_CURRENCY_CODE"),
    ({"eventType": "purchase-complete", "productDetails": PRODUCT, "purchaseTransaction": {**PURCHASE, "id": "t" * 129}},
     "purchaseTransaction.id", "TOO_LONG"),
    ({"eventType": "search"}, "searchQuery", "REQUIRED"),
    ({"eventType": "home-page-view", "searchQuery": "q"}, "searchQuery", "NOT_ALLOWED"),
    ({"eventType": "search", "searchQuery": "q" * 5001}, "searchQuery", "TOO_LONG"),
    ({"eventType": "category-page-view"}, "pageCategories", "REQUIRED"),
    ({"eventType": "home-page-view", "pageCategories": ["a"]}, "pageCategories", "NOT_ALLOWED"),
    ({"eventType": "home-page-view", "cartId": "c"}, "cartId", "NOT_ALLOWED"),
    ({"eventType": "home-page-view", "orderBy": "price"}, "orderBy", "NOT_ALLOWED"),
    ({"eventType": "home-page-view", "offset": 2}, "offset", "NOT_ALLOWED"),
    ({"eventType": "search", "searchQuery": "q", "offset": -1}, "offset", "NEGATIVE"),
    ({"eventType": "home-page-view", "uri": "u" * 5001}, "uri", "TOO_LONG"),
    ({"eventType": "search", "searchQuery": "q", "filter": "f" * 1001}, "filter", "TOO_LONG"),
    ({"eventType": "search", "searchQuery": "q", "orderBy": "o" * 1001}, "orderBy", "TOO_LONG"),
    ({"eventType": "home-page-view", "attributes": {"k": {"text": ["a"], "numbers": [1]}}}, "attributes", "INVALID_ATTRIBUTE"),
    ({"eventType": "home-page-view", "attributes": {"k": {}}}, "attributes", "INVALID_ATTRIBUTE"),
    ({"eventType": "home-page-view", "attributes": {"k": {"numbers": list(range(401))}}}, "attributes", "INVALID_ATTRIBUTE"),
    ({"eventType": "home-page-view", "attributes": {"k": {"text": [""]}}}, "attributes", "INVALID_ATTRIBUTE"),
    ({"eventType": "home-page-view", "attributes": {"k" * 5001: {"text": ["a"]}}}, "attributes", "INVALID_ATTRIBUTE"),
]


def batch_of(*events):
    text = b"\n".join(json.dumps({**BASE, **e}).encode() for e in events) + b"\n"
    batch, errors = parse_block(block_of(text))
    assert errors == []
    return batch


def test_valid_events_of_every_type_pass():
    valid, errors = check(batch_of(*VALID), retail_rules())
    assert errors == []
    assert valid.num_rows == len(VALID)


@pytest.mark.parametrize(("event", "field", "reason"), BROKEN, ids=[f"{f}-{r}" for _, f, r in BROKEN])
def test_each_rule_rejects_with_field_and_reason(event, field, reason):
    valid, errors = check(batch_of(VALID[0], event), retail_rules())
    assert valid.num_rows == 1
    assert [(e["line"], e["field"], e["reason"]) for e in errors] == [(2, field, reason)]
    assert errors[0]["record"].startswith("{")


def test_allowed_event_types_extend_the_vocabulary():
    batch = batch_of({"eventType": "video-play"})
    assert check(batch, retail_rules(("video-play",)))[1] == []
    assert check(batch, retail_rules())[1][0]["reason"] == "INVALID_EVENT_TYPE"


def test_validate_transform_splits_events_and_errors():
    batch = batch_of(VALID[0], BROKEN[0][0], {"eventType": "cart", "productDetails": PRODUCT, "cartId": "c"})
    with local_pipeline() as p:
        out = p | beam.Create([batch]) | ValidateRetailEvents(event_type_map={"cart": "add-to-cart"})
        assert_that(out.events | beam.FlatMap(lambda b: b.column("event_type").to_pylist()),
                    equal_to(["home-page-view", "add-to-cart"]), label="CheckEvents")
        assert_that(out.errors | beam.Map(lambda e: (e["line"], e["reason"])), equal_to([(2, "INVALID_EVENT_TYPE")]),
                    label="CheckErrors")
