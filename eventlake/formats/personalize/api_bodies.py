"""Amazon Personalize PutEvents and PutActionInteractions request bodies, one JSON object per line.

Records are events: a request with three events is three records. A request whose envelope
breaks a rule (``trackingId``, ``sessionId``, ``userId``, the size of ``eventList``) makes each
of its events an error naming the envelope field; an event that breaks a rule is an error
alone; a line that is not a request, or a request with no event, is one record and one error.
The rules are those of the PutEvents API: ids of 1 to 256 characters, ``sentAt`` in Unix seconds
or RFC 3339, a finite ``eventValue``, 1 to 25 ``impression`` ids, ``properties`` a JSON string of
at most 1024 characters holding a flat object without the reserved keys.

Mapping: ``userId`` -> ``user_info.user_id`` and ``visitor_id`` (else ``sessionId``);
``sessionId`` -> ``session_id``; ``eventId`` -> ``event_id`` (a later event with an id already
seen is a duplicate); ``itemId`` -> the product; ``sentAt`` -> ``event_time``; ``eventValue``,
``impression``, ``recommendationId`` as named; ``properties`` keys, ``trackingId`` and
``metricAttribution.eventAttributionSource`` -> attributes. Action interactions keep
``actionId`` as the product and carry the attribute ``personalizeRecord: action-interaction``,
so that they can be told apart from item interactions and exported back.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from eventlake.errors import error_record
from eventlake.formats.base import (
    EventFormat,
    ParsedBlock,
    RecordRejected,
    canonical_batch,
    first_json_object,
    register_format,
)
from eventlake.formats.columns import attributes_from_columns, attributes_from_records, one_product_each, user_info_of
from eventlake.formats.lines import LineBlock
from eventlake.io.files import ByteRange, read_blocks

ID_LIMIT = 256
MAX_EVENTS = 10
MAX_IMPRESSIONS = 25
PROPERTIES_LIMIT = 1024
RESERVED_PROPERTIES = {"userid", "sessionid", "eventtype", "timestamp", "recommendationid", "impression"}
ACTION_EVENT_TYPES = ("Viewed", "Taken", "Not Taken")
RECORD_KIND = "personalizeRecord"
MAX_SECONDS = 253_402_300_799


class _At:
    """Where an event is in its request (``eventList[3]``), spelled out only for an error."""

    __slots__ = ("key", "n")

    def __init__(self, key: str, n: int):
        self.key, self.n = key, n

    def __str__(self) -> str:
        return f"{self.key}[{self.n}]"


@register_format
class PersonalizeEvents(EventFormat):
    """Amazon Personalize PutEvents / PutActionInteractions request bodies, one per line."""

    name = "personalize-events"
    suffixes = (".json", ".jsonl")
    description = "Amazon Personalize PutEvents and PutActionInteractions bodies, one per line"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = first_json_object(head)
        return isinstance(first, dict) and bool({"eventList", "actionInteractions"} & set(first))

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        for block, line_count in read_blocks(byte_range, block_bytes):
            fast, cleared = _read_cleared(block)
            rows, errors = [], []
            records = len(fast) if fast is not None else 0  # the cleared lines' events
            slow = np.ones(len(block), dtype=bool)
            slow[cleared] = False
            for i in np.flatnonzero(slow).tolist():
                line = int(block.line_numbers[i])
                where = (block.source, line if line >= 0 else None, int(block.offsets[i]))
                for event in _records(block, i):
                    records += 1
                    if isinstance(event, RecordRejected):
                        errors.append(error_record(*where, event.field, event.reason, str(event), block.raw(i)))
                    else:
                        rows.append((i, event))
            batch = _batch(block, rows)
            if fast is not None and len(fast):
                batch = pa.concat_batches([fast, batch])
                batch = batch.take(pa.array(np.argsort(batch.column("source_offset").to_numpy(), kind="stable")))
            yield ParsedBlock(batch, errors, lines=line_count, records=records)


def _records(block: LineBlock, i: int) -> list:
    """The line's events, each an event dict or the ``RecordRejected`` that makes it an error."""
    try:
        request = orjson.loads(block.raw(i))
    except orjson.JSONDecodeError as exc:
        return [RecordRejected("", "INVALID_JSON", f"not valid JSON: {exc}")]
    if not isinstance(request, dict):
        return [RecordRejected("", "INVALID_REQUEST", "a line must be one PutEvents or PutActionInteractions request object")]
    actions = "actionInteractions" in request
    key = "actionInteractions" if actions else "eventList"
    events = request.get(key)
    if not isinstance(events, list) or not events:
        return [RecordRejected(key if key in request else "eventList", "REQUIRED",
                          "a request needs eventList (PutEvents) or actionInteractions (PutActionInteractions) "
                          "with at least one event")]
    try:
        envelope = _envelope(request, key, len(events), actions)
    except RecordRejected as exc:
        return [exc] * len(events)
    out = []
    for n, event in enumerate(events):
        try:
            out.append(_action(event, envelope, n) if actions else _event(event, envelope, n))
        except RecordRejected as exc:
            out.append(exc)
    return out


