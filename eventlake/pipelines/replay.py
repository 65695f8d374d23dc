"""Rejected records, kept whole and imported again: ``--keep-rejects`` and ``--replay``.

Error samples are capped and cut to their first kilobyte: enough to see why a record failed,
not to import it. ``--keep-rejects`` writes every rejected record whole to ``rejects.jsonl``
in the run's error folder, in the samples' shape (``google.rpc.Status``, the record, its
source file, line, byte offset, field, reason) plus the source's format.

``eventlake import --replay RUN`` (a run id, or a rejects file's path) imports exactly those
records again under the current config (after an ``event_type_map`` entry was added, say),
without ``--reimport`` of whole files. Records are written back, per source file and format,
as a replay input under the rejects' folder (``replay-<time>/``: JSON lines as they were,
CSV rows under their file's header, Parquet rows as the JSON lines of their values), then
imported as any file: validated, joined, deduplicated against the store. The replay inputs
are kept, as error samples are, because stored events name them as their source;
``origins.jsonl`` beside them gives each input line's original file and line. A forced purge
blanks the lines of a purged record in them (keeping every other line's offset) and drops
them from ``rejects.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import time
import uuid

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from eventlake.config import ImportConfig
from eventlake.errors import to_status
from eventlake.formats.tabular import file_type_of
from eventlake.io.decompress import open_source
from eventlake.io.delta_log import join_path
from eventlake.io.files import compression_of, read_all, uncompressed_name, write_bytes
from eventlake.io.object_store import delete_paths
from eventlake.pipelines.running import JobError, absolute

REJECTS = "rejects.jsonl"
REPLAY_PREFIX = "replay-"
ORIGINS = "origins.jsonl"


class WriteRejectsFn(beam.DoFn):
    """Error records -> shard files of whole rejected records (their lines still counted from
    the start of their byte range: ``finish_rejects`` makes them absolute)."""

    FLUSH_EVERY = 10_000

    def __init__(self, errors_dir: str):
        self._folder = join_path(errors_dir, "rejects-parts")

    def start_bundle(self):
        self._lines: list[bytes] = []

    def process(self, error: dict):
        self._lines.append(json.dumps(error, ensure_ascii=False).encode() + b"\n")
        if len(self._lines) >= self.FLUSH_EVERY:
            yield self._flush()

    def finish_bundle(self):
        if self._lines:
            yield GlobalWindows.windowed_value(self._flush())

    def _flush(self) -> str:
        path = join_path(self._folder, f"{uuid.uuid4().hex}.jsonl")
        write_bytes(path, b"".join(self._lines))
        self._lines = []
        return path


def finish_rejects(errors_dir: str, parts: list[str], stats: list[dict]) -> int:
    """The shards as one ``rejects.jsonl`` in file and line order, each record with its
    format and its line counted from the file's start; returns how many."""
    from eventlake.pipelines.import_commit import absolute_line

    formats = {s["path"]: s.get("format") for s in stats}
    errors = [json.loads(line) for path in parts for line in read_all(path).splitlines() if line.strip()]
    errors = [{**e, "line": absolute_line(e, stats)} for e in errors]
    errors.sort(key=lambda e: (e["source"], e.get("offset") or 0, e.get("line") or 0))
    write_bytes(join_path(errors_dir, REJECTS), b"".join(reject_line(e, formats.get(e["source"])) for e in errors))
    delete_paths(parts)
    if "://" not in errors_dir:
        try:
            os.rmdir(join_path(errors_dir, "rejects-parts"))
        except OSError:
            pass  # never made (no reject), or not empty
    return len(errors)


def reject_line(error: dict, fmt: str | None) -> bytes:
    """One rejected record, whole, as a line of ``rejects.jsonl``."""
    status = to_status(error, whole=True)
    status["details"][0]["format"] = fmt
    return json.dumps(status, ensure_ascii=False).encode() + b"\n"


def rejects_path(store: str, run: str) -> str:
    """The rejects file ``run`` names: a path to one, or a run id of the store."""
    if run.endswith(".jsonl"):
        return absolute(run)
    return join_path(absolute(store), "_errors", run, REJECTS)


def read_rejects(path: str) -> list[dict]:
    try:
        text = read_all(path).decode()
    except Exception:  # noqa: BLE001 - any reason it cannot be read is the same to the user
        raise JobError(f"replay: no rejected records at {path}: was the run made with --keep-rejects?") from None
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line)["details"][0])
        except (ValueError, KeyError, IndexError):
            raise JobError(f"replay: {path}:{number}: not a rejected record") from None
    if not out:
        raise JobError(f"replay: {path} holds no rejected record (a purge may have removed them)")
    return out


def _header(source: str) -> bytes:
    """The first line of a CSV source: its header, which the rows replayed need."""
    try:
        with open_source(source, compression_of(source)) as handle:
            chunk = handle.read(1 << 20)
    except Exception:  # noqa: BLE001 - gone, moved, unreadable
        raise JobError(f"replay: {source} is needed for its CSV header and cannot be read") from None
    return chunk.split(b"\n", 1)[0].rstrip(b"\r") + b"\n"


def write_replay_inputs(rejects: list[dict], folder: str) -> dict[str, list[str]]:
    """Each (source, format)'s records as one replay input under ``folder``; format -> paths."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in rejects:
        groups.setdefault((record["source"], record.get("format") or "retail"), []).append(record)
    by_format: dict[str, list[str]] = {}
    origins = []
    for n, ((source, fmt), records) in enumerate(sorted(groups.items())):
        name = uncompressed_name(posixpath.basename(source.replace("\\", "/")))
        kind = file_type_of(name)
        if kind == "parquet":  # its rows' error text is JSON of their values
            name = name.rsplit(".", 1)[0] + ".jsonl"
        path = join_path(folder, f"{n:03d}-{name}")
        head = _header(source) if kind == "csv" else b""
        lines = [(r.get("record") or "").encode() for r in records]
        write_bytes(path, head + b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
        first = 2 if head else 1
        origins += [{"input": path, "line": first + i, "source": r["source"], "source_line": r.get("line"),
                     "source_offset": r.get("offset")} for i, r in enumerate(records)]
        by_format.setdefault(fmt, []).append(path)
    write_bytes(join_path(folder, ORIGINS), "".join(json.dumps(o) + "\n" for o in origins).encode())
    return by_format


def replay_config(config: ImportConfig) -> tuple[ImportConfig, dict]:
    """The import of ``config.replay``'s records: the config with the replay inputs as its
    events, in the records' format; and what to add to its summary."""
    path = rejects_path(config.store, config.replay)
    rejects = read_rejects(path)
    formats = sorted({r.get("format") or "retail" for r in rejects})
    if config.format in formats:
        chosen = config.format
    elif len(formats) == 1:
        chosen = formats[0]
    else:
        raise JobError(f"replay: {path} holds records of several formats ({', '.join(formats)}); give --format to "
                       "replay one of them at a time")
    rejects = [r for r in rejects if (r.get("format") or "retail") == chosen]
    folder = join_path(path.rsplit("/", 1)[0], REPLAY_PREFIX + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    inputs = write_replay_inputs(rejects, folder)[chosen]
    replay = dataclasses.replace(config, events=inputs, format=chosen, replay="", reimport=False, allow_missing=False,
                                 format_options=config.format_options if chosen == config.format else {})
    return replay, {"replayed_from": path, "replayed_records": len(rejects), "replay_inputs": folder}


__all__ = ["REJECTS", "read_rejects", "reject_line", "rejects_path", "replay_config", "write_replay_inputs"]
