"""Rejoin, purge and history end to end: counts, what ``deltalake`` reads back, and what is on disk."""

from __future__ import annotations

import hashlib
import json
import os

import pyarrow.parquet as pq
import pytest

from eventlake.cli import main
from eventlake.config import PurgeConfig, RejoinConfig
from eventlake.io.delta_log import read_snapshot
from eventlake.pipelines.purge import execute_purge, plan_purge, run_purge
from eventlake.pipelines.rejoin import run_rejoin
from tests.pipelines.conftest import import_generated, make_catalog, make_events, stored_rows


@pytest.fixture
def store(generated):
    """1176 stored detail-page-views over three days; the 120 naming product "unknown" are unjoined."""
    code, s = import_generated(generated)
    assert code == 0 and (s["stored"], s["unjoined"]) == (1176, 120)
    return generated


def write_catalog(path, products: dict[str, str]):
    path.write_text("".join(json.dumps({"id": k, "title": v}) + "\n" for k, v in products.items()))
    return path


def parquet_rows(store) -> list[dict]:
    """Every row of every Parquet file under the store, referenced by the log or not."""
    rows = []
    for directory, _, files in os.walk(store):
        for name in files:
            if name.endswith(".parquet"):
                rows += pq.read_table(os.path.join(directory, name)).to_pylist()
    return rows


def cli(*args) -> int:
    return main([str(a) for a in args])


def test_rejoin_unjoined_joins_the_events_whose_product_arrived(store):
    catalog = write_catalog(store / "new.json", {**{f"p{i}": f"Product {i}" for i in range(40)}, "unknown": "Found"})
    s = run_rejoin(RejoinConfig(store=str(store / "store"), catalog=str(catalog), scope="unjoined"))
    assert (s["events_in_scope"], s["rejoined"], s["newly_joined"], s["newly_unjoined"]) == (120, 120, 120, 0)
    assert (s["files_scanned"], s["files_rewritten"]) == (3, 3)
    rows = stored_rows(store / "store")
    assert len(rows) == 1176 and all(r["joined"] and r["missing_product_ids"] == [] for r in rows)
    found = [r for r in rows if r["product_details"][0]["product"]["id"] == "unknown"]
    assert len(found) == 120 and {r["product_details"][0]["product"]["title"] for r in found} == {"Found"}
    # joined events were out of scope: their catalog fields are the import's (categories kept)
    assert next(r for r in rows if r["product_details"][0]["product"]["id"] == "p1")["product_details"][0]["product"]["categories"] == ["c"]
    assert len(parquet_rows(store / "store")) == 1176  # superseded files are gone


def test_rejoin_joined_refreshes_fields_and_unjoins_removed_products(store):
    products = {f"p{i}": f"Product {i}" for i in range(40) if i != 2}
    products["p1"] = "Renamed"
    catalog = write_catalog(store / "new.json", products)
    summary = store / "rejoin.json"
    assert cli("rejoin", "--store", store / "store", "--catalog", catalog, "--scope", "joined", "--summary", summary) == 0
    s = json.loads(summary.read_text())
    rows = stored_rows(store / "store")
    p2 = [r for r in rows if r["product_details"][0]["product"]["id"] == "p2"]
    assert s["events_in_scope"] == 1056 and s["newly_unjoined"] == len(p2) > 0 and s["newly_joined"] == 0
    assert s["rejoined"] == 1056 - len(p2)
    assert all(not r["joined"] and r["missing_product_ids"] == ["p2"] for r in p2)
    assert {r["product_details"][0]["product"]["title"] for r in rows if r["product_details"][0]["product"]["id"] == "p1"} == {"Renamed"}
    # out of scope: unjoined events keep their missing ids even though nothing changed for them
    assert sum(1 for r in rows if r["missing_product_ids"] == ["unknown"]) == 120


