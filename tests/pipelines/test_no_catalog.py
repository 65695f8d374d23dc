"""Import without a catalog: no join, ``joined`` null (neither joined nor unjoined), said in the
summary; a later rejoin with a catalog joins the events (they are in the ``unjoined`` scope)."""

from __future__ import annotations

import json

import deltalake

from eventlake.cli import main
from tests.conftest import SHARED_DATA
from tests.pipelines.conftest import make_catalog, make_events, summary_of

OTTO = SHARED_DATA / "otto" / "train.jsonl"


def test_an_import_without_a_catalog_stores_events_neither_joined_nor_unjoined(tmp_path, capsys):
    make_events(tmp_path / "e.jsonl", 300)
    code = main(["import", "--events", str(tmp_path / "e.jsonl"), "--store", str(tmp_path / "store"),
                 "--summary", str(tmp_path / "s.json")])
    assert code == 0
    s = summary_of(tmp_path / "s.json")
    assert s["records"] == s["stored"] + s["duplicates"] + s["errors"] and s["stored"] > 0
    assert (s["joined"], s["unjoined"], s["catalog_products"]) == (None, None, None)
    assert "no catalog" in s["note"] and "no catalog" in capsys.readouterr().out
    table = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table()
    assert table.column("joined").null_count == table.num_rows == s["stored"]
    assert table.column("missing_product_ids").null_count == table.num_rows
    titles = {d["product"]["title"] for row in table.column("product_details").to_pylist() for d in row}
    assert titles == {None}

    make_catalog(tmp_path / "catalog.json", 40)
    assert main(["rejoin", "--store", str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog.json"),
                 "--scope", "unjoined", "--summary", str(tmp_path / "r.json")]) == 0
    r = summary_of(tmp_path / "r.json")
    after = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table()
    assert r["events_in_scope"] == s["stored"] and after.column("joined").null_count == 0
    unknown = sum(1 for row in after.column("product_details").to_pylist() if row[0]["product"]["id"] == "unknown")
    assert sum(after.column("joined").to_pylist()) == r["newly_joined"] == s["stored"] - unknown > 0
    assert {d["product"]["title"] for row in after.column("product_details").to_pylist() for d in row} > {None}


def test_a_store_mixing_joined_and_never_joined_events(tmp_path):
    make_events(tmp_path / "a.jsonl", 200, bad_every=0)
    make_events(tmp_path / "b.jsonl", 200, start=200, bad_every=0)
    make_catalog(tmp_path / "catalog.json", 40)
    store = str(tmp_path / "store")
    assert main(["import", "--events", str(tmp_path / "a.jsonl"), "--catalog", str(tmp_path / "catalog.json"),
                 "--store", store]) == 0
    assert main(["import", "--events", str(tmp_path / "b.jsonl"), "--store", store]) == 0
    table = deltalake.DeltaTable(store).to_pyarrow_table()
    assert table.column("joined").null_count == 200 and table.num_rows == 400
    # the joined scope leaves never-joined events alone; the unjoined scope takes them
    assert main(["rejoin", "--store", store, "--catalog", str(tmp_path / "catalog.json"), "--scope", "joined",
                 "--summary", str(tmp_path / "j.json")]) == 0
    assert deltalake.DeltaTable(store).to_pyarrow_table().column("joined").null_count == 200
    assert main(["rejoin", "--store", store, "--catalog", str(tmp_path / "catalog.json"), "--scope", "unjoined",
                 "--summary", str(tmp_path / "u.json")]) == 0
    assert deltalake.DeltaTable(store).to_pyarrow_table().column("joined").null_count == 0
    assert json.loads((tmp_path / "u.json").read_text())["events_in_scope"] == 200 + 20  # + a's unknown products
