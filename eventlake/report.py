"""The store's health as one self-contained HTML page: what arrived, what failed, what joined.

Data engineers judge an import by looking at it. ``store_report`` gathers, from the store's
files (a few narrow columns) and its log (each run's counts), what a data-quality page shows:
events per day by type, the share joined per day, errors by reason and by source file with
links to the samples, the product ids most often missing from the catalog and the catalog's
coverage, the visitors with the most events (bots stand out), the event time range with
events dated in the future or far in the past, duplicates per run, and counts per source
format. ``render_html`` draws it as inline SVG (``svg_charts``): no network, no script.

``eventlake report`` draws it for the whole store (or the events since a date); every import,
rejoin and purge writes one for its own run beside its summary (``<store>/_runs/<job>.html``).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from eventlake import svg_charts
from eventlake.io.delta_log import imported_version, join_path
from eventlake.io.files import read_all
from eventlake.schema import PARTITION_COLUMN

REPORT_COLUMNS = ("event_type", "event_time", "joined", "missing_product_ids", "visitor_id", "source_format",
                  "product_details.product.id", PARTITION_COLUMN)
TOP = 15
RUN_SCAN_EVENTS = 250_000  # a run's own page reads its events up to this many (about a second a million)
FAR_PAST_YEARS = 5  # events older than this before the report are "far in the past"


@dataclass
class ReportData:
    """What the page shows; every table a plain value, so that tests can read it too."""

    title: str
    subtitle: str
    events: int = 0
    per_day: pd.DataFrame = field(default_factory=pd.DataFrame)  # index date, a column per event type
    joined_share: pd.Series = field(default_factory=pd.Series)  # index date -> share joined (no catalog: empty)
    errors_by_reason: dict = field(default_factory=dict)
    errors_by_source: dict = field(default_factory=dict)
    sample_links: list = field(default_factory=list)  # (run id, path of its samples)
    missing_products: list = field(default_factory=list)  # (id, events)
    products_with_events: int = 0
    catalog_products: int | None = None
    top_visitors: list = field(default_factory=list)  # (visitor, events)
    first_event: str | None = None
    last_event: str | None = None
    future_events: int = 0
    far_past_events: int = 0
    duplicates_per_run: list = field(default_factory=list)  # (version, job, duplicates)
    by_format: dict = field(default_factory=dict)  # format -> events
    interactions: int = 0  # event-product pairs: what a Personalize export's interactions would be
    repeat_users: int = 0  # visitors with 2 or more events
    long_ids: int = 0  # visitor and product ids over Personalize's 256 characters
    counts: dict = field(default_factory=dict)  # the run's own summary, for a run's report
    note: str = ""

    @property
    def charts(self) -> list[str]:
        """The charts this data draws (the page's figure ids)."""
        names = []
        if not self.per_day.empty:
            names.append("events-per-day")
        if len(self.joined_share):
            names.append("joined-per-day")
        if self.errors_by_reason:
            names.append("errors-by-reason")
        if self.errors_by_source:
            names.append("errors-by-source")
        if self.missing_products:
            names.append("missing-products")
        if self.top_visitors:
            names.append("top-visitors")
        if self.duplicates_per_run:
            names.append("duplicates-per-run")
        return names


def gather(store: str, files: list[dict], schema: pa.Schema, history: list[tuple[int, dict]], title: str,
           subtitle: str, now: dt.datetime | None = None, catalog_products: int | None = None,
           run: dict | None = None) -> ReportData:
    """The report's data from ``files`` of the store and the log's ``history``."""
    from eventlake.transforms.read_store import columns_schema, read_file_batches

    now = now or dt.datetime.now(dt.timezone.utc)
    data = ReportData(title, subtitle, catalog_products=catalog_products, counts=dict(run or {}))
    wanted = columns_schema(schema, [c for c in REPORT_COLUMNS if c.split(".")[0] in schema.names])
    per_day, joined, formats = [], [], Counter()
    visitors, missing, products = _Tally(), _Tally(), _Distinct()
    low = high = None
    far_past = pd.Timestamp(now) - pd.DateOffset(years=FAR_PAST_YEARS)
    for add in files:
        for batch in read_file_batches(store, add, wanted, use_threads=True):
            table = pa.Table.from_batches([batch])
            data.events += len(table)
            per_day.append(table.group_by([PARTITION_COLUMN, "event_type"]).aggregate([([], "count_all")]))
            if "joined" in table.column_names and table.column("joined").null_count < len(table):
                joined.append(table.select([PARTITION_COLUMN, "joined"]).group_by(PARTITION_COLUMN)
                              .aggregate([("joined", "sum"), ("joined", "count")]))
            visitors.add(table.column("visitor_id"))
            data.long_ids += int(pc.sum(pc.greater(pc.utf8_length(table.column("visitor_id")), 256)).as_py() or 0)
            if "missing_product_ids" in table.column_names:
                missing.add(pc.list_flatten(table.column("missing_product_ids")))
            if "source_format" in table.column_names:
                formats.update(_counts(pc.fill_null(table.column("source_format"), "retail")))
            ids = pc.struct_field(pc.struct_field(pc.list_flatten(table.column("product_details")), "product"), "id")
            joined_ids = ids if "missing_product_ids" not in table.column_names else \
                pc.filter(ids, pc.invert(pc.is_in(ids, value_set=pc.unique(pc.list_flatten(
                    table.column("missing_product_ids"))))))
            products.add(joined_ids)
            data.interactions += len(ids) - ids.null_count
            data.long_ids += int(pc.sum(pc.greater(pc.utf8_length(ids), 256)).as_py() or 0)
            times = table.column("event_time")
            found_low, found_high = pc.min(times).as_py(), pc.max(times).as_py()
            low = found_low if low is None or (found_low and found_low < low) else low
            high = found_high if high is None or (found_high and found_high > high) else high
            data.future_events += int(pc.sum(pc.greater(times, pa.scalar(now, times.type))).as_py() or 0)
            data.far_past_events += int(pc.sum(pc.less(times, pa.scalar(far_past.to_pydatetime(), times.type)))
                                        .as_py() or 0)
    if per_day:
        frame = pa.concat_tables(per_day).to_pandas()
        data.per_day = frame.pivot_table(index=PARTITION_COLUMN, columns="event_type", values="count_all",
                                         aggfunc="sum", fill_value=0).sort_index()
    if joined:
        frame = pa.concat_tables(joined).to_pandas().groupby(PARTITION_COLUMN).sum().sort_index()
        data.joined_share = frame["joined_sum"] / frame["joined_count"]
    data.top_visitors = visitors.most_common(TOP)
    data.repeat_users = visitors.at_least(2)
    data.missing_products = missing.most_common(TOP)
    data.products_with_events = products.count()
    data.by_format = dict(formats.most_common())
    data.first_event = low.isoformat() if low else None
    data.last_event = high.isoformat() if high else None
    for version, info in history:
        ours = info.get("eventlake", {})
        counts = ours.get("counts", {})
        if ours.get("job") in ("import", "features-import"):
            data.duplicates_per_run.append((version, ours.get("run_id", ""), int(counts.get("duplicates", 0))))
            for reason, n in counts.get("errors_by_reason", {}).items():
                data.errors_by_reason[reason] = data.errors_by_reason.get(reason, 0) + int(n)
            if counts.get("errors"):
                data.sample_links.append((ours.get("run_id", ""), join_path(store, "_errors", ours.get("run_id", ""),
                                                                            "errors.jsonl")))
    data.errors_by_source = _errors_by_source([path for _, path in data.sample_links])
    return data


class _Tally:
    """Counts of each value over many batches, in Arrow: a Python ``Counter`` of a million
    visitors took two thirds of a 5M-event report."""

    COMPACT_ROWS = 2_000_000

    def __init__(self):
        self._parts: list[pa.Table] = []
        self._rows = 0

    def add(self, values) -> None:
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if not len(values):
            return
        found = pc.value_counts(values.drop_null())
        self._parts.append(pa.table({"value": found.field("values"), "n": found.field("counts")}))
        self._rows += len(found)
        if self._rows > self.COMPACT_ROWS:
            self._parts = [self._total()]
            self._rows = len(self._parts[0])

    def _total(self) -> pa.Table:
        if not self._parts:
            return pa.table({"value": pa.array([], pa.string()), "n": pa.array([], pa.int64())})
        merged = pa.concat_tables(self._parts).group_by("value").aggregate([("n", "sum")])
        return merged.rename_columns(["value", "n"]) if merged.column_names[0] == "value" else \
            merged.select(["value", "n_sum"]).rename_columns(["value", "n"])

    def most_common(self, k: int) -> list[tuple]:
        total = self._total().sort_by([("n", "descending"), ("value", "ascending")]).slice(0, k)
        return list(zip(total.column("value").to_pylist(), total.column("n").to_pylist(), strict=True))

    def at_least(self, n: int) -> int:
        return int(pc.sum(pc.greater_equal(self._total().column("n"), n)).as_py() or 0)


class _Distinct:
    """How many distinct values over many batches."""

    def __init__(self):
        self._parts: list[pa.Array] = []

    def add(self, values) -> None:
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        self._parts.append(pc.unique(values.drop_null()))
        if len(self._parts) > 32:
            self._parts = [pc.unique(pa.concat_arrays(self._parts))]

    def count(self) -> int:
        return len(pc.unique(pa.concat_arrays(self._parts))) if self._parts else 0


def _counts(values: pa.Array) -> dict:
    if not len(values):
        return {}
    found = pc.value_counts(values.drop_null() if hasattr(values, "drop_null") else values)
    return dict(zip(found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True))


def _errors_by_source(sample_files: list[str]) -> dict:
    """Error samples per source file (the samples, not every error: they are capped per run)."""
    out: Counter = Counter()
    for path in sample_files:
        try:
            text = read_all(path).decode()
        except Exception:  # noqa: BLE001 - samples removed (a purge) or never written
            continue
        for line in text.splitlines():
            try:
                out[json.loads(line)["details"][0]["source"]] += 1
            except (ValueError, KeyError, IndexError):
                continue
    return dict(out.most_common(TOP))


def store_report(store: str, since: str | None = None, catalog_products: int | None = None,
                 version: int | None = None, run: dict | None = None, scan: bool = True) -> ReportData:
    """The report of a whole store (events dated ``since`` or later), or with ``version`` of the
    events that version's import brought in; ``scan`` off: from the log and ``run`` alone."""
    from eventlake.io import delta_log
    from eventlake.transforms.read_store import table_columns

    snapshot = delta_log.read_snapshot(store)
    files = sorted(snapshot.files.values(), key=lambda a: a["path"])
    history = snapshot.history
    if since:
        files = [a for a in files if (a.get("partitionValues", {}).get(PARTITION_COLUMN) or "") >= since]
    if version is not None:
        files = [a for a in files if imported_version(a) == version]
        history = [(v, info) for v, info in history if v == version]
    if not scan:
        files = []
    if catalog_products is None:  # the catalog the last import or rejoin joined against
        for _, info in reversed(snapshot.history):
            found = info.get("eventlake", {}).get("counts", {}).get("catalog_products")
            if found:
                catalog_products = int(found)
                break
    scope = f"events dated {since} or later" if since else "every event"
    if version is not None:
        scope = f"the events version {version} brought in" if scan else f"the run of version {version}"
    title = f"eventlake report: {store}"
    subtitle = f"{scope}; store version {snapshot.version}; drawn {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    return gather(store, files, table_columns(snapshot), history, title, subtitle, catalog_products=catalog_products,
                  run=run)