def _text(value, at: str, name: str, required: bool = False, limit: int = ID_LIMIT) -> str | None:
    """A string field of 1 to ``limit`` characters; the field's path (``at.name``) is spelled out
    only for an error: most records have none, and building names cost a tenth of the parse."""
    if value.__class__ is str and 0 < len(value) <= limit:
        return value
    field = f"{at}.{name}" if at else name
    if value is None:
        if required:
            raise RecordRejected(field, "REQUIRED", f"{field} is required")
        return None
    if not isinstance(value, str):
        raise RecordRejected(field, "INVALID_VALUE", f"{field} must be a string")
    raise RecordRejected(field, "TOO_LONG" if value else "REQUIRED", f"{field} must be 1 to {limit} characters")


def _envelope(request: dict, key: str, count: int, actions: bool) -> dict:
    tracking = _text(request.get("trackingId"), "", "trackingId", required=True)
    if count > MAX_EVENTS and not actions:
        raise RecordRejected(key, "TOO_MANY", f"{key} may hold at most {MAX_EVENTS} events, this request has {count}")
    return {"trackingId": tracking, "userId": _text(request.get("userId"), "", "userId"),
            "sessionId": None if actions else _text(request.get("sessionId"), "", "sessionId", required=True)}


def _event(event, envelope: dict, n: int) -> dict:
    at = _At("eventList", n)
    if not isinstance(event, dict):
        raise RecordRejected(str(at), "INVALID_VALUE", f"{at} must be an object")
    out = _common(event, at, "sentAt")
    out["item_id"] = _text(event.get("itemId"), at, "itemId")
    attribution = event.get("metricAttribution")
    attributes = dict(out.pop("properties"))
    if attribution is not None:
        if not isinstance(attribution, dict):
            raise RecordRejected(f"{at}.metricAttribution", "INVALID_VALUE", "metricAttribution must be an object")
        source = _text(attribution.get("eventAttributionSource"), at, "metricAttribution.eventAttributionSource",
                       required=True, limit=1024)
        attributes["eventAttributionSource"] = source
    attributes["trackingId"] = envelope["trackingId"]
    out.update(user_id=envelope["userId"], session_id=envelope["sessionId"], attributes=attributes)
    return out


def _action(event, envelope: dict, n: int) -> dict:
    at = _At("actionInteractions", n)
    if not isinstance(event, dict):
        raise RecordRejected(str(at), "INVALID_VALUE", f"{at} must be an object")
    out = _common(event, at, "timestamp")
    if out["event_type"] not in ACTION_EVENT_TYPES:
        raise RecordRejected(f"{at}.eventType", "INVALID_EVENT_TYPE",
                        f"an action interaction's eventType must be one of {', '.join(ACTION_EVENT_TYPES)}")
    out["item_id"] = _text(event.get("actionId"), at, "actionId", required=True)
    session = _text(event.get("sessionId"), at, "sessionId", required=True)
    user = _text(event.get("userId"), at, "userId") or envelope["userId"]
    attributes = {**out.pop("properties"), "trackingId": envelope["trackingId"], RECORD_KIND: "action-interaction"}
    out.update(user_id=user, session_id=session, attributes=attributes)
    return out


def _common(event: dict, at: str, time_key: str) -> dict:
    event_type = _text(event.get("eventType"), at, "eventType", required=True)
    seconds = _seconds(event.get(time_key), at, time_key)
    value = event.get("eventValue")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
        raise RecordRejected(f"{at}.eventValue", "INVALID_VALUE", "eventValue must be a finite number")
    impression = event.get("impression")
    if impression is not None:
        if (not isinstance(impression, list) or not 1 <= len(impression) <= MAX_IMPRESSIONS
                or not all(isinstance(i, str) and 1 <= len(i) <= ID_LIMIT for i in impression)):
            raise RecordRejected(f"{at}.impression", "INVALID_IMPRESSION",
                            f"impression must be 1 to {MAX_IMPRESSIONS} ids of 1 to {ID_LIMIT} characters")
    return {
        "event_type": event_type, "micros": seconds, "event_value": None if value is None else float(value),
        "event_id": _text(event.get("eventId"), at, "eventId"), "impression": impression,
        "recommendation_id": _text(event.get("recommendationId"), at, "recommendationId"),
        "properties": _properties(event.get("properties"), at),
    }


