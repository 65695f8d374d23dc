"""The export job: the store (or a filtered, incremental view of it) -> a format's dataset files.

The job fixes one store version, picks the files the filter and ``since_version`` allow, and
groups them, in date and path order, into shards of about ``rows_per_file`` events: one output
file per shard, so the same version gives the same files on every run. Formats whose output
depends on the whole export (optional columns, a time split, per-user hold-outs) get a first,
narrow pass over the few columns that decides it. Everything is written under a staging
folder beside the output and published only when the pipeline succeeded; a failed or killed
run leaves the output as it was.
"""

from __future__ import annotations

import json
import posixpath
import time
from collections import Counter
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from eventlake.config import ExportConfig
from eventlake.faults import fault_point
from eventlake.filters import parse_filter
from eventlake.formats.exporting import ExportFormat, ExportOptions, ExportTable, export_class
from eventlake.io.delta_log import join_path
from eventlake.io.export_files import (
    OutputFileWriter,
    run_dir,
)
from eventlake.io.files import write_bytes
from eventlake.io.object_store import delete_paths, move_object
from eventlake.io.store import consecutive_groups, file_rows
from eventlake.pipelines.output_jobs import check_output_free, run_and_publish, run_reading_store, select_for_output
from eventlake.pipelines.running import (
    STORE_JOB_PROCESS_BYTES,
    JobError,
    absolute,
    catalog_format_of,
    catalog_paths,
    check_outputs,
    finish_summary,
    new_run_id,
    prepare_run,
)
from eventlake.schema import CATALOG_FIELD_TYPES
from eventlake.summaries import ExportSummary
from eventlake.transforms.catalog import ReadCatalog, load_catalog, read_catalog
from eventlake.transforms.gather import ApplyToAll
from eventlake.transforms.read_store import (
    ReadStoreFileFn,
    StoreSelection,
    columns_schema,
    columns_with_values,
    read_file_batches,
)
from eventlake.transforms.split import (
    HeldOutParts,
    HoldOutLastEvents,
    SplitSpec,
    TimeHistogram,
    parse_split,
    time_cuts,
    time_parts,
)


@dataclass(frozen=True)
class ExportPlan:
    config: ExportConfig
    run_id: str
    output: str
    selection: StoreSelection
    shards: list[tuple[int, list[dict]]]
    split: SplitSpec | None
    options: ExportOptions
    started: float = field(default_factory=time.time)

    @property
    def scratch(self) -> str:
        return run_dir(self.output, self.run_id)

    @property
    def staged(self) -> str:
        return join_path(self.scratch, "out")

    @property
    def pieces(self) -> str:
        return join_path(self.scratch, "pieces")

    def exporter(self) -> ExportFormat:
        return export_class(self.config.format)(self.options)


@dataclass
class ShardResult:
    """What one shard's writer did."""

    index: int
    pieces: dict = field(default_factory=dict)  # (table, part) -> (path, rows)
    events_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    by_part: Counter = field(default_factory=Counter)
    observed: dict = field(default_factory=dict)
    items_missing: int = 0


def shard_files(files: tuple[dict, ...], rows_per_file: int) -> list[tuple[int, list[dict]]]:
    """Consecutive files grouped into shards of about ``rows_per_file`` events (by log statistics)."""
    return list(enumerate(consecutive_groups(list(files), lambda add: file_rows(add) or 0, rows_per_file)))


class _SurveyFn(beam.DoFn):
    """A store file -> (the format's markers, the event-time histogram) over its selected rows."""

    def __init__(self, plan: ExportPlan, schema: pa.Schema):
        self._plan, self._schema = plan, schema

    def setup(self):
        self._exporter = self._plan.exporter()
        self._filter = parse_filter(self._plan.config.filter) if self._plan.config.filter else None
        self._histogram = TimeHistogram() if self._plan.split and self._plan.split.kind == "time" else None

    def process(self, add: dict):
        markers, histogram = set(), None
        if self._filter is None and self._histogram is None:
            found = columns_with_values(self._plan.selection.store, add, set(self._exporter.survey_columns))
            if found is not None:
                contents = [c for c in self._exporter.survey_contents if c in found]
                if contents:  # present, and what they hold matters (attribute keys, say): read just those
                    schema = columns_schema(self._plan.selection.schema, contents)
                    for batch in read_file_batches(self._plan.selection.store, add, schema):
                        found |= self._exporter.survey(batch)
                yield found, None
                return
        for batch in read_file_batches(self._plan.selection.store, add, self._schema, self._filter,
                                       self._plan.config.since_version):
            markers |= self._exporter.survey(batch)
            if self._histogram is not None:
                found = self._histogram.add_input(self._histogram.create_accumulator(), batch)
                histogram = found if histogram is None else self._histogram.merge_accumulators([histogram, found])
        yield markers, histogram


