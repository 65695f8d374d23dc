"""ReadEvents in a pipeline: events, errors and stats of a format's files."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from eventlake.errors import ERRORS
from eventlake.transforms.parse import STATS
from eventlake.transforms.read_events import ReadEvents
from tests.conftest import local_pipeline


def test_read_events_gives_batches_errors_and_stats_for_a_format(tmp_path):
    (tmp_path / "a.csv").write_text("USER_ID,ITEM_ID,TIMESTAMP\nu1,i1,1700000000\nu2,,1700000001\nu3,i3,1700000002\n")
    with local_pipeline() as pipeline:
        read = pipeline | ReadEvents([str(tmp_path / "*.csv")], "personalize")
        visitors = read.events | "Visitors" >> beam.FlatMap(lambda b: b.column("visitor_id").to_pylist())
        assert_that(visitors, equal_to(["u1", "u3"]), label="Events")
        reasons = read[ERRORS] | "Reasons" >> beam.Map(lambda e: (e["line"], e["field"], e["reason"]))
        assert_that(reasons, equal_to([(3, "ITEM_ID", "REQUIRED")]), label="Errors")
        counts = read[STATS] | "Counts" >> beam.Map(lambda s: (s["format"], s["records"], s["lines"]))
        assert_that(counts, equal_to([("personalize", 3, 4)]), label="Stats")


def test_each_format_is_a_transform_of_its_own(tmp_path):
    import json

    from eventlake.transforms.read_events import ReadOpenSearchBehavior, ReadPersonalizeEvents

    (tmp_path / "put.jsonl").write_text(json.dumps({"trackingId": "t", "sessionId": "s", "eventList": [
        {"eventType": "click", "sentAt": 1700000000, "itemId": "i1"}]}) + "\n")
    (tmp_path / "behavior.json").write_text(json.dumps({"cmd": "add", "fields": {
        "item_id": "i2", "bhv_type": "click", "reach_time": "1700000000", "user_id": "u", "rn": "r", "trace_info": "x",
        "item_type": "item", "sdk_type": "opensearch_sdk", "sdk_version": "3.2.0", "trace_id": "other"}}) + "\n")
    with local_pipeline() as pipeline:
        put = pipeline | "Put" >> ReadPersonalizeEvents([str(tmp_path / "put.jsonl")])
        behavior = pipeline | "Behavior" >> ReadOpenSearchBehavior([str(tmp_path / "behavior.json")])
        assert_that((put.events, behavior.events) | beam.Flatten()
                    | beam.FlatMap(lambda b: b.column("source_format").to_pylist()),
                    equal_to(["personalize-events", "opensearch"]))


def holds(predicate):
    """A matcher for ``assert_that`` that fails unless ``predicate(actual)`` is true."""
    def match(actual):
        if not predicate(list(actual)):
            raise BeamAssertException(f"the predicate does not hold for {list(actual)[:20]}")
    return match


@pytest.mark.parametrize("fmt", ["retail", "personalize"])
def test_read_events_alone_numbers_lines_from_the_start_of_the_file_in_every_range(tmp_path, fmt):
    import json

    lines, bad = [], []
    if fmt == "personalize":
        lines.append("USER_ID,ITEM_ID,TIMESTAMP,NOTE")
    for i in range(300):
        broken = i % 37 == 5
        if fmt == "retail":
            lines.append('{"eventType": "search", "visitorId": ' if broken else json.dumps(
                {"eventType": "home-page-view", "visitorId": f"v{i}", "eventTime": "2024-03-01T10:00:00Z"}))
        else:
            note = f'"a note\nover two lines {i}"' if i % 4 == 0 else "n"
            lines.append(f"v{i},{'' if broken else 'p1'},{1700000000 + i},{note}")
        if broken:
            bad.append(len("\n".join(lines).split("\n")) - (1 if fmt == "personalize" and i % 4 == 0 else 0))
    name = "e.jsonl" if fmt == "retail" else "e.csv"
    (tmp_path / name).write_text("\n".join(lines) + "\n")
    text_lines = (tmp_path / name).read_text().split("\n")
    with local_pipeline() as pipeline:
        read = pipeline | ReadEvents([str(tmp_path / name)], fmt, split_bytes=1500)
        assert_that(read[STATS] | "Ranges" >> beam.combiners.Count.Globally(), holds(lambda counts: counts[0] > 3),
                    label="SeveralRanges")
        assert_that(read[ERRORS] | "ErrorLines" >> beam.Map(lambda e: e["line"]), equal_to(bad), label="Errors")
        first_fields = read.events | "Lines" >> beam.FlatMap(
            lambda b: zip(b.column("visitor_id").to_pylist(), b.column("source_line").to_pylist(), strict=True))
        assert_that(first_fields | "Check" >> beam.Map(lambda vl: text_lines[vl[1] - 1].find(vl[0]) >= 0),
                    holds(lambda found: all(found) and len(found) == 300 - len(bad)), label="EventLines")


def test_the_new_formats_are_transforms_too_and_stats_count_the_skipped(tmp_path):
    import json

    from eventlake.transforms.read_events import ReadGa4Events, ReadMappedEvents, ReadPaiRecCallback

    (tmp_path / "callback.jsonl").write_text(json.dumps({"uid": "u1", "request_id": "r", "scene_id": "home",
                                                         "request_time": 1700000000,
                                                         "item_list": [{"item_id": "a"}, {"item_id": "b"}]}) + "\n")
    (tmp_path / "ga4.jsonl").write_text("".join(json.dumps({
        "event_name": name, "event_timestamp": "1700000000000000", "user_pseudo_id": "p1",
        "items": [{"item_id": "c", "quantity": 1}] if name == "view_item" else []}) + "\n"
        for name in ("view_item", "session_start")))
    (tmp_path / "log.csv").write_text("who,what,when\nu2,click,1700000000\n")
    with local_pipeline() as pipeline:
        callback = pipeline | "Callback" >> ReadPaiRecCallback([str(tmp_path / "callback.jsonl")])
        ga4 = pipeline | "Ga4" >> ReadGa4Events([str(tmp_path / "ga4.jsonl")])
        mapped = pipeline | "Mapped" >> ReadMappedEvents([str(tmp_path / "log.csv")], format_options={
            "fields": {"visitor_id": "who", "event_type": "what", "event_time": "when"}})
        assert_that((callback.events, ga4.events, mapped.events) | beam.Flatten()
                    | beam.FlatMap(lambda b: zip(b.column("visitor_id").to_pylist(), b.column("event_type").to_pylist(),
                                                 strict=True)),
                    equal_to([("u1", "expose"), ("u1", "expose"), ("p1", "detail-page-view"), ("u2", "click")]))
        skipped = ga4[STATS] | "Skipped" >> beam.Map(lambda s: (s["records"], s.get("skipped")))
        assert_that(skipped, equal_to([(2, {"UNMAPPED_EVENT": 1})]), label="Ga4Stats")
