"""The import job: event files -> validated, catalog-joined, deduplicated events in the store.

``ImportEvents`` is the whole job as one composite transform for a user's own pipeline;
``run_import`` plans it (match files, skip imported ones), runs it and returns the summary.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass

import apache_beam as beam

from eventlake.config import ImportConfig
from eventlake.errors import ERRORS
from eventlake.formats.base import AUTO, SourceFileError, detect_format, format_class, get_format, is_parquet
from eventlake.io.delta_log import join_path
from eventlake.io.files import ByteRange, DamagedSourceError, compression_of, read_all, splittable
from eventlake.io.store import WriteStoreFiles
from eventlake.pipelines.import_commit import CommitPlan, commit_import
from eventlake.pipelines.replay import WriteRejectsFn, finish_rejects, replay_config
from eventlake.pipelines.running import (
    JobError,
    absolute,
    catalog_format_of,
    catalog_paths,
    check_outputs,
    choose_workers,
    input_files,
    pipeline_options,
    prepare_run,
    read_store,
    remove_scratch,
    start_run,
    workers_of,
    write_summary_file,
)
from eventlake.pipelines.vacuum import tidy_store
from eventlake.progress import ProgressDisplay, progress_dir
from eventlake.summaries import ImportSummary
from eventlake.transforms.catalog import CatalogFile, ReadCatalog
from eventlake.transforms.dedupe import DropDuplicates
from eventlake.transforms.fingerprint import FingerprintEvents
from eventlake.transforms.gather import ApplyToAll
from eventlake.transforms.join import JoinCatalog
from eventlake.transforms.parse import STATS
from eventlake.transforms.read_events import ReadEvents, all_suffixes, plan_ranges
from eventlake.transforms.summarize import ErrorSummaryFn, SummarizeErrors, no_errors
from eventlake.transforms.validate import ValidateEvents


@dataclass(frozen=True)
class ImportPlan:
    """Everything fixed before the pipeline starts."""

    config: ImportConfig
    ranges: list[ByteRange]
    catalog_paths: list[str]
    commit: CommitPlan
    formats: str | dict[str, str] = "retail"  # one format, or each file's (``--format auto``)
    catalog_format: str = "retail"


def plan_import(config: ImportConfig) -> ImportPlan:
    """Match files and read the store's log; raise ``JobError`` when there is nothing sane to do."""
    store = absolute(config.store)
    suffixes = all_suffixes() if config.format == AUTO else format_class(config.format).suffixes
    files = matched_files(config.events, suffixes, config.allow_missing, "event", config.format)
    catalog = catalog_paths(config.catalog, config.catalog_format) if config.catalog else []
    catalog_format = catalog_format_of(catalog, config.catalog_format) if catalog else None
    snapshot, tidied, new, done = files_to_import(store, files, config.reimport)
    formats = _formats_of(new, config.format)
    _check_files(new, formats, config)
    run_id = start_run(store)
    errors_root = absolute(config.errors) if config.errors else join_path(store, "_errors")
    errors_dir = join_path(errors_root, run_id)  # one folder per run: a second run never overwrites the first
    parameters = {
        "events": config.events,
        "format": config.format,
        **({"formats": formats} if isinstance(formats, dict) else {}),
        "catalog": config.catalog,
        "catalog_format": catalog_format,
        "reimport": config.reimport,
        "max_error_ratio": config.max_error_ratio,
        "catalog_fields": list(config.catalog_fields),
    }
    commit = CommitPlan(
        run_id=run_id,
        store=store,
        errors_dir=errors_dir,
        sources=[f.as_log_entry() for f in new],
        skipped_files=len(files) - len(new),
        skipped_paths=[f.path for f in files if (f.path, f.size, f.mtime) in done],
        catalog_fields=tuple(config.catalog_fields),
        max_error_ratio=config.max_error_ratio,
        parameters=parameters,
        started=time.time(),
        base_version=snapshot.version,
        source_index={f.path: i for i, f in enumerate(new)},
        keep_rejects=config.keep_rejects,
        leftovers_removed=tidied["files_removed"],
    )
    return ImportPlan(config, plan_ranges(new, formats, config.split_bytes), catalog, commit, formats, catalog_format)


def matched_files(patterns: list[str], suffixes: tuple[str, ...], allow_missing: bool, what: str,
                  format_name: str) -> list:
    """The files the patterns match; ``JobError`` for a pattern that matches none (a typo must
    not import the other files silently) unless ``allow_missing`` and some file matched."""
    files, unmatched = input_files(patterns, suffixes)
    if unmatched and not (files and allow_missing):
        hint = "; pass --allow-missing to import the other files without it" if files else ""
        raise JobError(f"no {what} file matches {', '.join(unmatched)} (names of {format_name} files must end in "
                       f"{' or '.join(suffixes)}, optionally .gz, .bz2 or .zst){hint}")
    return files


