"""The samples job: the store's exposures -> labelled training samples with request-time features.

The rules are in ``eventlake.transforms.samples``. The job fixes one version of the events and
of the features table, then moves rows in two shuffles:

1. each store file's exposures and label events, bucketed by a hash of the user;
2. per user bucket, the labels (every label event is attributed within its user), the samples
   then bucketed by a hash of the request id, beside the feature records bucketed the same way;
3. per request bucket, the features of each sample's request, then the output pieces.

Only file names go through Beam's ``GroupByKey``; the rows go through Arrow files under the
run's scratch folder, so that a worker holds one bucket at a time and memory stays flat as the
run grows (the local runner would keep a ``GroupByKey``'s values in memory), and the job runs
unchanged on a distributed runner with the output on object storage. Output is staged beside
the output folder and published only when the run succeeded, as exports are.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from eventlake.config import SamplesConfig
from eventlake.faults import fault_point
from eventlake.filters import parse_filter
from eventlake.io import delta_log
from eventlake.io.arrow_files import read_arrow, write_arrow
from eventlake.io.delta_log import join_path
from eventlake.io.export_files import run_dir
from eventlake.io.files import write_bytes
from eventlake.io.object_store import move_object
from eventlake.io.store import file_rows
from eventlake.pipelines.output_jobs import check_output_free, run_and_publish, run_reading_store, select_for_output
from eventlake.pipelines.running import (
    JobError,
    absolute,
    check_outputs,
    finish_summary,
    new_run_id,
    prepare_run,
)
from eventlake.summaries import SamplesSummary
from eventlake.transforms import feature_columns
from eventlake.transforms.read_store import (
    StoreSelection,
    columns_schema,
    open_store_file,
    read_file_batches,
)
from eventlake.transforms.samples import (
    EVENT_COLUMNS,
    FEATURE_COLUMNS,
    ITEM_FEATURES,
    USER_FEATURES,
    SampleSpec,
    attach_features,
    buckets_of,
    empty_features,
    interactions,
    label_exposures,
    split_by_bucket,
)
from eventlake.transforms.split import SplitSpec, TimeHistogram, parse_split, time_cuts, time_parts

ROWS_PER_BUCKET = 1_000_000  # rows one worker holds at a time, in either shuffle


@dataclass(frozen=True)
class SamplesPlan:
    config: SamplesConfig
    run_id: str
    output: str
    spec: SampleSpec
    events: StoreSelection
    features_table: str
    features_version: int | None  # None: there is no features table
    feature_files: tuple[dict, ...]
    buckets: int
    split: SplitSpec | None
    started: float = field(default_factory=time.time)

    @property
    def scratch(self) -> str:
        return run_dir(self.output, self.run_id)

    @property
    def staged(self) -> str:
        return join_path(self.scratch, "out")

    def part_names(self) -> tuple[str, ...]:
        return ("all",) if self.split is None else self.split.parts


class _BucketEventsFn(beam.DoFn):
    """A store file -> ``(user bucket, scratch file)`` of its exposures and label events."""

    def __init__(self, plan: SamplesPlan):
        self._plan = plan

    def setup(self):
        self._filter = parse_filter(self._plan.config.filter) if self._plan.config.filter else None
        self._schema = columns_schema(self._plan.events.schema, EVENT_COLUMNS)

    def process(self, element):
        index, add = element
        plan = self._plan
        tables = [interactions(batch, plan.spec)
                  for batch in read_file_batches(plan.events.store, add, self._schema, self._filter)]
        tables = [t for t in tables if len(t)]
        if not tables:
            return
        table = pa.concat_tables(tables)
        for bucket, rows in split_by_bucket(table, buckets_of(table.column("user"), plan.buckets)):
            path = join_path(plan.scratch, "users", f"{bucket:05d}", f"{index:06d}.arrow")
            yield bucket, write_arrow(path, rows, "lz4")


class _LabelFn(beam.DoFn):
    """A user bucket's files -> ``(request bucket, ("samples", file))`` of its labelled samples;
    the counts and the exposure-time histogram go to the ``stats`` output."""

    def __init__(self, plan: SamplesPlan):
        self._plan = plan

    def process(self, element):
        bucket, paths = element
        plan = self._plan
        table = pa.concat_tables([read_arrow(p) for p in sorted(paths)])
        last = plan.split.last if plan.split is not None and plan.split.kind == "leave-last" else 0
        samples, stats = label_exposures(table, plan.spec, split_last=last)
        histogram = None
        if plan.split is not None and plan.split.kind == "time" and len(samples):
            histogram = TimeHistogram().add_input(TimeHistogram().create_accumulator(),
                                                  pa.table({"event_time": samples.column("exposure_time")}))
        yield beam.pvalue.TaggedOutput("stats", (stats, histogram))
        which = buckets_of(samples.column("request_id"), plan.buckets)
        for request_bucket, rows in split_by_bucket(samples, which):
            path = join_path(plan.scratch, "requests", f"{request_bucket:05d}", f"samples-{bucket:05d}.arrow")
            yield request_bucket, ("samples", write_arrow(path, rows, "lz4"))


class _BucketFeaturesFn(beam.DoFn):
    """A features-table file -> ``(request bucket, ("features", file))``; with
    ``--flatten-features`` each feature column's key kinds go to the ``kinds`` output."""

    def __init__(self, plan: SamplesPlan):
        self._plan = plan

    def process(self, element):
        index, add = element
        plan = self._plan
        table = read_feature_file(plan.features_table, add)
        if plan.config.flatten_features and len(table):
            modules = table.column("module")
            kinds = {}
            for module, names in (("user", USER_FEATURES), ("item", ITEM_FEATURES)):
                rows = table.filter(pc.fill_null(pc.equal(modules, module), False))
                for name in names:
                    kinds[name] = feature_columns.survey_kinds(rows.column(name).combine_chunks())
            yield beam.pvalue.TaggedOutput("kinds", kinds)
        for bucket, rows in split_by_bucket(table, buckets_of(table.column("request_id").combine_chunks(),
                                                              plan.buckets)):
            path = join_path(plan.scratch, "requests", f"{bucket:05d}", f"features-{index:06d}.arrow")
            yield bucket, ("features", write_arrow(path, rows, "lz4"))


