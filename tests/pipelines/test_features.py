"""``eventlake features import``: PAI-Rec callback feature logs into the features table beside the
store, with error samples, counts that add up, duplicates dropped, files imported once, and a
killed run leaving the table as it was."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eventlake.cli import main
from eventlake.config import FeaturesConfig
from eventlake.pipelines.features import run_features_import
from tests.pipelines.test_faults import eventlake, parquet_files, referenced

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

USER = {"request_id": "r1", "module": "user", "scene": "home_feed", "request_time": 1709708439, "user_id": "u-1",
        "user_features": json.dumps({"age": 25, "city": "beijing"}), "request_info": json.dumps({"recom_id": "1"})}
ITEM = {"request_id": "r1", "module": "item", "scene": "home_feed", "request_time": 1709708439, "user_id": "u-1",
        "item_id": "i1", "item_features": json.dumps({"price": 9.5}), "raw_features": json.dumps({"brand": "g"}),
        "generate_features": json.dumps({"ctr": 0.1}), "context_features": json.dumps({"pos": 1})}
BAD = [
    {"request_id": "r2", "module": "item", "request_time": 1709708500, "user_id": "u-2", "item_features": "{}"},
    {"request_id": "r3", "module": "banner", "request_time": 1709708500},
    {"request_id": "r4", "module": "user", "request_time": 1709708500, "user_features": "[1, 2]"},
    {"module": "user", "request_time": 1709708500},
    {"request_id": "r5", "module": "user", "request_time": "soon"},
]


def write_log(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def samples(table) -> list[dict]:
    [run] = [p for p in (table / "_errors").iterdir() if p.is_dir()]
    return [json.loads(line)["details"][0] for line in (run / "errors.jsonl").read_text().splitlines()]


def test_a_feature_log_imports_with_samples_counts_and_duplicates(tmp_path):
    write_log(tmp_path / "log.jsonl", [USER, ITEM, ITEM, *BAD])
    code = main(["features", "import", str(tmp_path / "log.jsonl"), "--store", str(tmp_path / "store"),
                 "--max-error-ratio", "0.9", "--summary", str(tmp_path / "s.json")])
    assert code == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert (s["records"], s["stored"], s["duplicates"], s["errors"]) == (8, 2, 1, 5)
    assert s["records"] == s["stored"] + s["duplicates"] + s["errors"] + s["skipped"]
    assert s["by_module"] == {"item": 1, "user": 1} and "joined" not in s
    table = tmp_path / "store" / "_features"
    assert s["features_store"] == str(table)
    stored = deltalake.DeltaTable(str(table)).to_pyarrow_table()  # delta-rs reads the table on its own
    rows = {r["module"]: r for r in stored.to_pylist()}
    assert json.loads(rows["user"]["user_features"]) == {"age": 25, "city": "beijing"}
    assert rows["item"]["item_id"] == "i1" and json.loads(rows["item"]["context_features"]) == {"pos": 1}
    assert rows["item"]["request_time"] == 1709708439 and rows["item"]["event_time"].timestamp() == 1709708439
    assert str(rows["item"]["event_date"]) == "2024-03-06"
    assert sorted((d["line"], d["field"], d["reason"]) for d in samples(table)) == [
        (4, "item_id", "REQUIRED"), (5, "module", "INVALID_VALUE"), (6, "user_features", "INVALID_FEATURES"),
        (7, "request_id", "REQUIRED"), (8, "request_time", "INVALID_TIME")]
    assert not (tmp_path / "store" / "_delta_log").exists()  # the events' own table is untouched


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_csv_and_parquet_logs_and_a_table_of_its_own(tmp_path, kind):
    rows = [USER, ITEM]
    path = tmp_path / f"log.{kind}"
    if kind == "csv":  # feature JSON in quoted fields, quotes doubled (RFC 4180)
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=sorted({k for r in rows for k in r}))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.table({k: [r.get(k) for r in rows] for k in sorted({k for r in rows for k in r})}), path)
    summary = run_features_import(FeaturesConfig(files=[str(path)], features_store=str(tmp_path / "features")))
    assert (summary.records, summary.stored, summary.errors) == (2, 2, 0)
    stored = deltalake.DeltaTable(str(tmp_path / "features")).to_pyarrow_table(columns=["module", "user_features"])
    assert {r["module"] for r in stored.to_pylist()} == {"user", "item"}
    again = run_features_import(FeaturesConfig(files=[str(path)], features_store=str(tmp_path / "features")))
    assert (again.records, again.skipped_files, again.version) == (0, 1, None)  # imported once


def test_the_event_import_refuses_a_feature_log_format(tmp_path, capsys):
    write_log(tmp_path / "log.jsonl", [USER])
    code = main(["import", "--format", "pairec-feature-log", "--events", str(tmp_path / "log.jsonl"), "--store",
                 str(tmp_path / "store")])
    assert code == 2 and "unknown format 'pairec-feature-log'" in capsys.readouterr().err
    code = main(["features", "import", str(tmp_path / "log.jsonl"), "--store", str(tmp_path / "store"),
                 "--format", "retail"])
    assert code == 2 and "unknown feature-log format 'retail'; known: pairec-feature-log" in capsys.readouterr().err


def test_a_features_import_killed_before_its_commit_leaves_the_table_as_it_was(tmp_path):
    write_log(tmp_path / "first.jsonl", [USER])
    write_log(tmp_path / "second.jsonl", [ITEM])
    table = tmp_path / "store" / "_features"
    assert eventlake("features", "import", tmp_path / "first.jsonl", "--store", tmp_path / "store").returncode == 0
    killed = eventlake("features", "import", tmp_path / "second.jsonl", "--store", tmp_path / "store",
                       kill_at="import-before-commit")
    assert killed.returncode == -signal.SIGKILL
    assert deltalake.DeltaTable(str(table)).version() == 0 and parquet_files(table) - referenced(table)
    rerun = eventlake("features", "import", tmp_path / "second.jsonl", "--store", tmp_path / "store")
    assert rerun.returncode == 0, rerun.stderr
    assert len(deltalake.DeltaTable(str(table)).to_pyarrow_table()) == 2
    assert parquet_files(table) == referenced(table)  # the rerun removed the killed run's files first
    history = eventlake("history", "--store", table)
    assert history.returncode == 0 and history.stdout.count("features-import") == 2


def test_a_forced_purge_of_a_user_reaches_the_features_table_and_its_samples(tmp_path):
    store = tmp_path / "store"
    assert main(["import", "--config", str(CONFIGS / "pairec.yaml"), "--store", str(store)]) == 0
    write_log(tmp_path / "log.jsonl", [USER, ITEM, {**USER, "user_id": "u-2", "request_id": "r9"},
                                       {**ITEM, "item_id": None, "user_id": "u-1"}])  # an error sample naming u-1
    assert main(["features", "import", str(tmp_path / "log.jsonl"), "--store", str(store), "--max-error-ratio", "0.5"]) == 0
    table = store / "_features"

    def users() -> list:
        return sorted(deltalake.DeltaTable(str(table)).to_pyarrow_table(columns=["user_id"]).column(0).to_pylist())

    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "u-1"', "--summary",
                 str(tmp_path / "dry.json")]) == 0
    dry = json.loads((tmp_path / "dry.json").read_text())
    assert dry["features"]["purged"] == 2 and dry["features"]["version"] is None and users() == ["u-1", "u-1", "u-2"]
    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "u-1"', "--force", "--summary",
                 str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["purged"] > 0 and s["features"]["purged"] == 2 and s["features"]["error_samples_removed"] == 1
    assert s["features"]["purged_by_module"] == {"item": 1, "user": 1}
    assert users() == ["u-2"]
    readable = [pq.read_table(p, columns=["user_id"]).column(0).to_pylist() for p in table.rglob("*.parquet")]
    assert "u-1" not in sum(readable, [])  # no file under the table keeps the purged user's features
    assert not any("u-1" in p.read_text() for p in (table / "_errors").rglob("errors.jsonl"))
    assert main(["purge", "--store", str(store), "--filter", 'eventType = expose', "--force", "--summary",
                 str(tmp_path / "t.json")]) == 0
    assert json.loads((tmp_path / "t.json").read_text())["features"] == {
        "note": "not purged: feature records have no eventType"}
    assert users() == ["u-2"]
