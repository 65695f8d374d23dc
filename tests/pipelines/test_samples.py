"""``eventlake samples``: exposures labelled by what followed, with the features the ranker saw.

Hand-built logs whose every label is known, read back with DuckDB; the Python API; flattened
features, splits, TFRecord output; bad settings named; a failed run publishing nothing.
"""

from __future__ import annotations

import base64
import csv
import json

import duckdb
import pytest

from eventlake.cli import main
from eventlake.config import ConfigError, SamplesConfig
from eventlake.pipelines.samples import run_samples
from tests.pipelines.test_faults import eventlake

T = 1709708400  # 2024-03-06 07:00:00 UTC
BEHAVIOR = [  # uid, item_id, event, time, request_id, scene, event_value
    ("u1", "A", "expr", T, "r1", "home", ""),
    ("u1", "A", "expr", T + 5, "r1", "home", ""),  # the same exposure again: one sample
    ("u1", "A", "click", T + 60, "r1", "home", ""),  # inside the window
    ("u1", "B", "expr", T, "r1", "home", ""),
    ("u1", "B", "click", T + 1801, "r1", "home", ""),  # one second past the window
    ("u1", "C", "expr", T, "r1", "home", ""),
    ("u1", "C", "click", T + 1800, "r1", "home", ""),  # the window's last second counts
    ("u1", "D", "expr", T, "r1", "home", ""),
    ("u1", "D", "click", T - 10, "r1", "home", ""),  # before the exposure
    ("u1", "E", "expr", T + 100, "r2", "detail", ""),
    ("u1", "E", "click", T + 200, "r9", "detail", ""),  # another request
    ("u1", "Z", "click", T + 150, "r2", "detail", ""),  # an item the request did not show
    ("u1", "E", "buy", T + 300, "r2", "detail", "42.5"),  # a buy with a value
    ("u2", "F", "expr", T, "r3", "home", ""),
    ("u2", "F", "expr", T + 600, "r4", "home", ""),
    ("u2", "F", "click", T + 700, "", "home", ""),  # no request id: the latest exposure before it (r4)
]
FEATURES = [
    {"module": "user", "request_id": "r1", "request_time": T, "user_id": "u1", "user_features": '{"age": 25}'},
    {"module": "user", "request_id": "r1", "request_time": T + 50, "user_id": "u1", "user_features": '{"age": 26}'},
    {"module": "item", "request_id": "r1", "request_time": T, "user_id": "u1", "item_id": "A",
     "item_features": '{"price": 9.5, "brand": "g"}', "context_features": '{"pos": 1}'},
    {"module": "item", "request_id": "r1", "request_time": T, "user_id": "u1", "item_id": "B",
     "item_features": '{"price": 3}', "context_features": '{"pos": 2}'},
    # r2's user record was written after the exposure (a backfill): it must not be used
    {"module": "user", "request_id": "r2", "request_time": T + 1000, "user_id": "u1", "user_features": '{"age": 99}'},
    {"module": "item", "request_id": "r2", "request_time": T + 100, "user_id": "u1", "item_id": "E",
     "item_features": '{"price": 120, "brand": "h"}'},
]
EXPECTED = {  # (request, item) -> click, cart, buy, buy_value
    ("r1", "A"): (1, 0, 0, 0.0), ("r1", "B"): (0, 0, 0, 0.0), ("r1", "C"): (1, 0, 0, 0.0),
    ("r1", "D"): (0, 0, 0, 0.0), ("r2", "E"): (0, 0, 1, 42.5), ("r3", "F"): (0, 0, 0, 0.0),
    ("r4", "F"): (1, 0, 0, 0.0),
}


