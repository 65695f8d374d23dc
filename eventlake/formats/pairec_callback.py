"""Alibaba PAI-Rec callback bodies: ``POST /api/callback`` requests, one JSON object per line.

A body names a scene, a user, a request and the items the ranker returned (``scene_id``,
``uid``, ``request_id``, ``item_list`` of ``{"item_id": ...}``, all required) and may carry
``features`` and ``request_info``, each a JSON object or a JSON string holding one. Records are
items: each listed item is one record and becomes one exposure event (``event_type``
``expose``). A body whose envelope breaks a rule makes each of its items an error naming the
envelope field; a line that is not a request, or lists no item, is one record and one error.
Ids must not hold the characters PAI-Rec reserves as separators (``:``, ``;``, ``#``, 0x02,
0x03, 0x1D).

Time: the API's body has no time of its own, so it comes from the log that captured the body:
a ``request_time`` beside the body's fields (or ``time`` / ``timestamp``; Unix seconds,
milliseconds or RFC 3339), else ``request_info.request_time``. A body without one is an error
that says so, rather than a time made up at import.

Mapping: ``uid`` -> ``visitor_id`` and ``user_info.user_id``; ``item_id`` -> the product;
``request_id`` as it is; ``scene_id`` -> the attribute ``scene``; ``features`` and
``request_info`` -> the attributes ``features`` and ``request_info`` (their JSON text), which
the training-samples job reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa

from eventlake.errors import error_record
from eventlake.formats.base import (
    EventFormat,
    ParsedBlock,
    RecordRejected,
    canonical_batch,
    first_json_object,
    register_format,
)
from eventlake.formats.columns import attributes_from_columns, one_product_each, user_info_of
from eventlake.formats.lines import LineBlock
from eventlake.formats.pairec import RESERVED
from eventlake.io.files import ByteRange, read_blocks

TIME_FIELDS = ("request_time", "time", "timestamp")
EXPOSE = "expose"


@register_format
class PaiRecCallback(EventFormat):
    """Alibaba PAI-Rec ``/api/callback`` request bodies, one per line; each item an exposure."""

    name = "pairec-callback"
    suffixes = (".json", ".jsonl")
    description = "Alibaba PAI-Rec callback request bodies (scene_id, uid, request_id, item_list), one per line"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = first_json_object(head)
        return isinstance(first, dict) and {"scene_id", "uid", "item_list"} <= set(first)

    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        for block, line_count in read_blocks(byte_range, block_bytes):
            rows, errors, records = [], [], 0
            for i in range(len(block)):
                items, problems = _items(block, i)
                records += len(items) + len(problems)
                rows += items
                errors += problems
            yield ParsedBlock(_batch(block, rows), errors, lines=line_count, records=records)


def _items(block: LineBlock, i: int) -> tuple[list[tuple], list[dict]]:
    """The line's exposures ``(line index, uid, item, request, micros, scene, features, info)``
    and its errors: one per item when the envelope is wrong, one for a line that is not a request."""
    raw = block.raw(i)
    line = int(block.line_numbers[i]) if block.line_numbers[i] >= 0 else None
    offset = int(block.offsets[i])

    def error(field: str, reason: str, message: str) -> dict:
        return error_record(block.source, line, offset, field, reason, message, raw)

    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [], [error("", "INVALID_JSON", f"not valid JSON: {exc}")]
    if not isinstance(body, dict):
        return [], [error("", "INVALID_REQUEST", "a callback body is a JSON object")]
    items = body.get("item_list")
    if not isinstance(items, list) or not items:
        return [], [error("item_list", "REQUIRED", "item_list must list at least one {\"item_id\": ...}")]
    try:
        envelope = _envelope(body)
    except RecordRejected as exc:
        return [], [error(exc.field, exc.reason, f"{exc} (so each of the body's {len(items)} items is refused)")
                    for _ in items]
    rows, errors = [], []
    for n, item in enumerate(items):
        try:
            rows.append((i, envelope["uid"], _item_id(item, n), *envelope["rest"]))
        except RecordRejected as exc:
            errors.append(error(exc.field, exc.reason, str(exc)))
    return rows, errors


def _envelope(body: dict) -> dict:
    scene = _id(body, "scene_id")
    uid = _id(body, "uid")
    request = _id(body, "request_id", reserved=False)
    features = _object_text(body, "features")
    info = _object_text(body, "request_info")
    return {"uid": uid, "rest": (request, _micros(body, info), scene, features, info)}


def _id(body: dict, name: str, reserved: bool = True) -> str:
    value = body.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise RecordRejected(name, "REQUIRED", f"{name} is required")
    if reserved:
        for char, shown in RESERVED.items():
            if char in value:
                raise RecordRejected(name, "RESERVED_CHARACTER", f"{name} must not contain {shown}, which PAI-Rec "
                                                                 "reserves as a separator")
    return value


def _item_id(item, n: int) -> str:
    field = f"item_list[{n}].item_id"
    if not isinstance(item, dict):
        raise RecordRejected(f"item_list[{n}]", "INVALID_ITEM", f"item_list[{n}] must be {{\"item_id\": ...}}")
    try:
        return _id(item, "item_id")
    except RecordRejected as exc:
        raise RecordRejected(field, exc.reason, str(exc).replace("item_id", field, 1)) from None


def _object_text(body: dict, name: str) -> str | None:
    """An optional JSON object, or a JSON string holding one, as compact JSON text."""
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise RecordRejected(name, "INVALID_VALUE", f"{name} must be a JSON object or a JSON string holding one")
    return orjson.dumps(value).decode()


def _micros(body: dict, info: str | None) -> int:
    value = next((body[k] for k in TIME_FIELDS if body.get(k) not in (None, "")), None)
    where = next((k for k in TIME_FIELDS if body.get(k) not in (None, "")), "request_time")
    if value is None and info is not None:
        value, where = orjson.loads(info).get("request_time"), "request_info.request_time"
    if value in (None, ""):
        raise RecordRejected("request_time", "REQUIRED",
                             "no request time: a callback body has none of its own, so log it with request_time "
                             "(Unix seconds) beside the body's fields")
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
    if text.isdigit() and len(text) == 10:
        return int(text) * 1_000_000
    if text.isdigit() and len(text) == 13:
        return int(text) * 1_000
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise RecordRejected(where, "INVALID_TIME", f"{where} must be Unix seconds, milliseconds or an RFC 3339 time "
                                                    f"with an offset, got {text[:40]!r}")
    return int(parsed.timestamp()) * 1_000_000 + parsed.microsecond


def _batch(block: LineBlock, rows: list[tuple]) -> pa.RecordBatch:
    lines = np.array([r[0] for r in rows], dtype=np.int64)
    n = len(rows)
    users = pa.array([r[1] for r in rows], pa.string())
    types = pa.repeat(pa.scalar(EXPOSE, pa.string()), n)
    attributes = attributes_from_columns(["scene", "features", "request_info"],
                                         [pa.array([r[k] for r in rows], pa.string()) for k in (5, 6, 7)]) if n else None
    columns = {
        "event_type": types,
        "source_event_type": types,
        "visitor_id": users,
        "user_info": user_info_of(users),
        "event_time": pa.array(np.array([r[4] for r in rows], dtype=np.int64), pa.int64()).cast(
            pa.timestamp("us", tz="UTC")),
        "product_details": one_product_each([r[2] for r in rows]),
        "request_id": pa.array([r[3] for r in rows], pa.string()),
        "attributes": attributes,
    }
    return canonical_batch(columns, block.source, block.offsets[lines] if n else np.zeros(0, np.int64),
                           block.line_numbers[lines] if n else np.zeros(0, np.int64), block.records_each(lines),
                           PaiRecCallback.name)


__all__ = ["PaiRecCallback"]
