"""Importing every source format end to end, stores made before formats existed, and formats
that a package of the user's own registers."""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

import deltalake
import pytest

from eventlake.cli import main
from eventlake.formats import base
from tests.conftest import SHARED_DATA
from tests.pipelines.conftest import assert_counts_add_up, make_catalog, summary_of

CASES = Path(__file__).resolve().parents[1] / "cases"


def _catalog_of_ids(path, ids) -> None:
    path.write_text("".join(json.dumps({"id": str(i), "title": f"Item {i}", "categories": ["c"]}) + "\n" for i in ids))


def test_the_shared_personalize_interactions_import_with_no_errors(tmp_path):
    source = SHARED_DATA / "personalize" / "interactions.csv"
    if not source.exists():
        pytest.skip("the shared sample data is not here")
    _catalog_of_ids(tmp_path / "items.json", range(1, 1000))
    code = main(["import", "--format", "personalize", "--events", str(source), "--catalog", str(tmp_path / "items.json"),
                 "--store", str(tmp_path / "store"), "--summary", str(tmp_path / "summary.json")])
    assert code == 0
    s = summary_of(tmp_path / "summary.json")
    assert_counts_add_up(s)
    assert (s["records"], s["errors"]) == (158_371, 0)
    table = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table()
    assert table.num_rows == s["stored"] and s["stored"] + s["duplicates"] == 158_371
    assert set(table.column("source_format").to_pylist()) == {"personalize"}
    assert set(table.column("event_type").to_pylist()) == {"click", "watch"}
    assert s["joined"] == sum(table.column("joined").to_pylist()) > 0


def test_a_personalize_file_with_bad_rows_keeps_counts_and_samples(tmp_path):
    (tmp_path / "i.csv").write_text("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n"
                                    "u1,1,1700000000,click\n"
                                    "u1,1,1700000000,click\n"  # a duplicate
                                    "u2,2,1700000000123,click\n"  # milliseconds
                                    "u3,,1700000001,click\n")
    _catalog_of_ids(tmp_path / "items.json", [1])
    code = main(["import", "--format", "personalize", "--events", str(tmp_path / "i.csv"),
                 "--catalog", str(tmp_path / "items.json"), "--store", str(tmp_path / "store")])
    assert code == 0
    [run] = [p for p in (tmp_path / "store" / "_errors").iterdir() if p.is_dir()]
    s = summary_of(run / "summary.json")
    assert (s["records"], s["stored"], s["duplicates"], s["errors"]) == (4, 1, 1, 2)
    samples = [json.loads(line)["details"][0] for line in (run / "errors.jsonl").read_text().splitlines()]
    assert [(d["line"], d["field"], d["reason"]) for d in samples] == [
        (4, "TIMESTAMP", "INVALID_TIMESTAMP"), (5, "ITEM_ID", "REQUIRED")]


