"""ReadEvents in a pipeline: events, errors and stats of a format's files."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

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