# ---- drawing -------------------------------------------------------------------------------


def chart_svgs(data: ReportData) -> dict[str, tuple[str, str]]:
    """Chart id -> (caption, SVG)."""
    out = {}
    if "events-per-day" in data.charts:
        days = [str(d) for d in data.per_day.index]
        series = {str(name): [float(v) for v in data.per_day[name]] for name in data.per_day.columns}
        out["events-per-day"] = ("Events per day, by event type", svg_charts.stacked_columns(days, series, "events"))
    if "joined-per-day" in data.charts:
        days = [str(d) for d in data.joined_share.index]
        share = [round(float(v) * 100, 1) for v in data.joined_share.values]
        out["joined-per-day"] = ("Share of events whose every product is in the catalog, per day",
                                 svg_charts.line(days, share, "% joined", y_max=100))
    if "errors-by-reason" in data.charts:
        top = sorted(data.errors_by_reason.items(), key=lambda kv: -kv[1])[:TOP]
        out["errors-by-reason"] = ("Errors by reason", svg_charts.bars(top, "errors"))
    if "errors-by-source" in data.charts:
        out["errors-by-source"] = ("Error samples by source file",
                                   svg_charts.bars(list(data.errors_by_source.items()), "error samples"))
    if "missing-products" in data.charts:
        out["missing-products"] = ("Product ids most often missing from the catalog",
                                   svg_charts.bars(data.missing_products, "events naming it"))
    if "top-visitors" in data.charts:
        out["top-visitors"] = ("Visitors with the most events (bots stand out)",
                               svg_charts.bars(data.top_visitors, "events"))
    if "duplicates-per-run" in data.charts:
        out["duplicates-per-run"] = ("Duplicates dropped per import (by store version)", svg_charts.columns(
            [f"v{v}" for v, _, _ in data.duplicates_per_run], [d for _, _, d in data.duplicates_per_run],
            "duplicates dropped"))
    return out