def _seconds(value, at, name: str) -> int:
    """``sentAt``/``timestamp`` -> microseconds since the epoch."""
    if value.__class__ is int and 0 <= value <= MAX_SECONDS:
        return value * 1_000_000
    field = f"{at}.{name}"
    if value is None:
        raise RecordRejected(field, "REQUIRED", f"{field} is required")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise RecordRejected(field, "INVALID_TIMESTAMP", f"{field} must be Unix seconds")
        if value > MAX_SECONDS:
            hint = "milliseconds" if value / 1000 <= MAX_SECONDS else "microseconds"
            raise RecordRejected(field, "INVALID_TIMESTAMP", f"{field} {value} looks like {hint}; PutEvents wants Unix seconds")
        return round(value * 1_000_000)
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            return round((when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).total_seconds() * 1_000_000)
    raise RecordRejected(field, "INVALID_TIMESTAMP", f"{field} must be Unix seconds or an RFC 3339 time with a UTC offset")


def _properties(value, at) -> dict:
    if value is None:
        return {}
    field = f"{at}.properties"
    if not isinstance(value, str):
        raise RecordRejected(field, "INVALID_PROPERTIES", f"{field} must be a string holding a JSON object")
    if len(value) > PROPERTIES_LIMIT:
        raise RecordRejected(field, "TOO_LONG", f"{field} must be at most {PROPERTIES_LIMIT} characters")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or any(isinstance(v, dict | list) for v in parsed.values()):
        raise RecordRejected(field, "INVALID_PROPERTIES", f"{field} must hold a flat JSON object")
    reserved = sorted(k for k in parsed if k.lower() in RESERVED_PROPERTIES)
    if reserved:
        raise RecordRejected(field, "INVALID_PROPERTIES", f"{field} must not use the reserved key {reserved[0]!r}")
    return {k: v for k, v in parsed.items() if v is not None}


