"""Error samples: one record shape for every rejected input, whatever the stage that rejected it.

Rejected records are few, so they travel as small dicts. They are written as JSON lines shaped
like ``google.rpc.Status`` so that tools which read Retail import errors read ours too.
"""

from __future__ import annotations

ERRORS = "errors"  # the tag of every transform's error output
RAW_SAMPLE_BYTES = 1024
RAW_RECORD_BYTES = 1 << 20  # a rejected record kept whole for --keep-rejects, up to this size
INVALID_ARGUMENT = 3  # google.rpc.Code.INVALID_ARGUMENT


def error_record(
    source: str,
    line: int | None,
    offset: int | None,
    field: str,
    reason: str,
    message: str,
    raw: bytes | str | None,
) -> dict:
    """One rejected record: where it is, which field broke which rule, and the record itself
    (whole, up to ``RAW_RECORD_BYTES``: ``--keep-rejects`` keeps it so; a sample cuts it)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw)[:RAW_RECORD_BYTES].rstrip(b"\r\n").decode("utf-8", errors="replace")
    elif isinstance(raw, str):
        raw = raw.encode("utf-8")[:RAW_RECORD_BYTES].decode("utf-8", errors="ignore")
    return {
        "source": source,
        "line": line,
        "offset": offset,
        "field": field,
        "reason": reason,
        "message": message,
        "record": raw,
    }


def sample_text(record: str | None) -> str | None:
    """A sample's record: its first line, cut to ``RAW_SAMPLE_BYTES``."""
    if record is None:
        return None
    first = record.split("\n", 1)[0].rstrip("\r")
    return first.encode("utf-8")[:RAW_SAMPLE_BYTES].decode("utf-8", errors="ignore")


def to_status(error: dict, whole: bool = False) -> dict:
    """The ``google.rpc.Status`` shape of an error record, as written to the error samples
    (the record cut to a sample) or, ``whole``, to the kept rejects."""
    where = f"{error['source']}:{error['line']}" if error.get("line") is not None else error["source"]
    return {
        "code": INVALID_ARGUMENT,
        "message": f"{where}: {error['message']}",
        "details": [
            {
                "source": error["source"],
                "line": error.get("line"),
                "offset": error.get("offset"),
                "field": error["field"],
                "reason": error["reason"],
                "record": error.get("record") if whole else sample_text(error.get("record")),
            }
        ],
    }