def render_html(data: ReportData) -> str:
    """The page: headline figures, then each chart with its caption, then the tables."""
    e = html.escape
    coverage = "-"
    if data.catalog_products:
        coverage = f"{data.products_with_events:,} of {data.catalog_products:,} ({data.products_with_events / data.catalog_products:.1%})"
    facts = [("Events", f"{data.events:,}"), ("First event", data.first_event or "-"),
             ("Last event", data.last_event or "-"), ("Dated in the future", f"{data.future_events:,}"),
             (f"Dated over {FAR_PAST_YEARS} years ago", f"{data.far_past_events:,}"),
             ("Products with events", f"{data.products_with_events:,}"), ("Catalog coverage", coverage)]
    facts += [(f"Format {name}", f"{n:,} events") for name, n in data.by_format.items()]
    facts += [(f"Run: {k}", e(json.dumps(v)) if isinstance(v, (dict, list)) else e(str(v)))
              for k, v in data.counts.items() if k not in ("skipped_paths", "files_written")]
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(data.title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}"
             "td,th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}figure{margin:1.5em 0}"
             "figcaption{font-weight:bold;margin-bottom:4px}svg{max-width:100%;height:auto}</style></head><body>",
             f"<h1>{e(data.title)}</h1><p>{e(data.subtitle)}</p>",
             f"<p class='note'>{e(data.note)}</p>" if data.note else "", "<table id='facts'>",
             *(f"<tr><th>{e(k)}</th><td>{v if k.startswith('Run: ') else e(v)}</td></tr>" for k, v in facts),
             "</table>"]
    for chart, (caption, svg) in chart_svgs(data).items():
        parts.append(f"<figure class='chart' id='{chart}'><figcaption>{e(caption)}</figcaption>{svg}</figure>")
    if data.events:
        parts.append(_readiness_table(data))
    if data.sample_links:
        parts.append("<h2>Error samples</h2><ul>")
        parts += [f"<li><a href='{e(_link(path))}'>{e(run)}</a>: {e(path)}</li>" for run, path in data.sample_links]
        parts.append("</ul>")
    if data.missing_products:
        parts.append("<h2>Most frequent missing product ids</h2><table id='missing'><tr><th>id</th><th>events</th></tr>")
        parts += [f"<tr><td>{e(str(k))}</td><td>{v:,}</td></tr>" for k, v in data.missing_products]
        parts.append("</table>")
    if not data.events:
        parts.append("<p>No event in scope: nothing of the events to draw.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def personalize_readiness(data: ReportData) -> dict:
    """The checks ``export --format personalize`` makes, on the events in scope (before the
    export's own choices: its metadata columns, and the catalog it is given, are not known here)."""
    from eventlake.formats.personalize.export import readiness

    observed = {"interactions": data.interactions, "repeat_users": data.repeat_users, "long_ids": data.long_ids,
                "event_types": set(data.per_day.columns) if not data.per_day.empty else set(), "metadata": set()}
    return readiness(observed, None, None)


def _readiness_table(data: ReportData) -> str:
    e = html.escape
    report = personalize_readiness(data)
    rows = "".join(f"<tr><td>{e(c['check'])}</td><td>{e(str(c['status']))}</td><td>{e(str(c['value']))}</td>"
                   f"<td>{e(c['message'])}</td></tr>" for c in report["checks"])
    return (f"<h2>Personalize readiness: {e(report['status'])}</h2><p>The checks <code>eventlake export --format "
            "personalize</code> makes, on these events (its metadata columns and catalog are not counted here).</p>"
            f"<table id='personalize-readiness'><tr><th>check</th><th>status</th><th>value</th><th>why</th></tr>{rows}"
            "</table>")


def _link(path: str) -> str:
    return path if "://" in path else "file://" + path


def run_report(store: str, job: str, summary: dict, paths: list[str]) -> None:
    """The report of one run, written to ``paths``: an import's of the events it brought in;
    a rejoin's or purge's of its counts (a purge's never names what it purged)."""
    version = summary.get("version")
    large = int(summary.get("stored") or 0) > RUN_SCAN_EVENTS
    data = store_report(store, version=version if version is not None else -2, run=summary,
                        scan=job in ("import", "features-import") and version is not None and not large)
    if large and job == "import":
        data.note = (f"This run stored {summary['stored']:,} events: its charts of events are left to "
                     f"'eventlake report --store {store}', which reads them (about a second per million events).")
    data.title = f"eventlake {job} {summary.get('run_id', '')}: {store}"
    from eventlake.io.files import write_bytes

    page = render_html(data).encode()  # drawn once, written to each place
    for path in paths:
        write_bytes(path, page)


def write_report(data: ReportData, path: str) -> str:
    from eventlake.io.files import write_bytes

    write_bytes(path, render_html(data).encode())
    return path


__all__ = ["ReportData", "chart_svgs", "gather", "render_html", "store_report", "write_report"]