class _SurveyCombine(beam.CombineFn):
    def __init__(self, split: SplitSpec | None):
        self._split, self._histogram = split, TimeHistogram()

    def create_accumulator(self):
        return set(), None

    def add_input(self, accumulator, element):
        return self.merge_accumulators([accumulator, element])

    def merge_accumulators(self, accumulators):
        markers, histograms = set(), []
        for found, histogram in accumulators:
            markers |= found
            if histogram is not None:
                histograms.append(histogram)
        return markers, (self._histogram.merge_accumulators(histograms) if histograms else None)

    def extract_output(self, accumulator):
        markers, histogram = accumulator
        cuts = None
        if self._split is not None and self._split.kind == "time":
            cuts = time_cuts(histogram if histogram is not None else TimeHistogram().create_accumulator(),
                             self._split.fractions)
        return {"markers": markers, "cuts": cuts}


class _WriteShardFn(beam.DoFn):
    """A shard of store files -> its output pieces, one file per output table and part."""

    def __init__(self, plan: ExportPlan, schema: pa.Schema):
        self._plan, self._schema = plan, schema

    def setup(self):
        self._exporter = self._plan.exporter()
        self._filter = parse_filter(self._plan.config.filter) if self._plan.config.filter else None
        self._held_out: tuple[tuple, HeldOutParts] | None = None

    def process(self, shard, survey=None, held_out=None, catalog=None):
        index, files = shard
        plan, exporter = self._plan, self._exporter
        markers = survey["markers"] if survey else set()
        tables = {t.name: t for t in exporter.tables(markers)}
        parts = self._parts_of(survey, held_out)
        index_of_items = load_catalog(catalog)[1] if catalog is not None and exporter.item_id_columns else None
        result, writers = ShardResult(index), {}
        try:
            for add in files:
                for batch in read_file_batches(plan.selection.store, add, self._schema, self._filter,
                                               plan.config.since_version):
                    result.events_read += len(batch)
                    for part, piece in _by_part(batch, parts, plan.split):
                        converted = exporter.convert(piece, markers)
                        result.skipped.update({k: v for k, v in converted.skipped.items() if v})
                        result.by_part[part or "all"] += len(piece) - sum(converted.skipped.values())
                        result.observed = exporter.observe(converted, result.observed)
                        for name, rows in converted.rows.items():
                            table = tables[name]
                            key = (name, part if table.split else None)
                            if key not in writers:
                                writers[key] = self._writer(table, key[1], index)
                            writers[key].write(rows)
                            column = exporter.item_id_columns.get(name)
                            if index_of_items is not None and column:
                                ids = rows.column(column).combine_chunks()
                                result.items_missing += int((index_of_items.positions(ids) < 0).sum())
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        for key, writer in writers.items():
            rows = writer.close()
            if rows:
                result.pieces[key] = (writer.path, rows)
        fault_point("export-shard-written")
        yield result

    def _parts_of(self, survey, held_out):
        split = self._plan.split
        if split is None:
            return None
        if split.kind == "time":
            cuts = survey["cuts"]
            return lambda batch: time_parts(batch, cuts)
        key = tuple(held_out)
        if self._held_out is None or self._held_out[0] != key:
            self._held_out = (key, HeldOutParts(list(held_out)))
        return self._held_out[1].parts

    def _writer(self, table: ExportTable, part: str | None, index: int) -> OutputFileWriter:
        gzip = self._plan.config.compression == "gzip"
        header = None if table.single_file else table.header  # single files get theirs when pieces are joined
        path = join_path(self._plan.pieces, table.name, part or "all", f"{index:05d}{table.extension}")
        return OutputFileWriter(path, table.encoding, gzip=gzip, header=header)


def _by_part(batch: pa.RecordBatch, parts, split: SplitSpec | None):
    if parts is None:
        yield None, batch
        return
    codes = parts(batch)
    for code, name in enumerate(split.parts):  # codes number the parts in order: train, (valid,) test
        mask = codes == code
        if mask.any():
            yield name, batch.filter(pa.array(mask))


