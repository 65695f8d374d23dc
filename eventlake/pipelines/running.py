"""What every job shares: its error type, its runner choice, paths, its scratch directory."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from eventlake import joblog
from eventlake.config import ConfigError
from eventlake.io import delta_log
from eventlake.io.delta_log import join_path
from eventlake.io.files import InputPathError, SourceFile, match_files, write_bytes
from eventlake.io.object_store import MissingCredentials, check_credentials, delete_tree, list_tree
from eventlake.io.run_marks import mark_alive, release
from eventlake.io.url_files import forget_heads


class JobError(RuntimeError):
    """The job cannot run or failed in an expected way; the message is for the user."""


RUNS_DIR = "_runs"  # <store>/_runs/latest.json: the last job's summary, for schedulers

# The local runner's workers. Threads share one process: they start at once, and Arrow's
# kernels, readers and writers let go of the GIL, but the Python between them does not; worker
# processes cost about 2 s each to start and the job's fixed cost again, then scale fully.
# Measured on 2 CPUs (import): 1M events (191 MB) took 8.8 s in one thread, 6.7 s in two
# threads, 8.2 s in two processes; 5M (961 MB) 22.4 s in two threads, 20.8 s in two processes;
# the demo (4 events) 2.2 s in one thread, 2.5 s in two. Hence one thread for a few MB,
# threads up to the crossing near 0.5 GB, and processes beyond.
MULTI_THREAD_BYTES = 16 << 20
MULTI_PROCESS_BYTES = 512 << 20
BYTES_PER_WORKER = 128 << 20  # a worker process per this much input, at most one per CPU
# Jobs that read the store (rejoin, purge, export) do nearly all their work in Arrow: at 1 GB
# (20M events) two threads matched or beat two processes (purge 7.6 against 8.7 s, export
# 8.8 against 9.3 s, rejoin 51.6 against 50.5 s), so they keep threads up to that size.
STORE_JOB_PROCESS_BYTES = 1 << 30
# A thread per this much, at most one per CPU: each holds a block's buffers, and past a few
# the shared GIL gains little, so a machine of many CPUs does not start one per CPU for 20 MB.
BYTES_PER_THREAD = 64 << 20
_LOCAL_WORKER_FLAGS = ("direct_num_workers", "direct_running_mode")


def choose_workers(pipeline_args: list[str], input_bytes: int, process_bytes: int | None = None) -> list[str]:
    """The local runner's worker flags for a job reading about ``input_bytes``, when the user
    gave none: one thread for a small input (a demo, or a scheduled run of a few small files),
    threads for a medium one, processes from ``process_bytes`` on (default
    ``MULTI_PROCESS_BYTES``), never more than the CPUs.
    Another runner, or worker flags of the user's own, are left as they are."""
    options = PipelineOptions(pipeline_args)
    if options.view_as(StandardOptions).runner:
        return pipeline_args
    # The flags as typed: Beam's parsed options drop a value equal to its default (1 worker).
    if any(arg.lstrip("-").split("=")[0] in _LOCAL_WORKER_FLAGS for arg in pipeline_args):
        return pipeline_args
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cpus < 2:
        return pipeline_args
    if input_bytes >= (MULTI_PROCESS_BYTES if process_bytes is None else process_bytes):
        workers = int(min(cpus, max(2, input_bytes // BYTES_PER_WORKER)))
        return [*pipeline_args, f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    if input_bytes >= MULTI_THREAD_BYTES:
        threads = int(min(cpus, max(2, input_bytes // BYTES_PER_THREAD)))
        return [*pipeline_args, f"--direct_num_workers={threads}", "--direct_running_mode=multi_threading"]
    return pipeline_args


def workers_of(pipeline_args: list[str]) -> dict:
    """What ran the job, for its summary: the runner, and the local runner's worker processes."""
    options = PipelineOptions(pipeline_args)
    runner = options.view_as(StandardOptions).runner
    if runner:
        return {"runner": runner}
    given = options.get_all_options(drop_default=True, retain_unknown_options=True)
    workers = int(given.get("direct_num_workers") or 1)
    mode = given.get("direct_running_mode") or "in_memory"
    return {"runner": "local", "workers": workers if mode != "in_memory" else 1, "running_mode": mode}


def pipeline_options(pipeline_args: list[str]) -> tuple[PipelineOptions, object]:
    """Beam options from the passthrough flags, and the runner to use.

    Without ``--runner`` the local FnApiRunner is chosen explicitly: Beam's default DirectRunner
    first tries to download the Prism runner, which an offline machine waits on.
    """
    _workers_import_this_package()
    options = PipelineOptions(pipeline_args)
    joblog.stage("run", **workers_of(pipeline_args))
    if options.view_as(StandardOptions).runner:
        return options, None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return options, FnApiRunner()


def _workers_import_this_package() -> None:
    """Local worker processes (``--direct_running_mode=multi_processing``) start with ``python -m``,
    which puts their working directory first on ``sys.path``: a folder named ``eventlake`` there
    (a checkout's parent, say) shadowed the installed package. ``PYTHONSAFEPATH`` (Python 3.11+)
    keeps the working directory off the path; the package's own parent goes first instead."""
    import eventlake

    os.environ["PYTHONSAFEPATH"] = "1"
    package = os.path.dirname(os.path.abspath(eventlake.__file__))
    # worker_site holds a sitecustomize that lets a worker end quietly on Ctrl-C
    first = [os.path.join(package, "worker_site"), os.path.dirname(package)]
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in first]
    os.environ["PYTHONPATH"] = os.pathsep.join([*first, *paths])


def prepare_run(pipeline_args: list[str], paths: list[str]) -> None:
    """Before a job plans: file access in this process uses the job's Beam options (S3
    endpoint, GCS project, ...), and a cloud path without credentials fails at once."""
    from apache_beam.io.filesystems import FileSystems

    FileSystems.set_options(PipelineOptions(pipeline_args))
    forget_heads()
    try:
        check_credentials(paths)
    except MissingCredentials as exc:
        raise JobError(str(exc)) from None


def check_outputs(store: str, dirs: dict[str, str] | None = None, files: dict[str, str] | None = None) -> None:
    """Before anything runs: every local place the job will write can be written.

    A summary path that is a directory used to fail only after the commit had landed, so a run
    that did its work exited 1. Each problem is a ``ConfigError`` naming the setting.
    """
    for key, path, want_dir in [("store", store, True), *((k, p, True) for k, p in (dirs or {}).items()),
                                *((k, p, False) for k, p in (files or {}).items())]:
        if path and path.startswith(("http://", "https://", "sftp://")):
            raise ConfigError(f"{key}: {path} is a URL; http(s):// and sftp:// URLs are inputs only")
        if not path or "://" in path:
            continue  # object stores: credentials are checked, the rest shows when the job writes
        path = os.path.abspath(path)
        if os.path.isdir(path) and not want_dir:
            raise ConfigError(f"{key}: {path} is a directory; give a file path")
        if os.path.exists(path) and want_dir and not os.path.isdir(path):
            raise ConfigError(f"{key}: {path} is a file, not a directory")
        existing = path
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if existing != path and not os.path.isdir(existing):
            raise ConfigError(f"{key}: cannot create {path}: {existing} is a file")
        target = existing if os.path.isdir(existing) else os.path.dirname(existing)
        if not os.access(target, os.W_OK):
            raise ConfigError(f"{key}: cannot write under {target} (read-only or not permitted)")


def write_summary_file(summary: dict, summary_path: str, store: str = "", job: str = "",
                       report: bool = False) -> None:
    """Write the summary where the user asked, and with ``store`` as the store's last run
    (``<store>/_runs/latest.json`` and ``<store>/_runs/<job>.json``), where a scheduler looks;
    with ``report`` the run's HTML report beside each (``eventlake.report``). The job's work is
    done by now: a failure to write is a warning on stderr, not a failed run."""
    joblog.stage("summary", **{k: v for k, v in dict(summary).items()
                               if isinstance(v, (int, float, str, bool)) or v is None})
    own = json.dumps(dict(summary), indent=2).encode()
    targets = [(absolute(summary_path), own)] if summary_path else []
    if store and job:  # the store's copies say which job wrote them
        tagged = json.dumps({"job": job, **dict(summary)}, indent=2).encode()
        targets += [(join_path(absolute(store), RUNS_DIR, name), tagged) for name in ("latest.json", f"{job}.json")]
    for target, document in targets:
        try:
            write_bytes(target, document)
        except Exception as exc:  # noqa: BLE001 - any write failure; the job itself succeeded
            print(f"eventlake: warning: could not write the summary to {target}: {exc}", file=sys.stderr)
    if report and store and job and summary.get("status") == "ok":
        pages = [t.removesuffix(".json") + ".html" for t, _ in targets if not t.endswith("latest.json")]
        try:
            from eventlake.report import run_report

            run_report(absolute(store), job, dict(summary), pages)
        except Exception as exc:  # noqa: BLE001 - the job succeeded; its report is a view of it
            print(f"eventlake: warning: could not write the run's report: {exc}", file=sys.stderr)


def read_store(store: str, must_exist: bool = True) -> delta_log.Snapshot:
    """The store's latest snapshot; ``JobError`` when its log cannot be read or, if
    ``must_exist``, when there is no store yet."""
    try:
        snapshot = delta_log.read_snapshot(store)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise JobError(f"cannot read the store {store}: {exc}") from None
    if must_exist and not snapshot.exists:
        raise JobError(f"there is no event store at {store}")
    return snapshot


def input_files(patterns: list[str], suffixes: tuple[str, ...]) -> tuple[list[SourceFile], list[str]]:
    """``match_files`` with a directory given as an input made a ``JobError``."""
    try:
        return match_files(patterns, suffixes)
    except InputPathError as exc:
        raise JobError(str(exc)) from None


def check_intact(store: str, snapshot: delta_log.Snapshot, listing: dict | None = None) -> None:
    """``JobError`` when a data file the current version references is missing: committing on
    top of a damaged table would hide the loss (and ``--reimport`` would store the events twice)."""
    if not snapshot.files:
        return
    present = list_tree(store) if listing is None else listing
    missing = sorted(p for p in snapshot.files if p not in present)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise JobError(f"the store {store} is damaged: its data file {missing[0]}{more} is missing; restore it "
                       "from a backup (nothing was changed)")


def catalog_format_of(paths: list[str], name: str) -> str:
    """``name``, or with ``auto`` the one catalog format every file of ``paths`` has."""
    from eventlake.formats.base import AUTO, detect_format

    if name != AUTO:
        return name
    try:
        found = {detect_format(p, catalog=True) for p in paths}
    except ValueError as exc:
        raise JobError(str(exc)) from None
    if len(found) > 1:
        raise JobError(f"the catalog files have several formats ({', '.join(sorted(found))}); give one --catalog-format")
    return found.pop()


def catalog_paths(pattern: str, format_name: str = "retail") -> list[str]:
    """The catalog files a path or glob names; ``JobError`` when there are none."""
    from eventlake.formats.base import AUTO, catalog_format_class, catalog_format_names

    names = [n for n in catalog_format_names() if catalog_format_class(n).detectable] if format_name == AUTO \
        else [format_name]
    suffixes = tuple(sorted({s for n in names for s in catalog_format_class(n).suffixes}))
    try:
        files, _ = match_files([pattern], suffixes)
    except InputPathError as exc:
        raise JobError(f"cannot read the catalog: {exc}") from None
    if not files:
        raise JobError(f"cannot read the catalog {pattern}: no such {' or '.join(suffixes)} file")
    return [f.path for f in files]


def absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


_started: list[tuple[str, str]] = []  # (store, run id) of every run this process started


def start_run(store: str) -> str:
    """A new run id, marked alive before the run writes anything (another job's clean-up then
    leaves its files be) and remembered, so that an interrupted driver can ask what it did."""
    run_id = new_run_id()
    mark_alive(store, run_id)
    _started.append((store, run_id))
    return run_id


def landed_commits() -> list[tuple[str, int]]:
    """``(store, version)`` of each commit that runs started by this process landed."""
    out = []
    for store, run_id in _started:
        for version, info in read_store(store, must_exist=False).history:
            if info.get("eventlake", {}).get("run_id") == run_id:
                out.append((store, version))
    return out


def started_runs() -> list[tuple[str, str]]:
    return list(_started)


def forget_runs() -> None:
    """A new command starts (the tests call ``main`` many times in one process)."""
    _started.clear()


def scratch_dir(store: str, run_id: str) -> str:
    """Where a run keeps files nobody else reads (the catalog snapshot, the summary)."""
    return join_path(store, "_tmp", run_id)


def remove_scratch(store: str, run_id: str) -> None:
    """The run is over: drop its alive mark and its scratch files."""
    release(run_id)
    delete_tree(scratch_dir(store, run_id))
    if "://" not in store:  # object stores have no empty directories to leave behind
        try:
            os.rmdir(join_path(store, "_tmp"))
        except OSError:
            pass  # another run's scratch files are there, or it is gone


def finish_summary(summary: dict, summary_path: str, store: str = "", job: str = "", report: bool = False) -> dict:
    """Write the summary where the user asked (and as the store's last run, with its report);
    raise ``JobError`` unless the job succeeded."""
    write_summary_file(summary, summary_path, store, job, report)
    if summary["status"] == "conflict":
        raise JobError(f"{summary['failure']}; gave up after several attempts, run it again")
    if summary["status"] != "ok":
        raise JobError(summary.get("failure", "the job failed"))
    return summary
