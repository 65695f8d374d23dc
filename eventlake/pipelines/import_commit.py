"""The import's last step: drop duplicates, check the error limit, commit once, report.

It runs on one worker after every data file is written and deduplicated. Only per-file counts
reach it, never rows or fingerprints.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from eventlake import __version__
from eventlake.errors import to_status
from eventlake.faults import fault_point
from eventlake.io import delta_log
from eventlake.io.decompress import open_source
from eventlake.io.delta_log import join_path
from eventlake.io.files import compression_of, write_bytes
from eventlake.io.store import WrittenFile, delete_files
from eventlake.pipelines.running import scratch_dir
from eventlake.schema import PARTITION_COLUMN, feature_stored_schema, feature_table_schema, stored_schema, table_schema
from eventlake.transforms.dedupe import dedupe_files, files_of_date


@dataclass(frozen=True)
class CommitPlan:
    """What the commit step needs to know about the run, fixed at pipeline construction."""

    run_id: str
    store: str
    errors_dir: str
    sources: list[dict]  # the files this run reads, as recorded in the log
    skipped_files: int
    skipped_paths: list[str]  # files skipped as imported before
    catalog_fields: tuple[str, ...]
    max_error_ratio: float | None
    parameters: dict
    started: float
    base_version: int  # the store version the run's dedupe compares against
    source_index: dict[str, int]  # source path -> its rank, to keep the first copy of an event
    leftovers_removed: int = 0  # files of earlier runs this run's first step cleaned up
    table: str = "events"  # or "features": a features table (``eventlake features import``)
    keep_rejects: bool = False  # every rejected record whole in rejects.jsonl (``--keep-rejects``)

    @property
    def job(self) -> str:
        return "import" if self.table == "events" else "features-import"

    @property
    def schema(self):
        """The logical table's schema (with the partition column)."""
        return table_schema(self.catalog_fields) if self.table == "events" else feature_table_schema()

    @property
    def stored_schema(self):
        """A data file's schema."""
        return stored_schema(self.catalog_fields) if self.table == "events" else feature_stored_schema()

    @property
    def errors_root(self) -> str:
        """The folder of every run's error folder, where ``latest`` names the last run."""
        return self.errors_dir.rstrip("/").rsplit("/", 1)[0]

    @property
    def temp_dir(self) -> str:
        """The run's scratch files (the catalog snapshot); removed when the run ends."""
        return scratch_dir(self.store, self.run_id)


