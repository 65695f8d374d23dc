"""Alibaba PAI-Rec callback bodies: one exposure per listed item, envelope errors on every item,
the time the capturing log adds, and features kept as JSON text."""

from __future__ import annotations

import json

import pytest

from eventlake.formats.base import get_format
from eventlake.io.files import ByteRange

BODY = {"uid": "u-1", "request_id": "req-1", "scene_id": "home_feed", "request_time": 1709708439,
        "features": {"age": 25}, "item_list": [{"item_id": "i1"}, {"item_id": 2}], "request_info": {"recom_id": "7"}}


def read(tmp_path, *lines):
    path = tmp_path / "callback.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    rows, errors, records = [], [], 0
    for parsed in get_format("pairec-callback").read_range(ByteRange(str(path), 0, -1), 1 << 20):
        rows += parsed.batch.to_pylist()
        errors += parsed.errors
        records += parsed.records
    assert records == len(rows) + len(errors)
    return rows, errors


def test_each_listed_item_is_one_exposure_with_the_request_and_its_features(tmp_path):
    rows, errors = read(tmp_path, BODY)
    assert not errors
    assert [(r["visitor_id"], r["product_details"][0]["product"]["id"], r["event_type"], r["request_id"])
            for r in rows] == [("u-1", "i1", "expose", "req-1"), ("u-1", "2", "expose", "req-1")]
    attributes = {a["key"]: a["value"]["text"][0] for a in rows[0]["attributes"]}
    assert attributes["scene"] == "home_feed"
    assert json.loads(attributes["features"]) == {"age": 25} and json.loads(attributes["request_info"]) == {"recom_id": "7"}
    assert rows[0]["event_time"].timestamp() == 1709708439 and rows[1]["source_line"] == 1


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"uid": "u:1"}, "uid", "RESERVED_CHARACTER"),
    ({"scene_id": ""}, "scene_id", "REQUIRED"),
    ({"request_id": None}, "request_id", "REQUIRED"),
    ({"features": "[1, 2]"}, "features", "INVALID_VALUE"),
    ({"request_info": "not json"}, "request_info", "INVALID_VALUE"),
    ({"request_time": None}, "request_time", "REQUIRED"),
    ({"request_time": "yesterday"}, "request_time", "INVALID_TIME"),
])
def test_an_envelope_error_makes_each_item_an_error_naming_the_field(tmp_path, change, field, reason):
    rows, errors = read(tmp_path, {**BODY, **change})
    assert not rows and len(errors) == 2
    assert {(e["field"], e["reason"], e["line"]) for e in errors} == {(field, reason, 1)}


@pytest.mark.parametrize(("time", "seconds"), [(1709708439123, 1709708439.123), ("2024-03-06T07:00:39+02:00", 1709701239)])
def test_times_in_milliseconds_rfc3339_or_inside_request_info(tmp_path, time, seconds):
    rows, _ = read(tmp_path, {**BODY, "request_time": time})
    assert rows[0]["event_time"].timestamp() == seconds
    inside = {**BODY, "request_info": json.dumps({"request_time": 1709708400})}
    del inside["request_time"]
    rows, _ = read(tmp_path, inside)
    assert rows[0]["event_time"].timestamp() == 1709708400


def test_lines_that_are_not_requests_or_list_no_item_are_one_error_each(tmp_path):
    rows, errors = read(tmp_path, "{broken", [1, 2], {**BODY, "item_list": []},
                        {**BODY, "item_list": [{"item_id": "ok"}, "i2", {"item_id": "a#b"}]})
    assert [r["product_details"][0]["product"]["id"] for r in rows] == ["ok"]
    assert [(e["line"], e["field"], e["reason"]) for e in errors] == [
        (1, "", "INVALID_JSON"), (2, "", "INVALID_REQUEST"), (3, "item_list", "REQUIRED"),
        (4, "item_list[1]", "INVALID_ITEM"), (4, "item_list[2].item_id", "RESERVED_CHARACTER")]
