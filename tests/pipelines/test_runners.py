"""The import gives the same table on every runner: local, multi-process, and portable job submission.

The portable case submits to Beam's local job service, started and stopped here, with the SDK
harness in this process (LOOPBACK): the same submission path as Flink's and Spark's job servers.
Files are split into byte ranges small enough that one file is read by several workers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from eventlake.cli import main
from tests.pipelines.conftest import import_generated, make_catalog, make_events, stored_rows


@pytest.fixture(scope="module")
def job_service():
    """Beam's local job service on a free loopback port; its endpoint."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("Beam's local job service did not start")
                time.sleep(0.2)
        yield f"localhost:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _table(store) -> list[dict]:
    rows = [{k: v for k, v in r.items() if k != "source_uri"} | {"file": os.path.basename(r["source_uri"])}
            for r in stored_rows(store)]
    return sorted(rows, key=lambda r: (r["file"], r["source_offset"]))


@pytest.mark.parametrize("runner_args", [
    ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    ["--direct_num_workers=2", "--direct_running_mode=multi_threading"],
    ["--runner=PortableRunner", "--environment_type=LOOPBACK"],
], ids=["multi_processing", "multi_threading", "portable"])
def test_every_runner_gives_the_same_table(generated, tmp_path, runner_args, job_service):
    make_events(generated / "events" / "big.jsonl", 3000, start=2000)  # about 400 KB: several ranges
    config = generated / "split.yaml"
    config.write_text("import:\n  split_bytes: 65536\n")
    other = tmp_path / "other"
    shutil.copytree(generated / "events", other / "events")
    shutil.copy(generated / "catalog.json", other / "catalog.json")
    code, local = import_generated(generated, "--config", config)
    assert code == 0
    if "--runner=PortableRunner" in runner_args:
        runner_args = [*runner_args, f"--job_endpoint={job_service}"]
    code, remote = import_generated(other, "--config", config, *runner_args)
    assert code == 0
    same = ("records", "stored", "joined", "duplicates", "errors", "errors_by_reason", "by_event_type")
    assert {k: remote[k] for k in same} == {k: local[k] for k in same}
    assert _table(other / "store") == _table(generated / "store")


THREADS = ["--direct_num_workers=2", "--direct_running_mode=multi_threading"]
ONE = ["--direct_num_workers=1"]


def _job_results(root, beam_args) -> dict:
    """Import, rejoin after the catalog lost products, purge a visitor, export: what each left."""
    store, out = root / "store", {}
    code, summary = import_generated(root, "--config", root / "split.yaml", *beam_args)
    assert code == 0
    out["import"] = summary["stored"], summary["joined"], _table(store)
    make_catalog(root / "catalog.json", n=30)
    assert main(["rejoin", "--store", str(store), "--catalog", str(root / "catalog.json"), "--summary",
                 str(root / "rejoin.json"), *beam_args]) == 0
    rejoined = json.loads((root / "rejoin.json").read_text())
    out["rejoin"] = rejoined["events_changed"], rejoined["newly_unjoined"], _table(store)
    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "v5"', "--force", "--summary",
                 str(root / "purge.json"), *beam_args]) == 0
    out["purge"] = json.loads((root / "purge.json").read_text())["purged"], _table(store)
    for fmt in ("personalize", "parquet"):
        target = root / f"export-{fmt}"
        assert main(["export", "--store", str(store), "--format", fmt, "--output", str(target), *beam_args]) == 0
        out[fmt] = {p.name: _rows_of(p) for p in sorted(target.rglob("*")) if p.suffix in (".csv", ".parquet")}
    return out


def _rows_of(path) -> list:
    """An exported file's rows in a fixed order: the two stores' files have other names, so the
    export reads them in another order."""
    if path.suffix == ".parquet":
        return sorted(map(repr, pq.read_table(path).to_pylist()))
    header, *lines = path.read_text().splitlines()
    return [header, *sorted(lines)]


def test_worker_threads_give_each_job_the_same_result_as_one(tmp_path):
    """Medium inputs run in a thread per CPU by default: every job must give what one thread gives."""
    results = []
    for name, beam_args in (("one", ONE), ("threads", THREADS)):
        root = tmp_path / name
        (root / "events").mkdir(parents=True)
        make_events(root / "events" / "a.jsonl", 2500)
        make_events(root / "events" / "b.json.gz", 1500, start=2500, compress=True)
        make_catalog(root / "catalog.json")
        (root / "split.yaml").write_text("import:\n  split_bytes: 65536\n")  # several ranges per file
        results.append(_job_results(root, beam_args))
    one, threads = results
    assert one["import"][0] > 3000 and one["rejoin"][1] > 0 and one["purge"][0] > 0
    assert one["personalize"]["interactions.csv"][1:] and one["parquet"]
    for job in one:
        assert threads[job] == one[job], job


def test_multi_process_workers_ignore_a_folder_named_eventlake_in_the_working_directory(generated):
    """Run from a directory holding an empty ``eventlake/`` folder, as a checkout's parent does."""
    (generated / "cwd" / "eventlake").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "eventlake"), "import",
         "--events", str(generated / "events" / "*.json*"), "--catalog", str(generated / "catalog.json"),
         "--store", str(generated / "store"), "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        cwd=generated / "cwd", env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(stored_rows(generated / "store")) == 1176