def files_to_import(store: str, files: list, reimport: bool) -> tuple:
    """The table's snapshot (after the clean-up earlier runs left undone), that clean-up's
    counts, the files to import, and the (path, size, mtime) of those the table has already."""
    snapshot = read_store(store, must_exist=False)
    tidied = tidy_store(store, snapshot)
    done = set() if reimport else snapshot.imported_sources()
    return snapshot, tidied, [f for f in files if (f.path, f.size, f.mtime) not in done], done


def _check_files(files, formats: str | dict[str, str], config: ImportConfig) -> None:
    """Each file's head against its format (a mapping naming a column the file lacks): one
    ``JobError`` naming the file before anything runs, not one error per record."""
    readers: dict = {}
    for f in files:
        if is_parquet(f.path) and not splittable(f.path):
            raise JobError(f"{f.path}: the server does not take byte-range requests, and Parquet must be read from "
                           "its footer at the end; download the file first")
        name = formats if isinstance(formats, str) else formats[f.path]
        if name not in readers:
            readers[name] = get_format(name, config.format_options if name == config.format else None)
        try:
            readers[name].check_file(f.path)
        except (SourceFileError, DamagedSourceError) as exc:
            raise JobError(str(exc)) from None


def _formats_of(files, name: str) -> str | dict[str, str]:
    """The format of every file: ``name``, or with ``auto`` each file's own (a ``JobError``
    naming the file and the candidates when one cannot be told)."""
    if name != AUTO:
        return name
    try:
        return {f.path: detect_format(f.path) for f in files}
    except ValueError as exc:
        raise JobError(str(exc)) from None


class _CommitFn(beam.DoFn):
    def __init__(self, plan: CommitPlan):
        self._plan = plan

    def process(self, written, stats, errors, catalog_errors, catalog, rejects=()):
        if self._plan.keep_rejects:  # before the commit: a run refused for its errors keeps them too
            finish_rejects(self._plan.errors_dir, sorted(rejects), stats)
        yield commit_import(self._plan, written, stats, errors, catalog_errors, catalog.products, catalog.failure)


class WriteToEventStore(beam.PTransform):
    """The second half of an import: joined batches -> store files, dedupe, one commit, error
    samples and a summary (a PCollection of one dict).

    Its input is a dict of PCollections: ``events`` (fingerprinted, joined batches), ``errors``
    (a PCollection of error records, or a tuple of several), ``stats`` (``ReadEvents``' per-range
    stats), ``catalog`` (``ReadCatalog``'s products) and ``catalog_errors``.

    Args:
        plan: what the commit needs to know, from ``plan_import`` (run id, store version read,
            files and their log entries, limits).
        max_error_samples: how many error samples to keep; counts are always complete.
    """

    def __init__(self, plan: CommitPlan, max_error_samples: int = 1000):
        super().__init__()
        self._plan, self._samples = plan, max_error_samples

    def expand(self, inputs: dict) -> beam.PCollection[dict]:
        plan = self._plan
        errors = inputs["errors"] if isinstance(inputs["errors"], tuple) else (inputs["errors"],)
        written = (
            inputs["events"]
            | "WriteStoreFiles" >> WriteStoreFiles(plan.store, plan.run_id, plan.stored_schema)
            | "DropDuplicates" >> DropDuplicates(plan.store, plan.base_version, plan.source_index)
        )
        error_summary = errors | "SummarizeErrors" >> SummarizeErrors(self._samples)
        catalog_errors = inputs["catalog_errors"] | "SummarizeCatalogErrors" >> beam.CombineGlobally(
            ErrorSummaryFn(self._samples)).without_defaults()
        side = {}
        if plan.keep_rejects:
            parts = [e | f"KeepRejects{i}" >> beam.ParDo(WriteRejectsFn(plan.errors_dir)) for i, e in enumerate(errors)]
            side["rejects"] = beam.pvalue.AsList(parts | "GatherRejects" >> beam.Flatten())
        return (
            written
            | "CommitImport" >> ApplyToAll(
                _CommitFn(plan),
                beam.pvalue.AsList(inputs["stats"]),
                beam.pvalue.AsSingleton(error_summary),
                beam.pvalue.AsSingleton(catalog_errors, default_value=no_errors()),
                beam.pvalue.AsSingleton(inputs["catalog"]),
                **side,
            )
        )


