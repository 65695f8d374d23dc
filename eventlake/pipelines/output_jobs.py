"""What the jobs that read the store and publish an output folder share (export, samples).

Such a job fixes one store version, runs its pipeline into a staging folder beside the output
(``eventlake.io.export_files``) and publishes it only when the pipeline succeeded. A file of
the version it reads may be deleted meanwhile by a purge or rejoin: the job then plans again
from the newer version, a few times, and says so if the store keeps changing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import apache_beam as beam

from eventlake.faults import fault_point
from eventlake.filters import FilterError, parse_filter
from eventlake.io.delta_log import join_path
from eventlake.io.export_files import end_staging, existing_output, publish, start_staging
from eventlake.io.files import read_all
from eventlake.pipelines.running import JobError, absolute, choose_workers, pipeline_options, workers_of
from eventlake.transforms.read_store import StoreChanged, StoreReadError, StoreSelection, select_files

READ_AGAIN_ATTEMPTS = 3


def select_for_output(store: str, output: str, filter_text: str, what: str, since_version: int | None = None
                      ) -> StoreSelection:
    """The store files a job writing ``output`` reads (as ``select_files``), refusing a bad
    filter, a missing store and an output inside the store, each in one line."""
    event_filter = None
    if filter_text:
        try:
            event_filter = parse_filter(filter_text)
        except FilterError as exc:
            raise JobError(str(exc)) from None
    store, output = absolute(store), absolute(output)
    if output.rstrip("/") == store.rstrip("/") or output.startswith(store.rstrip("/") + "/"):
        raise JobError(f"output: {output} is inside the store {store}; {what} to a folder of its own")
    try:
        return select_files(store, event_filter, since_version=since_version)
    except StoreReadError as exc:
        raise JobError(str(exc)) from None


def check_output_free(output: str, overwrite: bool) -> None:
    if existing_output(absolute(output)) and not overwrite:
        raise JobError(f"the output {absolute(output)} is not empty; give --overwrite to replace its files")


def run_reading_store(plan: Callable[[], object], execute: Callable[[object], dict], job: str) -> dict:
    """``execute(plan())``, planned again while a concurrent job keeps removing files it reads."""
    for attempt in range(READ_AGAIN_ATTEMPTS):
        try:
            return execute(plan())
        except StoreChanged:
            if attempt == READ_AGAIN_ATTEMPTS - 1:
                raise JobError(f"other jobs kept rewriting the store while it was read; run the {job} again") from None
    raise AssertionError("unreachable")


def run_and_publish(plan, transform: beam.PTransform, label: str, input_bytes: int, pipeline_args: list[str] | None,
                    marker_keys: tuple[str, ...], job: str, process_bytes: int | None = None) -> dict:
    """Run ``transform`` (it writes ``summary.json`` to ``plan.scratch`` and its files under
    ``plan.staged``) and publish the staged files as ``plan.output``; the summary, with the
    seconds and workers. ``plan`` has ``output``, ``run_id``, ``scratch``, ``staged``,
    ``started`` and ``config.overwrite``. ``process_bytes``: from what input size the local
    runner starts worker processes rather than threads (``choose_workers``)."""
    start_staging(plan.output, plan.run_id)
    try:
        args = choose_workers(pipeline_args or [], input_bytes, process_bytes)
        options, runner = pipeline_options(args)
        try:
            with beam.Pipeline(runner=runner, options=options) as pipeline:
                _ = pipeline | label >> transform
        except Exception as exc:
            if "read the store again" in str(exc):
                raise StoreChanged(str(exc)) from None
            raise
        summary = json.loads(read_all(join_path(plan.scratch, "summary.json")))
        if "://" not in plan.staged:
            os.makedirs(plan.staged, exist_ok=True)  # nothing written: an empty output, published all the same
        fault_point(f"{job}-before-publish")
        try:
            marker = {k: summary[k] for k in marker_keys}
            publish(plan.staged, plan.output, plan.config.overwrite, (json.dumps(marker) + "\n").encode())
        except FileExistsError:
            raise JobError(f"the output {plan.output} was written by another run meanwhile; nothing was "
                           "published (give --overwrite to replace it)") from None
        summary["seconds"] = round(time.time() - plan.started, 3)
        summary["workers"] = workers_of(args)
        return summary
    finally:
        end_staging(plan.output, plan.run_id)


__all__ = ["check_output_free", "run_and_publish", "run_reading_store", "select_for_output"]