def test_rejoin_against_the_same_catalog_rewrites_nothing(store):
    before = sorted(read_snapshot(str(store / "store")).files)
    s = run_rejoin(RejoinConfig(store=str(store / "store"), catalog=str(store / "catalog.json")))
    assert (s["events_in_scope"], s["events_changed"], s["files_rewritten"]) == (1176, 0, 0)
    assert sorted(read_snapshot(str(store / "store")).files) == before


def test_purge_is_a_dry_run_without_force_and_permanent_with_it(store, capsys):
    path = store / "store"
    victims = sum(1 for r in stored_rows(path) if r["visitor_id"] == "v5")
    assert cli("purge", "--store", path, "--filter", 'visitorId = "v5"') == 0
    assert capsys.readouterr().out.splitlines()[0].split() == ["dry_run", "True"]
    assert read_snapshot(str(path)).version == 0 and len(parquet_rows(path)) == 1176

    summary = store / "purge.json"
    assert cli("purge", "--store", path, "--filter", 'visitorId = "v5"', "--force", "--summary", summary) == 0
    s = json.loads(summary.read_text())
    assert s["purged"] == victims > 0 and s["purged_by_event_type"] == {"detail-page-view": victims}
    assert (s["dry_run"], s["version"], s["files_scanned"]) == (False, 1, 3)
    rows = stored_rows(path)
    assert len(rows) == 1176 - victims and not any(r["visitor_id"] == "v5" for r in rows)
    assert not any(r["visitor_id"] == "v5" for r in parquet_rows(path))  # no copy left in any file


def test_purge_reads_only_the_files_that_can_hold_matches(store):
    s = run_purge(PurgeConfig(store=str(store / "store"), force=True,
                              filter='eventTime >= "2024-03-02T00:00:00Z" eventTime < "2024-03-03T00:00:00Z"'))
    assert (s["files_total"], s["files_scanned"], s["files_rewritten"]) == (3, 1, 1)
    rows = stored_rows(store / "store")
    assert s["purged"] == 1176 - len(rows) > 0
    assert {str(r["event_date"]) for r in rows} == {"2024-03-01", "2024-03-03"}
    missing = run_purge(PurgeConfig(store=str(store / "store"), filter="eventsMissingCatalogItems", force=True))
    assert missing["purged"] == sum(1 for r in rows if not r["joined"]) > 0
    assert all(r["joined"] for r in stored_rows(store / "store"))


@pytest.mark.parametrize("bad", ["", "colour = red", 'eventTime > "yesterday"', "x" * 5001])
def test_bad_filters_are_refused_in_one_line_and_change_nothing(store, bad, capsys):
    assert cli("purge", "--store", store / "store", "--filter", bad, "--force") == 1
    err = capsys.readouterr().err
    assert err.startswith("eventlake purge: invalid filter") and err.count("\n") == 1 and "visitor1024" in err
    assert read_snapshot(str(store / "store")).version == 0


def test_an_import_landing_while_a_purge_runs_makes_it_replan_as_if_it_ran_after(store):
    """Purge planned at version 0, an import with matching events commits version 1, then the
    purge commits: it must conflict and re-plan, giving the outcome of import-then-purge."""
    config = PurgeConfig(store=str(store / "store"), filter='visitorId = "v5"', force=True)
    purge = plan_purge(config)
    make_events(store / "events" / "late.jsonl", 300, start=5000, bad_every=0)
    code, late = import_generated(store)
    assert code == 0 and late["stored"] == 300
    s = execute_purge(purge)
    assert s["status"] == "conflict" and "import (version 1)" in s["failure"]
    assert read_snapshot(str(store / "store")).version == 1
    s = run_purge(config)
    assert s["status"] == "ok" and s["version"] == 2
    rows = stored_rows(store / "store")
    assert not any(r["visitor_id"] == "v5" for r in rows) and len(rows) == 1176 + 300 - s["purged"]


def test_an_import_of_other_visitors_does_not_disturb_a_purge(store):
    purge = plan_purge(PurgeConfig(store=str(store / "store"), filter='eventTime < "2024-03-02T00:00:00Z"', force=True))
    (store / "events" / "late.jsonl").write_text(json.dumps({
        "eventType": "home-page-view", "visitorId": "x", "eventTime": "2024-03-03T11:00:00Z"}) + "\n")
    assert import_generated(store)[0] == 0
    assert execute_purge(purge)["status"] == "ok"  # the new file cannot match: no conflict


