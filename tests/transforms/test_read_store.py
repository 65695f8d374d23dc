"""ReadEventStore: the store as canonical batches, one version, pruned by a filter, narrowed by
column; and the log's record of which import brought each file's rows in."""

from __future__ import annotations

import json

import apache_beam as beam
import deltalake
import pyarrow as pa
import pytest
from apache_beam.testing.util import assert_that, equal_to

from eventlake.cli import main
from eventlake.filters import FilterError
from eventlake.io import delta_log
from eventlake.transforms.read_store import ReadEventStore, StoreReadError, read_events_table
from tests.conftest import local_pipeline


@pytest.fixture
def store(tmp_path):
    lines = [json.dumps({"eventType": kind, "visitorId": f"v{i % 4}", "sessionId": f"s{i}",
                         "eventTime": f"2024-03-{1 + i % 5:02d}T10:00:00Z",
                         "userInfo": {"userId": f"u{i % 3}", "userAgent": "a"},
                         **({"productDetails": [{"product": {"id": f"p{i % 6}"}, "quantity": 1}]}
                            if kind != "search" else {"searchQuery": "q"})})
             for i, kind in enumerate(["detail-page-view", "search", "add-to-cart"] * 20)]
    (tmp_path / "e.json").write_text("\n".join(lines) + "\n")
    (tmp_path / "c.json").write_text("".join(json.dumps({"id": f"p{i}", "title": f"T{i}"}) + "\n" for i in range(6)))
    assert main(["import", "--events", str(tmp_path / "e.json"), "--catalog", str(tmp_path / "c.json"),
                 "--store", str(tmp_path / "store")]) == 0
    return tmp_path / "store"


def test_read_event_store_gives_the_filtered_events_of_one_version(store):
    read = ReadEventStore(str(store), filter='eventType = search eventTime < "2024-03-03T00:00:00Z"',
                          columns=["session_id", "event_date"])
    assert read.selection.version == 0 and len(read.selection.files) == 2 < read.selection.files_total == 5
    expected = deltalake.DeltaTable(str(store)).to_pyarrow_table().to_pylist()
    expected = [(r["session_id"], r["event_date"]) for r in expected
                if r["event_type"] == "search" and r["event_date"].day < 3]
    with local_pipeline() as p:
        rows = (p | read | "Rows" >> beam.FlatMap(
            lambda b: zip(b.column("session_id").to_pylist(), b.column("event_date").to_pylist(), strict=True)))
        assert_that(rows, equal_to(expected))
    assert len(expected) == 8


def test_a_dotted_column_reads_part_of_a_nested_one(store):
    table = read_events_table(str(store), columns=["user_info.user_id", "product_details.product.id"])
    assert table.schema.field("user_info").type == pa.struct([("user_id", pa.string())])
    assert table.schema.field("product_details").type.value_type == pa.struct(
        [("product", pa.struct([("id", pa.string())]))])
    ids = {d["product"]["id"] for row in table.column("product_details").to_pylist() for d in row or []}
    assert ids == {"p0", "p2", "p3", "p5"} and table.num_rows == 60  # searches (i % 3 == 1) name none


def test_bad_arguments_fail_when_the_transform_is_made(store, tmp_path):
    with pytest.raises(FilterError):
        ReadEventStore(str(store), filter="eventType =")
    with pytest.raises(StoreReadError, match="no column 'nope'"):
        ReadEventStore(str(store), columns=["nope"])
    with pytest.raises(StoreReadError, match="no field 'nope'"):
        ReadEventStore(str(store), columns=["user_info.nope"])
    with pytest.raises(StoreReadError, match="no version 3"):
        ReadEventStore(str(store), version=3)
    with pytest.raises(StoreReadError, match="there is no event store"):
        ReadEventStore(str(tmp_path / "nothing"))


def _commit(store, version: int, actions: list[dict]) -> None:
    (store / "_delta_log").mkdir(parents=True, exist_ok=True)
    (store / "_delta_log" / f"{version:020d}.json").write_text("".join(json.dumps(a) + "\n" for a in actions))


def _add(path: str, date: str, **tags) -> dict:
    return {"add": {"path": path, "partitionValues": {"event_date": date}, "size": 1, "dataChange": True,
                    **({"tags": tags} if tags else {})}}


def _remove(path: str, date: str) -> dict:
    return {"remove": {"path": path, "partitionValues": {"event_date": date}, "dataChange": True}}


def _info(job: str) -> dict:
    return {"commitInfo": {"eventlake": {"job": job}}}


def test_the_import_of_untagged_files_is_inferred_from_the_log(tmp_path):
    """Logs written before files carried ``imported_version``: imports tag their own files, and a
    rewrite's file inherits the import of the files it replaced on its date, when they agree."""
    store = tmp_path / "store"
    _commit(store, 0, [_add("d=1/a", "2024-01-01"), _add("d=2/b", "2024-01-02"), _info("import")])
    _commit(store, 1, [_add("d=1/c", "2024-01-01"), _info("import")])
    _commit(store, 2, [_remove("d=2/b", "2024-01-02"), _add("d=2/b2", "2024-01-02"), _info("rejoin")])
    _commit(store, 3, [_remove("d=1/a", "2024-01-01"), _remove("d=1/c", "2024-01-01"),
                       _add("d=1/ac", "2024-01-01"), _info("purge")])
    _commit(store, 4, [_add("d=3/e", "2024-01-03", imported_version="4"), _info("import")])
    files = delta_log.read_snapshot(str(store)).files
    assert {p: delta_log.imported_version(a) for p, a in files.items()} == {
        "d=2/b2": 0,  # replaced b, which import 0 brought in
        "d=1/ac": None,  # replaced files of imports 0 and 1 together: the log cannot tell
        "d=3/e": 4}
