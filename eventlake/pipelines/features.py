"""The features import: ranking-time feature logs -> a features table beside the events.

The training-samples job needs the features the ranker saw when it served a request, not ones
looked up later (that leaks the future into training). PAI-Rec logs them per request through
its callback; ``eventlake features import`` validates those logs and stores them in a second
Delta table (``<store>/_features`` by default), partitioned by the request's date.

It is the event import's machinery with another record: ``ReadEvents`` reads the logs with a
``features`` format (``eventlake.formats.pairec_features``), and ``WriteToEventStore`` writes,
deduplicates and commits them with the same guarantees (one commit or none, files of a failed
run cleaned up, error samples, counts that add up, files imported before skipped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import apache_beam as beam

from eventlake.config import FeaturesConfig
from eventlake.errors import ERRORS
from eventlake.formats.base import format_class
from eventlake.io.delta_log import join_path
from eventlake.io.files import ByteRange
from eventlake.pipelines.import_commit import CommitPlan, reported
from eventlake.pipelines.import_events import execute_commit_pipeline, files_to_import, matched_files
from eventlake.pipelines.running import (
    JobError,
    absolute,
    check_outputs,
    prepare_run,
    start_run,
    write_summary_file,
)
from eventlake.summaries import FeaturesImportSummary
from eventlake.transforms.catalog import CatalogFile
from eventlake.transforms.parse import STATS
from eventlake.transforms.read_events import ReadEvents, plan_ranges


@dataclass(frozen=True)
class FeaturesPlan:
    """Everything fixed before the pipeline starts."""

    config: FeaturesConfig
    ranges: list[ByteRange]
    commit: CommitPlan


def plan_features(config: FeaturesConfig) -> FeaturesPlan:
    """Match the files and read the features table's log; ``JobError`` when nothing sane is left."""
    table = absolute(config.table)
    suffixes = format_class(config.format).suffixes
    files = matched_files(config.files, suffixes, config.allow_missing, "feature-log", config.format)
    snapshot, tidied, new, done = files_to_import(table, files, config.reimport)
    run_id = start_run(table)
    errors_root = absolute(config.errors) if config.errors else join_path(table, "_errors")
    commit = CommitPlan(
        run_id=run_id,
        store=table,
        errors_dir=join_path(errors_root, run_id),
        sources=[f.as_log_entry() for f in new],
        skipped_files=len(files) - len(new),
        skipped_paths=[f.path for f in files if (f.path, f.size, f.mtime) in done],
        catalog_fields=(),
        max_error_ratio=config.max_error_ratio,
        parameters={"files": config.files, "format": config.format, "store": config.store,
                    "reimport": config.reimport, "max_error_ratio": config.max_error_ratio},
        started=time.time(),
        base_version=snapshot.version,
        source_index={f.path: i for i, f in enumerate(new)},
        leftovers_removed=tidied["files_removed"],
        table="features",
    )
    return FeaturesPlan(config, plan_ranges(new, config.format, config.split_bytes), commit)


class ImportFeatures(beam.PTransform):
    """The features import as one transform: a pipeline root -> a PCollection of one summary.

    ``ReadEvents`` with a feature-log format, then ``WriteToEventStore`` into the features
    table (no catalog: feature records are not joined).
    """

    def __init__(self, plan: FeaturesPlan):
        super().__init__()
        self._plan = plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[dict]:
        from eventlake.pipelines.import_events import WriteToEventStore, progress_of

        config, plan = self._plan.config, self._plan
        read = pbegin | "ReadFeatureLogs" >> ReadEvents(ranges=plan.ranges, format=config.format,
                                                        block_bytes=config.block_bytes, absolute_lines=False,
                                                        progress=progress_of(plan.commit) if config.progress else None)
        return {
            "events": read.events, "errors": read[ERRORS], "stats": read[STATS],
            "catalog": pbegin | "NoCatalog" >> beam.Create([CatalogFile("", 0)]),
            "catalog_errors": pbegin | "NoCatalogErrors" >> beam.Create([]),
        } | "WriteToFeaturesTable" >> WriteToEventStore(plan.commit, config.max_error_samples)


def run_features_import(config: FeaturesConfig, pipeline_args: list[str] | None = None) -> FeaturesImportSummary:
    """Plan and run the features import; return the summary. Raises ``JobError`` when it fails."""
    prepare_run(pipeline_args or [], [*config.files, config.store, config.features_store, config.errors, config.summary])
    check_outputs(config.table, dirs={"errors": config.errors}, files={"summary": config.summary})
    for _ in range(3):  # a conflict with a concurrent rewrite plans again from the newer version
        plan = plan_features(config)
        summary = execute_commit_pipeline(plan.commit, plan.ranges, ImportFeatures(plan), pipeline_args,
                                          "ImportFeatures", config.progress)
        if summary["status"] != "conflict":
            break
    summary = {**reported(plan.commit, summary), "features_store": plan.commit.store}
    write_summary_file(summary, config.summary, config.store or config.table, "features-import")
    if summary["status"] != "ok":
        raise JobError(summary["failure"])
    return FeaturesImportSummary.from_dict(summary)


__all__ = ["FeaturesPlan", "ImportFeatures", "plan_features", "run_features_import"]
