"""A forced purge also erases its events from the error samples kept under the store.

Error samples hold the raw lines of records that were never stored; a visitor's purge must
reach them too, or ``grep`` finds the purged id in an earlier run's ``errors.jsonl``. A sample
goes when its record, read leniently, may match the filter: a Retail record by its fields; any
other record (another format's, or one that is not JSON) when its raw text holds every
identifying value (visitorId, userId, sessionId) the filter names, as a JSON string or number
or as a CSV field. Erring towards removal loses a diagnostic line; erring the other way keeps
a purged person's data.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from eventlake.filters import IDENTIFYING_FIELDS, EqualityTerm, EventFilter, MissingCatalogItemsTerm, TimeTerm
from eventlake.formats.lines import loads_record
from eventlake.io.delta_log import join_path
from eventlake.io.files import read_all
from eventlake.io.object_store import delete_paths

SAMPLE_FILES = ("errors.jsonl", "rejects.jsonl")  # catalog_errors.jsonl holds products, not events


def sample_files(store: str) -> list[str]:
    """Every error-sample file of every run under the store's ``_errors``."""
    try:
        found = FileSystems.match([join_path(store, "_errors", "*", name) for name in SAMPLE_FILES])
    except Exception:  # noqa: BLE001 - no _errors folder yet
        return []
    return sorted(m.path for result in found for m in result.metadata_list)


def replay_inputs(store: str) -> list[str]:
    """The files ``--replay`` wrote back from rejected records (``eventlake.pipelines.replay``)."""
    try:
        found = FileSystems.match([join_path(store, "_errors", "*", "replay-*", "*")])
    except Exception:  # noqa: BLE001 - none
        return []
    return sorted(m.path for result in found for m in result.metadata_list if not m.path.endswith("origins.jsonl"))


def _blank_replay_inputs(store: str, event_filter: EventFilter, dry_run: bool) -> int:
    """Blank (spaces of the same length: stored events keep their offsets) the records of the
    replay inputs that may match; a CSV input's header stays."""
    removed = 0
    for path in replay_inputs(store):
        lines = read_all(path).split(b"\n")
        first = 1 if path.endswith(".csv") else 0
        hits = [i for i in range(first, len(lines)) if lines[i].strip()
                and record_may_match(event_filter, lines[i].decode("utf-8", errors="replace"))]
        removed += len(hits)
        if hits and not dry_run:
            for i in hits:
                lines[i] = b" " * len(lines[i])
            with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                handle.write(b"\n".join(lines))
    return removed


def purge_error_samples(store: str, event_filter: EventFilter, dry_run: bool) -> int:
    """Remove (or, in a dry run, count) the samples, kept rejects and replayed records whose
    record may match; returns how many."""
    removed = _blank_replay_inputs(store, event_filter, dry_run)
    for path in sample_files(store):
        lines = read_all(path).splitlines()
        kept = [line for line in lines if line.strip() and not _sample_matches(event_filter, line)]
        gone = sum(1 for line in lines if line.strip()) - len(kept)
        removed += gone
        if not gone or dry_run:
            continue
        if kept:
            with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
                handle.write(b"\n".join(kept) + b"\n")
        else:
            delete_paths([path])
    return removed


def _sample_matches(event_filter: EventFilter, line: bytes) -> bool:
    try:
        details = json.loads(line)["details"][0]
        raw = details["record"]
    except (ValueError, KeyError, IndexError, TypeError):
        return False  # not a sample of ours
    return record_may_match(event_filter, raw)


def record_may_match(event_filter: EventFilter, raw) -> bool:
    """Whether a rejected record's raw text, read leniently, may be one the filter matches."""
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else b""
    try:
        record = loads_record(raw_bytes)
    except ValueError:
        record = None
    if not isinstance(record, dict) or not RETAIL_KEYS & set(record):
        # Another format's record (a CSV row, an OpenSearch document, a PutEvents body) or no
        # JSON at all: its fields are not Retail's, so look for the identifying values as whole
        # tokens of the raw text.
        return _raw_names_identity(event_filter, raw)
    return all(_term_may_match(term, record) for term in event_filter.terms)


RETAIL_KEYS = {"eventType", "event_type", "visitorId", "visitor_id"}


def _raw_names_identity(event_filter: EventFilter, raw: str) -> bool:
    """Does the raw text hold every identifying value the filter asks for, as a JSON string or
    number or as a CSV field? Terms it cannot judge from text (times, types) count as matched."""
    identities = [t for t in event_filter.terms if isinstance(t, EqualityTerm) and t.field in IDENTIFYING_FIELDS
                  and not t.negated]
    if not identities:
        return False
    try:
        fields = set(next(csv.reader([raw.split("\n", 1)[0]]), []))
    except csv.Error:
        fields = set()
    return all(any(json.dumps(v) in raw or json.dumps(v, ensure_ascii=False) in raw or v in fields
                   or (v.isdigit() and re.search(rf"[:\[,]\s*{v}\s*[,}}\]]", raw)) for v in t.values)
               for t in identities)


def _get(record: dict, *path: str):
    value = record
    for key in path:
        if not isinstance(value, dict):
            return None
        snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
        value = value.get(key, value.get(snake))
    return value


def _term_may_match(term, record: dict) -> bool:
    if isinstance(term, MissingCatalogItemsTerm):
        return True  # never joined: it was never stored
    if isinstance(term, TimeTerm):
        text = _get(record, "eventTime")
        try:
            when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00").replace("z", "+00:00"))
            when = when.astimezone(dt.timezone.utc) if when.tzinfo else None
        except (ValueError, OverflowError):
            when = None
        if when is None:
            return False
        return {">": when > term.time, ">=": when >= term.time, "<": when < term.time, "<=": when <= term.time}[term.op]
    if term.field == "productId":
        details = _get(record, "productDetails")
        details = [details] if isinstance(details, dict) else details if isinstance(details, list) else []
        ids = {_get(d, "product", "id") for d in details if isinstance(d, dict)}
        hit = bool(ids & set(term.values))
    else:
        path = {"eventType": ("eventType",), "visitorId": ("visitorId",), "userId": ("userInfo", "userId"),
                "sessionId": ("sessionId",)}[term.field]
        value = _get(record, *path)
        if value is None:
            return False
        hit = str(value) in term.values
    return not hit if term.negated else hit
