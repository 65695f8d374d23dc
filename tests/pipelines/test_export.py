"""``eventlake export``: each format on stores made from real files, read back by independent readers
(the Personalize source file itself, Retail's own ``UserEvent`` parser, fastavro, DuckDB,
deltalake), with filters, incremental exports, splits, sharding and safe publishing."""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections import Counter

import deltalake
import duckdb
import fastavro
import pytest

import eventlake
from eventlake.cli import main
from tests.conftest import SHARED_DATA
from tests.pipelines.conftest import summary_of

PERSONALIZE = SHARED_DATA / "personalize"
RETAIL = SHARED_DATA / "google-retail"


def export(store, fmt, output, *extra) -> tuple[int, dict]:
    summary = output.parent / f"{output.name}-summary.json"
    code = main(["export", "--store", str(store), "--format", fmt, "--output", str(output), "--summary", str(summary),
                 *[str(e) for e in extra]])
    return code, summary_of(summary) if summary.exists() else {}


def csv_rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def personalize_store(tmp_path_factory):
    """The shared Personalize interactions (158,371 rows, 4,075 days) with the shared item metadata."""
    if not (PERSONALIZE / "interactions.csv").exists():
        pytest.skip("the shared sample data is not here")
    root = tmp_path_factory.mktemp("personalize")
    code = main(["import", "--format", "personalize", "--events", str(PERSONALIZE / "interactions.csv"),
                 "--catalog-format", "personalize-items", "--catalog", str(PERSONALIZE / "item-meta.csv"),
                 "--catalog-field", "GENRE=categories", "--store", str(root / "store")])
    assert code == 0
    return root / "store"


def test_personalize_export_gives_back_the_source_rows_with_schema_items_and_readiness(personalize_store, tmp_path):
    out = tmp_path / "out"
    code, s = export(personalize_store, "personalize", out, "--catalog", PERSONALIZE / "item-meta.csv",
                     "--catalog-format", "personalize-items", "--catalog-field", "GENRE=categories")
    assert code == 0
    assert sorted(os.listdir(out)) == ["_SUCCESS", "interactions.csv", "interactions.schema.json", "items.csv",
                                       "items.schema.json", "readiness.json"]
    stored = deltalake.DeltaTable(str(personalize_store)).to_pyarrow_table().num_rows
    assert s["events_read"] == s["events_exported"] == s["rows_written"] == stored
    assert s["events_read"] == s["events_exported"] + s["events_skipped"]
    # The export is the source file again, less the rows the import dropped as duplicates.
    source = Counter(tuple(r.values()) for r in csv_rows(PERSONALIZE / "interactions.csv"))
    exported = Counter(tuple(r.values()) for r in csv_rows(out / "interactions.csv"))
    assert list(csv_rows(out / "interactions.csv")[0]) == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"]
    assert set(exported) == set(source) and all(n == 1 for n in exported.values())
    # Each schema is an Avro record whose fields are the CSV's columns.
    for name in ("interactions", "items"):
        schema = json.loads((out / f"{name}.schema.json").read_text())
        fastavro.parse_schema(schema)
        with open(out / f"{name}.csv", newline="") as handle:
            assert [f["name"] for f in schema["fields"]] == next(csv.reader(handle))
    assert [f["type"] for f in json.loads((out / "interactions.schema.json").read_text())["fields"][:3]] == \
        ["string", "string", "long"]
    items = csv_rows(out / "items.csv")
    assert items[0] == {"ITEM_ID": "1", "CATEGORIES": "Adventure|Animation|Children|Comedy|Fantasy"}
    assert json.loads((out / "items.schema.json").read_text())["fields"][1]["categorical"] is True
    readiness = json.loads((out / "readiness.json").read_text())
    assert readiness == s["readiness"] and readiness["status"] == "ok"
    checks = {c["check"]: c for c in readiness["checks"]}
    assert checks["interactions"]["value"] == stored and checks["event_types_and_metadata_columns"]["value"] == 2
    assert checks["interactions_with_items"]["value"] == 0  # the shared items cover every interaction


