"""Config-mapped files: the shipped OTTO, RetailRocket and Taobao mappings on files shaped as
those datasets are published, time units, exploding, a mapping naming a missing column, and
the mapped catalog."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import deltalake
import duckdb
import pyarrow.parquet as pq
import pytest

from eventlake.cli import main
from eventlake.config import ConfigError, ImportConfig, load_config  # noqa: I001
from eventlake.formats.base import FormatOptionError, get_format
from eventlake.io.files import ByteRange
from eventlake.pipelines.import_events import run_import
from tests.conftest import SHARED_DATA
from tests.pipelines.conftest import assert_counts_add_up

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OTTO = SHARED_DATA / "otto" / "train.jsonl"


def stored(store, columns=None) -> list[dict]:
    return deltalake.DeltaTable(str(store)).to_pyarrow_table(columns=columns).to_pylist()


def imported(tmp_path, config: str, events, *flags) -> dict:
    summary = tmp_path / "summary.json"
    code = main(["import", "--config", str(CONFIGS / config), "--events", str(events), "--store",
                 str(tmp_path / "store"), "--summary", str(summary), *flags])
    assert code == 0
    s = json.loads(summary.read_text())
    assert_counts_add_up(s)
    return s


def test_the_otto_mapping_imports_every_event_of_the_published_sessions(tmp_path):
    if not OTTO.exists():
        pytest.skip("the shared sample data is not here")
    s = imported(tmp_path, "otto.yaml", OTTO)
    # DuckDB reads the published file on its own and unnests the sessions' events
    expected = duckdb.sql(f"select session, e.aid, e.ts, e.type from (select session, unnest(events) as e "
                          f"from read_json_auto('{OTTO}'))").fetchall()
    assert s["records"] == s["stored"] == len(expected) > 0 and s["errors"] == 0 and s["joined"] is None
    names = {"clicks": "detail-page-view", "carts": "add-to-cart", "orders": "purchase-complete"}
    rows = stored(tmp_path / "store", ["visitor_id", "session_id", "product_details", "event_time", "event_type",
                                       "source_event_type"])
    got = sorted((r["visitor_id"], r["product_details"][0]["product"]["id"],
                  int(r["event_time"].timestamp() * 1000), r["event_type"], r["source_event_type"]) for r in rows)
    assert got == sorted((str(session), str(aid), ts, names[kind], kind) for session, aid, ts, kind in expected)
    assert all(r["session_id"] == r["visitor_id"] for r in rows)


def test_the_retailrocket_mapping_reads_its_published_columns(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("timestamp,visitorid,event,itemid,transactionid\n"
                      "1433221332117,257597,view,355908,\n"
                      "1433224214164,992329,view,248676,\n"
                      "1433221999827,111016,addtocart,176145,\n"
                      "1433222276276,111016,transaction,176145,4000\n"
                      "1433222276276,111017,transaction,,4001\n"  # no item: an error
                      "14332222762x6,111018,view,5,\n")  # a time that does not read: an error
    s = imported(tmp_path, "retailrocket.yaml", events, "--max-error-ratio", "0.5")
    assert (s["records"], s["stored"], s["errors"]) == (6, 4, 2)
    assert s["errors_by_reason"] == {"INVALID_TIME": 1, "REQUIRED": 1}
    rows = {r["event_type"] + "/" + r["visitor_id"]: r for r in stored(tmp_path / "store")}
    purchase = rows["purchase-complete/111016"]
    assert purchase["purchase_transaction"]["id"] == "4000" and purchase["source_event_type"] == "transaction"
    assert rows["detail-page-view/257597"]["event_time"] == datetime(2015, 6, 2, 5, 2, 12, 117000, tzinfo=timezone.utc)
    assert rows["add-to-cart/111016"]["purchase_transaction"] is None
    samples = [json.loads(line)["details"][0] for line in
               next((tmp_path / "store" / "_errors").glob("*/errors.jsonl")).read_text().splitlines()]
    assert sorted((d["line"], d["field"], d["reason"]) for d in samples) == [
        (6, "itemid", "REQUIRED"), (7, "timestamp", "INVALID_TIME")]


def test_the_taobao_mapping_reads_the_file_without_a_header(tmp_path):
    events = tmp_path / "UserBehavior.csv"
    events.write_text("1,2268318,2520377,pv,1511544070\n1,2333346,2520771,fav,1511561733\n"
                      "100,1603476,2951233,buy,1511572885\n")
    s = imported(tmp_path, "taobao.yaml", events)
    assert (s["records"], s["stored"], s["errors"]) == (3, 3, 0)
    assert s["by_event_type"] == {"detail-page-view": 1, "fav": 1, "purchase-complete": 1}
    [row] = [r for r in stored(tmp_path / "store") if r["source_event_type"] == "buy"]
    assert row["user_info"]["user_id"] == row["visitor_id"] == "100"
    assert row["attributes"] == [{"key": "category_id", "value": {"text": ["2951233"], "numbers": None}}]  # CSV: text
    assert row["event_time"] == datetime(2017, 11, 25, 1, 21, 25, tzinfo=timezone.utc)


def test_a_mapping_naming_a_column_the_file_lacks_fails_the_file_in_one_line(tmp_path, capsys):
    events = tmp_path / "events.csv"
    events.write_text("timestamp,visitor,event,itemid\n1433221332117,1,view,2\n")
    code = main(["import", "--config", str(CONFIGS / "retailrocket.yaml"), "--events", str(events), "--store",
                 str(tmp_path / "store")])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "events.csv: the mapping names transactionid, visitorid, which the file lacks" in err
    assert not (tmp_path / "store").exists()  # refused at start-up: no run began


def read(path, options) -> tuple[list[dict], list[dict], int]:
    fmt = get_format("mapped", options)
    rows, errors, records = [], [], 0
    for parsed in fmt.read_range(ByteRange(str(path), 0, -1), 1 << 20):
        rows += parsed.batch.to_pylist()
        errors += parsed.errors
        records += parsed.records
    assert records == len(rows) + len(errors)
    return rows, errors, records


def test_time_units_constants_and_a_parent_without_events(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [
        {"user": {"id": "u1"}, "hits": [{"sku": "a", "at": "2024-03-01 12:00:00"},
                                        {"sku": "b", "at": "2024-03-01 12:00:05"}]},
        {"user": {"id": "u2"}, "hits": []},  # one record, one error
        {"user": {"id": "u3"}, "hits": [{"sku": "c", "at": "yesterday"}]},
    ]) + "\n")
    options = {"explode": "hits", "fields": {"visitor_id": "user.id", "product_id": "hits.sku", "event_time": "hits.at"},
               "constants": {"event_type": "detail-page-view"}, "time_unit": "%Y-%m-%d %H:%M:%S",
               "timezone": "Europe/Berlin"}
    rows, errors, records = read(path, options)
    assert records == 4
    assert [(r["visitor_id"], r["product_details"][0]["product"]["id"], r["event_type"], r["source_line"]) for r in rows] \
        == [("u1", "a", "detail-page-view", 1), ("u1", "b", "detail-page-view", 1)]
    assert rows[0]["event_time"] == datetime(2024, 3, 1, 11, 0, tzinfo=timezone.utc)  # noon in Berlin
    assert sorted((e["line"], e["field"], e["reason"]) for e in errors) == [(2, "hits", "REQUIRED"),
                                                                          (3, "hits.at", "INVALID_TIME")]


@pytest.mark.parametrize(("unit", "value", "expected"), [
    ("s", 1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
    ("ms", "1700000000123", datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=timezone.utc)),
    ("us", 1700000000123456, datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=timezone.utc)),
    ("rfc3339", "2023-11-15T00:13:20+02:00", datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
])
def test_each_time_unit(tmp_path, unit, value, expected):
    path = tmp_path / "log.parquet"
    import pyarrow as pa

    pq.write_table(pa.table({"who": ["v"], "what": ["click"], "when": [value]}), path)
    rows, errors, _ = read(path, {"fields": {"visitor_id": "who", "event_type": "what", "event_time": "when"},
                                  "time_unit": unit})
    assert not errors and rows[0]["event_time"] == expected and rows[0]["source_line"] == 1


def test_bad_options_are_named_before_anything_runs(tmp_path):
    with pytest.raises(FormatOptionError, match="fields.price: not a field it can fill"):
        get_format("mapped", {"fields": {"price": "p", "event_time": "t"}})
    with pytest.raises(FormatOptionError, match="time_unit: 'hours' is not"):
        get_format("mapped", {"fields": {"event_time": "t"}, "time_unit": "hours"})
    with pytest.raises(FormatOptionError, match="column_names: a CSV without a header needs"):
        get_format("mapped", {"fields": {"event_time": "t"}, "header": False})
    config = tmp_path / "c.yaml"
    config.write_text("import:\n  format: mapped\n  format_options:\n    fields: {visitor_id: v}\n")
    with pytest.raises(ConfigError, match="format_options.fields.event_time: every event needs a time"):
        load_config(str(config), {"events": ["e.csv"], "store": "s"}, ImportConfig)
    with pytest.raises(ConfigError, match="format_options.fields: give a mapping"):
        ImportConfig(events=["e.csv"], store="s", format="mapped")  # the mapped format needs its mapping


def test_the_mapped_catalog_joins_and_python_runs_the_same_import(tmp_path):
    (tmp_path / "events.csv").write_text("ts,user,sku,kind\n1700000000,u1,A-1,view\n1700000001,u2,B-2,view\n"
                                         "1700000002,u3,Z-9,view\n")
    (tmp_path / "items.csv").write_text("sku,name,cat,cost\nA-1,Hat,Wear|Hats,9.5\nB-2,Mug,Home,4\n"
                                        ",Nameless,Home,1\nC-3,Pen,Office,ten\n")
    summary = run_import(ImportConfig(
        events=[str(tmp_path / "events.csv")], store=str(tmp_path / "store"), format="mapped",
        format_options={"fields": {"visitor_id": "user", "product_id": "sku", "event_type": "kind", "event_time": "ts"}},
        catalog=str(tmp_path / "items.csv"), catalog_format="mapped", catalog_fields=["title", "categories", "price"],
        catalog_format_options={"fields": {"id": "sku", "title": "name", "categories": "cat", "price": "cost"}}))
    assert (summary.records, summary.stored, summary.joined, summary.unjoined) == (3, 3, 2, 1)
    assert (summary.catalog_products, summary.catalog_errors) == (2, 2)  # no id; a price that is not a number
    products = {r["product_details"][0]["product"]["id"]: r["product_details"][0]["product"]
                for r in stored(tmp_path / "store")}
    assert products["A-1"] == {"id": "A-1", "title": "Hat", "categories": ["Wear", "Hats"], "price": 9.5}
    assert products["Z-9"]["title"] is None


def test_a_file_whose_first_sessions_list_no_event_is_not_refused_for_missing_columns(tmp_path):
    path = tmp_path / "sessions.jsonl"
    path.write_text(json.dumps({"session": 1, "events": []}) + "\n")
    options = {"explode": "events", "fields": {"visitor_id": "session", "product_id": "events.aid",
                                               "event_type": "events.type", "event_time": "events.ts"}, "time_unit": "ms"}
    get_format("mapped", options).check_file(str(path))  # empty lists say nothing about their events' fields
    rows, errors, records = read(path, options)
    assert (rows, records) == ([], 1) and [(e["field"], e["reason"]) for e in errors] == [("events", "REQUIRED")]