def _batch(block: LineBlock, rows: list) -> pa.RecordBatch:
    events = [e for _, e in rows]
    lines = np.array([i for i, _ in rows], dtype=np.int64)
    users = pa.array([e["user_id"] for e in events], pa.string())
    visitors = pa.array([e["user_id"] or e["session_id"] for e in events], pa.string())
    types = pa.array([e["event_type"] for e in events], pa.string())
    columns = {
        "event_type": types,
        "source_event_type": types,
        "event_id": pa.array([e["event_id"] for e in events], pa.string()),
        "visitor_id": visitors,
        "session_id": pa.array([e["session_id"] for e in events], pa.string()),
        "user_info": user_info_of(users),
        "event_time": pa.array([e["micros"] for e in events], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "product_details": one_product_each([e["item_id"] for e in events]),
        "event_value": pa.array([e["event_value"] for e in events], pa.float64()),
        "impression": pa.array([e["impression"] for e in events], pa.list_(pa.string())),
        "recommendation_id": pa.array([e["recommendation_id"] for e in events], pa.string()),
        "attributes": attributes_from_records([e["attributes"] for e in events], set(), separator="|"),
    }
    raws = block.records_each(lines)
    return canonical_batch(columns, block.source, block.offsets[lines], block.line_numbers[lines], raws,
                           PersonalizeEvents.name)


# The fast path's reading of a PutEvents line. A line Arrow cannot read so (sentAt as a string
# or with a fraction, broken JSON, ...) sends its block to the one-by-one path; a line with
# anything the vectorised checks do not clear (properties, metricAttribution, action
# interactions, any broken rule) goes there alone.
_EVENT = pa.struct([("eventId", pa.string()), ("eventType", pa.string()), ("sentAt", pa.int64()),
                    ("itemId", pa.string()), ("eventValue", pa.float64()), ("impression", pa.list_(pa.string())),
                    ("recommendationId", pa.string()), ("properties", pa.string()),
                    ("metricAttribution", pa.struct([("eventAttributionSource", pa.string())]))])
_REQUEST = pa.schema([("trackingId", pa.string()), ("sessionId", pa.string()), ("userId", pa.string()),
                      ("eventList", pa.list_(_EVENT))])
_OPTIONS = pj.ParseOptions(explicit_schema=_REQUEST, unexpected_field_behavior="ignore")


def _read_cleared(block: LineBlock) -> tuple[pa.RecordBatch | None, np.ndarray]:
    """The events of the lines every rule surely accepts, as a batch, and those lines' indices."""
    n = len(block)
    if not n:
        return None, np.zeros(0, dtype=np.int64)
    try:
        table = pj.read_json(pa.BufferReader(block.data), parse_options=_OPTIONS,
                             read_options=pj.ReadOptions(use_threads=False, block_size=max(len(block.data), 1)))
    except pa.ArrowInvalid:
        return None, np.zeros(0, dtype=np.int64)
    if table.num_rows != n:
        return None, np.zeros(0, dtype=np.int64)

    def mask(array) -> np.ndarray:
        return pc.fill_null(array, False).to_numpy(zero_copy_only=False)

    def sized(array, optional: bool) -> np.ndarray:
        length = pc.utf8_length(array)
        ok = mask(pc.and_(pc.greater(length, 0), pc.less_equal(length, ID_LIMIT)))
        return ok | mask(pc.is_null(array)) if optional else ok

    def column(name):
        return table.column(name).combine_chunks()

    events = column("eventList")
    counts = pc.fill_null(pc.list_value_length(events), 0).to_numpy(zero_copy_only=False)
    line_ok = sized(column("trackingId"), False) & sized(column("sessionId"), False) & sized(column("userId"), True)
    line_ok &= (counts >= 1) & (counts <= MAX_EVENTS)  # an action interactions line has no eventList
    flat = pc.list_flatten(events)
    parents = pc.list_parent_indices(events).to_numpy(zero_copy_only=False)

    def field(name):
        return pc.struct_field(flat, name)

    sent = field("sentAt")
    value = field("eventValue")
    impression = field("impression")
    impression_length = pc.list_value_length(impression)
    pieces = pc.utf8_length(pc.list_flatten(impression))
    bad_piece = mask(pc.or_(pc.equal(pieces, 0), pc.greater(pieces, ID_LIMIT)))
    owners = pc.list_parent_indices(impression).to_numpy(zero_copy_only=False)
    impression_ok = mask(pc.is_null(impression)) | mask(pc.and_(pc.greater_equal(impression_length, 1),
                                                               pc.less_equal(impression_length, MAX_IMPRESSIONS)))
    impression_ok[owners[bad_piece]] = False
    event_ok = (sized(field("eventType"), False) & sized(field("eventId"), True) & sized(field("itemId"), True)
                & sized(field("recommendationId"), True) & impression_ok
                & mask(pc.and_(pc.greater_equal(sent, 0), pc.less_equal(sent, MAX_SECONDS)))
                & (mask(pc.is_null(value)) | mask(pc.is_finite(value)))
                & mask(pc.is_null(field("properties"))) & mask(pc.is_null(field("metricAttribution"))))
    bad_lines = np.unique(parents[~event_ok])
    line_ok[bad_lines] = False
    lines = np.flatnonzero(line_ok)
    if not len(lines):
        return None, lines
    keep_events = line_ok[parents]
    take = pa.array(np.flatnonzero(keep_events), pa.int64())
    owner = pa.array(parents[keep_events], pa.int64())
    users = column("userId").take(owner)
    sessions = column("sessionId").take(owner)
    types = field("eventType").take(take)
    columns = {
        "event_type": types,
        "source_event_type": types,
        "event_id": field("eventId").take(take),
        "visitor_id": pc.coalesce(users, sessions),
        "session_id": sessions,
        "user_info": user_info_of(users),
        "event_time": pc.multiply(sent.take(take), 1_000_000).cast(pa.timestamp("us", tz="UTC")),
        "product_details": one_product_each(field("itemId").take(take)),
        "event_value": value.take(take),
        "impression": impression.take(take),
        "recommendation_id": field("recommendationId").take(take),
        "attributes": attributes_from_columns(["trackingId"], [column("trackingId").take(owner)]),
    }
    event_lines = parents[keep_events]
    raws = block.records_each(event_lines)
    batch = canonical_batch(columns, block.source, block.offsets[event_lines], block.line_numbers[event_lines], raws,
                            PersonalizeEvents.name)
    return batch, lines