def commit_import(plan: CommitPlan, written: list[WrittenFile], stats: list[dict], errors: dict,
                  catalog_errors: dict, catalog_products: int, catalog_failure: str | None = None) -> dict:
    """Dedupe, commit and report; returns the summary (``status`` "ok" or "failed")."""
    records = sum(s["records"] for s in stats)
    skipped_by_reason: Counter = Counter()
    for s in stats:
        skipped_by_reason.update(s.get("skipped", {}))
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
        "skipped": sum(skipped_by_reason.values()),
        "skipped_by_reason": dict(sorted(skipped_by_reason.items())),
        "catalog_products": catalog_products if plan.parameters.get("catalog") else None,
        "catalog_errors": catalog_errors["count"],
        "skipped_files": plan.skipped_files,
        "skipped_paths": plan.skipped_paths,
        "files": len(plan.sources),
        "data_files": 0,
        "by_event_type": {},
        "version": None,
        "errors_path": plan.errors_dir,
        "leftovers_removed": plan.leftovers_removed,
    }
    _count_formats(plan, summary, stats, errors)
    _write_samples(plan, stats, errors, catalog_errors)
    written = [f for f in written if f.rows]  # dedupe may have emptied some
    damaged = [s["failure"] for s in stats if s.get("failure")]
    failure = (catalog_failure or (damaged[0] if damaged else None) or _check_limits(plan, summary, catalog_products)
               or _check_all_bad_files(plan, stats, errors))
    if failure:
        delete_files(plan.store, [f.path for f in written])
        return _finish(plan, summary, failure)

    checked = delta_log.read_snapshot(plan.store, plan.base_version)  # what DropDuplicates looked at
    for attempt in range(delta_log.MAX_COMMIT_ATTEMPTS):
        snapshot = delta_log.read_snapshot(plan.store)
        if any(c.get("eventlake", {}).get("run_id") == plan.run_id for c in snapshot.commits):
            break  # a retried step whose commit already landed
        added = _added_columns(plan, snapshot)
        if added:
            # New columns (source_format, say) join an older store's schema in a commit of their
            # own; its files read them as null. Then this run's data lands as usual.
            delta_log.try_commit(plan.store, snapshot.version + 1, _schema_actions(snapshot, added), attempt)
            continue
        removed = set(checked.files) - set(snapshot.files)
        if removed and records - summary["errors"] - summary["skipped"] > sum(f.rows for f in written):
            # Some events were dropped as duplicates of stored twins, and a purge or rejoin has
            # rewritten stored files since: the twins may be gone. Run again from the new version,
            # as if this import had started after that job.
            delete_files(plan.store, [f.path for f in written if f.rows])
            return _finish(plan, summary, f"{len(removed)} stored files were rewritten meanwhile by another job, and "
                                          "this import dropped events as their duplicates", status="conflict")
        written = [f for f in _drop_late_duplicates(plan, snapshot, checked, written) if f.rows]
        checked = snapshot
        _count(summary, written, records, plan.table)
        known = snapshot.imported_sources()
        if not written and all((s["path"], int(s["size"]), float(s["mtime"])) in known for s in plan.sources):
            summary["note"] = "nothing to change"  # every event a duplicate, every file recorded already
            break
        actions = []
        if not snapshot.exists:
            schema = plan.schema
            actions += [delta_log.protocol_action(), delta_log.metadata_action(schema, [PARTITION_COLUMN])]
        for f in written:
            f.imported_version = snapshot.version + 1
        actions += [f.add_action() for f in written if f.rows]
        actions.append(_commit_info(plan, summary, snapshot.version + 1))
        fault_point("import-before-commit")
        if delta_log.try_commit(plan.store, snapshot.version + 1, actions, attempt):
            summary["version"] = snapshot.version + 1
            fault_point("import-after-commit")
            break
    else:
        delete_files(plan.store, [f.path for f in written if f.rows])
        return _finish(plan, summary, f"could not commit after {delta_log.MAX_COMMIT_ATTEMPTS} attempts: other writers kept committing first")
    return _finish(plan, summary, None)


def _count_formats(plan: CommitPlan, summary: dict, stats: list[dict], errors: dict) -> None:
    """``formats``: what ``--format auto`` chose per file; ``by_format``: records and errors of
    each format, when the run read more than one."""
    chosen = plan.parameters.get("formats")
    if chosen:
        summary["formats"] = dict(chosen)
    format_of = {s["path"]: s.get("format") for s in stats}
    by_format: dict[str, dict] = {}
    for s in stats:
        by_format.setdefault(s.get("format"), {"records": 0, "errors": 0})["records"] += s["records"]
    for path, count in errors.get("by_source", {}).items():
        if path in format_of:
            by_format[format_of[path]]["errors"] += count
    if len(by_format) > 1:
        summary["by_format"] = dict(sorted(by_format.items()))


def _check_limits(plan: CommitPlan, summary: dict, catalog_products: int) -> str | None:
    if plan.parameters.get("catalog") and catalog_products == 0 and summary["catalog_errors"]:
        return f"the catalog has no valid product ({summary['catalog_errors']} invalid lines; see {plan.errors_dir})"
    ratio = summary["errors"] / summary["records"] if summary["records"] else 0.0
    if plan.max_error_ratio is not None and ratio > plan.max_error_ratio:
        return (f"{summary['errors']} of {summary['records']} records are errors ({ratio:.1%}), over the limit "
                f"of {plan.max_error_ratio:.1%}; nothing was committed (samples in {plan.errors_dir})")
    return None