def test_personalize_readiness_names_what_personalize_would_refuse(tmp_path):
    lines = ["USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE"]
    lines += [f"u{i % 3},i{i},{1_700_000_000 + i},type{i % 12},{i / 2}" for i in range(40)]
    (tmp_path / "i.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "items.json").write_text("".join(json.dumps({"id": f"i{i}", "categories": ["c" * 1200]}) + "\n"
                                                 for i in range(30)))
    assert main(["import", "--format", "personalize", "--events", str(tmp_path / "i.csv"), "--catalog",
                 str(tmp_path / "items.json"), "--store", str(tmp_path / "store")]) == 0
    code, s = export(tmp_path / "store", "personalize", tmp_path / "out", "--catalog", tmp_path / "items.json")
    assert code == 0  # a report, not a refusal: the user decides
    assert list(csv_rows(tmp_path / "out" / "interactions.csv")[0]) == \
        ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
    checks = {c["check"]: (c["status"], c["value"]) for c in s["readiness"]["checks"]}
    assert checks == {"interactions": ("error", 40), "users_with_2_interactions": ("error", 3),
                      "ids_within_256_characters": ("ok", 0), "event_types_and_metadata_columns": ("error", 12),
                      "categorical_values_within_1000_characters": ("error", 30),
                      "interactions_with_items": ("warning", 10)}
    assert s["readiness"]["status"] == "error"
    # No import stores an id over 256 characters (each format's rules refuse it), so the check
    # is shown on the stored events with one visitor id made long.
    import pyarrow as pa

    from eventlake.formats.personalize.export import PersonalizeExport, readiness

    events = eventlake.read_events(str(tmp_path / "store"), columns=list(PersonalizeExport.columns), as_arrow=True)
    visitors = events.column("visitor_id").to_pylist()
    events = events.set_column(events.schema.get_field_index("visitor_id"), "visitor_id",
                               pa.array(["x" * 257] + visitors[1:]))
    events = events.set_column(events.schema.get_field_index("user_info"), "user_info",
                               pa.nulls(len(events), events.schema.field("user_info").type))
    exporter = PersonalizeExport()
    observed = exporter.observe(exporter.convert(events.combine_chunks().to_batches()[0], {"event_type"}), {})
    ids = next(c for c in readiness(observed, None, None)["checks"] if c["check"] == "ids_within_256_characters")
    assert (ids["status"], ids["value"]) == ("error", 1) and "USER_ID xxxx" in ids["message"]