class _FinishExportFn(beam.DoFn):
    """All shards' results -> the final file names, item files, side files and the summary."""

    def __init__(self, plan: ExportPlan):
        self._plan = plan

    def process(self, results: list[ShardResult], survey=None, catalog=None, catalog_errors=0):
        plan, exporter = self._plan, self._plan.exporter()
        markers = survey["markers"] if survey else set()
        tables = {t.name: t for t in exporter.tables(markers)}
        results = sorted(results, key=lambda r: r.index)
        skipped, by_part, observed = Counter(), Counter(), {}
        for r in results:
            skipped.update(r.skipped)
            by_part.update(r.by_part)
            observed = exporter.merge(observed, r.observed)
        gzip = ".gz" if plan.config.compression == "gzip" else ""
        written = {}
        for (name, part) in sorted({k for r in results for k in r.pieces}, key=lambda k: (k[0], k[1] or "")):
            table = tables[name]
            pieces = [r.pieces[(name, part)] for r in results if (name, part) in r.pieces]
            base = table.stem + (f".{part}" if part else "")
            suffix = "" if table.encoding == "parquet" else gzip
            if table.single_file:
                target = f"{base}{table.extension}{suffix}"
                _join_pieces(pieces, join_path(plan.staged, target), table.header, bool(gzip))
                written[target] = sum(rows for _, rows in pieces)
                continue
            for i, (path, rows) in enumerate(pieces):
                target = f"{base}{table.extension}{suffix}" if len(plan.shards) == 1 else \
                    f"{base}/part-{i:05d}-of-{len(pieces):05d}{table.extension}{suffix}"
                move_object(path, join_path(plan.staged, target))
                written[target] = rows
        data_rows = sum(written.values())
        catalog_table = None
        if catalog is not None:
            if catalog.failure:
                raise JobError(f"cannot read the catalog: {catalog.failure}")
            catalog_table = read_catalog(catalog.path)
            for table, rows in exporter.item_tables(catalog_table):
                suffix = "" if table.encoding == "parquet" else gzip
                target = f"{table.stem}{table.extension}{suffix}"
                writer = OutputFileWriter(join_path(plan.staged, target), table.encoding, gzip=bool(gzip),
                                          header=table.header)
                writer.write(rows)
                written[target] = writer.close()
        items_missing = sum(r.items_missing for r in results) if catalog is not None else None
        files, report = exporter.finish(markers, observed, catalog_table, items_missing)
        for name, data in files.items():
            write_bytes(join_path(plan.staged, name), data)
        events_read = sum(r.events_read for r in results)
        summary = {
            "run_id": plan.run_id, "status": "ok", "format": plan.config.format, "output": plan.output,
            "version": plan.selection.version, "since_version": plan.config.since_version,
            "split": plan.config.split or None,
            "files_total": plan.selection.files_total, "files_read": len(plan.selection.files),
            "events_read": events_read, "events_exported": events_read - sum(skipped.values()),
            "events_skipped": sum(skipped.values()), "skipped_by_reason": dict(sorted(skipped.items())),
            "events_by_part": dict(by_part) if plan.split else {},
            "rows_written": data_rows,
            "files_written": dict(sorted({**written, **{n: None for n in files}}.items())),
            "catalog_products": catalog.products if catalog is not None else None,
            "catalog_errors": int(catalog_errors or 0), "readiness": report,
        }
        write_bytes(join_path(plan.scratch, "summary.json"), json.dumps(summary).encode())
        yield summary


def _join_pieces(pieces: list[tuple[str, int]], target: str, header: str | None, gzip: bool) -> None:
    """One file of the header and the pieces in order (gzip pieces are decompressed and
    compressed again as one stream)."""
    compression = CompressionTypes.GZIP if gzip else CompressionTypes.UNCOMPRESSED
    with FileSystems.create(target, compression_type=compression) as out:
        if header is not None:
            out.write(header.encode() + b"\n")
        for path, _ in pieces:
            with FileSystems.open(path, compression_type=compression) as piece:
                while chunk := piece.read(8 << 20):
                    out.write(chunk)
    delete_paths([p for p, _ in pieces])