def _check_all_bad_files(plan: CommitPlan, stats: list[dict], errors: dict) -> str | None:
    """A file none of whose records is valid is almost always the wrong file or format, not bad
    events: refuse it (unless the user set an error limit) so that it is not marked imported."""
    if plan.max_error_ratio is not None:
        return None
    records: Counter = Counter()  # records that were not skipped by a documented rule
    for s in stats:
        records[s["path"]] += s["records"] - sum(s.get("skipped", {}).values())
    by_source = errors.get("by_source", {})
    bad = [p for p in sorted(records) if records[p] and by_source.get(p, 0) >= records[p]]
    if not bad:
        return None
    more = f" (and {len(bad) - 1} more files)" if len(bad) > 1 else ""
    return (f"{bad[0]}: none of its {records[bad[0]]} records is a valid event{more}; {likely_cause(bad[0])}. "
            f"Nothing was committed; set --max-error-ratio to import such files anyway (samples in {plan.errors_dir})")


def likely_cause(path: str) -> str:
    """A guess at why no line of ``path`` is a Retail event, from its first bytes."""
    try:
        with open_source(path, compression_of(path)) as handle:
            head = handle.read(4096)
    except Exception:  # noqa: BLE001 - only a hint: the file was read once already
        return "check its format"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        return "it looks UTF-16 or binary: eventlake reads UTF-8 JSON lines"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    first_line = text.split(b"\n", 1)[0].strip()
    if text.startswith(b"["):
        return "it looks like one JSON array: write one JSON object per line (JSON lines)"
    if text.startswith(b"{") and not first_line.endswith(b"}"):
        return "it looks like pretty-printed JSON: write each event on one line"
    return ("is it another format (CSV, another system's events)? --format names the source system, and "
            "--format auto tells it from the file")


def _added_columns(plan: CommitPlan, snapshot: delta_log.Snapshot) -> list[dict]:
    """The Delta fields this run writes that the store's schema lacks (none for a new store).

    Raises when the store differs otherwise: its products keep other catalog fields.
    """
    if snapshot.metadata is None:
        return []
    have = {f["name"]: f for f in json.loads(snapshot.metadata["schemaString"])["fields"]}
    want = delta_log.delta_schema(plan.schema)["fields"]
    if any(f["name"] in have and have[f["name"]] != f for f in want) or set(have) - {f["name"] for f in want}:
        if plan.table != "events":
            raise RuntimeError(f"{plan.store}: not a features table of this version (its columns differ)")
        raise RuntimeError(f"{plan.store}: the store was created with other catalog_fields; use the same ones")
    return [f for f in want if f["name"] not in have]


def _schema_actions(snapshot: delta_log.Snapshot, added: list[dict]) -> list[dict]:
    schema = json.loads(snapshot.metadata["schemaString"])
    schema["fields"] += added
    names = [f["name"] for f in added]
    return [
        {"metaData": {**snapshot.metadata, "schemaString": json.dumps(schema)}},
        {"commitInfo": {
            "timestamp": int(time.time() * 1000),
            "operation": "ADD COLUMNS",
            "operationParameters": {"columns": json.dumps(names)},
            "isBlindAppend": True,
            "engineInfo": f"eventlake/{__version__}",
            "eventlake": {"job": "schema", "version": snapshot.version + 1, "parameters": {"added_columns": names},
                          "counts": {}},
        }},
    ]


def _drop_late_duplicates(plan: CommitPlan, snapshot: delta_log.Snapshot, checked: delta_log.Snapshot,
                          written: list[WrittenFile]) -> list[WrittenFile]:
    """Drop events that jobs committing after ``checked`` stored meanwhile (usually none)."""
    new_paths = set(snapshot.files) - set(checked.files)
    if not new_paths:
        return written
    out = []
    for date in sorted({f.date for f in written}):
        known = [p for p in files_of_date(snapshot, date) if p in new_paths]
        mine = [f for f in written if f.date == date]
        out += dedupe_files(plan.store, mine, known, plan.source_index) if known else mine
    return out


