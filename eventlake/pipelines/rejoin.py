"""The rejoin job: join stored events again after the catalog changed; rewrite what changed.

Scopes follow Retail's ``UserEventRejoinScope``: ``unjoined`` looks for products that are now in
the catalog, ``joined`` refreshes the catalog fields (and notices products that left), ``all``
does both. Files whose log tags show no event in scope are not read; files with no row that
changes are not rewritten; everything else lands in one commit.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.config import RejoinConfig
from eventlake.errors import ERRORS, to_status
from eventlake.io import delta_log
from eventlake.io.delta_log import join_path
from eventlake.io.files import write_bytes
from eventlake.io.store import file_joined_rows, file_rows
from eventlake.pipelines.rewrite_commit import RewritePlan, commit_rewrite, run_rewrite, run_until_committed
from eventlake.pipelines.running import (
    absolute,
    catalog_format_of,
    catalog_paths,
    check_outputs,
    finish_summary,
    prepare_run,
    read_store,
    scratch_dir,
    start_run,
)
from eventlake.pipelines.vacuum import tidy_store
from eventlake.schema import CATALOG_FIELD_TYPES
from eventlake.summaries import RejoinSummary
from eventlake.transforms.catalog import ReadCatalog, load_catalog
from eventlake.transforms.fingerprint import content_keys
from eventlake.transforms.gather import ApplyToAll
from eventlake.transforms.join import join_catalog
from eventlake.transforms.rewrite import FileChange, RewriteFilesFn, RewriteStoreFiles
from eventlake.transforms.summarize import ErrorSummaryFn, no_errors

JOIN_COLUMNS = ["product_details", "joined", "missing_product_ids"]
COUNTS = ("events_in_scope", "joined_in_scope", "rejoined", "newly_joined", "newly_unjoined", "changed")
MAX_SAMPLES = 1000


@dataclass(frozen=True)
class RejoinPlan:
    config: RejoinConfig
    commit: RewritePlan
    catalog_paths: list[str]
    catalog_fields: tuple[str, ...]
    files: list[dict]  # add actions of the files that may hold events in scope
    files_skipped: int
    catalog_format: str = "retail"


def _was_joined(batch: pa.RecordBatch) -> np.ndarray:
    return pc.fill_null(batch.column("joined"), False).to_numpy(zero_copy_only=False)


class RejoinRows:
    """A file's rows joined again: events in scope get the new join, the rest stay as they are."""

    columns = JOIN_COLUMNS

    def __init__(self, catalog: pa.Table, index, fields: tuple[str, ...], scope: str):
        self._catalog, self._index, self._fields, self._scope = catalog, index, fields, scope

    def _rejoin(self, table: pa.Table) -> tuple[np.ndarray, pa.RecordBatch, pa.RecordBatch]:
        old = _one_batch(table.select(JOIN_COLUMNS))
        joined = _was_joined(old)  # never joined (imported without a catalog): in the unjoined scope
        in_scope = {"all": np.ones(len(old), dtype=bool), "joined": joined, "unjoined": ~joined}[self._scope]
        new = join_catalog(old.select(["product_details"]), self._catalog, self._fields, self._index)
        return in_scope, old, new.select(JOIN_COLUMNS)

    def inspect(self, table: pa.Table) -> dict:
        in_scope, old, new = self._rejoin(table)
        was = _was_joined(old)
        now = new.column("joined").to_numpy(zero_copy_only=False)
        differs = pc.not_equal(content_keys(old, tuple(JOIN_COLUMNS)), content_keys(new, tuple(JOIN_COLUMNS)))
        return {
            "events_in_scope": int(in_scope.sum()),
            "joined_in_scope": int((in_scope & was).sum()),
            "rejoined": int((in_scope & now).sum()),
            "newly_joined": int((in_scope & ~was & now).sum()),
            "newly_unjoined": int((in_scope & was & ~now).sum()),
            "changed": int((in_scope & differs.to_numpy(zero_copy_only=False)).sum()),
        }

    def apply(self, table: pa.Table) -> pa.Table:
        in_scope, old, new = self._rejoin(table)
        mask = pa.array(in_scope)
        for name in JOIN_COLUMNS:
            column = pc.if_else(mask, new.column(name), old.column(name))
            table = table.set_column(table.schema.get_field_index(name), table.schema.field(name), column)
        return table


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)


class _RejoinFilesFn(RewriteFilesFn):
    def __init__(self, store: str, run_id: str, fields: tuple[str, ...], scope: str):
        super().__init__(store, run_id, write=True)
        self._fields, self._scope = fields, scope

    def row_change(self, catalog) -> RejoinRows:
        table, index = load_catalog(catalog)
        return RejoinRows(table, index, self._fields, self._scope)


class _CommitRejoinFn(beam.DoFn):
    def __init__(self, plan: RejoinPlan):
        self._plan = plan

    def process(self, changes: list[FileChange], catalog, catalog_errors: dict):
        plan = self._plan
        summary = {"run_id": plan.commit.run_id, "scope": plan.config.scope}
        summary.update({k: sum(c.counts.get(k, 0) for c in changes) for k in COUNTS})
        summary["events_changed"] = summary.pop("changed")
        summary.update(
            files_scanned=len(changes),
            files_skipped=plan.files_skipped,
            files_rewritten=sum(1 for c in changes if c.new is not None),
            catalog_products=catalog.products,
            catalog_errors=catalog_errors["count"],
        )
        if catalog_errors["count"]:
            summary["errors_path"] = write_catalog_samples(plan.commit, catalog_errors)
        yield commit_rewrite(plan.commit, changes, summary, refusal=catalog.failure or refusal(plan, summary),
                             may_touch=functools.partial(in_scope, scope=plan.config.scope))


