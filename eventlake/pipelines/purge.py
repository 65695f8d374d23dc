"""The purge job: delete stored events that match a Retail filter, for good.

Without ``force`` it only counts what it would delete. The filter is parsed before anything
runs; its event-time bounds, the date partitions and the log's per-file statistics rule out
files that cannot hold a match, so a purge of one day reads about that day's files. After the
commit the superseded files are deleted, together with any file an earlier rewrite removed
from the log but could not delete: no Parquet file under the store keeps a purged event, and
no error sample under it does either (``purge_samples``). The log records the filter with its
values hashed.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.config import PurgeConfig
from eventlake.filters import EventFilter, FilterError, parse_filter
from eventlake.io.store import UNTYPED, delete_files
from eventlake.pipelines.purge_samples import purge_error_samples
from eventlake.pipelines.rewrite_commit import RewritePlan, commit_rewrite, run_rewrite, run_until_committed
from eventlake.pipelines.running import (
    JobError,
    absolute,
    check_outputs,
    finish_summary,
    prepare_run,
    read_store,
    start_run,
)
from eventlake.pipelines.vacuum import tidy_store
from eventlake.summaries import PurgeSummary
from eventlake.transforms.rewrite import FileChange, RewriteFilesFn


@dataclass(frozen=True)
class PurgePlan:
    config: PurgeConfig
    commit: RewritePlan
    event_filter: EventFilter
    files: list[dict]  # add actions of the files that may hold matches
    files_total: int
    leftovers: list[str]  # files removed from the log earlier that may still exist


class PurgeRows:
    """A file's rows without the ones the filter matches."""

    def __init__(self, event_filter: EventFilter):
        self._filter = event_filter
        self.columns = filter_columns(event_filter)

    def inspect(self, table: pa.Table) -> dict:
        matched = self._filter.matches(table)
        types = pc.value_counts(table.column("event_type").filter(pa.array(matched)).combine_chunks()).to_pylist()
        return {"changed": int(matched.sum()),
                "by_event_type": {UNTYPED if t["values"] is None else t["values"]: t["counts"] for t in types}}

    def apply(self, table: pa.Table) -> pa.Table:
        return table.filter(pa.array(~self._filter.matches(table)))


def filter_columns(event_filter: EventFilter) -> list[str]:
    """The stored columns the filter reads (and ``event_type``, for the breakdown)."""
    return sorted({"event_type", *event_filter.columns})


class _PurgeFilesFn(RewriteFilesFn):
    def __init__(self, store: str, run_id: str, event_filter: EventFilter, force: bool):
        super().__init__(store, run_id, write=force)
        self._filter = event_filter

    def setup(self):
        self._rows = PurgeRows(self._filter)

    def row_change(self) -> PurgeRows:
        return self._rows


class _CommitPurgeFn(beam.DoFn):
    def __init__(self, plan: PurgePlan):
        self._plan = plan

    def process(self, changes: list[FileChange]):
        plan = self._plan
        by_type: Counter = Counter()
        for change in changes:
            by_type.update(change.counts.get("by_event_type", {}))
        summary = {
            "run_id": plan.commit.run_id,
            "filter": plan.event_filter.redacted,  # the log keeps no purged id, not even in its counts
            "dry_run": not plan.config.force,
            "purged": sum(by_type.values()),
            "purged_by_event_type": dict(sorted(by_type.items())),
            "files_total": plan.files_total,
            "files_scanned": len(changes),
            "files_rewritten": sum(1 for c in changes if c.changed),
            "bytes_scanned": sum(int(c.add.get("size", 0)) for c in changes),
        }
        # Samples first: a purge that then fails to commit has only removed diagnostics, and a rerun
        # finds no sample left; a purge that committed has never left a sample behind.
        summary["error_samples_removed"] = purge_error_samples(plan.commit.store, plan.event_filter,
                                                               dry_run=not plan.config.force)
        # A forced purge commits even when nothing matched: the erasure request needs its audit record.
        summary = commit_rewrite(plan.commit, changes, summary, dry_run=not plan.config.force,
                                 commit_unchanged=plan.config.force, may_touch=plan.event_filter.may_match_file)
        if summary["status"] == "ok" and plan.config.force:
            delete_files(plan.commit.store, plan.leftovers)
        yield summary


class PurgeEvents(beam.PTransform):
    """The purge job as one transform: a pipeline root -> a PCollection of one summary dict."""

    def __init__(self, plan: PurgePlan):
        super().__init__()
        self._plan = plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[dict]:
        plan, commit = self._plan, self._plan.commit
        return (
            pbegin
            | "ListStoreFiles" >> beam.Create(plan.files, reshuffle=True)  # reshuffled: spread over the workers
            | "PurgeFiles" >> beam.ParDo(_PurgeFilesFn(commit.store, commit.run_id, plan.event_filter, plan.config.force))
            | "GatherChanges" >> beam.combiners.ToList()
            | "CommitPurge" >> beam.ParDo(_CommitPurgeFn(plan))
        )


def plan_purge(config: PurgeConfig) -> PurgePlan:
    """Parse the filter and pick the files it may match; raise ``JobError`` when it cannot run."""
    try:
        event_filter = parse_filter(config.filter)
    except FilterError as exc:
        raise JobError(str(exc)) from None
    store = absolute(config.store)
    snapshot = read_store(store)
    tidied = tidy_store(store, snapshot)
    files = [add for _, add in sorted(snapshot.files.items())]
    candidates = [add for add in files if event_filter.may_match_file(add)]
    parameters = {"filter": event_filter.redacted, "force": config.force}
    run_id = start_run(store)
    commit = RewritePlan("purge", "DELETE", run_id, store, snapshot.version, parameters, time.time(),
                         tidied["files_removed"])
    return PurgePlan(config, commit, event_filter, candidates, len(files), sorted(snapshot.removed))


def run_purge(config: PurgeConfig, pipeline_args: list[str] | None = None) -> PurgeSummary:
    """Plan and run the purge (a dry run unless ``config.force``); plan again after a conflict."""
    prepare_run(pipeline_args or [], [config.store, config.summary])
    check_outputs(config.store, files={"summary": config.summary})
    summary = run_until_committed(lambda: plan_purge(config), execute_purge, pipeline_args)
    return PurgeSummary.from_dict(finish_summary(summary, config.summary))


def execute_purge(plan: PurgePlan, pipeline_args: list[str] | None = None) -> dict:
    """Run a planned purge once; the summary's status is ok, conflict or failed."""
    return run_rewrite(plan.commit, "PurgeEvents" >> PurgeEvents(plan), pipeline_args)