def test_a_personalize_file_without_a_required_column_fails_the_run(tmp_path, capsys):
    (tmp_path / "i.csv").write_text("USER,ITEM_ID,TIMESTAMP\nu1,1,1700000000\n")
    make_catalog(tmp_path / "c.json")
    code = main(["import", "--format", "personalize", "--events", str(tmp_path / "i.csv"),
                 "--catalog", str(tmp_path / "c.json"), "--store", str(tmp_path / "store")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "the header has no USER_ID column" in err[0] and "i.csv" in err[0]
    assert not (tmp_path / "store" / "_delta_log").exists()


def test_an_unknown_format_is_refused_naming_the_known_ones(tmp_path, capsys):
    code = main(["import", "--format", "parquet-ish", "--events", "x.json", "--catalog", "c.json",
                 "--store", str(tmp_path / "store")])
    assert code == 2
    assert "format: unknown format 'parquet-ish'; known: ga4, mapped, opensearch, pairec-behavior, pairec-callback, personalize, personalize-events, retail, or auto" in capsys.readouterr().err


def test_a_store_made_before_formats_gains_the_new_column_in_a_commit_of_its_own(tmp_path):
    store = tmp_path / "store"
    shutil.copytree(CASES / "store-0.1.0", store)  # written by eventlake 0.1.0 before source formats
    (tmp_path / "i.csv").write_text("USER_ID,ITEM_ID,TIMESTAMP\nu1,GGOEAAEC172013,1700000000\n")
    make_catalog(tmp_path / "c.json")
    code = main(["import", "--format", "personalize", "--events", str(tmp_path / "i.csv"),
                 "--catalog", str(tmp_path / "c.json"), "--store", str(store)])
    assert code == 0
    table = deltalake.DeltaTable(str(store))
    assert table.version() == 2
    history = [h["operation"] for h in sorted(table.history(), key=lambda h: h["version"])]
    assert history == ["WRITE", "ADD COLUMNS", "WRITE"]
    rows = table.to_pyarrow_table().to_pylist()
    assert sorted((r["source_format"] or "-") for r in rows) == ["-", "-", "-", "personalize"]  # old files: null
    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "u1"', "--force"]) == 0
    assert len(deltalake.DeltaTable(str(store)).to_pyarrow_table()) == 3
    # a Retail import into the same store needs no second schema commit
    shutil.copy(CASES.parents[1] / "examples" / "user_events.json", tmp_path / "more.json")
    assert main(["import", "--events", str(tmp_path / "more.json"), "--catalog", str(tmp_path / "c.json"),
                 "--store", str(store), "--max-error-ratio", "0.5"]) == 0
    assert [h["operation"] for h in deltalake.DeltaTable(str(store)).history()].count("ADD COLUMNS") == 1


@pytest.fixture
def plugin_format(tmp_path, monkeypatch):
    """A package of the user's own that registers a format through the entry-point group."""
    site = tmp_path / "site"
    (site / "tabbed_events").mkdir(parents=True)
    (site / "tabbed_events" / "__init__.py").write_text(textwrap.dedent('''
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from eventlake.formats.base import EventFormat, ParsedBlock, canonical_batch
        from eventlake.io.files import read_blocks


        class TabbedEvents(EventFormat):
            """visitor <TAB> item <TAB> unix seconds, one event per line."""

            name = "tabbed"
            suffixes = (".tsv",)

            def read_range(self, byte_range, block_bytes):
                for block, line_count in read_blocks(byte_range, block_bytes):
                    rows = [block.raw(i).decode().split("\\t") for i in range(len(block))]
                    seconds = pa.array([int(r[2]) for r in rows], pa.int64())
                    product = pa.StructArray.from_arrays([pa.array([r[1] for r in rows])], names=["id"])
                    entry = pa.StructArray.from_arrays([product, pa.nulls(len(rows), pa.int64())],
                                                       names=["product", "quantity"])
                    columns = {
                        "event_type": pa.array(["detail-page-view"] * len(rows)),
                        "visitor_id": pa.array([r[0] for r in rows]),
                        "event_time": pc.multiply(seconds, 1_000_000).cast(pa.timestamp("us", tz="UTC")),
                        "product_details": pa.ListArray.from_arrays(pa.array(np.arange(len(rows) + 1, dtype=np.int32)),
                                                                    entry),
                    }
                    yield ParsedBlock(canonical_batch(columns, block.source, block.offsets, block.line_numbers,
                                                      block.records(np.arange(len(block))), self.name),
                                      lines=line_count, records=len(block))
    '''))
    info = site / "tabbed_events-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tabbed-events\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[eventlake.formats]\ntabbed = tabbed_events:TabbedEvents\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(base, "_entry_points_loaded", False)
    yield
    base._registry.pop("tabbed", None)
    sys.modules.pop("tabbed_events", None)


def test_a_format_from_another_package_imports_through_the_entry_point_group(tmp_path, plugin_format):
    assert "tabbed" in base.format_names()
    (tmp_path / "e.tsv").write_text("v1\tp1\t1700000000\nv2\tp2\t1700000060\n")
    make_catalog(tmp_path / "c.json")
    code = main(["import", "--format", "tabbed", "--events", str(tmp_path / "e.tsv"), "--catalog", str(tmp_path / "c.json"),
                 "--store", str(tmp_path / "store")])
    assert code == 0
    rows = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table().to_pylist()
    assert sorted((r["visitor_id"], r["source_format"], r["joined"]) for r in rows) == [
        ("v1", "tabbed", True), ("v2", "tabbed", True)]


def test_personalize_interactions_join_personalize_items_from_the_command_line(tmp_path):
    interactions = SHARED_DATA / "personalize" / "interactions.csv"
    items = SHARED_DATA / "personalize" / "item-meta.csv"
    if not interactions.exists():
        pytest.skip("the shared sample data is not here")
    head = interactions.read_text().splitlines()[:2001]
    (tmp_path / "interactions.csv").write_text("\n".join(head) + "\n")
    code = main(["import", "--format", "personalize", "--events", str(tmp_path / "interactions.csv"),
                 "--catalog-format", "personalize-items", "--catalog", str(items), "--catalog-field", "GENRE=categories",
                 "--store", str(tmp_path / "store"), "--summary", str(tmp_path / "s.json")])
    assert code == 0
    s = summary_of(tmp_path / "s.json")
    assert s["errors"] == 0 and s["catalog_errors"] == 0 and s["joined"] == s["stored"]
    table = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table()
    genres = {r["product"]["id"]: r["product"]["categories"] for details in table.column("product_details").to_pylist()
              for r in details}
    assert genres["1"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    # rejoin reads the same catalog format
    assert main(["rejoin", "--store", str(tmp_path / "store"), "--catalog-format", "personalize-items",
                 "--catalog", str(items), "--catalog-field", "GENRE=categories"]) == 0


def test_a_catalog_field_flag_without_a_field_is_refused(tmp_path, capsys):
    code = main(["import", "--events", "e.json", "--catalog", "c.csv", "--catalog-format", "personalize-items",
                 "--catalog-field", "GENRE", "--store", str(tmp_path / "store")])
    assert code == 2 and "--catalog-field: expected COLUMN=FIELD, got 'GENRE'" in capsys.readouterr().err


def test_opensearch_behavior_imports_with_samples_and_counts_that_add_up(tmp_path):
    from tests.formats.test_opensearch import behavior

    good = [behavior(item_id=f"p{i}", user_id=f"u{i % 3}", reach_time=str(1709708439 + i)) for i in range(6)]
    broken = json.dumps(good[0]).replace('"trace_id": "ALIBABA"', '{"trace_id", "ALIBABA"}')
    text = "[\n" + ",\n".join([json.dumps(d) for d in good[:3]] + [broken] + [json.dumps(d) for d in good[3:]]) + "\n]\n"
    text += json.dumps(behavior(bhv_type="share")) + "\n" + json.dumps(good[0]) + "\n"  # a bad type, a duplicate
    (tmp_path / "behavior.json").write_text(text)
    make_catalog(tmp_path / "c.json")
    code = main(["import", "--format", "opensearch", "--events", str(tmp_path / "behavior.json"),
                 "--catalog", str(tmp_path / "c.json"), "--store", str(tmp_path / "store"),
                 "--summary", str(tmp_path / "s.json")])
    assert code == 0
    s = summary_of(tmp_path / "s.json")
    assert_counts_add_up(s)
    assert (s["records"], s["stored"], s["duplicates"], s["errors"]) == (9, 6, 1, 2)
    assert s["errors_by_reason"] == {"INVALID_EVENT_TYPE": 1, "INVALID_JSON": 1}
    samples = [json.loads(line)["details"][0] for line in Path(s["errors_path"], "errors.jsonl").read_text().splitlines()]
    assert sorted((d["line"], d["field"]) for d in samples) == [(5, ""), (10, "fields.bhv_type")]  # "[" is line 1, "]" line 9
    table = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table()
    assert set(table.column("event_type").to_pylist()) == {"detail-page-view"}
    assert set(table.column("source_format").to_pylist()) == {"opensearch"}
    assert table.column("request_id").to_pylist() == ["170970843912345"] * 6


def test_personalize_events_with_an_id_seen_before_are_duplicates_in_the_run_and_the_store(tmp_path):
    from tests.formats.test_personalize_events import event, request

    first = [request(eventList=[event(eventId="e-1", itemId="p1"), event(eventId="e-2", itemId="p2")]),
             # e-1 again with other content: the id makes it the same event
             request(eventList=[event(eventId="e-1", itemId="p3", sentAt=1700000500)]),
             request(eventList=[event(itemId="p4"), event(itemId="p4")])]  # no id: content decides
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in first))
    (tmp_path / "b.jsonl").write_text(json.dumps(request(eventList=[event(eventId="e-2", itemId="p9"),
                                                                    event(eventId="e-3", itemId="p5")])) + "\n")
    make_catalog(tmp_path / "c.json")

    def run_import(name: str) -> dict:
        code = main(["import", "--format", "personalize-events", "--events", str(tmp_path / name),
                     "--catalog", str(tmp_path / "c.json"), "--store", str(tmp_path / "store"),
                     "--summary", str(tmp_path / f"{name}.summary")])
        assert code == 0
        return summary_of(tmp_path / f"{name}.summary")

    s = run_import("a.jsonl")
    assert_counts_add_up(s)
    assert (s["records"], s["stored"], s["duplicates"]) == (5, 3, 2)
    s = run_import("b.jsonl")
    assert (s["records"], s["stored"], s["duplicates"]) == (2, 1, 1)
    rows = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table().to_pylist()
    kept = sorted((r["event_id"] or "-", r["product_details"][0]["product"]["id"]) for r in rows)
    assert kept == [("-", "p4"), ("e-1", "p1"), ("e-2", "p2"), ("e-3", "p5")]  # the first of each id wins


def test_format_auto_chooses_each_file_records_it_and_counts_by_format(tmp_path, capsys):
    from tests.formats.test_opensearch import behavior

    (tmp_path / "i.csv").write_text("USER_ID,ITEM_ID,TIMESTAMP\nu1,p1,1700000000\nu2,,1700000001\n")
    (tmp_path / "b.json").write_text(json.dumps([behavior(item_id="p2")]))
    shutil.copy(CASES.parents[1] / "examples" / "user_events.json", tmp_path / "r.json")
    make_catalog(tmp_path / "c.json")
    events = [arg for name in ("i.csv", "b.json", "r.json") for arg in ("--events", str(tmp_path / name))]
    code = main(["import", "--format", "auto", *events, "--catalog-format", "auto",
                 "--catalog", str(tmp_path / "c.json"), "--store", str(tmp_path / "store"), "--max-error-ratio", "0.5",
                 "--summary", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert code == 0
    s = summary_of(tmp_path / "s.json")
    assert s["formats"] == {str(tmp_path / "b.json"): "opensearch", str(tmp_path / "i.csv"): "personalize",
                            str(tmp_path / "r.json"): "retail"}
    assert s["by_format"] == {"opensearch": {"records": 1, "errors": 0}, "personalize": {"records": 2, "errors": 1},
                              "retail": {"records": 4, "errors": 1}}
    assert re.search(rf"format personalize +{re.escape(str(tmp_path / 'i.csv'))}", out)
    [entry] = [json.loads(line) for line in (tmp_path / "store" / "_delta_log" / "00000000000000000000.json")
               .read_text().splitlines() if "commitInfo" in line]
    assert entry["commitInfo"]["eventlake"]["parameters"]["formats"] == s["formats"]
    assert entry["commitInfo"]["eventlake"]["parameters"]["catalog_format"] == "retail"


def test_format_auto_refuses_a_file_it_cannot_tell_naming_the_candidates(tmp_path, capsys):
    (tmp_path / "odd.jsonl").write_text(json.dumps({"session": 1, "events": []}) + "\n")
    make_catalog(tmp_path / "c.json")
    code = main(["import", "--format", "auto", "--events", str(tmp_path / "odd.jsonl"),
                 "--catalog", str(tmp_path / "c.json"), "--store", str(tmp_path / "store")])
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and str(tmp_path / "odd.jsonl") in line
    assert "candidates: ga4, opensearch, pairec-behavior, pairec-callback, personalize-events, retail" in line and "give --format" in line
    assert not (tmp_path / "store" / "_delta_log").exists()


def test_purge_filters_mean_the_same_for_every_format(tmp_path):
    from tests.formats.test_opensearch import behavior
    from tests.formats.test_personalize_events import event, request

    (tmp_path / "b.json").write_text(json.dumps([behavior(item_id="p1", user_id="alice"),
                                                 behavior(item_id="p2", user_id="bob")]))
    (tmp_path / "e.jsonl").write_text(json.dumps(request(userId="alice", eventList=[event(itemId="p3")])) + "\n"
                                      + json.dumps(request(userId="carol", eventList=[event(itemId="p2")])) + "\n")
    (tmp_path / "i.csv").write_text("USER_ID,ITEM_ID,TIMESTAMP\nalice,p4,1700000000\ndave,p2,1700000000\n")
    make_catalog(tmp_path / "c.json")
    store = str(tmp_path / "store")
    for name in ("b.json", "e.jsonl", "i.csv"):
        assert main(["import", "--format", "auto", "--events", str(tmp_path / name), "--catalog", str(tmp_path / "c.json"),
                     "--store", store]) == 0
    assert main(["purge", "--store", store, "--filter", 'userId = "alice"', "--force"]) == 0
    assert main(["purge", "--store", store, "--filter", 'productId = "p2"', "--force"]) == 0
    assert deltalake.DeltaTable(store).to_pyarrow_table().num_rows == 0  # every one was alice's or named p2
    assert main(["rejoin", "--store", store, "--catalog", str(tmp_path / "c.json")]) == 0


def test_a_large_personalize_csv_is_read_in_ranges_with_absolute_error_lines(tmp_path):
    from eventlake.config import load_config
    from eventlake.pipelines.import_events import plan_import, run_import
    from tests.conftest import write_interactions

    starts = write_interactions(tmp_path / "big.csv", 6000, item=lambda i: "" if i % 500 == 42 else f"p{i % 40}",
                                note=lambda i: f'"note {i}\nspans two lines"' if i % 7 == 0 else "plain")
    bad_lines = [starts[i] for i in range(6000) if i % 500 == 42]
    make_catalog(tmp_path / "c.json")
    config = load_config(None, {"format": "personalize", "events": [str(tmp_path / "big.csv")],
                                "catalog": str(tmp_path / "c.json"), "store": str(tmp_path / "store"),
                                "split_bytes": 1 << 16})
    assert len(plan_import(config).ranges) >= 3
    s = run_import(config)
    assert_counts_add_up(s)
    assert (s["records"], s["errors"], s["stored"]) == (6000, len(bad_lines), 6000 - len(bad_lines))
    samples = [json.loads(x)["details"][0] for x in Path(s["errors_path"], "errors.jsonl").read_text().splitlines()]
    assert sorted(d["line"] for d in samples) == bad_lines


def test_a_forced_purge_erases_the_visitor_from_every_formats_error_samples(tmp_path):
    from tests.formats.test_opensearch import behavior
    from tests.formats.test_personalize_events import event, request

    (tmp_path / "i.csv").write_text("USER_ID,ITEM_ID,TIMESTAMP\nzed-42,p1,1700000000\nzed-42,,1700000001\n"
                                    "amy,,1700000002\n")
    (tmp_path / "b.json").write_text(json.dumps([behavior(user_id="zed-42", reach_time="oops"),
                                                 behavior(user_id="amy", reach_time="oops"), behavior()]))
    (tmp_path / "e.jsonl").write_text(json.dumps(request(userId="zed-42", eventList=[event(sentAt="soon")])) + "\n"
                                      + json.dumps(request(userId="amy", eventList=[event()])) + "\n")
    make_catalog(tmp_path / "c.json")
    store = tmp_path / "store"
    for name in ("i.csv", "b.json", "e.jsonl"):
        assert main(["import", "--format", "auto", "--events", str(tmp_path / name), "--catalog", str(tmp_path / "c.json"),
                     "--store", str(store), "--max-error-ratio", "0.9"]) == 0
    holds = [p for p in store.rglob("*") if p.is_file() and b"zed-42" in p.read_bytes()]
    assert any("_errors" in str(p) for p in holds)  # its rejected records are in the samples
    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "zed-42"', "--force"]) == 0
    assert not [p for p in store.rglob("*") if p.is_file() and b"zed-42" in p.read_bytes()]
    kept = b"".join(p.read_bytes() for p in store.rglob("errors.jsonl"))
    assert kept.count(b"amy") == 2  # the other visitor's samples (CSV row, OpenSearch document) stay