def build_store(tmp_path, behavior=BEHAVIOR, features=FEATURES):
    store = tmp_path / "store"
    with open(tmp_path / "behavior.csv", "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["uid", "item_id", "event", "time", "request_id", "scene", "event_value"])
        out.writerows(behavior)
    assert main(["import", "--events", str(tmp_path / "behavior.csv"), "--format", "pairec-behavior",
                 "--store", str(store)]) == 0
    if features:
        (tmp_path / "features.jsonl").write_text("".join(json.dumps(f) + "\n" for f in features))
        assert main(["features", "import", str(tmp_path / "features.jsonl"), "--store", str(store)]) == 0
    return store


def read_samples(output) -> list[dict]:
    return duckdb.sql(f"SELECT * FROM read_parquet('{output}/**/*.parquet') ORDER BY request_id, item_id") \
        .to_arrow_table().to_pylist()


def test_labels_and_features_follow_the_rules(tmp_path):
    store = build_store(tmp_path)
    code = main(["samples", "--store", str(store), "--output", str(tmp_path / "out"),
                 "--summary", str(tmp_path / "s.json")])
    assert code == 0
    rows = read_samples(tmp_path / "out")
    got = {(r["request_id"], r["item_id"]): (r["click"], r["cart"], r["buy"], r["buy_value"]) for r in rows}
    assert got == EXPECTED
    by_key = {(r["request_id"], r["item_id"]): r for r in rows}
    assert json.loads(by_key[("r1", "A")]["user_features"]) == {"age": 25}  # the first record, not the later one
    assert json.loads(by_key[("r1", "A")]["item_features"]) == {"price": 9.5, "brand": "g"}
    assert by_key[("r1", "A")]["scene"] == "home" and by_key[("r2", "E")]["scene"] == "detail"
    assert str(by_key[("r1", "A")]["exposure_time"]) == "2024-03-06 07:00:00+00:00"  # the earliest of the two
    assert by_key[("r2", "E")]["user_features"] is None  # written after the exposure
    assert by_key[("r1", "C")]["item_features"] is None and by_key[("r3", "F")]["user_features"] is None
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["exposures"] == 8 and s["duplicate_exposures"] == 1 and s["samples"] == 7 == s["rows_written"]
    assert s["exposures"] == s["samples"] + s["duplicate_exposures"] + s["exposures_skipped"]
    assert s["positives"] == {"click": 3, "cart": 0, "buy": 1}
    assert s["label_events"] == {"click": 7, "cart": 0, "buy": 1}
    assert (s["unattributed_click"], s["unattributed_cart"], s["unattributed_buy"]) == (4, 0, 0)
    assert s["positive_rate"]["click"] == round(3 / 7, 6)
    # r1's four samples have user features; r2 (written later), r3, r4 (none) have not
    assert s["exposures_without_user_features"] == 3 and s["user_features_written_after_exposure"] == 1
    assert s["exposures_without_item_features"] == 4  # r1/C, r1/D, r3/F, r4/F
    assert (tmp_path / "out" / "_SUCCESS").exists()


def test_the_python_api_a_window_and_custom_labels(tmp_path):
    store = build_store(tmp_path, features=None)
    summary = run_samples(SamplesConfig(store=str(store), output=str(tmp_path / "out"), window="2h",
                                        labels={"engaged": "detail-page-view,purchase-complete"}))
    rows = read_samples(tmp_path / "out")
    got = {(r["request_id"], r["item_id"]): r["engaged"] for r in rows}
    # two hours: B's late click counts now; E's buy counts as engagement, with its value
    assert got == {("r1", "A"): 1, ("r1", "B"): 1, ("r1", "C"): 1, ("r1", "D"): 0, ("r2", "E"): 1, ("r3", "F"): 0,
                   ("r4", "F"): 1}
    assert {(r["request_id"], r["item_id"]): r["engaged_value"] for r in rows}[("r2", "E")] == 42.5
    assert summary["exposures_without_user_features"] == 7 and "no features table" in summary["note"]
    assert summary["unattributed_engaged"] == 3  # D's early click, r9's click, Z's click


def test_flattened_features_are_typed_over_the_run(tmp_path):
    store = build_store(tmp_path)
    assert main(["samples", "--store", str(store), "--output", str(tmp_path / "out"), "--flatten-features"]) == 0
    types = {r[0]: r[1] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{tmp_path}/out/*.parquet')")
             .fetchall()}
    # price is 9.5 in one record and 3 in another: a decimal over the run
    assert types["item__price"] == "DOUBLE" and types["user__age"] == "BIGINT" and types["item__brand"] == "VARCHAR"
    assert types["context__pos"] == "BIGINT"
    rows = {(r["request_id"], r["item_id"]): r for r in read_samples(tmp_path / "out")}
    assert rows[("r1", "B")]["item__price"] == 3.0 and rows[("r1", "A")]["user__age"] == 25
    assert rows[("r2", "E")]["user__age"] is None  # its only user record came after the exposure


def test_a_time_split_keeps_each_sample_in_one_part(tmp_path):
    store = build_store(tmp_path)
    assert main(["samples", "--store", str(store), "--output", str(tmp_path / "out"), "--split", "time:0.5,0.5",
                 "--summary", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    train = read_samples(tmp_path / "out" / "train")
    test = read_samples(tmp_path / "out" / "test")
    assert len(train) + len(test) == 7 and s["samples_by_part"] == {"train": len(train), "test": len(test)}
    assert max(r["exposure_time"] for r in train) < min(r["exposure_time"] for r in test)


def test_leave_last_holds_out_each_users_last_exposures(tmp_path):
    store = build_store(tmp_path)
    assert main(["samples", "--store", str(store), "--output", str(tmp_path / "out"), "--split", "leave-last:1"]) == 0
    test = {(r["request_id"], r["item_id"]) for r in read_samples(tmp_path / "out" / "test")}
    assert ("r4", "F") in test and ("r2", "E") in test and len(test) == 2


def test_tfrecord_output_reads_back_with_beam_and_the_example_message(tmp_path):
    pytest.importorskip("tfrecord")
    import apache_beam as beam
    from tfrecord import example_pb2

    store = build_store(tmp_path)
    assert main(["samples", "--store", str(store), "--output", str(tmp_path / "out"), "--format", "tfrecord"]) == 0
    # Beam's own TFRecord reader checks the framing and both CRCs of every record
    with beam.Pipeline() as pipeline:
        _ = (pipeline | beam.io.ReadFromTFRecord(f"{tmp_path}/out/*.tfrecord")
             | beam.Map(lambda record: base64.b64encode(record).decode())
             | beam.io.WriteToText(str(tmp_path / "records"), shard_name_template=""))
    got = []
    for line in (tmp_path / "records").read_text().splitlines():
        example = example_pb2.Example()
        example.ParseFromString(base64.b64decode(line))
        got.append(example)
    assert len(got) == 7
    by_key = {(e.features.feature["request_id"].bytes_list.value[0].decode(),
               e.features.feature["item_id"].bytes_list.value[0].decode()): e.features.feature for e in got}
    assert by_key[("r2", "E")]["buy"].int64_list.value == [1]
    assert by_key[("r2", "E")]["buy_value"].float_list.value == [42.5]
    assert by_key[("r1", "A")]["exposure_time"].int64_list.value == [T]
    assert "user_features" not in by_key[("r2", "E")]  # null: left out


@pytest.mark.parametrize(("flags", "key"), [
    (["--label", "click"], "--label"),
    (["--label", "Click=detail-page-view"], "labels.Click"),
    (["--label", "click=expose"], "labels.click"),
    (["--window", "30 minutes"], "window"),
    (["--split", "time:0.5"], "split"),
])
def test_bad_settings_are_named(tmp_path, capsys, flags, key):
    code = main(["samples", "--store", str(tmp_path / "store"), "--output", str(tmp_path / "out"), *flags])
    assert code == 2
    assert key in capsys.readouterr().err
    with pytest.raises(ConfigError):
        SamplesConfig(store="s", output="o", window="soon")


def test_a_missing_store_and_a_missing_features_store_fail_in_one_line(tmp_path, capsys):
    assert main(["samples", "--store", str(tmp_path / "none"), "--output", str(tmp_path / "out")]) == 1
    assert "there is no event store" in capsys.readouterr().err
    store = build_store(tmp_path, features=None)
    assert main(["samples", "--store", str(store), "--output", str(tmp_path / "out"),
                 "--features-store", str(tmp_path / "nofeatures")]) == 1
    assert "features_store: there is no features table" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_killed_or_interrupted_run_publishes_nothing_and_the_next_run_cleans_up(tmp_path):
    store = build_store(tmp_path)
    out = tmp_path / "out"
    for point in ("samples-bucket-written", "samples-before-publish"):
        done = eventlake("samples", "--store", store, "--output", out, kill_at=point)
        assert done.returncode == -9, done.stderr
        assert not out.exists() and (tmp_path / "out.eventlake-tmp").exists()  # staged aside, never in the output
        done = eventlake("samples", "--store", store, "--output", out, kill_at=f"{point}:SIGINT")
        assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
        assert not out.exists()
    done = eventlake("samples", "--store", store, "--output", out)
    assert done.returncode == 0, done.stderr
    assert len(read_samples(out)) == 7 and not (tmp_path / "out.eventlake-tmp").exists()


def test_a_generated_case_matches_an_independent_duckdb_query(tmp_path):
    """100k requests of 20 items, clicks, carts and buys at known rates, features per request:
    the samples equal, row for row, what DuckDB computes from the same Parquet files with a
    join on the request, an ASOF join and ROW_NUMBER (``benchmarks/samples_case.py``)."""
    import sys
    from pathlib import Path

    import deltalake

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from samples_case import duckdb_samples, generate

    case = generate(tmp_path, 100_000)
    store = tmp_path / "store"
    assert main(["import", "--events", case["behavior"], "--format", "pairec-behavior", "--store", str(store)]) == 0
    assert main(["features", "import", case["features"], "--store", str(store)]) == 0
    s = run_samples(SamplesConfig(store=str(store), output=str(tmp_path / "out")))
    assert s["exposures"] == s["samples"] + s["duplicate_exposures"] + s["exposures_skipped"]
    for name in ("click", "cart", "buy"):
        assert s["unattributed_" + name] > 0 and s["positives"][name] > 0
    assert s["user_features_written_after_exposure"] > 0 and s["exposures_without_item_features"] > 0
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    files = [f.removeprefix("file://") for f in deltalake.DeltaTable(str(store)).file_uris()]
    features = [f.removeprefix("file://") for f in deltalake.DeltaTable(str(store / "_features")).file_uris()]
    duckdb_samples(con, files, features)
    columns = ("request_id, scene, user_id, item_id, exposure_time, click, cart, buy, round(click_value, 6), "
               "round(cart_value, 6), round(buy_value, 6), user_features, item_features, context_features, "
               "generate_features, raw_features")
    ours = f"SELECT {columns} FROM read_parquet('{tmp_path}/out/*.parquet')"
    theirs = f"SELECT {columns} FROM reference"
    assert con.execute("SELECT count(*) FROM reference").fetchone()[0] == s["samples"]
    assert con.execute(f"SELECT count(*) FROM ({ours} EXCEPT ALL {theirs})").fetchone()[0] == 0
    assert con.execute(f"SELECT count(*) FROM ({theirs} EXCEPT ALL {ours})").fetchone()[0] == 0
    positives = con.execute("SELECT sum(click), sum(cart), sum(buy) FROM reference").fetchone()
    assert positives == (s["positives"]["click"], s["positives"]["cart"], s["positives"]["buy"])


def test_samples_from_a_store_on_object_storage_to_object_storage(tmp_path, bucket):
    """Store, features table, scratch files and output all on gs:// or s3:// (real local servers)."""
    from tests.pipelines.test_object_storage import download_tree, upload

    local = build_store(tmp_path)
    store = f"{bucket}/samples-store/{tmp_path.name}"
    for path in local.rglob("*"):
        if path.is_file():
            upload(path, f"{store}/{path.relative_to(local)}")
    output = f"{bucket}/samples-out/{tmp_path.name}"
    assert main(["samples", "--store", store, "--output", output, "--flatten-features",
                 "--summary", str(tmp_path / "s.json")]) == 0
    names = download_tree(output, tmp_path / "copy")
    assert sorted(names) == ["_SUCCESS", "part-00000-of-00001.parquet"]
    rows = read_samples(tmp_path / "copy")
    assert {(r["request_id"], r["item_id"]): (r["click"], r["cart"], r["buy"], r["buy_value"]) for r in rows} == EXPECTED
    assert json.loads((tmp_path / "s.json").read_text())["features_version"] == 0
    assert not download_tree(f"{output}.eventlake-tmp", tmp_path / "left")  # no scratch file left behind