class ExportEvents(beam.PTransform):
    """The export job as one transform: a pipeline root -> a PCollection of one summary dict."""

    def __init__(self, plan: ExportPlan):
        super().__init__()
        self._plan = plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[dict]:
        plan, exporter = self._plan, self._plan.exporter()
        store_schema = plan.selection.schema
        files = list(plan.selection.files)
        side: dict = {}
        survey = None
        if exporter.survey_columns or (plan.split and plan.split.kind == "time"):
            columns = list(exporter.survey_columns) + (list(plan.split.columns) if plan.split else [])
            survey = (
                pbegin
                | "ListFilesToSurvey" >> beam.Create(files, reshuffle=True)
                | "SurveyFiles" >> beam.ParDo(_SurveyFn(plan, columns_schema(store_schema, columns)))
                | "MergeSurveys" >> beam.CombineGlobally(_SurveyCombine(plan.split))
            )
            side["survey"] = beam.pvalue.AsSingleton(survey)
        if plan.split and plan.split.kind == "leave-last":
            held_out = (
                pbegin
                | "ListFilesToHoldOut" >> beam.Create(files, reshuffle=True)
                | "ReadUserTimes" >> beam.ParDo(ReadStoreFileFn(
                    plan.selection.store, columns_schema(store_schema, plan.split.columns), plan.config.filter or None,
                    plan.config.since_version))
                | "HoldOutLastEvents" >> HoldOutLastEvents(plan.split.last, plan.scratch)
            )
            side["held_out"] = beam.pvalue.AsSingleton(held_out)
        finish_side = {k: v for k, v in side.items() if k == "survey"}
        if plan.config.catalog:
            name = catalog_format_of(catalog_paths(plan.config.catalog, plan.config.catalog_format),
                                     plan.config.catalog_format)
            paths = catalog_paths(plan.config.catalog, name)
            catalog = pbegin | "ReadCatalog" >> ReadCatalog(paths, tuple(CATALOG_FIELD_TYPES), plan.scratch,
                                                            format_name=name, field_map=plan.config.catalog_field_map,
                                                            options=plan.config.catalog_format_options)
            side["catalog"] = finish_side["catalog"] = beam.pvalue.AsSingleton(catalog["products"])
            errors = catalog["errors"] | "CountCatalogErrors" >> beam.combiners.Count.Globally()
            finish_side["catalog_errors"] = beam.pvalue.AsSingleton(errors)
        columns = list(dict.fromkeys([*exporter.columns, *(plan.split.columns if plan.split else ())]))
        return (
            pbegin
            | "ListShards" >> beam.Create(plan.shards, reshuffle=True)
            | "WriteShards" >> beam.ParDo(_WriteShardFn(plan, columns_schema(store_schema, columns)), **side)
            | "FinishExport" >> ApplyToAll(_FinishExportFn(plan), **finish_side)
        )


def plan_export(config: ExportConfig) -> ExportPlan:
    """Fix the version, pick and shard the files; ``JobError`` when the export cannot run."""
    output = absolute(config.output)
    selection = select_for_output(config.store, output, config.filter, "export", config.since_version)
    options = ExportOptions(name=config.name or posixpath.basename(output.rstrip("/")) or "events",
                            compression=config.compression or None)
    split = parse_split(config.split) if config.split else None
    return ExportPlan(config, new_run_id(), output, selection, shard_files(selection.files, config.rows_per_file),
                      split, options)


def run_export(config: ExportConfig, pipeline_args: list[str] | None = None) -> ExportSummary:
    """Export as ``config`` says; read the store again when a concurrent job removed a file."""
    prepare_run(pipeline_args or [], [config.store, config.output, config.summary, config.catalog])
    check_outputs("", dirs={"output": config.output}, files={"summary": config.summary})  # the store is only read
    check_output_free(config.output, config.overwrite)
    summary = run_reading_store(lambda: plan_export(config), lambda plan: execute_export(plan, pipeline_args), "export")
    return ExportSummary.from_dict(finish_summary(summary, config.summary, config.store, "export"))


def execute_export(plan: ExportPlan, pipeline_args: list[str] | None = None) -> dict:
    """Run one planned export and publish it; nothing reaches the output unless it all worked."""
    size = sum(int(add.get("size", 0)) for _, adds in plan.shards for add in adds)
    try:
        return run_and_publish(plan, ExportEvents(plan), "ExportEvents", size, pipeline_args,
                               ("run_id", "format", "version", "since_version", "rows_written"), "export",
                               process_bytes=STORE_JOB_PROCESS_BYTES)
    except Exception as exc:
        if "cannot read the catalog" in str(exc):
            raise JobError(_one_line(exc, "cannot read the catalog")) from None
        raise


def _one_line(exc: Exception, marker: str) -> str:
    text = str(exc)
    start = text.index(marker)
    return text[start:].splitlines()[0].split(" [while running")[0]
