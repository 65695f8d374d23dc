"""The samples rules on Arrow tables: feature keys typed over a run, as-of ties, empty buckets."""

from __future__ import annotations

import pyarrow as pa

from eventlake.transforms import feature_columns
from eventlake.transforms.samples import SampleSpec, attribute_text, label_exposures


def test_feature_kinds_merge_over_the_run():
    first = feature_columns.survey_kinds(pa.array(['{"age": 25, "tags": ["a"], "x": 1}', None, ""]))
    second = feature_columns.survey_kinds(pa.array(['{"age": 25.5, "x": "one", "flag": true}']))
    kinds = feature_columns.merge_kinds(first, second)
    assert kinds == {"age": "float", "tags": "json", "x": "json", "flag": "bool"}


def test_a_block_arrow_cannot_read_whole_is_read_line_by_line():
    strings = pa.array(['{"x": 1}', '{"x": "one"}', "not json", None])
    assert feature_columns.survey_kinds(strings) == {"x": "json"}
    flat = feature_columns.flatten(strings, {"x": "json", "y": "int"})
    assert flat["x"].to_pylist() == ["1", '"one"', None, None]
    assert flat["y"].type == pa.int64() and flat["y"].null_count == 4


def test_flatten_gives_the_surveyed_types():
    flat = feature_columns.flatten(pa.array(['{"price": 3, "brand": "g", "tags": [1, 2]}', '{}']),
                                   {"price": "float", "brand": "string", "tags": "json", "never": None})
    assert flat["price"].type == pa.float64() and flat["price"].to_pylist() == [3.0, None]
    assert flat["tags"].to_pylist() == ["[1,2]", None] and flat["never"].type == pa.string()
    assert feature_columns.column_name("user_features", "age") == "user__age"


def test_attribute_text_takes_each_events_first_value():
    attributes = pa.array([[{"key": "x", "value": {"text": ["a"], "numbers": None}},
                            {"key": "scene", "value": {"text": ["home", "other"], "numbers": None}}],
                           None, [], [{"key": "scene", "value": {"text": ["feed"], "numbers": None}}]],
                          pa.list_(pa.struct([("key", pa.string()), ("value", pa.struct(
                              [("text", pa.list_(pa.string())), ("numbers", pa.list_(pa.float64()))]))])))
    assert attribute_text(attributes, "scene").to_pylist() == ["home", None, None, "feed"]


def _interactions(rows):
    names = ["event_type", "user", "item", "request_id", "time", "value", "scene", "fingerprint"]
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    types = [pa.string()] * 4 + [pa.int64(), pa.float64(), pa.string(), pa.binary()]
    return pa.table({n: pa.array(list(c), t) for n, c, t in zip(names, columns, types, strict=True)})


def test_an_event_without_a_request_goes_to_the_greater_request_at_a_tie_in_any_order():
    rows = [("expose", "u", "i", "r2", 0, None, None, b"2"), ("expose", "u", "i", "r1", 0, None, None, b"1"),
            ("detail-page-view", "u", "i", None, 10, None, None, b"3")]
    spec = SampleSpec(labels=(("click", ("detail-page-view",)),))
    for order in (rows, rows[::-1]):
        samples, stats = label_exposures(_interactions(order), spec)
        got = dict(zip(samples.column("request_id").to_pylist(), samples.column("click").to_pylist(), strict=True))
        assert got == {"r1": 0, "r2": 1} and stats["unattributed.click"] == 0


def test_exposures_missing_a_key_are_skipped_by_reason_and_an_empty_bucket_gives_no_sample():
    rows = [("expose", None, "i", "r", 0, None, None, b"1"), ("expose", "u", None, "r", 0, None, None, b"2"),
            ("expose", "u", "i", None, 0, None, None, b"3"), ("expose", "u", "i", "r", 0, None, None, b"4")]
    samples, stats = label_exposures(_interactions(rows), SampleSpec())
    assert len(samples) == 1 and stats["exposures"] == 4
    assert (stats["exposures_skipped.no_user"], stats["exposures_skipped.no_item"],
            stats["exposures_skipped.no_request_id"]) == (1, 1, 1)
    samples, stats = label_exposures(_interactions([]), SampleSpec())
    assert len(samples) == 0 and stats["samples"] == 0
