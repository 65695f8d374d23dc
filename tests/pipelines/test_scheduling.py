"""What a scheduler needs: the last run's summary in the store, exit codes, reruns."""

from __future__ import annotations

import json

from eventlake.cli import main
from tests.pipelines.conftest import make_events, run


def test_each_job_leaves_its_summary_as_the_stores_last_run(tmp_path):
    make_events(tmp_path / "a.jsonl", 200)
    store = tmp_path / "store"
    assert run("--events", tmp_path / "a.jsonl", "--store", store, "--max-error-ratio", "0.5") == 0
    runs = store / "_runs"
    latest = json.loads((runs / "latest.json").read_text())
    assert latest["job"] == "import" and latest["status"] == "ok" and latest["stored"] == 196
    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "v3"']) == 0  # a dry run
    latest = json.loads((runs / "latest.json").read_text())
    assert latest["job"] == "purge" and latest["dry_run"] is True and "v3" not in (runs / "latest.json").read_text()
    assert json.loads((runs / "import.json").read_text())["run_id"] != latest["run_id"]
    assert main(["export", "--store", str(store), "--format", "csv", "--output", str(tmp_path / "out")]) == 0
    assert json.loads((runs / "latest.json").read_text())["job"] == "export"
    assert sorted(p.name for p in runs.glob("*.json")) == ["export.json", "import.json", "latest.json", "purge.json"]
    assert sorted(p.name for p in runs.glob("*.html")) == ["import.html", "purge.html"]  # the reports of the runs
    # the store's files are untouched by it: vacuum finds nothing to remove
    assert main(["vacuum", "--store", str(store), "--dry-run"]) == 0


def test_a_failed_run_is_the_last_run_and_a_rerun_imports_what_it_did_not(tmp_path, capsys):
    make_events(tmp_path / "a.jsonl", 200, bad_every=2)  # half the lines broken
    store = tmp_path / "store"
    assert run("--events", tmp_path / "a.jsonl", "--store", store, "--max-error-ratio", "0.1") == 1
    latest = json.loads((store / "_runs" / "latest.json").read_text())
    assert latest["job"] == "import" and latest["status"] == "failed" and "nothing was committed" in latest["failure"]
    capsys.readouterr()
    assert run("--events", tmp_path / "a.jsonl", "--store", store, "--max-error-ratio", "0.9") == 0  # nothing was committed
    assert json.loads((store / "_runs" / "latest.json").read_text())["stored"] == 100


def test_json_logs_give_one_line_per_stage_and_never_a_purged_id(tmp_path, capsys):
    make_events(tmp_path / "a.jsonl", 100)
    store = tmp_path / "store"
    assert run("--events", tmp_path / "a.jsonl", "--store", store, "--max-error-ratio", "0.5", "--log-format", "json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["stage"] for line in lines] == ["start", "run", "summary"]
    assert lines[1]["workers"] == 1 and lines[2]["stored"] == 98 and all(line["job"] == "import" for line in lines)
    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "v3"', "--force", "--log-format", "json"]) == 0
    err = capsys.readouterr().err
    assert "v3" not in err and [json.loads(line)["stage"] for line in err.splitlines()][-1] == "summary"
    assert main(["--log-format", "json", "export", "--store", str(tmp_path / "none"), "--format", "csv",
                 "--output", str(tmp_path / "o")]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]  # every line is JSON
    assert lines[-1]["stage"] == "failed" and lines[-1]["exit_code"] == 1 and "no event store" in lines[-1]["error"]