def test_two_purges_of_the_same_file_cannot_both_commit(store):
    config = PurgeConfig(store=str(store / "store"), filter='visitorId = "v5"', force=True)
    first, second = plan_purge(config), plan_purge(PurgeConfig(**{**vars(config), "filter": 'visitorId = "v6"'}))
    assert execute_purge(first)["status"] == "ok"
    loser = execute_purge(second)
    assert loser["status"] == "conflict" and "added or changed meanwhile by purge (version 1)" in loser["failure"]
    assert read_snapshot(str(store / "store")).version == 1
    assert len(parquet_rows(store / "store")) == len(stored_rows(store / "store"))  # its files were removed
    s = run_purge(PurgeConfig(**{**vars(config), "filter": 'visitorId = "v6"'}))  # plans again, then commits
    assert s["status"] == "ok" and s["version"] == 2 and s["purged"] > 0
    assert not any(r["visitor_id"] in ("v5", "v6") for r in parquet_rows(store / "store"))


def test_history_lists_every_version(store, capsys):
    write_catalog(store / "new.json", {"unknown": "Found"})
    assert cli("rejoin", "--store", store / "store", "--catalog", store / "new.json", "--scope", "unjoined") == 0
    assert cli("purge", "--store", store / "store", "--filter", "eventType = search", "--force") == 0
    capsys.readouterr()
    assert cli("history", "--store", store / "store", "--json") == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["version"], e["job"]) for e in entries] == [(0, "import"), (1, "rejoin"), (2, "purge (audit)")]
    assert entries[0]["counts"]["stored"] == 1176 and entries[1]["counts"]["newly_joined"] == 120
    assert entries[2]["parameters"] == {"filter": "eventType = search", "force": True}
    assert cli("history", "--store", store / "store") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["version", "time", "job", "counts"] and "rejoin" in table[2]


def test_rejoin_and_purge_refuse_a_missing_store(tmp_path, capsys):
    make_catalog(tmp_path / "catalog.json")
    assert cli("rejoin", "--store", tmp_path / "none", "--catalog", tmp_path / "catalog.json") == 1
    assert cli("purge", "--store", tmp_path / "none", "--filter", 'visitorId = "v"') == 1
    assert capsys.readouterr().err.count("there is no event store") == 2


def test_a_rejoin_whose_files_a_purge_rewrote_meanwhile_refuses_to_commit(store):
    from eventlake.pipelines.rejoin import execute_rejoin, plan_rejoin

    catalog = write_catalog(store / "new.json", {"unknown": "Found"})
    rejoin = plan_rejoin(RejoinConfig(store=str(store / "store"), catalog=str(catalog), scope="unjoined"))
    assert run_purge(PurgeConfig(store=str(store / "store"), filter='visitorId = "v5"', force=True))["version"] == 1
    s = execute_rejoin(rejoin)
    assert s["status"] == "conflict" and "purge (version 1)" in s["failure"]
    rows = stored_rows(store / "store")
    assert all(r["missing_product_ids"] == ["unknown"] for r in rows if not r["joined"])  # not rejoined
    assert len(parquet_rows(store / "store")) == len(rows)


