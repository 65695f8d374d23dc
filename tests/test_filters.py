import datetime as dt
import json

import pyarrow as pa
import pytest

from eventlake.filters import EqualityTerm, FilterError, MissingCatalogItemsTerm, TimeTerm, parse_filter
from eventlake.schema import stored_schema

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_retail_examples_parse():
    assert parse_filter('eventTime > "2012-04-23T18:25:43.511Z" eventTime < "2012-04-23T18:30:43.511Z"').terms == (
        TimeTerm(">", at("2012-04-23T18:25:43.511Z")), TimeTerm("<", at("2012-04-23T18:30:43.511Z")))
    assert parse_filter('eventTime > "2012-04-23T18:25:43.511Z" eventType = "detail-page-view"').terms == (
        TimeTerm(">", at("2012-04-23T18:25:43.511Z")), EqualityTerm("eventType", ("detail-page-view",)))
    assert parse_filter('visitorId = "visitor1024"').terms == (EqualityTerm("visitorId", ("visitor1024",)),)
    assert parse_filter('eventsMissingCatalogItems eventType = (NOT search) eventTime < "2018-04-23T18:30:43.511Z"').terms == (
        MissingCatalogItemsTerm(), EqualityTerm("eventType", ("search",), negated=True),
        TimeTerm("<", at("2018-04-23T18:30:43.511Z")))
    assert parse_filter("eventType = (detail-page-view OR search)").terms == (
        EqualityTerm("eventType", ("detail-page-view", "search")),)


def test_explicit_and_unquoted_values_escapes_and_offsets():
    f = parse_filter('userId = u1 AND productId = "p \\"1\\"" AND eventTime >= "2024-05-01T02:00:00+02:00"')
    assert f.terms == (EqualityTerm("userId", ("u1",)), EqualityTerm("productId", ('p "1"',)),
                       TimeTerm(">=", dt.datetime(2024, 5, 1, tzinfo=UTC)))


@pytest.mark.parametrize("text, position, problem", [
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("colour = red", 0, "unknown field 'colour'"),
    ('eventTime = "2012-04-23T18:25:43.511Z"', 10, "eventTime takes"),
    ("eventTime > 2012-04-23", 12, "quoted RFC 3339"),
    ('eventTime > "2012-04-23"', 12, "not an RFC 3339 time"),
    ('eventTime > "2012-13-40T18:25:43Z"', 12, "not a valid date"),
    ('visitorId "v1"', 10, "takes '='"),
    ("visitorId =", 11, "filter ended"),
    ('visitorId = "v1', 12, "unclosed quote"),
    ("eventType = (search OR", 22, "filter ended"),
    ("eventType = (search view)", 20, "closing parenthesis"),
    ("eventType = (NOT search OR view)", 24, "NOT takes one value"),
    ("NOT eventType = search", 0, "only allowed inside parentheses"),
    ("eventType = search AND", 22, "filter ended"),
    ("visitorId = v1 & userId = u", 15, "unknown field '&'"),
])
def test_refusals_point_at_the_problem_and_show_examples(text, position, problem):
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    message = str(caught.value)
    assert caught.value.position == position
    assert problem in message
    assert "<HERE>" in message and "\n" not in message
    assert 'visitorId = "visitor1024"' in message  # a valid example


def test_a_filter_over_5000_characters_is_refused():
    with pytest.raises(FilterError, match="more than 5000"):
        parse_filter('visitorId = "' + "v" * 5000 + '"')


def events() -> pa.Table:
    rows = [
        {"event_type": "search", "visitor_id": "v1", "event_time": at("2024-05-01T10:00:00Z"), "joined": True,
         "user_info": {"user_id": "u1"}, "product_details": None},
        {"event_type": "detail-page-view", "visitor_id": "v2", "event_time": at("2024-05-01T12:00:00Z"),
         "joined": False, "user_info": None, "product_details": [{"product": {"id": "p1"}, "quantity": None}]},
        {"event_type": "add-to-cart", "visitor_id": "v1", "event_time": at("2024-05-02T09:00:00Z"), "joined": True,
         "user_info": {"user_id": "u2"},
         "product_details": [{"product": {"id": "p2"}, "quantity": 1}, {"product": {"id": "p3"}, "quantity": 1}]},
    ]
    schema = stored_schema(())
    return pa.Table.from_pylist(rows, schema=pa.schema([schema.field(k) for k in rows[0]]))


@pytest.mark.parametrize("text, expected", [
    ('eventTime > "2024-05-01T11:00:00Z" eventTime < "2024-05-02T00:00:00Z"', [False, True, False]),
    ('eventTime >= "2024-05-01T10:00:00Z" eventType = "search"', [True, False, False]),
    ('visitorId = "v1"', [True, False, True]),
    ("eventsMissingCatalogItems", [False, True, False]),
    ("eventType = (NOT search)", [False, True, True]),
    ("eventType = (detail-page-view OR search)", [True, True, False]),
    ('userId = "u1"', [True, False, False]),
    ("userId = (NOT u1)", [False, True, True]),  # no user id is "not u1"
    ('productId = "p3"', [False, False, True]),
    ("productId = (p1 OR p2) visitorId = v2", [False, True, False]),
])
def test_filters_select_the_right_events(text, expected):
    assert parse_filter(text).matches(events()).tolist() == expected


def add_action(date: str, low: str, high: str, rows: int = 10, joined: int = 5) -> dict:
    stats = {"numRecords": rows, "minValues": {"event_time": low}, "maxValues": {"event_time": high}}
    return {"path": "x.parquet", "partitionValues": {"event_date": date}, "stats": json.dumps(stats),
            "tags": {"joined_rows": str(joined)}}


def test_files_that_cannot_match_are_ruled_out_by_date_statistics_and_joins():
    day = add_action("2024-05-01", "2024-05-01T08:00:00.000Z", "2024-05-01T20:00:00.123Z")
    assert not parse_filter('eventTime > "2024-05-02T00:00:00Z"').may_match_file(day)
    assert not parse_filter('eventTime < "2024-05-01T08:00:00Z"').may_match_file(day)
    assert parse_filter('eventTime <= "2024-05-01T08:00:00Z"').may_match_file(day)
    # the maximum is kept to the millisecond: a row at 20:00:00.1234 may exist
    assert parse_filter('eventTime > "2024-05-01T20:00:00.1234Z"').may_match_file(day)
    assert not parse_filter('eventTime > "2024-05-01T20:00:00.124Z"').may_match_file(day)
    assert parse_filter('visitorId = "v1"').may_match_file(day)
    all_joined = add_action("2024-05-01", "2024-05-01T08:00:00.000Z", "2024-05-01T20:00:00.000Z", joined=10)
    assert not parse_filter("eventsMissingCatalogItems").may_match_file(all_joined)
    no_stats = {"path": "y.parquet", "partitionValues": {"event_date": "2024-05-03"}}
    assert not parse_filter('eventTime < "2024-05-03T00:00:00Z"').may_match_file(no_stats)
    assert parse_filter('eventTime < "2024-05-03T00:00:01Z"').may_match_file(no_stats)
