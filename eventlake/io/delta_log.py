"""The event store's Delta Lake transaction log: read a snapshot, commit a version atomically.

Protocol reader 1 / writer 2: plain JSON commits, no checkpoints written by us. A commit is one
``NNNNNNNNNNNNNNNNNNNN.json`` created with put-if-absent, so two writers can never both own a
version; the loser re-reads the log and retries or gives up cleanly.
"""

from __future__ import annotations

import json
import os
import posixpath
import time
import uuid
from dataclasses import dataclass, field

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from eventlake.faults import committing
from eventlake.io.files import read_all
from eventlake.io.object_store import CommitConflict, put_if_absent

LOG_DIR = "_delta_log"
# Add-action tag naming the store version whose import brought a data file's rows in. Rejoin and
# purge copy it to the files they write, so an incremental export can tell new events from old
# ones merely rewritten.
IMPORTED_VERSION_TAG = "imported_version"
MAX_COMMIT_ATTEMPTS = 10  # a job that loses this many races in a row gives up


@dataclass
class Snapshot:
    """The table as of ``version`` (-1: no table yet)."""

    version: int = -1
    files: dict[str, dict] = field(default_factory=dict)  # path -> add action
    metadata: dict | None = None
    history: list[tuple[int, dict]] = field(default_factory=list)  # (version, commitInfo), in order
    removed: set[str] = field(default_factory=set)  # paths the log removed and never added back

    @property
    def commits(self) -> list[dict]:
        return [info for _, info in self.history]

    @property
    def exists(self) -> bool:
        return self.version >= 0

    def imported_sources(self) -> set[tuple[str, int, float]]:
        out = set()
        for info in self.commits:
            for source in info.get("eventlake", {}).get("sources", []):
                out.add((source["path"], int(source["size"]), float(source["mtime"])))
        return out


def join_path(root: str, *parts: str) -> str:
    if "://" in root:
        return posixpath.join(root, *parts)
    return os.path.join(root, *parts)


def log_path(store: str, version: int) -> str:
    return join_path(store, LOG_DIR, f"{version:020d}.json")


def read_snapshot(store: str, version: int | None = None) -> Snapshot:
    """The table as of ``version`` (default: the latest)."""
    pattern = join_path(store, LOG_DIR, "*.json")
    try:
        found = FileSystems.match([pattern])[0].metadata_list
    except Exception:
        found = []
    versions = sorted(int(posixpath.basename(m.path)[:-5]) for m in found if posixpath.basename(m.path)[:-5].isdigit())
    if version is not None:
        versions = [v for v in versions if v <= version]
    snapshot = Snapshot()
    for expected, found in enumerate(versions):
        if found != expected:
            raise RuntimeError(f"{store}: the Delta log is missing version {expected} (checkpointed tables are not supported yet)")
        _apply(snapshot, read_all(log_path(store, found)), found)
        snapshot.version = found
    return snapshot


def _apply(snapshot: Snapshot, text: bytes, version: int) -> None:
    added, gone, job = [], [], None
    for line in text.splitlines():
        if not line.strip():
            continue
        action = json.loads(line)
        if "add" in action:
            added.append(action["add"])
        elif "remove" in action:
            gone.append(snapshot.files.pop(action["remove"]["path"], None) or action["remove"])
            snapshot.removed.add(action["remove"]["path"])
        elif "metaData" in action:
            snapshot.metadata = action["metaData"]
        elif "commitInfo" in action:
            snapshot.history.append((version, action["commitInfo"]))
            job = action["commitInfo"].get("eventlake", {}).get("job")
    for add in added:
        if IMPORTED_VERSION_TAG not in add.get("tags", {}):
            _infer_imported_version(add, version, job, gone)
        snapshot.files[add["path"]] = add
        snapshot.removed.discard(add["path"])


def _infer_imported_version(add: dict, version: int, job: str | None, gone: list[dict]) -> None:
    """Tag a file written before files carried ``imported_version``: an import's own files came
    in with it; a rewrite replaced each file by one of the same date, so when every file it
    removed from that date came from one import, so did the new file. Otherwise it stays unknown."""
    if job == "import" or job is None and not gone:
        found = {version}
    else:
        date = add.get("partitionValues", {})
        found = {g.get("tags", {}).get(IMPORTED_VERSION_TAG) for g in gone if g.get("partitionValues", {}) == date}
    if len(found) == 1 and None not in found:
        add.setdefault("tags", {})[IMPORTED_VERSION_TAG] = str(found.pop())


def imported_version(add: dict) -> int | None:
    """The version whose import brought the file's rows into the store (None: the log cannot tell)."""
    value = add.get("tags", {}).get(IMPORTED_VERSION_TAG)
    return None if value is None else int(value)


def commit(store: str, version: int, actions: list[dict]) -> None:
    """Write ``actions`` as ``version``; raise ``CommitConflict`` if that version exists."""
    body = "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions).encode()
    put_if_absent(log_path(store, version), body)


def try_commit(store: str, version: int, actions: list[dict], attempt: int) -> bool:
    """``commit``; False, after a pause that grows with ``attempt``, when another writer took ``version``."""
    try:
        with committing():  # a Ctrl-C of the driver and this commit never overlap
            commit(store, version, actions)
        return True
    except CommitConflict:
        time.sleep(0.05 * (attempt + 1))
        return False


def protocol_action() -> dict:
    return {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}


def metadata_action(schema: pa.Schema, partition_columns: list[str]) -> dict:
    return {
        "metaData": {
            "id": str(uuid.uuid4()),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": json.dumps(delta_schema(schema)),
            "partitionColumns": partition_columns,
            "configuration": {},
            "createdTime": int(time.time() * 1000),
        }
    }


def delta_schema(schema: pa.Schema) -> dict:
    return {"type": "struct", "fields": [_delta_field(f) for f in schema]}


def _delta_field(f: pa.Field) -> dict:
    return {"name": f.name, "type": _delta_type(f.type), "nullable": f.nullable, "metadata": {}}


def _delta_type(t: pa.DataType):
    if pa.types.is_struct(t):
        return {"type": "struct", "fields": [_delta_field(t.field(i)) for i in range(t.num_fields)]}
    if pa.types.is_list(t):
        return {"type": "array", "elementType": _delta_type(t.value_type), "containsNull": True}
    simple = {
        pa.string(): "string",
        pa.binary(): "binary",
        pa.int64(): "long",
        pa.int32(): "integer",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.date32(): "date",
        pa.timestamp("us", tz="UTC"): "timestamp",
    }
    if t in simple:
        return simple[t]
    raise TypeError(f"no Delta type for Arrow type {t}")
