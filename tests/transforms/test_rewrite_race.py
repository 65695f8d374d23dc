"""A store file deleted by another job's commit between a rewrite's look at it and its rewrite
counts as vanished (the job reads the store again), not as a failure."""

from __future__ import annotations

import os

import pyarrow as pa

from eventlake.cli import main
from eventlake.io import delta_log
from eventlake.transforms.rewrite import change_store_file
from tests.pipelines.conftest import make_events


class _DeletedAfterTheLook:
    columns = ["visitor_id"]

    def __init__(self, path):
        self._path = path

    def inspect(self, table: pa.Table) -> dict:
        os.remove(self._path)  # the other job's commit lands and deletes the file now
        return {"changed": len(table)}

    def apply(self, table: pa.Table) -> pa.Table:
        return table.slice(0, 0)


def test_a_file_deleted_between_the_look_and_the_rewrite_is_vanished(tmp_path):
    make_events(tmp_path / "a.jsonl", 50, bad_every=0)
    store = tmp_path / "store"
    assert main(["import", "--events", str(tmp_path / "a.jsonl"), "--store", str(store), "--no-report"]) == 0
    add = next(iter(delta_log.read_snapshot(str(store)).files.values()))
    change = change_store_file(str(store), "run", add, _DeletedAfterTheLook(store / add["path"]), write=True)
    assert change.vanished and change.new is None
