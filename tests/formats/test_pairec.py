"""Alibaba PAI-Rec behavior rows: the same rows as CSV, JSON lines and Parquet, PAI-Rec's time
forms and time zone, reserved characters, and a file without a required column."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eventlake.cli import main
from eventlake.formats.base import FormatOptionError, SourceFileError, get_format
from eventlake.io.files import ByteRange
from eventlake.transforms.validate import check, map_event_types

ROWS = [
    {"uid": "u1", "item_id": "i1", "event": "click", "time": "1700000000", "scene": "home", "request_id": "r1",
     "event_value": "1.5", "exp_id": "ER2_L1#EG1#E2", "net": "wifi"},
    {"uid": "u2", "item_id": "i2", "event": "expr", "time": "20240301120000", "scene": "home", "request_id": "r2",
     "event_value": "", "exp_id": "", "net": "4g"},
    {"uid": "u3", "item_id": "i3", "event": "buy", "time": "1700000000123", "scene": "home", "request_id": "",
     "event_value": "", "exp_id": "", "net": ""},
    {"uid": "u4", "item_id": "i#4", "event": "cart", "time": "1700000000", "scene": "home", "request_id": "",
     "event_value": "", "exp_id": "", "net": ""},
    {"uid": "u5", "item_id": "i5", "event": "cart", "time": "1700000000", "scene": "", "request_id": "",
     "event_value": "x", "exp_id": "", "net": ""},
]


def write(path, rows=ROWS):
    kind = path.suffix
    if kind == ".csv":
        names = list(rows[0])
        path.write_text(",".join(names) + "\n" + "".join(",".join(r[n] for n in names) + "\n" for r in rows))
    elif kind == ".jsonl":
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if v != ""}) + "\n" for r in rows))
    else:
        table = pa.Table.from_pylist([{k: (None if v == "" else v) for k, v in r.items()} for r in rows])
        pq.write_table(table.set_column(3, "time", pa.array([int(r["time"]) for r in rows], pa.int64())), path)
    return path


def read(path, **options):
    fmt = get_format("pairec-behavior", options)
    rows, errors, records = [], [], 0
    for parsed in fmt.read_range(ByteRange(str(path), 0, -1), 1 << 20):
        records += parsed.records
        errors += parsed.errors
        valid, broken = check(map_event_types(parsed.batch, fmt.event_type_map), fmt.rules())
        errors += broken
        rows += valid.to_pylist()
    assert records == len(rows) + len(errors)
    return rows, errors


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_the_same_rows_read_alike_from_csv_json_lines_and_parquet(tmp_path, suffix):
    rows, errors = read(write(tmp_path / f"behavior{suffix}"))
    assert [(r["visitor_id"], r["event_type"], r["source_event_type"]) for r in rows] == [
        ("u1", "detail-page-view", "click"), ("u2", "expose", "expr")]
    first, second = rows
    assert first["event_time"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
    assert second["event_time"] == datetime(2024, 3, 1, 4, 0, tzinfo=timezone.utc)  # noon in Shanghai
    assert first["product_details"] == [{"product": {"id": "i1"}, "quantity": None}]
    assert first["user_info"]["user_id"] == "u1" and first["request_id"] == "r1" and first["event_value"] == 1.5
    assert first["experiment_ids"] == ["ER2_L1#EG1#E2"] and second["experiment_ids"] is None
    assert {a["key"]: a["value"]["text"] for a in first["attributes"]} == {"scene": ["home"], "net": ["wifi"]}
    found = {(e["line"], e["field"], e["reason"]) for e in errors}
    where = (lambda n: n + 1) if suffix == ".csv" else (lambda n: n)  # the CSV header is line 1; Parquet: row number
    assert found == {(where(3), "time", "INVALID_TIME"), (where(4), "item_id", "RESERVED_CHARACTER"),
                     (where(5), "scene", "REQUIRED")}
    millis = next(e for e in errors if e["reason"] == "INVALID_TIME")
    assert "looks like milliseconds" in millis["message"] and "u3" in millis["record"]


def test_fourteen_digit_times_follow_the_timezone_option(tmp_path):
    rows, _ = read(write(tmp_path / "b.csv", ROWS[1:2]), timezone="UTC")
    assert rows[0]["event_time"] == datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    with pytest.raises(FormatOptionError, match="timezone: 'Mars/Olympus' is not an IANA time zone"):
        get_format("pairec-behavior", {"timezone": "Mars/Olympus"})
    with pytest.raises(FormatOptionError, match="tz: not an option of the pairec-behavior format"):
        get_format("pairec-behavior", {"tz": "UTC"})


@pytest.mark.parametrize(("char", "shown"), [(":", "':'"), (";", "';'"), ("#", "'#'"), ("\x02", "0x02"),
                                             ("\x03", "0x03"), ("\x1d", "0x1D")])
def test_each_reserved_character_in_an_id_is_an_error_naming_it(tmp_path, char, shown):
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"user_id": f"u{char}1", "item_id": "i1", "event": "click", "event_time": 1700000000,
                                "scene_id": "home"}) + "\n")
    rows, [error] = read(path)
    assert not rows and error["field"] == "user_id" and error["reason"] == "RESERVED_CHARACTER"
    assert shown in error["message"]


def test_a_file_without_a_required_column_is_one_error_for_the_file(tmp_path, capsys):
    path = tmp_path / "b.csv"
    path.write_text("uid,item_id,event,time\nu1,i1,click,1700000000\n")
    with pytest.raises(SourceFileError, match="b.csv: no scene or scene_id column"):
        read(path)
    code = main(["import", "--format", "pairec-behavior", "--events", str(path), "--store", str(tmp_path / "store")])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "b.csv: no scene or scene_id column" in line
    assert not (tmp_path / "store").exists()  # refused at start-up, from the header alone


def test_import_from_the_command_line_counts_every_row_and_names_a_bad_option(tmp_path, capsys):
    events = write(tmp_path / "behavior.parquet")
    code = main(["import", "--format", "pairec-behavior", "--events", str(events), "--store", str(tmp_path / "store"),
                 "--max-error-ratio", "0.9", "--summary", str(tmp_path / "s.json")])
    assert code == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert (s["records"], s["stored"], s["errors"], s["skipped"]) == (5, 2, 3, 0)
    stored = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table(columns=["visitor_id", "event_type"])
    assert sorted(stored.to_pylist(), key=lambda r: r["visitor_id"]) == [
        {"visitor_id": "u1", "event_type": "detail-page-view"}, {"visitor_id": "u2", "event_type": "expose"}]
    capsys.readouterr()
    code = main(["import", "--format", "pairec-behavior", "--format-option", "zone=UTC", "--events", str(events),
                 "--store", str(tmp_path / "store")])
    assert code == 2
    assert "format_options.zone: not an option of the pairec-behavior format (its options: timezone)" \
        in capsys.readouterr().err



def test_a_large_parquet_file_is_read_in_ranges_of_row_groups_with_row_numbers_intact(tmp_path):
    from eventlake.io.files import source_file
    from eventlake.transforms.read_events import plan_ranges

    n = 30_000
    table = pa.table({"uid": [f"u{i}" for i in range(n)], "item_id": [f"i{i % 977}" for i in range(n)],
                      "event": ["click"] * n, "time": [1_700_000_000 + i for i in range(n)],
                      "scene": ["home" if i % 9_999 else "" for i in range(n)]})  # rows 1, 10000, 19999, 29998: errors
    path = tmp_path / "behavior.parquet"
    pq.write_table(table, path, row_group_size=2_000, compression="none")
    ranges = plan_ranges([source_file(str(path))], "pairec-behavior", 64 << 10)
    assert len(ranges) > 2
    rows, errors = [], []
    for byte_range in ranges:  # each range reads the row groups that start in it: every row once
        fmt = get_format("pairec-behavior")
        for parsed in fmt.read_range(byte_range, 1 << 20):
            rows += parsed.batch.column("visitor_id").to_pylist()
            errors += parsed.errors
    assert len(rows) + len(errors) == n and len(set(rows)) == len(rows)
    assert sorted(e["line"] for e in errors) == [1, 10_000, 19_999, 29_998]  # 1-based row numbers of the file
    summary = tmp_path / "s.json"
    config = tmp_path / "c.yaml"
    config.write_text("import:\n  split_bytes: 65536\n  max_error_ratio: 0.01\n")
    assert main(["import", "--config", str(config), "--format", "pairec-behavior", "--events", str(path),
                 "--store", str(tmp_path / "store"), "--summary", str(summary)]) == 0
    s = json.loads(summary.read_text())
    assert (s["records"], s["stored"], s["errors"]) == (n, n - 4, 4)
    samples = [json.loads(line)["details"][0]["line"] for line in
               next((tmp_path / "store" / "_errors").glob("*/errors.jsonl")).read_text().splitlines()]
    assert sorted(samples) == [1, 10_000, 19_999, 29_998]
