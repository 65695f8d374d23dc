"""Amazon Personalize PutEvents / PutActionInteractions bodies: records are events."""

from __future__ import annotations

import json

import pytest

from eventlake.formats.base import get_format
from eventlake.io.files import ByteRange


def request(**overrides) -> dict:
    body = {"trackingId": "tracker-1", "sessionId": "s-1", "userId": "u-1",
            "eventList": [{"eventType": "click", "sentAt": 1700000000, "itemId": "i-1", "eventId": "e-1"}]}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def event(**overrides) -> dict:
    out = {"eventType": "click", "sentAt": 1700000000, "itemId": "i-1"}
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def read(path):
    rows, errors, records = [], [], 0
    for parsed in get_format("personalize-events").read_range(ByteRange(str(path), 0, -1), 1 << 20):
        rows += parsed.batch.to_pylist()
        errors += parsed.errors
        records += parsed.records
    assert records == len(rows) + len(errors)
    return rows, errors


def write(tmp_path, *lines) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_a_request_maps_each_event(tmp_path):
    body = request(eventList=[
        event(eventId="e-1", eventValue=4.5, impression=["i-1", "i-2"], recommendationId="r-9",
              properties=json.dumps({"device": "phone", "numberOfRatings": 12, "genres": "a|b"}),
              metricAttribution={"eventAttributionSource": "campaign-7"}),
        event(itemId=None, sentAt="2023-11-14T22:13:21Z", eventType="watch"),
    ])
    rows, errors = read(write(tmp_path, body, request(userId=None, sessionId="anon-7")))
    assert errors == [] and len(rows) == 3
    first, second, third = rows
    assert (first["visitor_id"], first["user_info"]["user_id"], first["session_id"]) == ("u-1", "u-1", "s-1")
    assert (first["event_id"], first["event_value"], first["impression"], first["recommendation_id"]) == (
        "e-1", 4.5, ["i-1", "i-2"], "r-9")
    assert first["product_details"][0]["product"]["id"] == "i-1" and second["product_details"] is None
    attributes = {a["key"]: a["value"] for a in first["attributes"]}
    assert attributes["device"]["text"] == ["phone"] and attributes["numberOfRatings"]["numbers"] == [12.0]
    assert attributes["genres"]["text"] == ["a", "b"] and attributes["eventAttributionSource"]["text"] == ["campaign-7"]
    assert attributes["trackingId"]["text"] == ["tracker-1"]
    assert second["event_time"].timestamp() == 1700000001 and second["event_type"] == "watch"
    assert third["visitor_id"] == "anon-7" and third["user_info"]["user_id"] is None
    assert [r["source_line"] for r in rows] == [1, 1, 2]


def test_action_interactions_are_kept_apart(tmp_path):
    body = {"trackingId": "t", "actionInteractions": [
        {"actionId": "a-1", "eventType": "Taken", "sessionId": "s", "timestamp": 1700000000, "userId": "u"},
        {"actionId": "a-2", "eventType": "Clicked", "sessionId": "s", "timestamp": 1700000000}]}
    rows, errors = read(write(tmp_path, body))
    [row] = rows
    assert row["product_details"][0]["product"]["id"] == "a-1" and row["event_type"] == "Taken"
    assert {"key": "personalizeRecord", "value": {"text": ["action-interaction"], "numbers": None}} in row["attributes"]
    [error] = errors
    assert error["field"] == "actionInteractions[1].eventType" and error["reason"] == "INVALID_EVENT_TYPE"


def test_an_envelope_error_makes_every_event_an_error(tmp_path):
    body = request(sessionId=None, eventList=[event(), event(), event()])
    rows, errors = read(write(tmp_path, body))
    assert rows == [] and [(e["field"], e["reason"], e["line"]) for e in errors] == [("sessionId", "REQUIRED", 1)] * 3
    rows, errors = read(write(tmp_path, request(eventList=[event()] * 11)))
    assert rows == [] and len(errors) == 11 and errors[0]["field"] == "eventList"


