"""Remove what no current version references: the ``vacuum`` job, and every job's first step.

Leftovers come from runs that ended badly: superseded files a purge or rejoin committed away
but was killed before deleting, data files of failed or killed runs (some cut short), their
``_tmp/`` scratch, and log temporaries (``NNN.json.<uuid>.tmp``) of a commit interrupted
between writing and linking. They are invisible to Delta readers, but not to a reader that
lists files, and a purge must not leave a purged row readable in any of them. Files of a run
that is still alive are never touched (``run_marks``), nor are error samples (``_errors/``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from eventlake.io import delta_log
from eventlake.io.delta_log import join_path
from eventlake.io.object_store import delete_paths, list_tree
from eventlake.io.run_marks import is_alive, run_of
from eventlake.pipelines.running import absolute, check_intact, prepare_run, read_store
from eventlake.summaries import VacuumSummary

LOG_TEMP_GRACE_SECONDS = 600  # a commit in flight writes its temporary and links it within this


@dataclass
class Leftovers:
    superseded: list[str] = field(default_factory=list)
    unreferenced: list[str] = field(default_factory=list)
    scratch: list[str] = field(default_factory=list)
    log_temps: list[str] = field(default_factory=list)
    bytes: int = 0

    @property
    def paths(self) -> list[str]:
        return sorted(self.superseded + self.unreferenced + self.scratch + self.log_temps)

    def counts(self) -> dict:
        return {"superseded": len(self.superseded), "unreferenced": len(self.unreferenced),
                "scratch": len(self.scratch), "log_temps": len(self.log_temps), "files_removed": len(self.paths),
                "bytes_removed": self.bytes}


def find_leftovers(store: str, snapshot: delta_log.Snapshot, listing: dict[str, tuple[int, float]],
                   now: float | None = None) -> Leftovers:
    """Sort every file under the store that the current version does not need."""
    now = now or time.time()
    out = Leftovers()
    alive: dict[str, bool] = {}

    def dead(run_id: str | None) -> bool:
        if run_id is None:
            return True
        if run_id not in alive:
            alive[run_id] = is_alive(store, run_id, listing, now)
        return not alive[run_id]

    for path, (size, mtime) in listing.items():
        top = path.split("/", 1)[0]
        if top == "_errors" or path in snapshot.files:
            continue
        if top == "_delta_log":
            name = path.rsplit("/", 1)[-1]
            if name.endswith(".tmp") and (_temp_version(name) <= snapshot.version
                                          or now - mtime > LOG_TEMP_GRACE_SECONDS):
                out.log_temps.append(path)
            continue
        if top == "_tmp":
            if dead(run_of(path)):
                out.scratch.append(path)
            continue
        if any(part.startswith((".", "_")) for part in path.split("/")):
            continue  # hidden files are not the table's, as in Delta's own VACUUM
        if path in snapshot.removed:
            out.superseded.append(path)
        elif dead(run_of(path)):
            out.unreferenced.append(path)
        else:
            continue
        out.bytes += size
    for path in out.scratch + out.log_temps:
        out.bytes += listing[path][0]
    return out


def _temp_version(name: str) -> int:
    head = name.split(".", 1)[0]
    return int(head) if head.isdigit() else 1 << 62


def remove_leftovers(store: str, leftovers: Leftovers) -> None:
    delete_paths([join_path(store, p) for p in leftovers.paths])
    if "://" not in store:
        _remove_empty_dirs(store, {p.rsplit("/", 1)[0] for p in leftovers.paths if "/" in p})


def _remove_empty_dirs(store: str, folders: set[str]) -> None:
    for folder in sorted(folders, key=lambda f: -f.count("/")):
        parts = folder.split("/")
        while parts:
            try:
                os.rmdir(os.path.join(store, *parts))
            except OSError:
                break  # not empty, or gone
            parts.pop()


def tidy_store(store: str, snapshot: delta_log.Snapshot) -> dict:
    """Every job's first step: refuse a damaged store, then finish the clean-up earlier runs
    could not; returns the counts."""
    listing = list_tree(store)
    check_intact(store, snapshot, listing)
    leftovers = find_leftovers(store, snapshot, listing)
    if leftovers.paths:
        remove_leftovers(store, leftovers)
    return leftovers.counts()


def vacuum(store: str, dry_run: bool = False) -> VacuumSummary:
    """The ``vacuum`` job: remove (or, in a dry run, list) every leftover under ``store``."""
    store = absolute(store)
    prepare_run([], [store])
    snapshot = read_store(store, must_exist=False)  # a first import killed before its commit leaves files too
    listing = list_tree(store)
    check_intact(store, snapshot, listing)
    leftovers = find_leftovers(store, snapshot, listing)
    if not dry_run:
        remove_leftovers(store, leftovers)
    return VacuumSummary.from_dict({"dry_run": dry_run, "version": snapshot.version, **leftovers.counts(),
                                    "paths": leftovers.paths})
