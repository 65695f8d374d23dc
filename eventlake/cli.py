"""``eventlake <job> ...``: flags and config -> a job run -> a readable summary and an exit code.

Flags the job does not define must be Beam's (``--runner``, ``--direct_num_workers``, ...);
anything else is refused with the closest known flag. Expected failures print one line;
``--debug`` shows the traceback of unexpected ones.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Mapping

from eventlake import __version__, joblog
from eventlake.config import (
    REJOIN_SCOPES,
    ConfigError,
    ExportConfig,
    FeaturesConfig,
    ImportConfig,
    PurgeConfig,
    RejoinConfig,
    SamplesConfig,
    load_config,
)

EXIT_CODES = """exit status: 0 the job did what it was asked (or found nothing to change); 1 it failed and
the store is as it was; 2 a bad flag or config key; 130 interrupted (Ctrl-C)."""

DESCRIPTION = f"""eventlake imports user-interaction events (Google Cloud Retail UserEvent JSON lines, Amazon
Personalize CSV and PutEvents bodies, Alibaba OpenSearch behavior documents, PAI-Rec behavior
logs and callbacks, GA4 BigQuery exports, any CSV/JSON/Parquet log through a mapping; plain or
.gz/.bz2/.zst, from local disk, gs://, s3://, http(s):// or sftp://) into a versioned event
store, a Delta Lake table of Parquet files: every record is validated, joined against a product
catalog and deduplicated, or kept as an error sample saying which line and field failed and
why. rejoin, purge, history and vacuum maintain the store; export writes its events as
Personalize, Retail, RecBole, Parquet or CSV datasets; features import and samples turn
ranking-time feature logs and exposures into training samples; report draws the store's
quality report. Every job is an Apache Beam pipeline: it runs locally and, with --runner and
that runner's options, on Dataflow, Flink or Spark.

{EXIT_CODES}"""

IMPORT_DESCRIPTION = f"""Import event files into the store: --format retail (UserEvent JSON lines, the default),
personalize (interactions CSV), personalize-events (PutEvents bodies), opensearch (behavior
documents), pairec-behavior (CSV, JSON lines or Parquet), pairec-callback (callback bodies), ga4
(BigQuery export rows), mapped (columns named in the config's format_options) or auto;
optionally .gz/.bz2/.zst. --catalog is optional: without one the events are stored unjoined.
Each record is stored, dropped as a duplicate, skipped by a documented rule of its format
(GA4's unmapped events) or written as an error sample (google.rpc.Status
JSON lines under <store>/_errors/<run id>/, or --errors DIR); files already imported are skipped
unless --reimport. A run commits one new store version or nothing.

{EXIT_CODES}"""

REJOIN_DESCRIPTION = f"""Join stored events again against a new product catalog (--catalog-format retail, the default:
Product JSON lines; personalize-items; opensearch-items; auto; optionally compressed) and
rewrite only the files whose events changed. Invalid catalog lines are written
as error samples under <store>/_errors/<run id>/. A catalog with no valid product, or one that
would unjoin over half of the joined events in scope (unless --allow-mass-unjoin), is refused.
A run commits one new version or nothing.

{EXIT_CODES}"""

PURGE_DESCRIPTION = f"""Delete stored events matching a Retail purge filter (visitorId, userId, eventType, eventTime;
AND-ed). Without --force it only counts; with --force it commits the deletion, removes the old
files and every matching error sample, and records the filter with its values hashed.

{EXIT_CODES}"""

VACUUM_DESCRIPTION = f"""Remove every file under the store that no current version references: superseded files a
purge or rejoin was killed before deleting, data files and _tmp/ scratch of failed or killed
runs, half-written log temporaries. Files of runs still in progress and error samples are
kept. Every job does this first by itself; --dry-run lists what would go.

{EXIT_CODES}"""

EXPORT_DESCRIPTION = f"""Export the store's events (all, a --filter of them, or those imported after --since-version)
as the files a trainer or service ingests: --format personalize (interactions.csv + Avro
schema, items.csv with --catalog, readiness.json), retail (UserEvent JSON lines), recbole
(<name>.inter, <name>.item), parquet or csv (flat tables). --split makes train/valid/test files.
Large exports are sharded (<table>/part-00000-of-00004.csv). Files are staged and published
only when the run succeeds; a non-empty --output is refused unless --overwrite.

{EXIT_CODES}"""

FEATURES_DESCRIPTION = f"""Import ranking-time feature logs into the features table beside the store (<store>/_features,
or --features-store): --format pairec-feature-log (PAI-Rec callback logs, module user / item
records, as JSON lines, CSV or Parquet). Each record is validated (module, request id and time,
item id on item records, feature fields that are JSON objects), then stored partitioned by the
request's date, dropped as a duplicate, or written as an error sample. One commit or none.
The training-samples job reads this table.

{EXIT_CODES}"""

SAMPLES_DESCRIPTION = f"""Build training samples from the store: one row per exposure (--exposure-types, default expose;
one per user, request and item), a 0/1 column per --label NAME=TYPES (an event of those types for
the same user and item, of the same request when it names one, at most --window after the
exposure; each event is claimed by one exposure) and NAME_value (the claimed events' event_value),
and the user and item features of the request from the features table (<store>/_features or
--features-store), only records written at or before the exposure. --flatten-features adds a
typed column per feature key; --format tfrecord writes tf.train.Example records; --split as in
export. Output is staged and published only when the run succeeds.

{EXIT_CODES}"""

REPORT_DESCRIPTION = f"""Draw the store's health as one self-contained HTML page (charts inline, no network): events
per day by event type, share joined per day, errors by reason and by source file with links to
the samples, the product ids most often missing from the catalog and the catalog's coverage,
the visitors with the most events, the event time range with events dated in the future or far
in the past, duplicates per import. Every import, rejoin and purge also writes one for its run
beside its summary (<store>/_runs/<job>.html; --no-report turns that off).

{EXIT_CODES}"""

HISTORY_DESCRIPTION = f"""List the store's versions: when, which job, its parameters and counts.

{EXIT_CODES}"""


def _job_parser(sub, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=summary, description=description, allow_abbrev=False,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    # also after the job name; SUPPRESS keeps a --debug given before it
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and Beam's log")
    p.add_argument("--log-format", choices=["text", "json"], default=argparse.SUPPRESS,
                   help="json: also one JSON line on stderr per job stage (start, run, done or failed)")
    return p


def _import_parser(sub) -> None:
    p = _job_parser(sub, "import", "import Retail user-event files into the event store", IMPORT_DESCRIPTION)
    p.add_argument("--events", action="append", help="event file or glob; repeat for more")
    p.add_argument("--format", help="the events' format: retail (default), personalize, personalize-events, opensearch, "
                        "pairec-behavior, ga4, mapped (with a mapping in --config), or a registered one")
    p.add_argument("--format-option", action="append", metavar="KEY=VALUE", dest="format_options",
                   help="an option of the format, e.g. timezone=UTC for pairec-behavior; repeat for more")
    p.add_argument("--catalog", help="the product catalog (Retail Product JSON lines by default); without one no join is done "
                   "(joined is null) until a rejoin")
    _catalog_format_flags(p)
    p.add_argument("--store", help="event store (Delta Lake table) location")
    p.add_argument("--errors", help="error samples directory (default <store>/_errors/<run id>)")
    p.add_argument("--summary", help="also write the summary JSON here")
    p.add_argument("--max-error-ratio", type=float, help="fail, committing nothing, above this error ratio")
    p.add_argument("--reimport", action="store_true", default=None, help="import files the store already has")
    p.add_argument("--allow-missing", action="store_true", default=None,
                   help="go on when an --events pattern matches no file (otherwise an error)")
    p.add_argument("--keep-rejects", action="store_true", default=None,
                   help="also write every rejected record whole to rejects.jsonl in the run's error folder")
    p.add_argument("--replay", metavar="RUN", help="import again the records run RUN rejected (its run id, or a "
                   "rejects.jsonl path; the run was made with --keep-rejects), under this config")
    _progress_flag(p)
    _report_flag(p)
    p.add_argument("--config", help="YAML job config (flags override it)")


def _report_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=None,
                   help="write the run's HTML report beside its summary, <store>/_runs/<job>.html (default on)")


def _report_parser(sub) -> None:
    p = _job_parser(sub, "report", "draw the store's quality report: one self-contained HTML page", REPORT_DESCRIPTION)
    p.add_argument("--store", required=True, help="event store (Delta Lake table) location")
    p.add_argument("--output", help="the HTML file (default <store>/_runs/report.html)")
    p.add_argument("--since", help="only events dated on or after this day (YYYY-MM-DD)")


def _progress_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show progress on stderr while the files are read (default: on a terminal)")


def _catalog_format_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog-format", help="the catalog's format: retail (default), personalize-items")
    p.add_argument("--catalog-field", action="append", metavar="COLUMN=FIELD", dest="catalog_field_map",
                   help="fill a catalog field from a source column, e.g. GENRE=categories; repeat for more")
    p.add_argument("--catalog-format-option", action="append", metavar="KEY=VALUE", dest="catalog_format_options",
                   help="an option of the catalog format; repeat for more")


def _rejoin_parser(sub) -> None:
    p = _job_parser(sub, "rejoin", "join stored events again against a changed catalog", REJOIN_DESCRIPTION)
    p.add_argument("--store", help="event store (Delta Lake table) location")
    p.add_argument("--catalog", help="the new product catalog (Retail Product JSON lines by default)")
    _catalog_format_flags(p)
    p.add_argument("--scope", choices=REJOIN_SCOPES, help="which events: all (default), joined or unjoined")
    p.add_argument("--allow-mass-unjoin", action="store_true", default=None,
                   help="commit even if over half of the joined events in scope would become unjoined")
    p.add_argument("--summary", help="also write the summary JSON here")
    _report_flag(p)
    p.add_argument("--config", help="YAML job config (flags override it)")


def _purge_parser(sub) -> None:
    p = _job_parser(sub, "purge", "delete stored events matching a filter (a dry run without --force)",
                    PURGE_DESCRIPTION)
    p.add_argument("--store", help="event store (Delta Lake table) location")
    p.add_argument("--filter", help='Retail filter, e.g. \'visitorId = "visitor1024"\'')
    p.add_argument("--force", action="store_true", default=None, help="delete for good; otherwise only count")
    p.add_argument("--summary", help="also write the summary JSON here")
    _report_flag(p)
    p.add_argument("--config", help="YAML job config (flags override it)")


def _export_parser(sub) -> None:
    p = _job_parser(sub, "export", "write the store's events as a dataset for a trainer or service", EXPORT_DESCRIPTION)
    p.add_argument("--store", help="event store (Delta Lake table) location")
    p.add_argument("--format", help="personalize, retail, recbole, parquet or csv")
    p.add_argument("--output", help="output folder (local, gs:// or s3://)")
    p.add_argument("--filter", help='only matching events, e.g. \'eventType = (detail-page-view OR purchase-complete)\'')
    p.add_argument("--catalog", help="product catalog for item files and the readiness check")
    _catalog_format_flags(p)
    p.add_argument("--since-version", type=int, help="only events imported after this store version")
    p.add_argument("--split", help="time:0.8,0.1,0.1 or leave-last:N")
    p.add_argument("--compression", choices=["gzip"], help="gzip the text files")
    p.add_argument("--name", help="dataset name for formats that name files by it (RecBole)")
    p.add_argument("--rows-per-file", type=int, help="about how many events per output file (default 1000000)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace the files of a non-empty output")
    p.add_argument("--summary", help="also write the summary JSON here")
    p.add_argument("--config", help="YAML job config (flags override it)")


def _features_parser(sub) -> None:
    p = _job_parser(sub, "features", "import ranking-time feature logs (features import)", FEATURES_DESCRIPTION)
    p.add_argument("action", choices=["import"], help="what to do with feature logs: import")
    p.add_argument("files", nargs="*", default=None, metavar="FILE", help="feature-log files or globs")
    p.add_argument("--store", help="the event store; the features table is <store>/_features")
    p.add_argument("--features-store", help="the features table (Delta Lake), when not <store>/_features")
    p.add_argument("--format", help="the logs' format: pairec-feature-log (default)")
    p.add_argument("--errors", help="error samples directory (default <features table>/_errors/<run id>)")
    p.add_argument("--summary", help="also write the summary JSON here")
    p.add_argument("--max-error-ratio", type=float, help="fail, committing nothing, above this error ratio")
    p.add_argument("--reimport", action="store_true", default=None, help="import files the table has already")
    p.add_argument("--allow-missing", action="store_true", default=None,
                   help="go on when a pattern matches no file (otherwise an error)")
    _progress_flag(p)
    p.add_argument("--config", help="YAML job config (its features: section; flags override it)")


def _samples_parser(sub) -> None:
    p = _job_parser(sub, "samples", "build training samples: exposures labelled, with request-time features",
                    SAMPLES_DESCRIPTION)
    p.add_argument("--store", help="event store (Delta Lake table) location")
    p.add_argument("--output", help="output folder (local, gs:// or s3://)")
    p.add_argument("--features-store", help="the features table, when not <store>/_features")
    p.add_argument("--exposure-types", type=_comma_list, help="exposure event types, comma-separated (default expose)")
    p.add_argument("--label", dest="labels", action="append", metavar="NAME=TYPES",
                   help="a label and its event types, repeatable (default click=detail-page-view, "
                        "cart=add-to-cart, buy=purchase-complete)")
    p.add_argument("--window", help="how long after an exposure a label event counts (default 30m; s, m, h, d)")
    p.add_argument("--filter", help="only events matching this filter are read")
    p.add_argument("--flatten-features", action="store_true", default=None,
                   help="also a typed column per feature key (user__age), typed over the run")
    p.add_argument("--format", choices=["parquet", "tfrecord"], help="output files (default parquet)")
    p.add_argument("--split", help="time:0.8,0.1,0.1 or leave-last:N")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace the files of a non-empty output")
    p.add_argument("--summary", help="also write the summary JSON here")
    p.add_argument("--config", help="YAML job config (its samples: section; flags override it)")


def _comma_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _history_parser(sub) -> None:
    p = _job_parser(sub, "history", "list the store's versions: time, job, parameters, counts", HISTORY_DESCRIPTION)
    p.add_argument("--store", required=True, help="event store (Delta Lake table) location")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="eventlake", description=DESCRIPTION, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"eventlake {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Beam's log")
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="json: also one JSON line on stderr per job stage (start, run, done or failed)")
    sub = parser.add_subparsers(dest="job", required=True,
                                metavar="{import,rejoin,purge,export,features,samples,report,history,vacuum}")
    for add in (_import_parser, _rejoin_parser, _purge_parser, _export_parser, _features_parser, _samples_parser,
                _report_parser, _history_parser,
                _vacuum_parser):
        add(sub)
    return parser, dict(sub.choices)


class _Interrupt:
    """Ctrl-C: stop quietly. Beam wraps the ``KeyboardInterrupt`` of a worker thread in its own
    error and its workers log it; after the first interrupt nothing more is logged, and the flag
    tells the wrapped error from a real failure."""

    seen = False

    stderr = None  # the real stderr, kept for the one line; fd 2 goes quiet on an interrupt

    @classmethod
    def handle(cls, signum, frame):
        if not cls.seen:
            cls.seen = True
            logging.disable(logging.CRITICAL)
            # Beam's runner threads report the dying workers with tracebacks of their own.
            cls.stderr = os.fdopen(os.dup(2), "w")
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
        raise KeyboardInterrupt

    @classmethod
    def say(cls, text: str) -> None:
        print(text, file=cls.stderr or sys.stderr, flush=True)


def _vacuum_parser(sub) -> None:
    p = _job_parser(sub, "vacuum", "remove files no version references (leftovers of failed or killed runs)",
                    VACUUM_DESCRIPTION)
    p.add_argument("--store", required=True, help="event store (Delta Lake table) location")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, _Interrupt.handle)
    use_jemalloc()
    try:
        return _main(argv)
    except KeyboardInterrupt:
        try:
            landed = _after_interrupt()
        except KeyboardInterrupt:  # pressed again: stop now; the next job finishes the clean-up
            landed = None
        if landed is None:
            _Interrupt.say("eventlake: interrupted; the store keeps whole versions only ('eventlake history' shows "
                           "whether this run committed one)")
        elif landed:
            versions = ", ".join(f"version {v} of {store}" for store, v in landed)
            _Interrupt.say(f"eventlake: interrupted after the commit landed: {versions} is complete "
                           "('eventlake history' shows it)")
            return 0
        else:
            _Interrupt.say("eventlake: interrupted; nothing was committed and the store is as it was")
        return 130


MEMORY_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def use_jemalloc() -> None:
    """Arrow's allocations in this process and its workers go to jemalloc, unless
    ``ARROW_DEFAULT_MEMORY_POOL`` chooses. Arrow's default, mimalloc, held 150 MB more at the
    peak of a 5M-event import (1,101 against 951 MB over its processes) for the same speed: a
    job allocates and frees a block's worth of buffers many times over. Worker processes
    inherit the variable and read it when they first allocate."""
    if MEMORY_POOL_VARIABLE in os.environ:
        return
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without it: keep its default
        return
    os.environ[MEMORY_POOL_VARIABLE] = "jemalloc"


def _after_interrupt() -> list[tuple[str, int]] | None:
    """What an interrupted run did: the commits it landed, after stopping any commit from
    starting in this process (None when that cannot be told); then the clean-up its next job
    would do, done now."""
    running = sys.modules.get("eventlake.pipelines.running")
    if running is None:
        return []  # interrupted before any job started
    from eventlake.faults import stop_commits

    stop_commits()
    try:
        landed = running.landed_commits()
    except Exception:  # noqa: BLE001 - the log cannot be read now: whether it landed is unknown
        return None
    from eventlake.pipelines.vacuum import tidy_store

    for store, run_id in running.started_runs():
        try:
            running.remove_scratch(store, run_id)
            tidy_store(store, running.read_store(store, must_exist=False))
        except Exception:  # noqa: BLE001 - best effort: every later job or vacuum does it too
            pass
    return landed


def _main(argv: list[str] | None) -> int:
    parser, jobs = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    # Without --debug the user reads one line from us; Beam's error logs would repeat it in 40.
    logging.basicConfig(level=logging.INFO if args.debug else logging.CRITICAL)
    own_flags = {o for a in jobs[args.job]._actions for o in a.option_strings}  # noqa: SLF001
    # Beam is imported after logging is set, so that its import-time warnings stay quiet.
    from eventlake.beam_flags import unknown_flag_message
    from eventlake.pipelines.running import JobError, forget_runs

    forget_runs()
    joblog.configure(args.log_format, args.job)
    # flag names only: a value can name what a purge deletes, and log collectors keep lines for good
    joblog.stage("start", flags=sorted({a.split("=", 1)[0] for a in (argv if argv is not None else sys.argv[1:])
                                        if a.startswith("--")}))

    try:
        refusal = unknown_flag_message(beam_args, own_flags)
        if refusal:
            raise ConfigError(refusal)
        output = _run(args, beam_args)
    except (ConfigError, JobError) as exc:
        code = 2 if isinstance(exc, ConfigError) else 1
        _say_failure(args.job, str(exc), code)
        return code
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback behind --debug
        if _Interrupt.seen:
            raise KeyboardInterrupt from None
        if args.debug:
            raise
        _say_failure(args.job, f"failed: {_first_line(exc)} (run with --debug for details)", 1)
        return 1
    _print_result(output)
    return 0


def _say_failure(job: str, message: str, code: int) -> None:
    """The failure in one line: as text, or with ``--log-format json`` as the ``failed`` stage."""
    if joblog.enabled():
        joblog.stage("failed", exit_code=code, error=message)
    else:
        print(f"eventlake {job}: {message}", file=sys.stderr)


def _print_result(output: str) -> None:
    """Print what the job did. The job is done by now: a reader that closed the pipe early
    (``eventlake import ... | head -1``) must not turn its success into a failure."""
    try:
        print(output)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit does not fail again


def _run(args: argparse.Namespace, beam_args: list[str]) -> str:
    """Run the chosen job; return what to print."""
    if args.job in ("history", "vacuum", "report") and beam_args:  # no pipeline: Beam options mean nothing here
        raise ConfigError(f"unknown arguments: {' '.join(beam_args)}")
    if args.job == "history":
        from eventlake.pipelines.history import format_history, store_history

        entries = store_history(args.store)
        return "\n".join(json.dumps(e) for e in entries) if args.json else format_history(entries)
    if args.job == "report":
        return _draw_report(args)
    if args.job == "vacuum":
        from eventlake.pipelines.vacuum import vacuum

        return format_vacuum(vacuum(args.store, dry_run=args.dry_run))
    overrides = {k: v for k, v in vars(args).items() if k not in ("job", "config", "debug", "action", "log_format")}
    if "progress" in overrides and overrides["progress"] is None:
        # on a terminal by default; never between JSON log lines unless asked for
        overrides["progress"] = True if sys.stderr.isatty() and not joblog.enabled() else None
    if overrides.get("files") == []:
        overrides["files"] = None  # none on the command line: the config's, if any
    for key, flag in (("catalog_field_map", "--catalog-field"), ("format_options", "--format-option"),
                      ("catalog_format_options", "--catalog-format-option"), ("labels", "--label")):
        if overrides.get(key) is not None:
            overrides[key] = _pairs(flag, overrides[key])
    if args.job == "import":
        from eventlake.pipelines.import_events import run_import

        return format_summary(run_import(load_config(args.config, overrides, ImportConfig), beam_args))
    if args.job == "rejoin":
        from eventlake.pipelines.rejoin import run_rejoin

        return format_summary(run_rejoin(load_config(args.config, overrides, RejoinConfig), beam_args))
    if args.job == "features":
        from eventlake.pipelines.features import run_features_import

        return format_summary(run_features_import(load_config(args.config, overrides, FeaturesConfig), beam_args))
    if args.job == "samples":
        from eventlake.pipelines.samples import run_samples

        return format_samples(run_samples(load_config(args.config, overrides, SamplesConfig), beam_args))
    if args.job == "export":
        from eventlake.pipelines.export import run_export

        return format_export(run_export(load_config(args.config, overrides, ExportConfig), beam_args))
    from eventlake.pipelines.purge import run_purge

    return format_summary(run_purge(load_config(args.config, overrides, PurgeConfig), beam_args))


def _draw_report(args: argparse.Namespace) -> str:
    import datetime as dt

    from eventlake.io.delta_log import join_path
    from eventlake.pipelines.running import JobError, absolute, prepare_run, read_store
    from eventlake.report import store_report, write_report

    if args.since:
        try:
            dt.date.fromisoformat(args.since)
        except ValueError:
            raise ConfigError(f"--since: {args.since!r} is not a day; give YYYY-MM-DD") from None
    store = absolute(args.store)
    output = args.output or join_path(store, "_runs", "report.html")
    prepare_run([], [store, output])
    read_store(store)  # one line when there is no store
    data = store_report(store, since=args.since)
    try:
        write_report(data, absolute(output))
    except OSError as exc:
        raise JobError(f"--output: cannot write {output}: {exc.strerror or exc}") from None
    return format_summary({"events": data.events, "charts": len(data.charts), "report": absolute(output)})


def _pairs(flag: str, values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise ConfigError(f"{flag}: expected {'COLUMN=FIELD' if flag == '--catalog-field' else 'KEY=VALUE'}, "
                              f"got {value!r}")
        out[key.strip()] = target.strip()
    return out


_OS_ERROR = re.compile(r"\[Errno (\d+)\] ([^\[\]\n]+?)(?:: '([^']*)')?(?: \[while running|$)", re.MULTILINE)


def _first_line(exc: Exception) -> str:
    """The message of an unexpected failure in one line. An operating-system error (a full disk,
    a permission) is said as such even when Beam has wrapped it in its own error."""
    found = _OS_ERROR.search(str(exc))
    if found:
        where = f" ({found.group(3)})" if found.group(3) else ""
        return f"{found.group(2).strip()}{where}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def format_vacuum(summary: Mapping) -> str:
    verb = "would remove" if summary["dry_run"] else "removed"
    lines = [format_summary({k: v for k, v in summary.items() if k != "paths"})]
    lines += [f"{verb}  {path}" for path in summary["paths"]]
    return "\n".join(lines)


def format_export(summary: Mapping) -> str:
    """The export summary: counts, then each file written, then the readiness checks."""
    rows = [(k, summary[k]) for k in ("format", "output", "version", "since_version", "split", "files_total",
                                      "files_read", "events_read", "events_exported", "events_skipped",
                                      "rows_written", "catalog_products", "catalog_errors", "seconds")
            if k in summary and (summary[k] is not None or k == "since_version")]
    rows += [(f"  skipped: {reason}", n) for reason, n in summary.get("skipped_by_reason", {}).items()]
    rows += [(f"  part {part}", n) for part, n in summary.get("events_by_part", {}).items()]
    rows += [(f"  file {name}", "-" if n is None else f"{n} rows") for name, n in summary.get("files_written", {}).items()]
    readiness = summary.get("readiness") or {}
    if readiness:
        rows.append(("readiness", readiness["status"]))
        rows += [(f"  {c['check']}", f"{c['status']}: {c['value']} ({c['message']})") for c in readiness["checks"]]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in rows)


def format_samples(summary: Mapping) -> str:
    """The samples summary: exposures and what became of them, each label, the features' gaps."""
    rows = [(k, summary[k]) for k in ("output", "version", "features_store", "features_version", "window_seconds",
                                      "split", "format", "files_read", "feature_files_read", "exposures",
                                      "duplicate_exposures", "exposures_skipped", "samples", "rows_written")
            if k in summary]
    rows += [(f"  skipped: {reason}", n) for reason, n in summary.get("skipped_by_reason", {}).items()]
    for name, positives in summary.get("positives", {}).items():
        rate = summary.get("positive_rate", {}).get(name)
        rows.append((f"label {name}", f"{positives} positive ({'-' if rate is None else f'{rate:.2%}'}), "
                                      f"{summary.get('label_events', {}).get(name, 0)} events, "
                                      f"unattributed_{name} {summary.get(f'unattributed_{name}', 0)}"))
    rows += [(k, summary[k]) for k in ("exposures_without_user_features", "exposures_without_item_features",
                                       "user_features_written_after_exposure", "item_features_written_after_exposure",
                                       "seconds") if k in summary]
    rows += [(f"  part {part}", n) for part, n in summary.get("samples_by_part", {}).items()]
    rows += [(f"  file {name}", f"{n} rows") for name, n in summary.get("files_written", {}).items()]
    if summary.get("note"):
        rows.append(("note", summary["note"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in rows)


def format_summary(summary: Mapping) -> str:
    """The summary as an aligned two-column table."""
    rows = []
    for key in ("dry_run", "records", "stored", "joined", "unjoined", "duplicates", "errors", "skipped", "skipped_files",
                "files",
                "scope", "events_in_scope", "rejoined", "newly_joined", "newly_unjoined", "events_changed", "purged",
                "error_samples_removed",
                "files_total", "files_scanned", "files_ruled_out", "files_skipped", "files_rewritten", "catalog_products",
                "catalog_errors",
                "superseded", "unreferenced", "scratch", "log_temps", "files_removed", "bytes_removed",
                "leftovers_removed", "version", "seconds", "events_per_second", "events", "charts", "report"):
        if key in summary:
            rows.append((key, summary[key]))
    for path, name in summary.get("formats", {}).items():
        rows.append((f"  format {name}", path))
    for name, counts in summary.get("by_format", {}).items():
        rows.append((f"  {name}", f"records {counts['records']}, errors {counts['errors']}"))
    for reason, count in summary.get("errors_by_reason", {}).items():
        rows.append((f"  error {reason}", count))
    for reason, count in summary.get("skipped_by_reason", {}).items():
        rows.append((f"  skipped {reason}", count))
    for kind, count in {**summary.get("by_event_type", {}), **summary.get("purged_by_event_type", {})}.items():
        rows.append((f"  type {kind}", count))
    for module, count in summary.get("by_module", {}).items():
        rows.append((f"  module {module}", count))
    features = summary.get("features")
    if isinstance(features, dict):
        if "note" in features:
            rows.append(("features table", features["note"]))
        else:
            rows.append(("features purged", features["purged"]))
            rows.append(("  features files rewritten", features["files_rewritten"]))
            rows.append(("  features version", features["version"]))
    if summary.get("features_store"):
        rows.append(("features table", summary["features_store"]))
    if summary.get("replayed_from"):
        rows.append(("replayed", f"{summary['replayed_records']} rejected records of {summary['replayed_from']}"))
        rows.append(("  replay inputs", summary["replay_inputs"]))
    workers = summary.get("workers") or {}
    if workers:
        rows.append(("workers", f"{workers.get('workers', '-')} ({workers.get('running_mode', workers.get('runner'))})"
                     if workers.get("runner") == "local" else workers.get("runner")))
    if summary.get("note"):
        rows.append(("note", summary["note"]))
    if summary.get("errors_path") and (summary.get("errors") or summary.get("catalog_errors")):
        rows.append(("error samples", summary["errors_path"]))
    skipped = summary.get("skipped_paths") or []
    for path in skipped[:5]:
        rows.append(("  imported before", path))
    if len(skipped) > 5:
        rows.append(("  imported before", f"... and {len(skipped) - 5} more"))
    if skipped:
        rows.append(("note", f"{len(skipped)} files were imported before and skipped; --reimport imports them again "
                             "(their events are dropped as duplicates)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in rows)


def entry_point() -> None:
    """The ``eventlake`` command: ``main``, then exit at once, without the interpreter's
    teardown. The job is over by then (committed or cleaned up, its summary written, no file
    left open), and tearing down the modules Beam brings in took 0.3 s of every run, a seventh
    of a purge. The exit hooks (``atexit``: logging's flush among them) run first and the
    streams are flushed. After Ctrl-C the hooks are skipped too: an interrupted pipeline can
    leave a Beam worker thread (not a daemon) waiting for work that never comes, and a normal
    exit would wait for it forever (seen once in about thirty runs of the Ctrl-C test)."""
    code = main()
    if not _Interrupt.seen:
        run_exit_hooks = getattr(atexit, "_run_exitfuncs", None)  # CPython's; elsewhere, a normal exit
        if run_exit_hooks is None:
            sys.exit(code)
        run_exit_hooks()
    for stream in (sys.stdout, sys.stderr, _Interrupt.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry_point()

