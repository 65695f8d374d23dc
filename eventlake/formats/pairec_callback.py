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
import re
from collections.abc import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

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
from eventlake.formats.pairec import RESERVED_PATTERN, reserved_in
from eventlake.formats.rules import as_mask
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
            requests = _Requests(block)
            for i in range(len(block)):
                requests.add(i)
            batch, errors = requests.batch()
            yield ParsedBlock(batch, requests.errors + errors, lines=line_count, records=requests.records)


_NOT_OBJECT = object()  # an item_list entry that is not {"item_id": ...}


class _Requests:
    """A block's bodies: each envelope checked once in Python, the items of all of them in
    columns afterwards (an item's checks one by one cost more than reading the body)."""

    def __init__(self, block: LineBlock):
        self.block = block
        self.errors: list[dict] = []
        self.records = 0
        self.envelopes: list[tuple] = []  # (uid, request, micros, scene, features, info)
        self.item_values: list = []  # each item's item_id as written
        self.item_lines: list[int] = []  # the block line of each item
        self.item_envelopes: list[int] = []
        self.item_positions: list[int] = []  # its index in item_list

    def error(self, i: int, field: str, reason: str, message: str) -> dict:
        line = int(self.block.line_numbers[i]) if self.block.line_numbers[i] >= 0 else None
        return error_record(self.block.source, line, int(self.block.offsets[i]), field, reason, message,
                            self.block.raw(i))

    def add(self, i: int) -> None:
        """Line ``i``: its items, or the errors of a line that is not a request or whose envelope
        breaks a rule (one per item)."""
        try:
            body = orjson.loads(self.block.raw(i))
        except orjson.JSONDecodeError as exc:
            self.records += 1
            self.errors.append(self.error(i, "", "INVALID_JSON", f"not valid JSON: {exc}"))
            return
        items = body.get("item_list") if isinstance(body, dict) else None
        if not isinstance(body, dict):
            self.records += 1
            self.errors.append(self.error(i, "", "INVALID_REQUEST", "a callback body is a JSON object"))
            return
        if not isinstance(items, list) or not items:
            self.records += 1
            self.errors.append(self.error(i, "item_list", "REQUIRED", "item_list must list at least one {\"item_id\": ...}"))
            return
        self.records += len(items)
        try:
            envelope = _envelope(body)
        except RecordRejected as exc:
            message = f"{exc} (so each of the body's {len(items)} items is refused)"
            self.errors += [self.error(i, exc.field, exc.reason, message) for _ in items]
            return
        self.envelopes.append(envelope)
        self.item_values += [item.get("item_id") if isinstance(item, dict) else _NOT_OBJECT for item in items]
        self.item_lines += [i] * len(items)
        self.item_envelopes += [len(self.envelopes) - 1] * len(items)
        self.item_positions += range(len(items))

    def batch(self) -> tuple[pa.RecordBatch, list[dict]]:
        """The items as exposure events, and an error for each item whose id breaks a rule."""
        values = self.item_values
        not_object = np.fromiter((v is _NOT_OBJECT for v in values), dtype=bool, count=len(values))
        ids = pa.array([v if isinstance(v, str) else str(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
                        else None for v in values], pa.string())
        missing = as_mask(pc.is_null(pc.utf8_trim_whitespace(ids))) | as_mask(
            pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(ids)), 0))
        reserved = as_mask(pc.match_substring_regex(ids, RESERVED_PATTERN))
        errors = []
        for k in np.flatnonzero(not_object | missing | reserved).tolist():
            n, i = self.item_positions[k], self.item_lines[k]
            if not_object[k]:
                errors.append(self.error(i, f"item_list[{n}]", "INVALID_ITEM", f"item_list[{n}] must be {{\"item_id\": ...}}"))
            elif missing[k]:
                errors.append(self.error(i, f"item_list[{n}].item_id", "REQUIRED", f"item_list[{n}].item_id is required"))
            else:
                shown = reserved_in(values[k])
                errors.append(self.error(i, f"item_list[{n}].item_id", "RESERVED_CHARACTER",
                                         f"item_list[{n}].item_id must not contain {shown}, which PAI-Rec reserves as a "
                                         "separator"))
        keep = np.flatnonzero(~(not_object | missing | reserved))
        envelopes = [self.envelopes[self.item_envelopes[k]] for k in keep.tolist()]
        lines = np.array(self.item_lines, dtype=np.int64)[keep]
        return _batch(self.block, lines, ids.take(pa.array(keep, pa.int64())), envelopes), errors


def _envelope(body: dict) -> tuple:
    scene = _id(body, "scene_id")
    uid = _id(body, "uid")
    request = _id(body, "request_id", reserved=False)
    features = _object_text(body, "features")
    info = _object_text(body, "request_info")
    return uid, request, _micros(body, info), scene, features, info


def _id(body: dict, name: str, reserved: bool = True) -> str:
    value = body.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise RecordRejected(name, "REQUIRED", f"{name} is required")
    if reserved and re.search(RESERVED_PATTERN, value):
        raise RecordRejected(name, "RESERVED_CHARACTER", f"{name} must not contain {reserved_in(value)}, which PAI-Rec "
                                                         "reserves as a separator")
    return value


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


def _batch(block: LineBlock, lines: np.ndarray, items: pa.Array, envelopes: list[tuple]) -> pa.RecordBatch:
    """Exposures: the block lines of their bodies, their item ids and each one's envelope."""
    n = len(lines)
    users = pa.array([e[0] for e in envelopes], pa.string())
    types = pa.repeat(pa.scalar(EXPOSE, pa.string()), n)
    attributes = attributes_from_columns(["scene", "features", "request_info"],
                                         [pa.array([e[k] for e in envelopes], pa.string()) for k in (3, 4, 5)]) if n else None
    columns = {
        "event_type": types,
        "source_event_type": types,
        "visitor_id": users,
        "user_info": user_info_of(users),
        "event_time": pa.array(np.array([e[2] for e in envelopes], dtype=np.int64), pa.int64()).cast(
            pa.timestamp("us", tz="UTC")),
        "product_details": one_product_each(items),
        "request_id": pa.array([e[1] for e in envelopes], pa.string()),
        "attributes": attributes,
    }
    return canonical_batch(columns, block.source, block.offsets[lines], block.line_numbers[lines],
                           block.records_each(lines), PaiRecCallback.name)


__all__ = ["PaiRecCallback"]