def _sha(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def test_a_forced_purge_erases_the_visitor_from_every_error_sample(tmp_path, capsys):
    """The visitor's raw records sit in two runs' samples: as a bad event type and as broken JSON."""
    make_catalog(tmp_path / "catalog.json")
    good = {"eventType": "home-page-view", "eventTime": "2024-03-01T10:00:00Z"}
    for run, name in enumerate(("first.jsonl", "second.jsonl")):
        lines = [json.dumps({**good, "visitorId": f"w{run}-{i}"}) for i in range(20)]
        lines += [json.dumps({**good, "eventType": "bogus", "visitorId": "secret-visitor"}),
                  '{"eventType": "search", "visitorId": "secret-visitor", "eventTime": ',
                  json.dumps({**good, "eventType": "bogus", "visitorId": f"other{run}"})]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        assert cli("import", "--events", tmp_path / name, "--catalog", tmp_path / "catalog.json",
                   "--store", tmp_path / "store") == 0
    store = tmp_path / "store"
    assert _files_naming(store, "secret-visitor")

    assert cli("purge", "--store", store, "--filter", 'visitorId = "secret-visitor"') == 0  # dry run: counts only
    assert "error_samples_removed  4" in capsys.readouterr().out and _files_naming(store, "secret-visitor")
    summary = tmp_path / "purge.json"
    assert cli("purge", "--store", store, "--filter", 'visitorId = "secret-visitor"', "--force", "--summary", summary) == 0
    assert json.loads(summary.read_text())["error_samples_removed"] == 4
    assert _files_naming(store, "secret-visitor") == []
    left = [line for p in store.glob("_errors/*/errors.jsonl") for line in p.read_text().splitlines()]
    assert sorted(json.loads(line)["details"][0]["record"].split('"visitorId": ')[1][:7] for line in left) == [
        '"other0', '"other1']
    assert len(stored_rows(store)) == 40


def _files_naming(store, text: str) -> list[str]:
    """Every file under ``store`` whose bytes hold ``text`` (grep -rl), Parquet and log included."""
    hits = []
    for directory, _, files in os.walk(store):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                data = handle.read()
            if text.encode() in data or (name.endswith(".parquet") and any(
                    text in str(v) for v in pq.read_table(path).column("visitor_id").to_pylist())):
                hits.append(path)
    return hits


def test_the_log_and_history_name_no_purged_value(store, capsys):
    path = store / "store"
    assert cli("purge", "--store", path, "--filter", 'visitorId = "v5" userId = v5 eventType = detail-page-view',
               "--force") == 0
    assert _files_naming(path, "v5\"") == [] and _files_naming(path, '"v5') == []
    capsys.readouterr()
    assert cli("history", "--store", path, "--json") == 0
    entry = [json.loads(line) for line in capsys.readouterr().out.splitlines()][-1]
    expected = f'visitorId = "{_sha("v5")}" userId = "{_sha("v5")}" eventType = detail-page-view'
    assert entry["parameters"]["filter"] == expected and entry["counts"]["filter"] == expected


def test_a_forced_purge_matching_nothing_still_records_the_request(store, capsys):
    path = store / "store"
    assert cli("purge", "--store", path, "--filter", 'visitorId = "nobody"', "--force") == 0
    snapshot = read_snapshot(str(path))
    assert snapshot.version == 1 and len(snapshot.files) == 3  # an audit entry, no data change
    capsys.readouterr()
    assert cli("history", "--store", path) == 0
    assert "purge (audit)" in capsys.readouterr().out.splitlines()[-1]


def test_a_rejoin_that_changes_nothing_commits_nothing(store, capsys):
    assert cli("rejoin", "--store", store / "store", "--catalog", store / "catalog.json") == 0
    assert "nothing to change" in capsys.readouterr().out
    assert read_snapshot(str(store / "store")).version == 0


@pytest.mark.parametrize(("raw", "words"), [
    (os.fsdecode(b'visitorId = "\xff"'), "not valid UTF-8"),
    ('eventTime > "9999-12-31T23:59:59-01:00"', "between years 1 and 9999"),
])
def test_filters_at_the_edges_are_one_line(store, capsys, raw, words):
    assert cli("purge", "--store", store / "store", "--filter", raw, "--force") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert read_snapshot(str(store / "store")).version == 0



@pytest.mark.parametrize("content", ["", '{"id": ""}\n{"title": "no id"}\n'])
def test_a_rejoin_with_no_valid_product_is_refused_and_changes_nothing(store, capsys, content):
    (store / "empty.json").write_text(content)
    before = sorted(read_snapshot(str(store / "store")).files)
    assert cli("rejoin", "--store", store / "store", "--catalog", store / "empty.json") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no valid product" in err
    assert sorted(read_snapshot(str(store / "store")).files) == before and read_snapshot(str(store / "store")).version == 0
    if content:  # the invalid lines are samples, as in import
        [folder] = [p for p in (store / "store" / "_errors").iterdir() if p.name in err]
        samples = [json.loads(line) for line in (folder / "catalog_errors.jsonl").read_text().splitlines()]
        assert [s["details"][0]["line"] for s in samples] == [1, 2]


def test_a_rejoin_that_would_unjoin_most_events_needs_allow_mass_unjoin(store, capsys):
    few = write_catalog(store / "few.json", {"p1": "One", "p2": "Two"})
    assert cli("rejoin", "--store", store / "store", "--catalog", few) == 1
    err = capsys.readouterr().err
    assert "--allow-mass-unjoin" in err and "of the 1056 joined events in scope" in err
    assert read_snapshot(str(store / "store")).version == 0
    assert cli("rejoin", "--store", store / "store", "--catalog", few, "--allow-mass-unjoin") == 0
    rows = stored_rows(store / "store")
    assert {r["product_details"][0]["product"]["id"] for r in rows if r["joined"]} == {"p1", "p2"}


def _visitors_by_day(path, days: int = 10, per_day: int = 200):
    """Each day's events come from that day's own visitors and users: one day's file alone holds a visitor."""
    lines = [json.dumps({"eventType": "home-page-view", "visitorId": f"v{d}-{i % 20}", "sessionId": f"s{d}-{i}",
                         "eventTime": f"2024-05-{1 + d:02d}T08:{i % 60:02d}:00Z",
                         **({"userInfo": {"userId": f"u{d}-{i % 7}"}} if i % 2 else {})})
             for d in range(days) for i in range(per_day)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("expression", ['visitorId = "v3-5"', 'userId = "u6-3"',
                                        'visitorId = ("v1-2" OR "v8-4") eventType = home-page-view'])
def test_a_purge_reads_only_the_files_whose_bloom_filters_may_hold_the_user(tmp_path, monkeypatch, expression):
    """A store written with Bloom filters and one written without purge the same rows; the first
    reads the columns of the files that may hold the user only, and counts the others."""
    from eventlake.io import bloom

    _visitors_by_day(tmp_path / "events.jsonl")
    with_blooms, without = tmp_path / "with", tmp_path / "without"
    assert cli("import", "--events", tmp_path / "events.jsonl", "--store", with_blooms, "--no-report") == 0
    monkeypatch.setattr(bloom, "BLOOM_COLUMNS", ())
    assert cli("import", "--events", tmp_path / "events.jsonl", "--store", without, "--no-report") == 0
    monkeypatch.undo()
    assert pq.ParquetFile(next(with_blooms.rglob("*.parquet"))).metadata.row_group(0).column(3).bloom_filter_offset
    before = len(stored_rows(with_blooms))
    summaries = {}
    for store in (with_blooms, without):
        dry = run_purge(PurgeConfig(store=str(store), filter=expression))
        done = run_purge(PurgeConfig(store=str(store), filter=expression, force=True))
        assert (dry["purged"], dry["files_ruled_out"], dry["bytes_scanned"]) == (
            done["purged"], done["files_ruled_out"], done["bytes_scanned"])
        summaries[store.name] = done
    hit, plain = summaries["with"], summaries["without"]
    assert hit["purged"] == plain["purged"] > 0 and hit["files_rewritten"] == plain["files_rewritten"]
    assert hit["files_scanned"] == plain["files_scanned"] == 10 and plain["files_ruled_out"] == 0
    # Each day is one file of one row group; with 5% false positives, most of the others are ruled out.
    assert hit["files_rewritten"] + hit["files_ruled_out"] >= 8 and hit["bytes_scanned"] < plain["bytes_scanned"]
    rows = stored_rows(with_blooms)
    assert len(rows) == before - hit["purged"]
    key = lambda r: r["event_fingerprint"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(stored_rows(without), key=key)
