"""``eventlake <job> ...``: flags and config -> a job run -> a readable summary and an exit code.

Unknown flags are passed to Beam (``--runner``, ``--direct_num_workers``, ...). Expected
failures print one line; ``--debug`` shows the traceback of unexpected ones.
"""

from __future__ import annotations

import argparse
import logging
import sys

from eventlake.config import ConfigError, load_config


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eventlake", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Beam's log")
    sub = parser.add_subparsers(dest="job", required=True)
    _import_parser(sub)
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.ERROR)
    # Beam is imported after logging is set, so that its import-time warnings stay quiet.
    from eventlake.pipelines.import_events import JobError, run_import

    try:
        overrides = {k: v for k, v in vars(args).items() if k not in ("job", "config", "debug")}
        config = load_config(args.config, overrides)
        summary = run_import(config, beam_args)
    except (ConfigError, JobError) as exc:
        print(f"eventlake {args.job}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback behind --debug
        if args.debug:
            raise
        print(f"eventlake {args.job}: failed: {_first_line(exc)} (run with --debug for details)", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def format_summary(summary: dict) -> str:
    """The summary as an aligned two-column table."""
    rows = []
    for key in ("records", "stored", "joined", "unjoined", "duplicates", "errors", "skipped_files", "files",
                "catalog_products", "catalog_errors", "version", "seconds", "events_per_second"):
        if key in summary:
            rows.append((key, summary[key]))
    for reason, count in summary.get("errors_by_reason", {}).items():
        rows.append((f"  error {reason}", count))
    for kind, count in summary.get("by_event_type", {}).items():
        rows.append((f"  type {kind}", count))
    if summary.get("errors_path") and summary.get("errors"):
        rows.append(("error samples", summary["errors_path"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else v}" for k, v in rows)


if __name__ == "__main__":
    sys.exit(main())