def read_feature_file(table_path: str, add: dict) -> pa.Table:
    """One data file of the features table, as the columns the samples job uses."""
    with open_store_file(table_path, add) as handle:
        parquet = pq.ParquetFile(pa.PythonFile(handle, mode="r"))
        present = set(parquet.schema_arrow.names)
        table = parquet.read(columns=[c for c in FEATURE_COLUMNS if c in present])
    empty = empty_features()
    return pa.table({c: table.column(c).cast(empty.schema.field(c).type) if c in present
                     else pa.nulls(len(table), empty.schema.field(c).type) for c in FEATURE_COLUMNS})


class _MergeKinds(beam.CombineFn):
    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, kinds):
        return self.merge_accumulators([accumulator, kinds])

    def merge_accumulators(self, accumulators):
        out: dict = {}
        for accumulator in accumulators:
            for name, kinds in accumulator.items():
                out[name] = feature_columns.merge_kinds(out.get(name, {}), kinds)
        return out

    def extract_output(self, accumulator):
        return accumulator


class _MergeStats(beam.CombineFn):
    """The label pass's counts, summed, and the time cuts of a time split."""

    def __init__(self, split: SplitSpec | None):
        self._split = split

    def create_accumulator(self):
        return Counter(), None

    def add_input(self, accumulator, element):
        return self.merge_accumulators([accumulator, element])

    def merge_accumulators(self, accumulators):
        stats, histograms = Counter(), []
        for counts, histogram in accumulators:
            stats.update(counts)
            if histogram is not None:
                histograms.append(histogram)
        return stats, (TimeHistogram().merge_accumulators(histograms) if histograms else None)

    def extract_output(self, accumulator):
        stats, histogram = accumulator
        cuts = None
        if self._split is not None and self._split.kind == "time":
            cuts = time_cuts(histogram if histogram is not None else TimeHistogram().create_accumulator(),
                             self._split.fractions)
        return {"stats": dict(stats), "cuts": cuts}


class _WriteSamplesFn(beam.DoFn):
    """A request bucket's samples and feature records -> its output pieces (one per part)."""

    def __init__(self, plan: SamplesPlan):
        self._plan = plan

    def process(self, element, merged, kinds=None):
        bucket, files = element
        plan = self._plan
        samples = [p for kind, p in files if kind == "samples"]
        if not samples:
            return
        table = pa.concat_tables([read_arrow(p) for p in sorted(samples)])
        features = [read_arrow(p) for kind, p in sorted(files) if kind == "features"]
        table, stats = attach_features(table, pa.concat_tables(features) if features else None)
        table = table.sort_by([("exposure_time", "ascending"), ("request_id", "ascending"), ("item_id", "ascending")])
        parts = self._parts(table, merged["cuts"])
        table = output_columns(table, plan.spec, kinds if plan.config.flatten_features else None)
        pieces = {}
        names = plan.part_names()
        for code, name in enumerate(names):
            rows = table if parts is None else table.filter(pa.array(parts == code))
            if not len(rows):
                continue
            path = join_path(plan.scratch, "pieces", name, f"{bucket:05d}.{plan.config.format}")
            write_samples(path, rows, plan.config.format)
            pieces[name] = (path, len(rows))
        fault_point("samples-bucket-written")
        yield {"bucket": bucket, "pieces": pieces, "stats": dict(stats)}

    def _parts(self, table: pa.Table, cuts):
        split = self._plan.split
        if split is None:
            return None
        if split.kind == "time":
            return time_parts(pa.table({"event_time": table.column("exposure_time")}), cuts)
        return table.column("part").to_numpy()


