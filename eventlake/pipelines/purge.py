"""The purge job: delete stored events that match a Retail filter, for good.

Without ``force`` it only counts what it would delete. The filter is parsed before anything
runs; its event-time bounds, the date partitions and the log's per-file statistics rule out
files that cannot hold a match, so a purge of one day reads about that day's files. After the
commit the superseded files are deleted, together with any file an earlier rewrite removed
from the log but could not delete: no Parquet file under the store keeps a purged event, and
no error sample under it does either (``purge_samples``). The log records the filter with its
values hashed.

The features table beside the events (``<store>/_features``, ``eventlake features import``)
holds the same users' ranking-time features: a purge whose every term applies to a feature
record (``visitorId`` or ``userId``, both its ``user_id``; ``eventTime``, its request time)
purges it too, in a commit of its own after the events'. A filter on fields feature records
lack (``eventType``, ``productId``, ...) leaves it alone, and the summary says why.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.config import PurgeConfig
from eventlake.filters import EqualityTerm, EventFilter, FilterError, TimeTerm, parse_filter
from eventlake.io import delta_log
from eventlake.io.delta_log import join_path
from eventlake.io.store import UNTYPED, delete_files, keep_rows
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
from eventlake.transforms.gather import ApplyToAll
from eventlake.transforms.rewrite import FileChange, RewriteFilesFn, RewriteStoreFiles


@dataclass(frozen=True)
class PurgePlan:
    config: PurgeConfig
    commit: RewritePlan
    event_filter: EventFilter
    files: list[dict]  # add actions of the files that may hold matches
    files_total: int
    leftovers: list[str]  # files removed from the log earlier that may still exist
    features: bool = False  # the plan purges the features table, not the events


USER_FIELDS = ("visitorId", "userId")  # a feature record's user_id is both
# Filter fields -> the stored columns with Bloom filters (eventlake.io.bloom) that hold them.
BLOOM_FIELDS = {"visitorId": "visitor_id", "userId": "user_info.user_id"}
FEATURE_BLOOM_FIELDS = dict.fromkeys(USER_FIELDS, "user_id")


class PurgeRows:
    """A file's rows without the ones the filter matches."""

    def __init__(self, event_filter: EventFilter):
        self._filter = event_filter
        self.columns = sorted(event_filter.columns)
        self.detail_columns = ["event_type"]  # the breakdown, read for matched files only
        self.holding = event_filter.required_values(BLOOM_FIELDS) or None

    def matched(self, table: pa.Table) -> np.ndarray:
        return self._filter.matches(table)

    def inspect(self, table: pa.Table) -> dict:
        return {"changed": int(self.matched(table).sum())}

    def detail(self, table: pa.Table) -> dict:
        kinds = table.column(self.detail_columns[0]).filter(pa.array(self.matched(table))).combine_chunks()
        counts = pc.value_counts(kinds).to_pylist()
        return {"by_event_type": {UNTYPED if c["values"] is None else c["values"]: c["counts"] for c in counts}}

    def apply(self, table: pa.Table) -> pa.Table:
        return keep_rows(table, ~self.matched(table))


def outside_features(event_filter: EventFilter) -> str | None:
    """The first filter field feature records lack, or None when every term applies to them."""
    for term in event_filter.terms:
        if isinstance(term, TimeTerm) or (isinstance(term, EqualityTerm) and term.field in USER_FIELDS):
            continue
        return term.field if isinstance(term, EqualityTerm) else "eventsMissingCatalogItems"
    return None


def feature_view(table: pa.Table) -> pa.Table:
    """A features table's rows under the event column names the filter reads."""
    users = table.column("user_id").combine_chunks()
    return pa.table({"visitor_id": users, "user_info": pa.StructArray.from_arrays([users], names=["user_id"]),
                     "event_time": table.column("event_time")})


class PurgeFeatureRows(PurgeRows):
    """A features table file's rows without the ones the filter matches (by user and time),
    counted by module."""

    def __init__(self, event_filter: EventFilter):
        self._filter = event_filter
        self.columns = ["event_time", "user_id"]
        self.detail_columns = ["module"]
        self.holding = event_filter.required_values(FEATURE_BLOOM_FIELDS) or None

    def matched(self, table: pa.Table) -> np.ndarray:
        return self._filter.matches(feature_view(table))


