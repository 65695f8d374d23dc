"""The store's history: one entry per version, read from the Delta log (no pipeline needed)."""

from __future__ import annotations

import datetime as dt
import json

from eventlake.pipelines.running import absolute, prepare_run, read_store
from eventlake.summaries import summary_of

# The counts shown in the table, per job; ``--json`` has them all.
_HEADLINE = {
    "import": ("records", "stored", "duplicates", "errors"),
    "features-import": ("records", "stored", "duplicates", "errors"),
    "rejoin": ("rejoined", "newly_joined", "newly_unjoined", "files_rewritten"),
    "purge": ("purged", "files_scanned", "files_rewritten"),
    "purge (audit)": ("purged", "files_scanned"),
}


def store_history(store: str) -> list[dict]:
    """Every version, oldest first: time, job, operation, parameters and counts."""
    store = absolute(store)
    prepare_run([], [store])
    snapshot = read_store(store)
    entries = []
    for version, info in snapshot.history:
        ours = info.get("eventlake", {})
        job = ours.get("job") or info.get("operation", "").lower()
        if job == "purge" and not ours.get("counts", {}).get("files_rewritten"):
            job = "purge (audit)"  # a forced purge that matched nothing: the request's record only
        entries.append({
            "version": version,
            "time": _iso(info.get("timestamp")),
            "job": job,
            "operation": info.get("operation"),
            "run_id": ours.get("run_id"),
            "parameters": ours.get("parameters", info.get("operationParameters", {})),
            "counts": summary_of(ours.get("job", ""), ours.get("counts", {})).to_dict(),
        })
    return entries


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_history(entries: list[dict]) -> str:
    """An aligned table: version, time, job, its headline counts and its parameters."""
    rows = [("version", "time", "job", "counts", "parameters")]
    for e in entries:
        counts = " ".join(f"{k}={e['counts'][k]}" for k in _HEADLINE.get(e["job"], ()) if k in e["counts"])
        rows.append((str(e["version"]), e["time"] or "-", e["job"], counts or "-", json.dumps(e["parameters"])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows)
