"""``eventlake <job> ...``: flags and config -> a job run -> a readable summary and an exit code.

Unknown flags are passed to Beam (``--runner``, ``--direct_num_workers``, ...). Expected
failures print one line; ``--debug`` shows the traceback of unexpected ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from eventlake.config import REJOIN_SCOPES, ConfigError, ImportConfig, PurgeConfig, RejoinConfig, load_config


def _import_parser(sub) -> None:
    p = sub.add_parser("import", help="import Retail user-event files into the event store")
    p.add_argument("--events", action="append", help="event file or glob; repeat for more")
    p.add_argument("--catalog", help="Retail Product JSON lines")
    p.add_argument("--store", help="event store (Delta Lake table) location")
    p.add_argument("--errors", help="error samples directory (default <store>/_errors/<run id>)")
    p.add_argument("--summary", help="also write the summary JSON here")
    p.add_argument("--max-error-ratio", type=float, help="fail, committing nothing, above this error ratio")
    p.add_argument("--reimport", action="store_true", default=None, help="import files the store already has")
    p.add_argument("--config", help="YAML job config (flags override it)")


def _rejoin_parser(sub) -> None:
    p = sub.add_parser("rejoin", help="join stored events again against a changed catalog")
    p.add_argument("--store", help="event store (Delta Lake table) location")
    p.add_argument("--catalog", help="the new Retail Product JSON lines")
    p.add_argument("--scope", choices=REJOIN_SCOPES, help="which events: all (default), joined or unjoined")
    p.add_argument("--summary", help="also write the summary JSON here")
    p.add_argument("--config", help="YAML job config (flags override it)")


def _purge_parser(sub) -> None:
    p = sub.add_parser("purge", help="delete stored events matching a filter (a dry run without --force)")
    p.add_argument("--store", help="event store (Delta Lake table) location")
    p.add_argument("--filter", help='Retail filter, e.g. \'visitorId = "visitor1024"\'')
    p.add_argument("--force", action="store_true", default=None, help="delete for good; otherwise only count")
    p.add_argument("--summary", help="also write the summary JSON here")
    p.add_argument("--config", help="YAML job config (flags override it)")


def _history_parser(sub) -> None:
    p = sub.add_parser("history", help="list the store's versions: time, job, parameters, counts")
    p.add_argument("--store", required=True, help="event store (Delta Lake table) location")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eventlake", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Beam's log")
    sub = parser.add_subparsers(dest="job", required=True)
    for add in (_import_parser, _rejoin_parser, _purge_parser, _history_parser):
        add(sub)
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.ERROR)
    # Beam is imported after logging is set, so that its import-time warnings stay quiet.
    from eventlake.pipelines.running import JobError

    try:
        print(_run(args, beam_args))
    except (ConfigError, JobError) as exc:
        print(f"eventlake {args.job}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback behind --debug
        if args.debug:
            raise
        print(f"eventlake {args.job}: failed: {_first_line(exc)} (run with --debug for details)", file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace, beam_args: list[str]) -> str:
    """Run the chosen job; return what to print."""
    if args.job == "history":
        from eventlake.pipelines.history import format_history, store_history

        if beam_args:
            raise ConfigError(f"unknown arguments: {' '.join(beam_args)}")
        entries = store_history(args.store)
        return "\n".join(json.dumps(e) for e in entries) if args.json else format_history(entries)
    overrides = {k: v for k, v in vars(args).items() if k not in ("job", "config", "debug")}
    if args.job == "import":
        from eventlake.pipelines.import_events import run_import

        return format_summary(run_import(load_config(args.config, overrides, ImportConfig), beam_args))
    if args.job == "rejoin":
        from eventlake.pipelines.rejoin import run_rejoin

        return format_summary(run_rejoin(load_config(args.config, overrides, RejoinConfig), beam_args))
    from eventlake.pipelines.purge import run_purge

    return format_summary(run_purge(load_config(args.config, overrides, PurgeConfig), beam_args))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def format_summary(summary: dict) -> str:
    """The summary as an aligned two-column table."""
    rows = []
    for key in ("dry_run", "records", "stored", "joined", "unjoined", "duplicates", "errors", "skipped_files", "files",
                "scope", "events_in_scope", "rejoined", "newly_joined", "newly_unjoined", "events_changed", "purged",
                "files_total", "files_scanned", "files_skipped", "files_rewritten", "catalog_products", "catalog_errors",
                "version", "seconds", "events_per_second"):
        if key in summary:
            rows.append((key, summary[key]))
    for reason, count in summary.get("errors_by_reason", {}).items():
        rows.append((f"  error {reason}", count))
    for kind, count in {**summary.get("by_event_type", {}), **summary.get("purged_by_event_type", {})}.items():
        rows.append((f"  type {kind}", count))
    if summary.get("errors_path") and summary.get("errors"):
        rows.append(("error samples", summary["errors_path"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in rows)


if __name__ == "__main__":
    sys.exit(main())