def output_columns(table: pa.Table, spec: SampleSpec, kinds: dict | None) -> pa.Table:
    """The samples as written: ids, time, labels, values, the feature JSON, and with ``kinds``
    a typed column per feature key."""
    names = ["request_id", "scene", "user_id", "item_id", "exposure_time", *spec.label_names,
             *(f"{n}_value" for n in spec.label_names), *USER_FEATURES, *ITEM_FEATURES]
    columns = {n: table.column(n) for n in names}
    for source, found in sorted((kinds or {}).items()):
        if not found:
            continue
        flat = feature_columns.flatten(table.column(source).combine_chunks(), found)
        for key in sorted(flat):
            columns[feature_columns.column_name(source, key)] = flat[key]
    return pa.table(columns)


def write_samples(path: str, table: pa.Table, output_format: str) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        if output_format == "tfrecord":
            from eventlake.io.tfrecords import write_examples

            write_examples(handle, table)
            return
        pq.write_table(table, pa.PythonFile(handle, mode="w"), compression="zstd")


class _FinishSamplesFn(beam.DoFn):
    """Every bucket's pieces -> the final file names and the summary."""

    def __init__(self, plan: SamplesPlan):
        self._plan = plan

    def process(self, results: list[dict], merged):
        plan = self._plan
        results = sorted(results, key=lambda r: r["bucket"])
        stats = Counter(merged["stats"])
        for r in results:
            stats.update(r["stats"])
        written, by_part = {}, Counter()
        extension = plan.config.format
        for name in plan.part_names():
            pieces = [r["pieces"][name] for r in results if name in r["pieces"]]
            folder = "" if name == "all" else name
            for i, (path, rows) in enumerate(pieces):
                target = join_path(folder, f"part-{i:05d}-of-{len(pieces):05d}.{extension}") if folder \
                    else f"part-{i:05d}-of-{len(pieces):05d}.{extension}"
                move_object(path, join_path(plan.staged, target))
                written[target] = rows
                by_part[name] += rows
        summary = samples_summary(plan, stats, written, by_part)
        write_bytes(join_path(plan.scratch, "summary.json"), json.dumps(summary).encode())
        yield summary


def samples_summary(plan: SamplesPlan, stats: Counter, written: dict, by_part: Counter) -> dict:
    labels = plan.spec.label_names
    samples = int(stats["samples"])
    skipped = {k.split(".", 1)[1]: int(v) for k, v in sorted(stats.items()) if k.startswith("exposures_skipped.") and v}
    summary = {
        "run_id": plan.run_id, "status": "ok", "output": plan.output, "version": plan.events.version,
        "features_store": plan.features_table if plan.features_version is not None else None,
        "features_version": plan.features_version,
        "window_seconds": plan.spec.window_seconds,
        "labels": {name: list(types) for name, types in plan.spec.labels},
        "split": plan.config.split or None, "format": plan.config.format,
        "files_read": len(plan.events.files), "feature_files_read": len(plan.feature_files),
        "exposures": int(stats["exposures"]), "duplicate_exposures": int(stats["duplicate_exposures"]),
        "exposures_skipped": sum(skipped.values()), "skipped_by_reason": skipped,
        "samples": samples, "rows_written": sum(written.values()),
        "positives": {n: int(stats[f"positives.{n}"]) for n in labels},
        "positive_rate": {n: round(stats[f"positives.{n}"] / samples, 6) if samples else None for n in labels},
        "label_events": {n: int(stats[f"label_events.{n}"]) for n in labels},
        **{f"unattributed_{n}": int(stats[f"unattributed.{n}"]) for n in labels},
        "exposures_without_user_features": int(stats["exposures_without_user_features"]),
        "exposures_without_item_features": int(stats["exposures_without_item_features"]),
        "user_features_written_after_exposure": int(stats["user_features_written_after_exposure"]),
        "item_features_written_after_exposure": int(stats["item_features_written_after_exposure"]),
        "samples_by_part": dict(by_part) if plan.split else {},
        "files_written": dict(sorted(written.items())),
    }
    notes = []
    if not summary["exposures"]:
        notes.append(f"no event of the exposure types ({', '.join(plan.spec.exposure_types)}) was read: no samples")
    if plan.features_version is None:
        notes.append(f"no features table at {plan.features_table}: every sample's features are null")
    if notes:
        summary["note"] = "; ".join(notes)
    return summary