def refusal(plan: RejoinPlan, summary: dict) -> str | None:
    """Why this rejoin must not commit: a catalog that would unjoin most of the store is far
    more often a broken export than a real change (the import refuses such a catalog too)."""
    where = f" (samples in {summary['errors_path']})" if summary.get("errors_path") else ""
    if summary["catalog_products"] == 0:
        return f"the catalog has no valid product ({summary['catalog_errors']} invalid lines{where}); nothing was changed"
    joined, lost = summary["joined_in_scope"], summary["newly_unjoined"]
    if joined and lost * 2 > joined and not plan.config.allow_mass_unjoin:
        return (f"this catalog would unjoin {lost} of the {joined} joined events in scope ({lost / joined:.0%}); "
                "nothing was changed. Pass --allow-mass-unjoin if those products really left the catalog")
    return None


def write_catalog_samples(commit: RewritePlan, catalog_errors: dict) -> str:
    """The rejoin's invalid catalog lines, as the import writes them: <store>/_errors/<run id>/."""
    root = join_path(commit.store, "_errors")
    folder = join_path(root, commit.run_id)
    lines = [json.dumps(to_status(e), ensure_ascii=False) for e in catalog_errors["samples"]]
    write_bytes(join_path(folder, "catalog_errors.jsonl"), ("\n".join(lines) + "\n").encode())
    write_bytes(join_path(root, "latest"), f"{commit.run_id}\n".encode())
    return folder


class RejoinEvents(beam.PTransform):
    """The rejoin job as one transform: a pipeline root -> a PCollection of one summary dict."""

    def __init__(self, plan: RejoinPlan):
        super().__init__()
        self._plan = plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[dict]:
        plan, commit = self._plan, self._plan.commit
        catalog = pbegin | "ReadCatalog" >> ReadCatalog(plan.catalog_paths, plan.catalog_fields,
                                                        scratch_dir(commit.store, commit.run_id),
                                                        format_name=plan.catalog_format,
                                                        field_map=plan.config.catalog_field_map,
                                                        options=plan.config.catalog_format_options)
        catalog_errors = catalog[ERRORS] | "SummarizeCatalogErrors" >> beam.CombineGlobally(ErrorSummaryFn(MAX_SAMPLES)).without_defaults()
        products = beam.pvalue.AsSingleton(catalog["products"])
        return (
            pbegin
            | "ListStoreFiles" >> beam.Create(plan.files, reshuffle=True)  # reshuffled: spread over the workers
            | "RejoinFiles" >> RewriteStoreFiles(_RejoinFilesFn(commit.store, commit.run_id, plan.catalog_fields,
                                                                plan.config.scope), products)
            | "CommitRejoin" >> ApplyToAll(_CommitRejoinFn(plan), products,
                                           beam.pvalue.AsSingleton(catalog_errors, default_value=no_errors()))
        )


def store_catalog_fields(snapshot: delta_log.Snapshot) -> tuple[str, ...]:
    """The catalog fields the store keeps in each product, from its schema in the log."""
    schema = json.loads(snapshot.metadata["schemaString"])
    details = next(f for f in schema["fields"] if f["name"] == "product_details")
    product = next(f for f in details["type"]["elementType"]["fields"] if f["name"] == "product")
    return tuple(f["name"] for f in product["type"]["fields"] if f["name"] in CATALOG_FIELD_TYPES)


def in_scope(add: dict, scope: str) -> bool:
    """Whether a file may hold events in ``scope``, by the joined count its log entry carries."""
    joined, rows = file_joined_rows(add), file_rows(add)
    if scope == "all" or joined is None or rows is None:
        return True
    return joined > 0 if scope == "joined" else joined < rows


def plan_rejoin(config: RejoinConfig) -> RejoinPlan:
    store = absolute(config.store)
    snapshot = read_store(store)
    tidied = tidy_store(store, snapshot)
    catalog = catalog_paths(config.catalog, config.catalog_format)
    catalog_format = catalog_format_of(catalog, config.catalog_format)
    files = [add for _, add in sorted(snapshot.files.items())]
    scanned = [add for add in files if in_scope(add, config.scope)]
    run_id = start_run(store)
    parameters = {"catalog": config.catalog, "catalog_format": catalog_format, "scope": config.scope}
    commit = RewritePlan("rejoin", "UPDATE", run_id, store, snapshot.version, parameters, time.time(),
                         tidied["files_removed"])
    return RejoinPlan(config, commit, catalog, store_catalog_fields(snapshot), scanned,
                      len(files) - len(scanned), catalog_format)


def run_rejoin(config: RejoinConfig, pipeline_args: list[str] | None = None) -> RejoinSummary:
    """Plan and run the rejoin, planning again if a concurrent job rewrote the same files."""
    prepare_run(pipeline_args or [], [config.store, config.catalog, config.summary])
    check_outputs(config.store, files={"summary": config.summary})
    summary = run_until_committed(lambda: plan_rejoin(config), execute_rejoin, pipeline_args)
    return RejoinSummary.from_dict(finish_summary(summary, config.summary, config.store, "rejoin", config.report))


def execute_rejoin(plan: RejoinPlan, pipeline_args: list[str] | None = None) -> dict:
    """Run a planned rejoin once; the summary's status is ok, conflict or failed."""
    return run_rewrite(plan.commit, "RejoinEvents" >> RejoinEvents(plan), pipeline_args,
                       sum(int(add.get("size", 0)) for add in plan.files))