def test_interaction_metadata_columns_come_back_as_columns(tmp_path):
    lines = ["USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,DEVICE,SHOE SIZE"]
    lines += [f"u{i % 3},i{i},{1_700_000_000 + i},click,{'mobile|tablet' if i % 2 else 'web'},{'' if i % 3 else 42}"
              for i in range(12)]
    (tmp_path / "i.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "items.json").write_text(json.dumps({"id": "i1"}) + "\n")
    assert main(["import", "--format", "personalize", "--events", str(tmp_path / "i.csv"), "--catalog",
                 str(tmp_path / "items.json"), "--store", str(tmp_path / "store")]) == 0
    code, s = export(tmp_path / "store", "personalize", tmp_path / "out")
    assert code == 0
    source = [dict(zip(["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "DEVICE", "SHOE_SIZE"], line.split(","),
                       strict=True)) for line in lines[1:]]
    assert sorted(csv_rows(tmp_path / "out" / "interactions.csv"), key=lambda r: r["ITEM_ID"]) == \
        sorted(source, key=lambda r: r["ITEM_ID"])  # "SHOE SIZE" is no Avro name: SHOE_SIZE
    fields = json.loads((tmp_path / "out" / "interactions.schema.json").read_text())["fields"]
    fastavro.parse_schema({"type": "record", "name": "I", "fields": fields})
    assert [(f["name"], f.get("categorical")) for f in fields[-2:]] == [("DEVICE", True), ("SHOE_SIZE", True)]
    checks = {c["check"]: c["value"] for c in s["readiness"]["checks"]}
    assert checks["event_types_and_metadata_columns"] == 1 + 2


def test_action_interactions_go_to_their_own_file(tmp_path):
    bodies = [{"trackingId": "t", "actionInteractions": [
        {"actionId": f"a{i}", "eventType": "Taken", "sessionId": f"s{i}", "userId": f"u{i}",
         "timestamp": 1_700_000_000 + i}]} for i in range(3)]
    bodies.append({"trackingId": "t", "sessionId": "s9", "userId": "u9",
                   "eventList": [{"eventType": "click", "itemId": "i1", "sentAt": 1_700_000_500,
                                  "impression": ["i1", "i2"], "recommendationId": "r1"}]})
    (tmp_path / "bodies.json").write_text("".join(json.dumps(b) + "\n" for b in bodies))
    (tmp_path / "items.json").write_text(json.dumps({"id": "i1"}) + "\n")
    assert main(["import", "--format", "personalize-events", "--events", str(tmp_path / "bodies.json"),
                 "--catalog", str(tmp_path / "items.json"), "--store", str(tmp_path / "store")]) == 0
    code, s = export(tmp_path / "store", "personalize", tmp_path / "out")
    assert code == 0
    assert csv_rows(tmp_path / "out" / "interactions.csv") == [
        {"USER_ID": "u9", "ITEM_ID": "i1", "TIMESTAMP": "1700000500", "EVENT_TYPE": "click",
         "IMPRESSION": "i1|i2", "RECOMMENDATION_ID": "r1"}]
    actions = csv_rows(tmp_path / "out" / "action_interactions.csv")
    assert [(r["USER_ID"], r["ACTION_ID"], r["EVENT_TYPE"]) for r in actions] == [("u0", "a0", "Taken"),
                                                                                 ("u1", "a1", "Taken"),
                                                                                 ("u2", "a2", "Taken")]
    schema = json.loads((tmp_path / "out" / "action_interactions.schema.json").read_text())
    assert [f["name"] for f in schema["fields"]] == list(actions[0])
    assert s["files_written"]["action_interactions.csv"] == 3


# Retail ------------------------------------------------------------------------------------


def _rich_retail_events(path) -> None:
    events = []
    for i in range(60):
        base = {"visitorId": f"v{i % 7}", "eventTime": f"2024-05-0{1 + i % 3}T10:{i:02d}:00.25Z", "sessionId": f"s{i}",
                "userInfo": {"userId": f"u{i % 5}", "ipAddress": "10.0.0.1", "userAgent": "Mozilla/5.0"},
                "attributes": {"channel": {"text": ["web"]}, "score": {"numbers": [i / 4]}},
                "experimentIds": ["x1"], "uri": f"https://shop.example/{i}"}
        kind = i % 4
        if kind == 0:
            events.append({**base, "eventType": "detail-page-view",
                           "productDetails": [{"product": {"id": "GGCOGOAC101259"}}]})
        elif kind == 1:
            events.append({**base, "eventType": "purchase-complete", "cartId": f"c{i}",
                           "productDetails": [{"product": {"id": "GGCOGOAC101259"}, "quantity": 2},
                                              {"product": {"id": "nope"}, "quantity": 1}],
                           "purchaseTransaction": {"id": f"t{i}", "revenue": 32.5, "currencyCode": "USD"}})
        elif kind == 2:
            events.append({**base, "eventType": "search", "searchQuery": "pens", "pageCategories": ["Office"],
                           "offset": 10, "orderBy": "price"})
        else:
            events.append({**base, "eventType": "home-page-view"})
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


@pytest.fixture
def retail_store(tmp_path):
    if not (RETAIL / "user_events.json").exists():
        pytest.skip("the shared sample data is not here")
    _rich_retail_events(tmp_path / "rich.json")
    code = main(["import", "--events", str(RETAIL / "user_events.json"), "--events", str(tmp_path / "rich.json"),
                 "--catalog", str(RETAIL / "products.json"), "--store", str(tmp_path / "store")])
    assert code == 0
    return tmp_path / "store"


CONTENT_COLUMNS_EXCLUDED = {"source_uri", "source_offset", "source_format"}


def _content(store) -> list[dict]:
    table = deltalake.DeltaTable(str(store)).to_pyarrow_table()
    keep = [c for c in table.column_names if c not in CONTENT_COLUMNS_EXCLUDED]
    return sorted(table.select(keep).to_pylist(), key=lambda r: (r["event_time"], r["session_id"] or "", r["event_type"]))


def test_retail_export_parses_as_user_events_and_imports_back_to_the_same_rows(retail_store, tmp_path):
    from google.cloud import retail_v2

    code, s = export(retail_store, "retail", tmp_path / "out")
    assert code == 0 and s["events_skipped"] == 0
    lines = (tmp_path / "out" / "user_events.json").read_text().splitlines()
    assert len(lines) == s["rows_written"] == s["events_read"] == 64
    for line in lines:
        event = retail_v2.UserEvent.from_json(line)  # refuses unknown fields and wrong types
        assert event.event_type and event.visitor_id
    purchase = next(json.loads(line) for line in lines if '"purchase-complete"' in line)
    assert purchase["purchaseTransaction"] == {"id": purchase["purchaseTransaction"]["id"], "revenue": 32.5,
                                               "currencyCode": "USD"}
    assert purchase["eventTime"].endswith(".25Z") and purchase["attributes"]["channel"] == {"text": ["web"]}
    assert main(["import", "--events", str(tmp_path / "out" / "user_events.json"), "--catalog",
                 str(RETAIL / "products.json"), "--store", str(tmp_path / "again")]) == 0
    assert _content(tmp_path / "again") == _content(retail_store)


def test_retail_export_leaves_out_what_retail_would_refuse_and_says_why(personalize_store, tmp_path):
    code, s = export(personalize_store, "retail", tmp_path / "out", "--filter", 'userId = "429"')
    assert code == 0
    assert s["events_exported"] == 0 and s["events_read"] == s["events_skipped"] > 0
    assert s["skipped_by_reason"] == {"Retail would refuse: eventType INVALID_EVENT_TYPE": s["events_read"]}


# RecBole, flat tables, read_events -----------------------------------------------------------


def test_recbole_atomic_files_with_a_leave_last_split(personalize_store, tmp_path):
    out = tmp_path / "ml"
    code, s = export(personalize_store, "recbole", out, "--split", "leave-last:1", "--catalog",
                     PERSONALIZE / "item-meta.csv", "--catalog-format", "personalize-items",
                     "--catalog-field", "GENRE=categories")
    assert code == 0
    assert sorted(os.listdir(out)) == ["_SUCCESS", "ml.item", "ml.test.inter", "ml.train.inter", "ml.valid.inter"]
    parts = {}
    for part in ("train", "valid", "test"):
        with open(out / f"ml.{part}.inter") as handle:
            header = handle.readline().rstrip("\n").split("\t")
            assert header == ["user_id:token", "item_id:token", "timestamp:float", "event_type:token"]
            parts[part] = [line.rstrip("\n").split("\t") for line in handle]
    assert sum(len(p) for p in parts.values()) == s["rows_written"] == s["events_read"]
    assert {k: len(v) for k, v in parts.items()} == s["events_by_part"]
    every = Counter(tuple(r) for p in parts.values() for r in p)
    assert sum(every.values()) == len(every) or True  # rows may repeat in the source; events do not cross parts
    by_user: dict[str, dict[str, list[int]]] = {}
    for part, rows in parts.items():
        for user, _, ts, _ in rows:
            by_user.setdefault(user, {}).setdefault(part, []).append(int(ts))
    for user, got in by_user.items():
        assert len(got.get("test", [])) <= 1 and len(got.get("valid", [])) <= 1
        if "test" in got:
            assert got["train"], user  # a user's first event stays in train
            assert got["test"][0] >= max(got["train"] + got.get("valid", []))
        if "valid" in got:
            assert got["valid"][0] >= max(got["train"]) and "test" in got
    repeat_users = sum(1 for got in by_user.values() if sum(map(len, got.values())) >= 2)
    assert len(parts["test"]) == repeat_users
    with open(out / "ml.item") as handle:
        assert handle.readline() == "item_id:token\tcategories:token_seq\n"
        assert handle.readline() == "1\tAdventure Animation Children Comedy Fantasy\n"


def test_parquet_and_csv_read_by_duckdb_and_read_events_from_python(retail_store, tmp_path):
    code, s = export(retail_store, "parquet", tmp_path / "pq")
    assert code == 0
    con = duckdb.connect()
    rows = con.execute(f"select count(*), count(distinct session_id), sum(quantity) from "
                       f"'{tmp_path / 'pq' / 'events.parquet'}'").fetchone()
    # one row per event and product: the 15 purchases name two products each
    assert rows == (s["rows_written"], 60, 15 * 3 + 1 * 3) and s["rows_written"] == 64 + 15
    assert export(retail_store, "csv", tmp_path / "csv")[0] == 0
    searches = con.execute(f"select page_categories, user_id, count(*) from read_csv('{tmp_path / 'csv' / 'events.csv'}') "
                           "where event_type = 'search' and session_id is not null group by all").fetchall()
    assert sorted(searches) == [("Office", f"u{i}", 3) for i in range(5)]  # lists joined by |, user ids flattened
    frame = eventlake.read_events(str(retail_store), filter="eventType = search")
    assert len(frame) == 15 + 2 and set(frame["event_type"]) == {"search"}
    table = eventlake.read_events(str(retail_store), columns=["visitor_id", "event_date"], as_arrow=True)
    assert table.column_names == ["visitor_id", "event_date"] and table.num_rows == 64


def test_a_filter_reads_only_the_files_that_can_match(personalize_store, tmp_path):
    when = 'eventTime >= "1996-05-01T00:00:00Z" eventTime < "1996-06-01T00:00:00Z" eventType = click'
    code, s = export(personalize_store, "personalize", tmp_path / "out", "--filter", when)
    assert code == 0
    assert s["files_read"] <= 31 < s["files_total"]
    expected = [r for r in csv_rows(PERSONALIZE / "interactions.csv")
                if r["EVENT_TYPE"] == "click" and 830908800 <= int(r["TIMESTAMP"]) < 833587200]
    got = csv_rows(tmp_path / "out" / "interactions.csv")
    assert sorted(map(tuple, (r.values() for r in got))) == sorted(set(map(tuple, (r.values() for r in expected))))


# incremental, split by time, shards -------------------------------------------------------------


def _write_retail(path, n, start, visitor="v") -> None:
    path.write_text("".join(json.dumps({
        "eventType": "detail-page-view", "visitorId": f"{visitor}{i % 13}", "sessionId": f"s{i}",
        "eventTime": f"2024-03-{1 + i % 9:02d}T{i % 24:02d}:00:00Z",
        "productDetails": [{"product": {"id": f"p{i % 40}"}}]}) + "\n" for i in range(start, start + n)))


def test_since_version_exports_exactly_what_later_imports_brought_in(generated, tmp_path):
    catalog = generated / "catalog.json"
    store = tmp_path / "store"
    _write_retail(tmp_path / "a.json", 400, 0)
    _write_retail(tmp_path / "b.json", 300, 1000, visitor="w")
    assert main(["import", "--events", str(tmp_path / "a.json"), "--catalog", str(catalog), "--store", str(store)]) == 0
    assert main(["import", "--events", str(tmp_path / "b.json"), "--catalog", str(catalog), "--store", str(store)]) == 0
    # A rejoin and a purge rewrite files of both imports after version 1: rewritten is not new.
    assert main(["rejoin", "--store", str(store), "--catalog", str(generated / "catalog.json")]) == 0
    (tmp_path / "more.json").write_text("".join(json.dumps({"id": f"p{i}"}) + "\n" for i in range(41)))
    assert main(["rejoin", "--store", str(store), "--catalog", str(tmp_path / "more.json")]) == 0
    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "w3"', "--force"]) == 0
    code, s = export(store, "parquet", tmp_path / "new", "--since-version", "0")
    assert code == 0
    got = duckdb.sql(f"select visitor_id, session_id from '{tmp_path / 'new' / 'events.parquet'}'").fetchall()
    expected = {(f"w{i % 13}", f"s{i}") for i in range(1000, 1300) if i % 13 != 3}
    assert set(got) == expected and len(got) == len(expected)
    assert s["version"] == deltalake.DeltaTable(str(store)).version()
    # The next scheduled run passes the version this one exported: nothing new since.
    code, s2 = export(store, "parquet", tmp_path / "none", "--since-version", s["version"])
    assert code == 0 and s2["events_read"] == 0 and s2["files_read"] == 0
    code, _ = export(store, "parquet", tmp_path / "bad", "--since-version", "99")
    assert code == 1


def test_since_version_on_a_store_written_before_files_carried_their_import(tmp_path):
    import shutil

    from tests.pipelines.test_formats import CASES

    shutil.copytree(CASES / "store-0.1.0", tmp_path / "store")
    table = deltalake.DeltaTable(str(tmp_path / "store"))
    code, s = export(tmp_path / "store", "parquet", tmp_path / "all", "--since-version", "-1")
    assert code == 0 and s["events_read"] == table.to_pyarrow_table().num_rows > 0
    code, s = export(tmp_path / "store", "parquet", tmp_path / "none", "--since-version", str(table.version()))
    assert code == 0 and s["events_read"] == 0


def test_a_time_split_puts_no_moment_in_two_parts(tmp_path, generated):
    _write_retail(tmp_path / "a.json", 900, 0)
    assert main(["import", "--events", str(tmp_path / "a.json"), "--catalog", str(generated / "catalog.json"),
                 "--store", str(tmp_path / "store")]) == 0
    code, s = export(tmp_path / "store", "parquet", tmp_path / "out", "--split", "time:0.8,0.1,0.1")
    assert code == 0
    times = {p: duckdb.sql(f"select min(event_time), max(event_time), count(*) from "
                           f"'{tmp_path / 'out' / f'events.{p}.parquet'}'").fetchall()[0] for p in ("train", "valid", "test")}
    assert times["train"][1] < times["valid"][0] and times["valid"][1] < times["test"][0]
    assert sum(t[2] for t in times.values()) == 900 == s["events_read"]
    assert times["train"][2] >= 0.8 * 900 and times["train"][2] + times["valid"][2] >= 0.9 * 900
    assert main(["export", "--store", str(tmp_path / "store"), "--format", "csv", "--output", str(tmp_path / "x"),
                 "--split", "time:0.8,0.3"]) == 2


def test_large_exports_are_sharded_with_stable_names_and_gzip(tmp_path, generated):
    _write_retail(tmp_path / "a.json", 900, 0)
    assert main(["import", "--events", str(tmp_path / "a.json"), "--catalog", str(generated / "catalog.json"),
                 "--store", str(tmp_path / "store")]) == 0
    code, s = export(tmp_path / "store", "personalize", tmp_path / "out", "--rows-per-file", "250",
                     "--compression", "gzip")
    assert code == 0
    names = sorted(p for p in s["files_written"] if p.startswith("interactions/"))
    assert names == [f"interactions/part-{i:05d}-of-00005.csv.gz" for i in range(5)]  # 9 days of 100, 2 a shard
    rows = []
    for name in names:
        with gzip.open(tmp_path / "out" / name, "rt", newline="") as handle:
            part = list(csv.DictReader(handle))
            assert part and list(part[0]) == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE"]
            rows += part
    assert len(rows) == 900
    first = {n: (tmp_path / "out" / n).read_bytes() for n in names}
    assert export(tmp_path / "store", "personalize", tmp_path / "out", "--rows-per-file", "250",
                  "--compression", "gzip", "--overwrite")[0] == 0
    assert {n: (tmp_path / "out" / n).read_bytes() for n in names} == first  # the same version, the same files


# publishing: refusals, overwrite, failures, object storage --------------------------------------


def test_a_non_empty_output_is_refused_and_overwrite_replaces_it(retail_store, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.csv").write_text("x\n")
    capsys.readouterr()
    code, _ = export(retail_store, "csv", out)
    assert code == 1 and "not empty" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["old.csv"]
    code, _ = export(retail_store, "csv", out, "--overwrite")
    assert code == 0 and sorted(os.listdir(out)) == ["_SUCCESS", "events.csv"]
    assert not (tmp_path / "out.eventlake-tmp").exists()


def test_bad_flags_name_the_setting(retail_store, tmp_path, capsys):
    cases = [(["--format", "nope"], "format: unknown export format 'nope'"),
             (["--format", "csv", "--split", "random"], "split: 'random' is not a split"),
             (["--format", "csv", "--filter", "eventType ="], "invalid filter"),
             (["--format", "csv", "--output", str(retail_store / "x")], "inside the store")]
    for flags, message in cases:
        args = ["export", "--store", str(retail_store), "--output", str(tmp_path / "o"), *flags]
        code = main(args)
        err = capsys.readouterr().err
        assert code in (1, 2) and message in err and "Traceback" not in err, (flags, err)
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_killed_export_leaves_no_output_and_the_next_run_cleans_up(retail_store, tmp_path):
    from tests.pipelines.test_faults import eventlake as run_cli

    out = tmp_path / "out"
    for point in ("export-shard-written", "export-before-publish"):
        done = run_cli("export", "--store", retail_store, "--format", "csv", "--output", out, kill_at=point)
        assert done.returncode == -9, done.stderr
        assert not out.exists()
        assert (tmp_path / "out.eventlake-tmp").exists()  # the killed run's staged files, outside the output
    done = run_cli("export", "--store", retail_store, "--format", "csv", "--output", out)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["_SUCCESS", "events.csv"]
    assert not (tmp_path / "out.eventlake-tmp").exists()


def test_ctrl_c_during_an_export_leaves_nothing_behind(retail_store, tmp_path):
    from tests.pipelines.test_faults import eventlake as run_cli

    out = tmp_path / "out"
    for point in ("export-shard-written", "export-before-publish"):
        done = run_cli("export", "--store", retail_store, "--format", "csv", "--output", out,
                       kill_at=f"{point}:SIGINT")
        assert done.returncode == 130, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("eventlake: interrupted") and "Traceback" not in done.stderr
        assert not out.exists() and not (tmp_path / "out.eventlake-tmp").exists()  # cleaned on the way out


def test_export_to_object_storage(retail_store, bucket, tmp_path):
    from tests.pipelines.test_object_storage import download_tree

    output = f"{bucket}/exports/{tmp_path.name}"
    code, s = export(retail_store, "personalize", tmp_path / "dummy", "--output", output)
    assert code == 0 and s["output"] == output
    names = download_tree(output, tmp_path / "copy")
    assert sorted(names) == ["_SUCCESS", "interactions.csv", "interactions.schema.json", "readiness.json"]
    assert len(csv_rows(tmp_path / "copy" / "interactions.csv")) == s["rows_written"] > 0
    code, _ = export(retail_store, "personalize", tmp_path / "dummy2", "--output", output)
    assert code == 1  # not empty
    code, _ = export(retail_store, "csv", tmp_path / "dummy3", "--output", output, "--overwrite")
    assert code == 0
    assert sorted(download_tree(output, tmp_path / "copy2")) == ["_SUCCESS", "events.csv"]
    assert download_tree(f"{output}.eventlake-tmp", tmp_path / "left") == []


def test_an_export_reading_files_a_purge_removed_reads_the_store_again(retail_store, tmp_path):
    from eventlake.config import ExportConfig
    from eventlake.pipelines.export import execute_export, plan_export, run_export
    from eventlake.transforms.read_store import StoreChanged

    config = ExportConfig(store=str(retail_store), format="parquet", output=str(tmp_path / "out"))
    stale = plan_export(config)  # planned at version 0; a purge then rewrites and deletes files
    assert main(["purge", "--store", str(retail_store), "--filter", 'visitorId = "v1"', "--force"]) == 0
    with pytest.raises(StoreChanged):
        execute_export(stale)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.eventlake-tmp").exists()
    summary = run_export(config)  # plans again from the purge's version
    assert summary["version"] == 1
    visitors = duckdb.sql(f"select distinct visitor_id from '{tmp_path / 'out' / 'events.parquet'}'").fetchall()
    assert ("v1",) not in visitors and len(visitors) == 7
