"""The import's last step: drop duplicates, check the error limit, commit once, report.

It runs on one worker after every data file is written. Only small things reach it: per-file
counts and each row's 16-byte fingerprint and position, never the rows themselves.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from eventlake import __version__
from eventlake.errors import to_status
from eventlake.io import delta_log
from eventlake.io.delta_log import CommitConflict, join_path
from eventlake.io.files import write_bytes
from eventlake.io.store import WrittenFile, delete_files, read_columns
from eventlake.schema import PARTITION_COLUMN, table_schema

MAX_COMMIT_ATTEMPTS = 10


@dataclass(frozen=True)
class CommitPlan:
    """What the commit step needs to know about the run, fixed at pipeline construction."""

    run_id: str
    store: str
    errors_dir: str
    sources: list[dict]  # the files this run reads, as recorded in the log
    skipped_files: int
    catalog_fields: tuple[str, ...]
    max_error_ratio: float | None
    parameters: dict
    started: float


def commit_import(plan: CommitPlan, written: list[WrittenFile], stats: list[dict], errors: dict,
                  catalog_errors: dict, catalog_products: int) -> dict:
    """Dedupe, commit and report; returns the summary (``status`` "ok" or "failed")."""
    records = sum(s["records"] for s in stats)
    summary = {
        "run_id": plan.run_id,
        "status": "ok",
        "records": records,
        "stored": 0,
        "joined": 0,
        "unjoined": 0,
        "duplicates": 0,
        "errors": errors["count"],
        "errors_by_reason": dict(sorted(errors["by_reason"].items())),
        "catalog_products": catalog_products,
        "catalog_errors": catalog_errors["count"],
        "skipped_files": plan.skipped_files,
        "files": len(plan.sources),
        "data_files": 0,
        "by_event_type": {},
        "version": None,
        "errors_path": plan.errors_dir,
    }
    _write_samples(plan, stats, errors, catalog_errors)
    failure = _check_limits(plan, summary, catalog_products)
    if failure:
        delete_files(plan.store, [f.path for f in written])
        return _finish(plan, summary, failure)

    for attempt in range(MAX_COMMIT_ATTEMPTS):
        snapshot = delta_log.read_snapshot(plan.store)
        if any(c.get("eventlake", {}).get("run_id") == plan.run_id for c in snapshot.commits):
            break  # a retried step whose commit already landed
        _check_schema(plan, snapshot)
        written = _drop_duplicates(plan, snapshot, written)
        _count(summary, written, records)
        actions = []
        if not snapshot.exists:
            schema = table_schema(plan.catalog_fields)
            actions += [delta_log.protocol_action(), delta_log.metadata_action(schema, [PARTITION_COLUMN])]
        actions += [f.add_action() for f in written if f.rows]
        actions.append(_commit_info(plan, summary, snapshot.version + 1))
        try:
            delta_log.commit(plan.store, snapshot.version + 1, actions)
            summary["version"] = snapshot.version + 1
            break
        except CommitConflict:
            time.sleep(0.05 * (attempt + 1))
    else:
        delete_files(plan.store, [f.path for f in written if f.rows])
        return _finish(plan, summary, f"could not commit after {MAX_COMMIT_ATTEMPTS} attempts: other writers kept committing first")
    return _finish(plan, summary, None)


def _check_limits(plan: CommitPlan, summary: dict, catalog_products: int) -> str | None:
    if catalog_products == 0 and summary["catalog_errors"]:
        return f"the catalog has no valid product ({summary['catalog_errors']} invalid lines; see {plan.errors_dir})"
    ratio = summary["errors"] / summary["records"] if summary["records"] else 0.0
    if plan.max_error_ratio is not None and ratio > plan.max_error_ratio:
        return (f"{summary['errors']} of {summary['records']} records are errors ({ratio:.1%}), over the limit "
                f"of {plan.max_error_ratio:.1%}; nothing was committed (samples in {plan.errors_dir})")
    return None


def _check_schema(plan: CommitPlan, snapshot: delta_log.Snapshot) -> None:
    if snapshot.metadata is None:
        return
    expected = json.dumps(delta_log.delta_schema(table_schema(plan.catalog_fields)))
    if json.loads(snapshot.metadata["schemaString"]) != json.loads(expected):
        raise RuntimeError(f"{plan.store}: the store was created with other catalog_fields; use the same ones")


def _drop_duplicates(plan: CommitPlan, snapshot: delta_log.Snapshot, written: list[WrittenFile]) -> list[WrittenFile]:
    """Keep the first copy of each event in this run, and none of an event the store has."""
    if not written:
        return written
    keys = np.concatenate([np.frombuffer(f.fingerprints, dtype="V16") for f in written])
    order = np.concatenate([f.order for f in written])
    owner = np.repeat(np.arange(len(written)), [f.rows for f in written])
    ranked = np.argsort(order, kind="stable")
    _, first = np.unique(keys[ranked], return_index=True)
    keep = np.zeros(len(keys), dtype=bool)
    keep[ranked[first]] = True
    stored = _store_fingerprints(plan.store, snapshot, {f.date for f in written})
    if len(stored):
        keep &= ~np.isin(keys, stored)
    result = []
    for index, info in enumerate(written):
        rows = keep[owner == index]
        if rows.all():
            result.append(info)
        else:
            result.append(_rewrite_without(plan.store, info, rows))
    return result


def _store_fingerprints(store: str, snapshot: delta_log.Snapshot, dates: set[str]) -> np.ndarray:
    """Fingerprints of stored events on the given dates: a duplicate has the same event time."""
    parts = []
    for path, add in snapshot.files.items():
        if add.get("partitionValues", {}).get(PARTITION_COLUMN) in dates:
            column = read_columns(store, path, ["event_fingerprint"]).column("event_fingerprint")
            parts.append(np.frombuffer(b"".join(column.to_pylist()), dtype="V16"))
    return np.concatenate(parts) if parts else np.zeros(0, dtype="V16")


def _rewrite_without(store: str, info: WrittenFile, keep: np.ndarray) -> WrittenFile:
    """Write ``info``'s file again with only the ``keep`` rows; the old file is removed.

    When no row is left no file is written, and the result has ``rows == 0``.
    """
    table = read_columns(store, info.path).filter(pa.array(keep))
    new = WrittenFile(path=info.path.replace(".parquet", "-d.parquet"), date=info.date)
    if len(table):
        with FileSystems.create(join_path(store, new.path)) as handle:
            pq.write_table(table, pa.PythonFile(handle, mode="w"), compression="zstd")
        new.size = FileSystems.match([join_path(store, new.path)])[0].metadata_list[0].size_in_bytes
        new.count(table)
        new.fingerprints = b"".join(table.column("event_fingerprint").to_pylist())
    new.order = info.order[keep]
    delete_files(store, [info.path])
    return new


def _count(summary: dict, written: list[WrittenFile], records: int) -> None:
    stored = sum(f.rows for f in written)
    joined = sum(f.joined for f in written)
    by_type: Counter = Counter()
    for f in written:
        by_type.update(f.by_event_type)
    summary.update(
        stored=stored,
        joined=joined,
        unjoined=stored - joined,
        duplicates=records - stored - summary["errors"],
        by_event_type=dict(sorted(by_type.items())),
        data_files=sum(1 for f in written if f.rows),
    )


def _commit_info(plan: CommitPlan, summary: dict, version: int) -> dict:
    counts = {k: v for k, v in summary.items() if k not in ("status", "version", "errors_path")}
    return {
        "commitInfo": {
            "timestamp": int(time.time() * 1000),
            "operation": "WRITE",
            "operationParameters": {"mode": "Append", "job": "import"},
            "isBlindAppend": True,
            "engineInfo": f"eventlake/{__version__}",
            "eventlake": {
                "job": "import",
                "run_id": plan.run_id,
                "version": version,
                "parameters": plan.parameters,
                "counts": counts,
                "sources": plan.sources,
            },
        }
    }


def _write_samples(plan: CommitPlan, stats: list[dict], errors: dict, catalog_errors: dict) -> None:
    first_lines = _range_first_lines(stats)
    for name, summary in (("errors.jsonl", errors), ("catalog_errors.jsonl", catalog_errors)):
        if not summary["samples"]:
            continue
        lines = []
        for error in summary["samples"]:
            error = dict(error)
            ranges = first_lines.get(error["source"])
            if ranges and error.get("line") is not None:
                starts, before = ranges
                at = max(int(np.searchsorted(starts, error["offset"], side="right")) - 1, 0)
                error["line"] += int(before[at])
            lines.append(json.dumps(to_status(error), ensure_ascii=False))
        write_bytes(join_path(plan.errors_dir, name), ("\n".join(lines) + "\n").encode())


def _range_first_lines(stats: list[dict]) -> dict:
    """Per split file: range starts and the number of lines before each range."""
    by_path: dict[str, list] = {}
    for s in stats:
        by_path.setdefault(s["path"], []).append((s["start"], s["lines"]))
    out = {}
    for path, ranges in by_path.items():
        if len(ranges) > 1:
            ranges.sort()
            starts = np.array([r[0] for r in ranges])
            before = np.concatenate(([0], np.cumsum([r[1] for r in ranges])[:-1]))
            out[path] = (starts, before)
    return out


def _finish(plan: CommitPlan, summary: dict, failure: str | None) -> dict:
    if failure:
        summary["status"] = "failed"
        summary["failure"] = failure
    summary["seconds"] = round(time.time() - plan.started, 3)
    summary["events_per_second"] = round(summary["records"] / summary["seconds"], 1) if summary["seconds"] else None
    write_bytes(join_path(plan.errors_dir, "summary.json"), json.dumps(summary, indent=2).encode())
    return summary
