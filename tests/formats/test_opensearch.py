"""Alibaba OpenSearch behavior documents: arrays, lines, the vendor sample's slip, OpenSearch's rules."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from eventlake.formats.base import format_class, get_format
from eventlake.io.files import ByteRange
from eventlake.transforms.validate import check, map_event_types

MISC = urllib.parse.quote(json.dumps({"request_id": "170970843912345", "scm": "20140713.1.2"}))


def behavior(**overrides) -> dict:
    fields = {"item_id": "358713", "bhv_type": "click", "reach_time": "1709708439", "user_id": "u-1",
              "rn": "170970843912345", "trace_info": MISC, "item_type": "item", "sdk_type": "opensearch_sdk",
              "sdk_version": "3.2.0", "trace_id": "ALIBABA", "biz_id": "1001"}
    fields.update(overrides)
    return {"cmd": "add", "fields": {k: v for k, v in fields.items() if v is not None}}


def read(path, allowed=()):
    rows, errors, records = [], [], 0
    fmt = get_format("opensearch")
    rules = fmt.rules(allowed)
    mapping = dict(format_class("opensearch").default_event_type_map)
    for parsed in fmt.read_range(ByteRange(str(path), 0, -1), 1 << 20):
        records += parsed.records
        errors += parsed.errors
        lines = dict(zip(parsed.batch.column("source_offset").to_pylist(),
                         parsed.batch.column("source_line").to_pylist(), strict=True))
        valid, broken = check(map_event_types(parsed.batch, mapping), rules)
        errors += broken
        rows += [{**r, "source_line": lines[r["source_offset"]]} for r in valid.to_pylist()]
    assert records == len(rows) + len(errors)
    return rows, sorted(errors, key=lambda e: e["line"])


def test_a_pretty_printed_array_maps_each_document(tmp_path):
    path = tmp_path / "behavior.json"
    docs = [behavior(), behavior(bhv_type="buy", bhv_value="2", bhv_time="1709708400", user_id=42, login=1),
            behavior(bhv_type="expose", trace_id="other", trace_info="anything")]
    path.write_text(json.dumps(docs, indent=2))
    rows, errors = read(path)
    assert errors == []
    assert [(r["event_type"], r["source_event_type"]) for r in rows] == [
        ("detail-page-view", "click"), ("purchase-complete", "buy"), ("expose", "expose")]
    first, second = rows[0], rows[1]
    assert (first["visitor_id"], first["user_info"]["user_id"], first["request_id"]) == ("u-1", "u-1", "170970843912345")
    assert first["product_details"][0]["product"]["id"] == "358713" and first["trace_info"] == MISC
    assert first["event_time"].timestamp() == 1709708439 and second["event_time"].timestamp() == 1709708400
    assert second["event_value"] == 2.0 and second["visitor_id"] == "42"
    attributes = {a["key"]: a["value"] for a in first["attributes"]}
    assert attributes["sdk_type"]["text"] == ["opensearch_sdk"] and attributes["biz_id"]["text"] == ["1001"]
    assert [r["source_line"] for r in rows] == [2, 2 + json.dumps(docs[0], indent=2).count("\n") + 1,
                                                rows[2]["source_line"]]


def test_the_vendor_samples_set_literal_is_one_error_and_its_neighbours_import(tmp_path):
    good = json.dumps(behavior())
    broken = good.replace('"trace_id": "ALIBABA"', '{"trace_id", "ALIBABA"}')
    path = tmp_path / "behavior.json"
    path.write_text(f"[{good},\n{broken},\n{good}]\n")
    rows, errors = read(path)
    assert len(rows) == 2
    [error] = errors
    assert (error["line"], error["reason"]) == (2, "INVALID_JSON")
    assert "line 2 column" in error["message"] and '"key": "value"' in error["message"]


def test_documents_one_per_line_and_arrays_per_line_mix(tmp_path):
    path = tmp_path / "behavior.jsonl"
    path.write_text(json.dumps(behavior()) + "\n" + json.dumps([behavior(), behavior()]) + "\n\n"
                    + json.dumps(behavior(user_id="u-4")) + "\n")
    rows, errors = read(path)
    assert errors == [] and [r["source_line"] for r in rows] == [1, 2, 2, 4]


@pytest.mark.parametrize(("doc", "field", "reason", "words"), [
    ({"cmd": "delete", "fields": behavior()["fields"]}, "cmd", "INVALID_VALUE", 'cmd must be "add"'),
    ({"cmd": "add"}, "fields", "REQUIRED", "fields must be an object"),
    (behavior(rn=None), "fields.rn", "REQUIRED", "rn is required"),
    (behavior(sdk_version=""), "fields.sdk_version", "REQUIRED", "sdk_version is required"),
    (behavior(reach_time="1709708439000"), "fields.reach_time", "INVALID_VALUE", "looks like milliseconds"),
    (behavior(reach_time="yesterday"), "fields.reach_time", "INVALID_VALUE", "10-digit Unix seconds"),
    (behavior(biz_id="abc"), "fields.biz_id", "INVALID_VALUE", "numeric"),
    (behavior(login=2), "fields.login", "INVALID_VALUE", "0 or 1"),
    (behavior(bhv_value="lots"), "fields.bhv_value", "INVALID_VALUE", "finite number"),
    (behavior(trace_info="not%20json"), "fields.trace_info", "INVALID_TRACE_INFO", "URL-encoded JSON"),
    (behavior(bhv_type="share"), "fields.bhv_type", "INVALID_EVENT_TYPE", "bhv_type must be one of"),
    ("just a string", "", "INVALID_DOCUMENT", "JSON object"),
])
@pytest.mark.parametrize("layout", ["array", "lines"])
def test_each_rule_names_its_field(tmp_path, doc, field, reason, words, layout):
    """Whether a document is read in an array (one by one) or on a line of its own (by Arrow,
    checked column by column), each rule says the same."""
    path = tmp_path / "behavior.json"
    path.write_text(json.dumps([behavior(), doc]) if layout == "array" else
                    json.dumps(behavior()) + "\n" + json.dumps(doc) + "\n")
    rows, errors = read(path)
    assert len(rows) == 1
    [error] = errors
    assert (error["field"], error["reason"]) == (field, reason) and words in error["message"]


def test_a_type_the_config_allows_is_accepted(tmp_path):
    path = tmp_path / "behavior.json"
    path.write_text(json.dumps([behavior(bhv_type="share")]))
    rows, errors = read(path, allowed=("share",))
    assert errors == [] and rows[0]["event_type"] == "share"


def test_item_documents_make_a_catalog(tmp_path):
    from eventlake.formats.base import catalog_format_class, detect_format

    path = tmp_path / "items.json"
    path.write_text(json.dumps([
        {"cmd": "add", "fields": {"item_id": 358713, "title": "Tea", "category_path": "12_34", "price": "9.5"}},
        {"cmd": "add", "fields": {"title": "no id"}},
        {"cmd": "add", "fields": {"item_id": "2", "price": "cheap"}},
        {"cmd": "ADD", "fields": {"item_id": "3", "brand": "B", "cat": "x"}},
    ], indent=1))
    assert detect_format(str(path), catalog=True) == "opensearch-items"
    reader = catalog_format_class("opensearch-items")(("title", "categories", "price", "brands"), {})
    [(table, errors)] = list(reader.read_range(ByteRange(str(path), 0, -1), 1 << 20))
    assert table.to_pylist() == [
        {"id": "358713", "title": "Tea", "categories": ["12_34"], "price": 9.5, "brands": None},
        {"id": "3", "title": None, "categories": None, "price": None, "brands": ["B"]}]
    assert [(e["field"], e["reason"]) for e in errors] == [("fields.item_id", "REQUIRED"),
                                                           ("fields.price", "INVALID_VALUE")]
    starts = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line == " {"]
    assert [e["line"] for e in errors] == [starts[1], starts[2]]  # where each document starts


def test_the_same_documents_read_alike_in_an_array_and_one_per_line(tmp_path):
    """The line path's Arrow reading and the array path's one-by-one reading give the same
    events, attributes in the same order, and so the same content fingerprints."""
    from eventlake.transforms.fingerprint import add_fingerprints

    docs = [behavior(item_id=f"p{i}", extra_flag=bool(i % 2), rank=i, note="n" if i % 3 else None,
                     bhv_value=str(i) if i % 2 else None) for i in range(20)]
    docs[5] = behavior(user_id=99, item_id="p5")  # a number where a string was: that block reads one by one
    (tmp_path / "array.json").write_text(json.dumps(docs, indent=1))
    (tmp_path / "lines.json").write_text("".join(json.dumps(d) + "\n" for d in docs))

    def events(name):
        rows = []
        for parsed in get_format("opensearch").read_range(ByteRange(str(tmp_path / name), 0, -1), 1 << 20):
            batch = add_fingerprints(parsed.batch.drop_columns(["source_line", "source_record"]))
            rows += batch.drop_columns(["source_offset", "source_uri"]).to_pylist()
        return sorted(rows, key=lambda r: r["product_details"][0]["product"]["id"])

    assert events("array.json") == events("lines.json")
    (tmp_path / "clean.json").write_text("".join(json.dumps(d) + "\n" for i, d in enumerate(docs) if i != 5))
    assert len(events("clean.json")) == 19