class _PurgeFilesFn(RewriteFilesFn):
    def __init__(self, store: str, run_id: str, event_filter: EventFilter, force: bool, features: bool = False):
        super().__init__(store, run_id, write=force)
        self._filter, self._features = event_filter, features

    def setup(self):
        self._rows = (PurgeFeatureRows if self._features else PurgeRows)(self._filter)

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
            "files_ruled_out": sum(1 for c in changes if c.counts.get("ruled_out")),  # by Bloom filters, unread
            "files_rewritten": sum(1 for c in changes if c.changed),
            "bytes_scanned": sum(int(c.add.get("size", 0)) for c in changes if not c.counts.get("ruled_out")),
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
            | "PurgeFiles" >> RewriteStoreFiles(_PurgeFilesFn(commit.store, commit.run_id, plan.event_filter,
                                                             plan.config.force, plan.features))
            | "CommitPurge" >> ApplyToAll(_CommitPurgeFn(plan))
        )


def plan_purge(config: PurgeConfig, features: bool = False) -> PurgePlan:
    """Parse the filter and pick the files it may match; raise ``JobError`` when it cannot run.
    ``features``: plan the purge of the store's features table instead of its events."""
    try:
        event_filter = parse_filter(config.filter)
    except FilterError as exc:
        raise JobError(str(exc)) from None
    store = features_table(config.store) if features else absolute(config.store)
    snapshot = read_store(store)
    tidied = tidy_store(store, snapshot)
    files = [add for _, add in sorted(snapshot.files.items())]
    candidates = [add for add in files if event_filter.may_match_file(add)]
    parameters = {"filter": event_filter.redacted, "force": config.force}
    run_id = start_run(store)
    commit = RewritePlan("purge", "DELETE", run_id, store, snapshot.version, parameters, time.time(),
                         tidied["files_removed"])
    return PurgePlan(config, commit, event_filter, candidates, len(files), sorted(snapshot.removed), features)


def features_table(store: str) -> str:
    return join_path(absolute(store), "_features")


def run_purge(config: PurgeConfig, pipeline_args: list[str] | None = None) -> PurgeSummary:
    """Plan and run the purge (a dry run unless ``config.force``); plan again after a conflict.
    Then the same for the features table beside the store, when the filter reaches it."""
    prepare_run(pipeline_args or [], [config.store, config.summary])
    check_outputs(config.store, files={"summary": config.summary})
    summary = run_until_committed(lambda: plan_purge(config), execute_purge, pipeline_args)
    if summary["status"] == "ok":
        summary = _purge_features(config, summary, pipeline_args)
    return PurgeSummary.from_dict(finish_summary(summary, config.summary, config.store, "purge", config.report))


def _purge_features(config: PurgeConfig, summary: dict, pipeline_args: list[str] | None) -> dict:
    """The events' summary with ``features``: what the features table's purge did, or why none ran."""
    table = features_table(config.store)
    if not delta_log.read_snapshot(table).exists:
        return summary
    outside = outside_features(parse_filter(config.filter))
    if outside:
        return {**summary, "features": {"note": f"not purged: feature records have no {outside}"}}
    done = run_until_committed(lambda: plan_purge(config, features=True), execute_purge, pipeline_args)
    features = {"store": table, "purged": done.get("purged", 0), "purged_by_module": done.get("purged_by_event_type", {}),
                "files_rewritten": done.get("files_rewritten", 0), "error_samples_removed":
                done.get("error_samples_removed", 0), "version": done.get("version")}
    if done["status"] != "ok":
        events = "the events were purged" + (f" (version {summary['version']})" if summary.get("version") is not None else "")
        return {**summary, "features": features, "status": "failed",
                "failure": f"{events}, but not the features table {table}: {done.get('failure')}; run the purge again "
                           "to finish it"}
    return {**summary, "features": features}


def execute_purge(plan: PurgePlan, pipeline_args: list[str] | None = None) -> dict:
    """Run a planned purge once; the summary's status is ok, conflict or failed."""
    return run_rewrite(plan.commit, ("PurgeFeatures" if plan.features else "PurgeEvents") >> PurgeEvents(plan),
                       pipeline_args, sum(int(add.get("size", 0)) for add in plan.files))