class ImportEvents(beam.PTransform):
    """The import job as one transform: a pipeline root -> a PCollection of one summary dict.

    It is ``ReadEvents`` -> ``ValidateEvents`` -> ``FingerprintEvents`` -> ``JoinCatalog`` ->
    ``WriteToEventStore``, with ``ReadCatalog`` beside them; a pipeline of one's own can compose
    the same parts with steps of its own between them.
    """

    def __init__(self, plan: ImportPlan):
        super().__init__()
        self._plan = plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[dict]:
        config, plan = self._plan.config, self._plan
        fields = tuple(config.catalog_fields)
        if plan.catalog_paths:
            catalog = pbegin | "ReadCatalog" >> ReadCatalog(plan.catalog_paths, fields, plan.commit.temp_dir,
                                                            format_name=plan.catalog_format,
                                                            field_map=config.catalog_field_map,
                                                            options=config.catalog_format_options)
        else:  # no join: the events are stored neither joined nor unjoined
            catalog = {"products": pbegin | "NoCatalog" >> beam.Create([CatalogFile("", 0)]),
                       ERRORS: pbegin | "NoCatalogErrors" >> beam.Create([])}
        read = pbegin | "ReadEvents" >> ReadEvents(ranges=plan.ranges, format=plan.formats,
                                                   block_bytes=config.block_bytes, absolute_lines=False,
                                                   format_options=config.format_options,
                                                   event_type_map=config.event_type_map,
                                                   allowed_event_types=tuple(config.allowed_event_types),
                                                   progress=progress_of(plan.commit) if config.progress else None)
        valid = read.events | "ValidateEvents" >> ValidateEvents(tuple(config.allowed_event_types),
                                                                 config.event_type_map, config.format_options)
        joined = (
            valid.events
            | "FingerprintEvents" >> FingerprintEvents()
            | "JoinCatalog" >> JoinCatalog(beam.pvalue.AsSingleton(catalog["products"]), fields)
        )
        return {
            "events": joined, "errors": (read[ERRORS], valid[ERRORS]), "stats": read[STATS],
            "catalog": catalog["products"], "catalog_errors": catalog[ERRORS],
        } | "WriteToEventStore" >> WriteToEventStore(plan.commit, config.max_error_samples)


def run_import(config: ImportConfig, pipeline_args: list[str] | None = None) -> ImportSummary:
    """Plan and run the import; return the summary. Raises ``JobError`` when it fails."""
    prepare_run(pipeline_args or [], [*config.events, config.catalog, config.store, config.errors, config.summary])
    check_outputs(config.store, dirs={"errors": config.errors}, files={"summary": config.summary})
    replayed: dict = {}
    if config.replay:  # an earlier run's rejected records, written back as inputs of this import
        config, replayed = replay_config(config)
    for _ in range(3):  # a conflict (see commit_import) plans again from the newer version
        summary = execute_import(plan_import(config), pipeline_args)
        if summary["status"] != "conflict":
            break
    summary = {**summary, **replayed}
    write_summary_file(summary, config.summary, config.store, "import", config.report)
    if summary["status"] != "ok":
        raise JobError(summary["failure"])
    return ImportSummary.from_dict(summary)


def execute_import(plan: ImportPlan, pipeline_args: list[str] | None = None) -> dict:
    """Run a planned import once; the summary's status is ok, conflict or failed."""
    return execute_commit_pipeline(plan.commit, plan.ranges, ImportEvents(plan), pipeline_args, "ImportEvents",
                                   plan.config.progress)


def execute_commit_pipeline(commit: CommitPlan, ranges: list[ByteRange], job: beam.PTransform,
                            pipeline_args: list[str] | None, label: str, progress: bool = False) -> dict:
    """Run one import-shaped job (``job`` ends in ``WriteToEventStore``) and read back the
    summary its commit step wrote; with no range to read, the summary of a run with nothing to do.
    ``progress``: draw the bar the job's readers report to (``progress_of``)."""
    if not ranges:
        remove_scratch(commit.store, commit.run_id)
        return _nothing_to_do(commit)
    args = choose_workers(pipeline_args or [], input_bytes(commit.sources))
    options, runner = pipeline_options(args)
    folder, sizes = progress_of(commit)
    total = sum((r.end if r.end >= 0 else sizes.get(r.path, 0)) - r.start for r in ranges)
    try:
        per_file = Counter(r.path for r in ranges)
        with ProgressDisplay(folder, total, dict(per_file), label=commit.table) if progress else nullcontext():
            with beam.Pipeline(runner=runner, options=options) as pipeline:
                _ = pipeline | label >> job
    finally:
        remove_scratch(commit.store, commit.run_id)
    return {**json.loads(read_all(join_path(commit.errors_dir, "summary.json"))), "workers": workers_of(args)}


def progress_of(commit: CommitPlan) -> tuple[str, dict[str, int]]:
    """Where the run's readers report progress, and each source file's size."""
    return progress_dir(commit.run_id), {s["path"]: int(s["size"]) for s in commit.sources}


COMPRESSION_FACTOR = 5  # a compressed event file holds about this many bytes of records per byte


def input_bytes(sources: list[dict]) -> int:
    """About how many bytes of records the files hold (compressed ones count their text)."""
    return sum(int(s["size"]) * (COMPRESSION_FACTOR if compression_of(s["path"]) != "uncompressed" else 1)
               for s in sources)


def _nothing_to_do(commit: CommitPlan) -> dict:
    return {
        "run_id": commit.run_id, "status": "ok", "records": 0, "stored": 0, "joined": 0, "unjoined": 0,
        "duplicates": 0, "errors": 0, "errors_by_reason": {}, "skipped": 0, "skipped_by_reason": {},
        "skipped_files": commit.skipped_files, "skipped_paths": commit.skipped_paths, "files": 0, "by_event_type": {},
        "version": None, "leftovers_removed": commit.leftovers_removed,
        "seconds": round(time.time() - commit.started, 3), "events_per_second": None,
    }