@pytest.mark.parametrize(("line", "field", "reason", "words"), [
    ("not json", "", "INVALID_JSON", "not valid JSON"),
    ("[1, 2]", "", "INVALID_REQUEST", "request object"),
    (request(eventList=[]), "eventList", "REQUIRED", "at least one event"),
    (request(trackingId=None), "trackingId", "REQUIRED", "trackingId is required"),
    (request(userId="u" * 257), "userId", "TOO_LONG", "1 to 256"),
    (request(eventList=[event(eventType=None)]), "eventList[0].eventType", "REQUIRED", "required"),
    (request(eventList=[event(sentAt=None)]), "eventList[0].sentAt", "REQUIRED", "required"),
    (request(eventList=[event(sentAt=1700000000000)]), "eventList[0].sentAt", "INVALID_TIMESTAMP", "milliseconds"),
    (request(eventList=[event(sentAt="yesterday")]), "eventList[0].sentAt", "INVALID_TIMESTAMP", "RFC 3339"),
    (request(eventList=[event(eventValue="5")]), "eventList[0].eventValue", "INVALID_VALUE", "finite number"),
    (request(eventList=[event(impression=[])]), "eventList[0].impression", "INVALID_IMPRESSION", "1 to 25"),
    (request(eventList=[event(impression=[f"i{n}" for n in range(26)])]), "eventList[0].impression",
     "INVALID_IMPRESSION", "1 to 25"),
    (request(eventList=[event(itemId="x" * 257)]), "eventList[0].itemId", "TOO_LONG", "1 to 256"),
    (request(eventList=[event(metricAttribution={})]), "eventList[0].metricAttribution.eventAttributionSource",
     "REQUIRED", "required"),
    (request(eventList=[event(properties="{\"a\": {\"b\": 1}}")]), "eventList[0].properties", "INVALID_PROPERTIES",
     "flat JSON object"),
    (request(eventList=[event(properties=json.dumps({"USERID": "x"}))]), "eventList[0].properties",
     "INVALID_PROPERTIES", "reserved key 'USERID'"),
    (request(eventList=[event(properties=json.dumps({"k": "v" * 1100}))]), "eventList[0].properties", "TOO_LONG",
     "1024"),
])
def test_each_rule_names_its_field(tmp_path, line, field, reason, words):
    rows, errors = read(write(tmp_path, request(), line))
    assert len(rows) == 1
    [error] = errors
    assert (error["line"], error["field"], error["reason"]) == (2, field, reason) and words in error["message"]


def test_lines_read_by_arrow_and_one_by_one_give_the_same_events(tmp_path, monkeypatch):
    """Most lines are read by Arrow and cleared column by column; a line with anything else
    (properties, a string sentAt, an action interaction, a broken rule) is read one by one.
    Both give the same events."""
    from eventlake.transforms.fingerprint import add_fingerprints

    plain = [request(userId=None if i % 4 == 0 else f"u{i}", sessionId=f"s{i}", eventList=[
        event(eventId=f"e{i}-{k}", itemId=None if k == 2 else f"i{k}", eventValue=k if k else None,
              impression=[f"i{k}", "i9"] if k == 1 else None, recommendationId="r" if i % 3 == 0 else None)
        for k in range(3)]) for i in range(12)]
    odd = [request(eventList=[event(eventId="p", properties=json.dumps({"size": "XL"}))]),
           {"trackingId": "t", "actionInteractions": [{"actionId": "a", "eventType": "Taken", "sessionId": "s",
                                                        "timestamp": 1700000000}]},
           request(eventList=[event(eventId="bad", eventType="")])]
    lines = plain[:6] + odd + plain[6:]

    def events(path):
        rows = []
        for parsed in get_format("personalize-events").read_range(ByteRange(str(path), 0, -1), 1 << 20):
            batch = add_fingerprints(parsed.batch.drop_columns(["source_line", "source_record"]))
            rows += batch.to_pylist()
        return rows

    from eventlake.formats.personalize import api_bodies

    cleared = []
    original = api_bodies._read_cleared
    monkeypatch.setattr(api_bodies, "_read_cleared", lambda block: cleared.append(original(block)) or cleared[-1])
    mixed = events(write(tmp_path, *lines))
    assert len(cleared[0][1]) == 12  # the plain lines went the Arrow way
    one_by_one = [r for line in lines for r in events(write(tmp_path, "not json", line))]  # a broken line: no Arrow
    key = lambda r: (r["event_id"] or "", r["event_time"])  # noqa: E731
    strip = lambda r: {k: v for k, v in r.items() if k not in ("source_offset", "source_line")}  # noqa: E731
    assert [strip(r) for r in sorted(mixed, key=key)] == [strip(r) for r in sorted(one_by_one, key=key)]
    assert len(mixed) == 12 * 3 + 2 and [r["event_id"] for r in mixed[:3]] == ["e0-0", "e0-1", "e0-2"]