def _count(summary: dict, written: list[WrittenFile], records: int, table: str = "events") -> None:
    stored = sum(f.rows for f in written)
    joined = sum(f.joined for f in written)
    if summary.get("catalog_products") is None:  # no catalog: nothing was joined, nor unjoined
        joined = None
    by_type: Counter = Counter()
    for f in written:
        by_type.update(f.by_event_type)
    summary.update(
        stored=stored,
        joined=joined,
        unjoined=None if joined is None else stored - joined,
        **({"note": "no catalog: the events were not joined; 'eventlake rejoin --catalog C' joins them"}
           if joined is None and table == "events" else {}),
        duplicates=records - stored - summary["errors"] - summary["skipped"],
        by_event_type=dict(sorted(by_type.items())),
        data_files=sum(1 for f in written if f.rows),
    )


_NOT_FEATURES = ("joined", "unjoined", "catalog_products", "catalog_errors")


def reported(plan: CommitPlan, summary: dict) -> dict:
    """The summary as its job reports it: a features table has no join, and counts modules."""
    if plan.table == "events":
        return summary
    out = {k: v for k, v in summary.items() if k not in _NOT_FEATURES}
    if "by_event_type" in out:
        out["by_module"] = out.pop("by_event_type")
    return out


def _commit_info(plan: CommitPlan, summary: dict, version: int) -> dict:
    counts = {k: v for k, v in reported(plan, summary).items() if k not in ("status", "version", "errors_path")}
    return {
        "commitInfo": {
            "timestamp": int(time.time() * 1000),
            "operation": "WRITE",
            "operationParameters": {"mode": "Append", "job": plan.job},
            "isBlindAppend": True,
            "engineInfo": f"eventlake/{__version__}",
            "eventlake": {
                "job": plan.job,
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
            error = {**error, "line": absolute_line(error, stats, first_lines)}
            lines.append(json.dumps(to_status(error), ensure_ascii=False))
        write_bytes(join_path(plan.errors_dir, name), ("\n".join(lines) + "\n").encode())


def absolute_line(error: dict, stats: list[dict], first_lines: dict | None = None) -> int | None:
    """An error's line counted from its file's start (a range read mid-file counts from its own)."""
    first_lines = _range_first_lines(stats) if first_lines is None else first_lines
    ranges = first_lines.get(error["source"])
    if not ranges or error.get("line") is None:
        return error.get("line")
    starts, before = ranges
    at = max(int(np.searchsorted(starts, error["offset"], side="right")) - 1, 0)
    return error["line"] + int(before[at])


def _range_first_lines(stats: list[dict]) -> dict:
    """Per split file: range starts and the number of lines before each range."""
    by_path: dict[str, list] = {}
    for s in stats:
        if s.get("absolute_lines"):
            continue  # ReadEvents counted the lines before each range itself
        by_path.setdefault(s["path"], []).append((s["start"], s["lines"]))
    out = {}
    for path, ranges in by_path.items():
        if len(ranges) > 1:
            ranges.sort()
            starts = np.array([r[0] for r in ranges])
            before = np.concatenate(([0], np.cumsum([r[1] for r in ranges])[:-1]))
            out[path] = (starts, before)
    return out


def _finish(plan: CommitPlan, summary: dict, failure: str | None, status: str = "failed") -> dict:
    if failure:
        summary["status"] = status
        summary["failure"] = failure
    summary["seconds"] = round(time.time() - plan.started, 3)
    summary["events_per_second"] = round(summary["records"] / summary["seconds"], 1) if summary["seconds"] else None
    summary = reported(plan, summary)
    write_bytes(join_path(plan.errors_dir, "summary.json"), json.dumps(summary, indent=2).encode())
    write_bytes(join_path(plan.errors_root, "latest"), f"{plan.run_id}\n".encode())
    return summary
