"""Google Cloud Retail user events from the store: ``UserEvent`` JSON lines for Retail's import.

Each line is a ``UserEvent`` in proto3 JSON (camelCase names, RFC 3339 times, attributes as
``{"key": {"text": [...]}}``), which ``UserEventService.ImportUserEvents`` reads from GCS.
Products carry their id and quantity: Retail joins them against its own catalog. Events that
Retail's rules would refuse (a Personalize ``click``, say, is not a Retail event type) are
left out and counted by the rule they break, so the file imports without an error.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pyarrow as pa

from eventlake.formats.arrow_util import snake_to_camel
from eventlake.formats.exporting import Converted, ExportFormat, ExportTable, register_export
from eventlake.formats.retail_rules import retail_rules
from eventlake.formats.rules import CheckedBatch
from eventlake.schema import EVENT_FIELDS

_NAMES = {f.name: snake_to_camel(f.name) for f in EVENT_FIELDS}
_SKIP = {"source_event_type", "event_id", "product_details", "attributes", "event_time", "user_info",
         "purchase_transaction", "event_value", "impression", "recommendation_id", "request_id", "trace_info"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@register_export
class RetailExport(ExportFormat):
    """Google Cloud Retail ``UserEvent`` JSON lines."""

    name = "retail"
    description = "Google Cloud Retail UserEvent JSON lines (proto3 JSON)"
    columns = tuple(f.name for f in EVENT_FIELDS if f.name != "product_details") + (
        "product_details.product.id", "product_details.quantity")

    def __init__(self, options=None):
        super().__init__(options)
        self._rules = retail_rules()

    def tables(self, survey: set[str]) -> list[ExportTable]:
        return [ExportTable("user_events", "user_events", ".json", "jsonl")]

    def convert(self, batch: pa.RecordBatch, survey: set[str]) -> Converted:
        out = Converted()
        checked = CheckedBatch(batch)
        bad = np.zeros(len(batch), dtype=bool)
        for rule in self._rules:
            broken = rule.broken(checked) & ~bad
            if broken.any():
                out.skipped[f"Retail would refuse: {rule.field} {rule.reason}"] += int(broken.sum())
                bad |= broken
        kept = batch.filter(pa.array(~bad)) if bad.any() else batch
        lines = [orjson.dumps(user_event(row)) for row in kept.to_pylist()]
        out.rows["user_events"] = pa.table({"line": pa.array(lines, pa.binary())})
        return out


def user_event(row: dict) -> dict:
    """One stored event as a ``UserEvent`` proto3 JSON object (fields without a value left out)."""
    event = {}
    for name, value in row.items():
        if name in _SKIP or name not in _NAMES or value is None or value == []:
            continue
        event[_NAMES[name]] = value
    event["eventTime"] = rfc3339(row["event_time"])
    details = [{"product": {"id": d["product"]["id"]}, **({"quantity": d["quantity"]} if d["quantity"] is not None else {})}
               for d in row.get("product_details") or []]
    if details:
        event["productDetails"] = details
    attributes = {}
    for a in row.get("attributes") or []:
        value = a["value"] or {}
        attributes[a["key"]] = {"text": value["text"]} if value.get("text") is not None else {"numbers": value.get("numbers") or []}
    if attributes:
        event["attributes"] = attributes
    user = {snake_to_camel(k): v for k, v in (row.get("user_info") or {}).items() if v is not None}
    if user:
        event["userInfo"] = user
    purchase = {snake_to_camel(k): v for k, v in (row.get("purchase_transaction") or {}).items() if v is not None}
    if purchase:
        event["purchaseTransaction"] = purchase
    return event


def rfc3339(value: dt.datetime) -> str:
    """A UTC time as RFC 3339 with ``Z`` and only the fraction it has."""
    text = value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{value.microsecond:06d}".rstrip("0") if value.microsecond else "") + "Z"