class BuildSamples(beam.PTransform):
    """The samples job as one transform: a pipeline root -> a PCollection of one summary dict."""

    def __init__(self, plan: SamplesPlan):
        super().__init__()
        self._plan = plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection[dict]:
        plan = self._plan
        labelled = (
            pbegin
            | "ListEventFiles" >> beam.Create(list(enumerate(plan.events.files)), reshuffle=True)
            | "BucketByUser" >> beam.ParDo(_BucketEventsFn(plan))
            | "GroupUsers" >> beam.GroupByKey()
            | "Label" >> beam.ParDo(_LabelFn(plan)).with_output_types(tuple[int, tuple[str, str]])
            .with_outputs("stats", main="samples")
        )
        merged = labelled.stats | "MergeStats" >> beam.CombineGlobally(_MergeStats(plan.split))
        side = {"merged": beam.pvalue.AsSingleton(merged)}
        pieces = [labelled.samples]
        if plan.feature_files:
            features = (
                pbegin
                | "ListFeatureFiles" >> beam.Create(list(enumerate(plan.feature_files)), reshuffle=True)
                # the main output's type said outright: Beam would infer a union with the tagged one
            | "BucketByRequest" >> beam.ParDo(_BucketFeaturesFn(plan)).with_output_types(tuple[int, tuple[str, str]])
            .with_outputs("kinds", main="features")
            )
            pieces.append(features.features)
            if plan.config.flatten_features:
                kinds = features.kinds | "MergeKinds" >> beam.CombineGlobally(_MergeKinds())
                side["kinds"] = beam.pvalue.AsSingleton(kinds)
        return (
            tuple(pieces)
            | "GatherRequests" >> beam.Flatten()
            | "GroupRequests" >> beam.GroupByKey()
            | "WriteSamples" >> beam.ParDo(_WriteSamplesFn(plan), **side)
            | "GatherBuckets" >> beam.combiners.ToList()
            | "FinishSamples" >> beam.ParDo(_FinishSamplesFn(plan), merged=side["merged"])
        )


def plan_samples(config: SamplesConfig) -> SamplesPlan:
    """Fix the versions, pick the files, size the buckets; ``JobError`` when it cannot run."""
    output = absolute(config.output)
    events = select_for_output(config.store, output, config.filter, "write samples")
    table = absolute(config.features_table)
    snapshot = delta_log.read_snapshot(table)
    if not snapshot.exists and config.features_store:
        raise JobError(f"features_store: there is no features table at {table}")
    feature_files = tuple(sorted(snapshot.files.values(), key=lambda a: a["path"])) if snapshot.exists else ()
    rows = sum(file_rows(a) or 0 for a in events.files) + sum(file_rows(a) or 0 for a in feature_files)
    spec = SampleSpec(tuple(config.exposure_types), tuple((name, tuple(t.strip() for t in types.split(",")))
                                                          for name, types in config.labels.items()),
                      config.window_seconds)
    return SamplesPlan(config, new_run_id(), output, spec, events, table,
                       snapshot.version if snapshot.exists else None, feature_files,
                       max(1, math.ceil(rows / ROWS_PER_BUCKET)),
                       parse_split(config.split) if config.split else None)


def run_samples(config: SamplesConfig, pipeline_args: list[str] | None = None) -> SamplesSummary:
    """Build samples as ``config`` says; read again when a concurrent job removed a file."""
    prepare_run(pipeline_args or [], [config.store, config.output, config.summary, config.features_store])
    check_outputs("", dirs={"output": config.output}, files={"summary": config.summary})
    check_output_free(config.output, config.overwrite)
    summary = run_reading_store(lambda: plan_samples(config), lambda plan: execute_samples(plan, pipeline_args),
                                "samples job")
    return SamplesSummary.from_dict(finish_summary(summary, config.summary, config.store, "samples"))


def execute_samples(plan: SamplesPlan, pipeline_args: list[str] | None = None) -> dict:
    """Run one planned samples job and publish it; nothing reaches the output unless it all worked."""
    size = sum(int(a.get("size", 0)) for a in (*plan.events.files, *plan.feature_files))
    return run_and_publish(plan, BuildSamples(plan), "BuildSamples", size, pipeline_args,
                           ("run_id", "version", "features_version", "samples"), "samples")


__all__ = ["BuildSamples", "SamplesPlan", "execute_samples", "plan_samples", "run_samples"]
