"""All cores by default: the local runner's worker count follows the input's size, flags of the
user's own win, and the summary says what ran the job."""

from __future__ import annotations

import json
import os

import pytest

from eventlake.cli import main
from eventlake.pipelines import running
from eventlake.pipelines.running import choose_workers, workers_of
from tests.pipelines.conftest import make_events


@pytest.fixture
def four_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)


@pytest.mark.parametrize(("args", "size", "expected"), [
    ([], 10 << 20, []),  # small: one thread, nothing to start
    ([], 300 << 20, ["--direct_num_workers=4", "--direct_running_mode=multi_threading"]),  # a thread per CPU
    ([], 20 << 20, ["--direct_num_workers=2", "--direct_running_mode=multi_threading"]),  # a thread per 64 MB, 2 or more
    ([], 600 << 20, ["--direct_num_workers=4", "--direct_running_mode=multi_processing"]),
    ([], 5 << 30, ["--direct_num_workers=4", "--direct_running_mode=multi_processing"]),  # at most one per CPU
    (["--direct_num_workers=3"], 5 << 30, []),  # the user's own flags win
    (["--direct_num_workers=1"], 300 << 20, []),  # even when they say what Beam's default says
    (["--direct_num_workers", "1"], 300 << 20, []),
    (["--direct_running_mode=multi_threading"], 5 << 30, []),
    (["--runner=DataflowRunner"], 5 << 30, []),  # another runner: its own workers
])
def test_the_worker_count_follows_the_input_size_unless_the_user_chose(four_cpus, args, size, expected):
    assert choose_workers(args, size) == [*args, *expected]


def test_one_cpu_means_one_process(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert choose_workers([], 5 << 30) == []


def test_jobs_that_read_the_store_keep_threads_up_to_a_gigabyte(four_cpus):
    threads = ["--direct_num_workers=4", "--direct_running_mode=multi_threading"]
    assert choose_workers([], 900 << 20, running.STORE_JOB_PROCESS_BYTES) == threads
    assert choose_workers([], 2 << 30, running.STORE_JOB_PROCESS_BYTES)[-1] == "--direct_running_mode=multi_processing"


def test_two_cpus_and_a_large_input_mean_two_processes(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert choose_workers([], 600 << 20) == ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def test_the_summary_records_what_ran_the_job(generated, monkeypatch):
    summary = generated / "s.json"
    code = main(["import", "--events", str(generated / "events" / "a.jsonl"), "--catalog", str(generated / "catalog.json"),
                 "--store", str(generated / "store"), "--summary", str(summary)])
    assert code == 0
    assert json.loads(summary.read_text())["workers"] == {"runner": "local", "workers": 1, "running_mode": "in_memory"}
    monkeypatch.setattr(running, "MULTI_PROCESS_BYTES", 1)  # as if the input were large
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    code = main(["import", "--events", str(generated / "events" / "b.json.gz"), "--catalog",
                 str(generated / "catalog.json"), "--store", str(generated / "store"), "--summary", str(summary)])
    assert code == 0
    s = json.loads(summary.read_text())
    assert s["workers"] == {"runner": "local", "workers": 2, "running_mode": "multi_processing"} and s["stored"] > 0
    monkeypatch.setattr(running, "MULTI_PROCESS_BYTES", 1 << 40)
    monkeypatch.setattr(running, "MULTI_THREAD_BYTES", 1)  # as if the input were of medium size
    make_events(generated / "events" / "c.jsonl", 400, start=1200)
    code = main(["import", "--events", str(generated / "events" / "c.jsonl"), "--catalog",
                 str(generated / "catalog.json"), "--store", str(generated / "store"), "--summary", str(summary)])
    assert code == 0
    s = json.loads(summary.read_text())
    assert s["workers"] == {"runner": "local", "workers": 2, "running_mode": "multi_threading"} and s["stored"] > 0
    assert workers_of(["--runner=FlinkRunner"]) == {"runner": "FlinkRunner"}
