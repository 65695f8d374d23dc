"""How rejoin and purge run and commit: the rewritten files at once, or a clean refusal.

The job read the store at ``base_version``. Files other jobs added since are not its business
(an import landing meanwhile is kept); but if a file it rewrote was itself rewritten or removed
meanwhile, committing would bring back what the other job changed, so the commit is refused
with ``status: "conflict"`` and the job plans again. Superseded files are deleted once the
commit is in: a purge must leave no copy of a purged event behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import apache_beam as beam

from eventlake import __version__
from eventlake.faults import fault_point
from eventlake.io import delta_log
from eventlake.io.delta_log import join_path
from eventlake.io.files import read_all, write_bytes
from eventlake.io.store import delete_files, remove_action
from eventlake.pipelines.running import (
    STORE_JOB_PROCESS_BYTES,
    choose_workers,
    pipeline_options,
    remove_scratch,
    scratch_dir,
    workers_of,
)
from eventlake.transforms.rewrite import FileChange


@dataclass(frozen=True)
class RewritePlan:
    """What the commit of a rewriting job needs, fixed when the job is planned."""

    job: str  # "rejoin" or "purge"
    operation: str  # the Delta operation the commit records: UPDATE, DELETE
    run_id: str
    store: str
    base_version: int
    parameters: dict
    started: float
    leftovers_removed: int = 0  # files of earlier runs this run's first step cleaned up

    @property
    def summary_path(self) -> str:
        return join_path(scratch_dir(self.store, self.run_id), "summary.json")


def commit_rewrite(plan: RewritePlan, changes: list[FileChange], summary: dict, dry_run: bool = False,
                   refusal: str | None = None, commit_unchanged: bool = False, may_touch=None) -> dict:
    """Commit ``changes`` (unless ``dry_run`` or a ``refusal``), complete ``summary``, write it for the driver.

    A run that changes no file commits nothing and says so (``note``), unless ``commit_unchanged``
    (a forced purge records the request even when nothing matched). ``may_touch(add)`` says
    whether a file added since the plan's version may hold rows this job would change: such a
    file is a conflict too, so that the job re-plans and the outcome is that of running it after
    the job that added the file (a purge must not miss an import's matching events while the
    import dropped twins of them as duplicates).
    """
    rewritten = [c for c in changes if c.new is not None]
    vanished = [c.add["path"] for c in changes if c.vanished]
    summary.update(status="ok", version=None, leftovers_removed=plan.leftovers_removed)
    if refusal:
        delete_files(plan.store, [c.new.path for c in rewritten if c.new.rows])
        summary.update(status="failed", failure=refusal)
        return _finish(plan, summary)
    for attempt in range(delta_log.MAX_COMMIT_ATTEMPTS):
        latest = delta_log.read_snapshot(plan.store)
        if any(info.get("eventlake", {}).get("run_id") == plan.run_id for info in latest.commits):
            break  # a retried step whose commit already landed
        lost = [p for p in vanished if p in latest.files]
        if lost:
            delete_files(plan.store, [c.new.path for c in rewritten if c.new.rows])
            summary.update(status="failed", failure=f"the store's data file {lost[0]} is missing; the table is damaged")
            return _finish(plan, summary)
        gone = vanished + [c.add["path"] for c in rewritten if c.add["path"] not in latest.files]
        if may_touch is not None and not dry_run and latest.version > plan.base_version:
            before = delta_log.read_snapshot(plan.store, plan.base_version).files
            gone += [p for p, add in latest.files.items() if p not in before and may_touch(add)]
        if gone:
            delete_files(plan.store, [c.new.path for c in rewritten if c.new.rows])
            jobs = [f"{info.get('eventlake', {}).get('job', info.get('operation', '?'))} (version {v})"
                    for v, info in latest.history if v > plan.base_version]
            summary.update(status="conflict", failure=(
                f"{len(gone)} of the files this {plan.job} would change were added or changed meanwhile by "
                f"{', '.join(jobs)}"))
            return _finish(plan, summary)
        if dry_run:
            return _finish(plan, summary)
        if not rewritten and not commit_unchanged:
            summary["note"] = "nothing to change"
            return _finish(plan, summary)
        actions = [remove_action(c.add) for c in rewritten]
        actions += [c.new.add_action() for c in rewritten if c.new.rows]
        actions.append(_commit_info(plan, summary, latest.version + 1))
        fault_point("rewrite-before-commit")
        if delta_log.try_commit(plan.store, latest.version + 1, actions, attempt):
            summary["version"] = latest.version + 1
            fault_point("rewrite-after-commit")
            break
    else:
        delete_files(plan.store, [c.new.path for c in rewritten if c.new.rows])
        summary.update(status="failed", failure=f"could not commit after {delta_log.MAX_COMMIT_ATTEMPTS} attempts")
        return _finish(plan, summary)
    delete_files(plan.store, [c.add["path"] for c in rewritten])  # superseded: no copy of a purged event stays
    return _finish(plan, summary)


def _commit_info(plan: RewritePlan, summary: dict, version: int) -> dict:
    return {
        "commitInfo": {
            "timestamp": int(time.time() * 1000),
            "operation": plan.operation,
            "operationParameters": {"job": plan.job, **{k: json.dumps(v) for k, v in plan.parameters.items()}},
            "readVersion": plan.base_version,
            "isBlindAppend": False,
            "engineInfo": f"eventlake/{__version__}",
            "eventlake": {"job": plan.job, "run_id": plan.run_id, "version": version, "parameters": plan.parameters,
                          "counts": {k: v for k, v in summary.items() if k not in ("status", "version")}},
        }
    }


def _finish(plan: RewritePlan, summary: dict) -> dict:
    summary["seconds"] = round(time.time() - plan.started, 3)
    write_bytes(plan.summary_path, json.dumps(summary, indent=2).encode())
    return summary


def read_summary(plan: RewritePlan) -> dict:
    return json.loads(read_all(plan.summary_path))


def run_rewrite(commit: RewritePlan, job: beam.PTransform, pipeline_args: list[str] | None,
                input_bytes: int = 0) -> dict:
    """Run one planned rejoin or purge pipeline; its summary's status is ok, conflict or failed.
    ``input_bytes``: what it reads, from which the local runner's worker count is chosen."""
    args = choose_workers(pipeline_args or [], input_bytes, STORE_JOB_PROCESS_BYTES)
    options, runner = pipeline_options(args)
    try:
        with beam.Pipeline(runner=runner, options=options) as pipeline:
            _ = pipeline | job
        return {**read_summary(commit), "workers": workers_of(args)}
    finally:
        remove_scratch(commit.store, commit.run_id)


def run_until_committed(plan_job, execute, pipeline_args: list[str] | None, attempts: int = 3) -> dict:
    """Plan and execute; plan again from the new store version while a concurrent job wins."""
    for _ in range(attempts):
        summary = execute(plan_job(), pipeline_args)
        if summary["status"] != "conflict":
            break
    return summary
