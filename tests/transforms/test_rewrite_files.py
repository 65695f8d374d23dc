"""RewriteStoreFiles: every store file looked at once, and only the ones with rows to change
written again (in a second step, so that those few are spread over the workers)."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that

from eventlake.cli import main
from eventlake.io import delta_log
from eventlake.transforms.rewrite import RewriteFilesFn, RewriteStoreFiles
from tests.conftest import local_pipeline
from tests.pipelines.conftest import make_events


class _DropVisitor:
    columns = ["visitor_id"]

    def __init__(self, visitor: str):
        self._visitor = visitor

    def inspect(self, table: pa.Table) -> dict:
        return {"changed": int(pc.sum(pc.equal(table["visitor_id"], self._visitor)).as_py() or 0)}

    def apply(self, table: pa.Table) -> pa.Table:
        return table.filter(pc.not_equal(table["visitor_id"], self._visitor))


class _DropVisitorFn(RewriteFilesFn):
    def __init__(self, store: str, write: bool, visitor: str):
        super().__init__(store, "run", write)
        self._visitor = visitor

    def row_change(self) -> _DropVisitor:
        return _DropVisitor(self._visitor)


@pytest.mark.parametrize("write", [True, False])
def test_each_file_comes_out_once_and_only_changed_files_are_written(tmp_path, write):
    make_events(tmp_path / "a.jsonl", 250, bad_every=0)  # three dates: three files
    store = tmp_path / "store"
    assert main(["import", "--events", str(tmp_path / "a.jsonl"), "--store", str(store), "--no-report"]) == 0
    adds = list(delta_log.read_snapshot(str(store)).files.values())
    visitors = {a["path"]: pq.read_table(store / a["path"], columns=["visitor_id"]).column("visitor_id").to_pylist()
                for a in adds}
    # v60 is events 60 and 157 only (visitor i % 97), of two dates (i % 3): two of the three files
    touched = {p for p, vs in visitors.items() if "v60" in vs}
    assert len(touched) == 2 and len(adds) == 3

    def check(changes):
        assert sorted(c.add["path"] for c in changes) == sorted(visitors)
        for c in changes:
            kept = [v for v in visitors[c.add["path"]] if v != "v60"]
            assert c.counts == {"changed": len(visitors[c.add["path"]]) - len(kept)}
            if write and c.add["path"] in touched:
                assert c.new.rows == len(kept)
                assert pq.read_table(store / c.new.path).column("visitor_id").to_pylist() == kept
            else:
                assert c.new is None

    with local_pipeline() as p:
        changes = p | beam.Create(adds) | RewriteStoreFiles(_DropVisitorFn(str(store), write, "v60"))
        assert_that(changes | beam.combiners.ToList(), lambda lists: [check(c) for c in lists])
    written = sorted(path.name for path in store.rglob("*.parquet"))
    assert len(written) == len(adds) + (len(touched) if write else 0)


class _RecordingFn(_DropVisitorFn):
    """Notes which thread wrote each replacement."""

    def __init__(self, store: str, visitor: str, log: str):
        super().__init__(store, True, visitor)
        self._log = log

    def write(self, inspected, *side_inputs):
        import threading

        with open(self._log, "a") as log:
            log.write(f"{threading.get_ident()}\n")
        return super().write(inspected, *side_inputs)


def test_the_files_to_rewrite_are_shared_by_the_workers(tmp_path):
    """Two worker threads, two files to rewrite: one each, whichever files the look went to."""
    from apache_beam.options.pipeline_options import PipelineOptions

    make_events(tmp_path / "a.jsonl", 250, bad_every=0)
    store = tmp_path / "store"
    assert main(["import", "--events", str(tmp_path / "a.jsonl"), "--store", str(store), "--no-report"]) == 0
    adds = sorted(delta_log.read_snapshot(str(store)).files.values(), key=lambda a: a["path"])
    log = tmp_path / "threads.log"
    options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_threading"])
    with beam.Pipeline(runner="DirectRunner", options=options) as p:
        _ = p | beam.Create(adds, reshuffle=False) | RewriteStoreFiles(_RecordingFn(str(store), "v60", str(log)))
    threads = log.read_text().split()
    assert len(threads) == 2 and threads[0] != threads[1]


def test_a_purge_reads_event_types_only_for_the_files_it_changes(tmp_path, monkeypatch):
    """The look at every file reads the filter's columns; the breakdown by event type is read
    for the files with matching rows alone, and counts exactly the matching rows."""
    from eventlake.filters import parse_filter
    from eventlake.pipelines.purge import PurgeRows
    from eventlake.transforms import rewrite

    make_events(tmp_path / "a.jsonl", 250, bad_every=0)
    store = tmp_path / "store"
    assert main(["import", "--events", str(tmp_path / "a.jsonl"), "--store", str(store), "--no-report"]) == 0
    reads = []
    real = rewrite.read_columns
    monkeypatch.setattr(rewrite, "read_columns", lambda s, path, columns, holding=None: reads.append((path, columns))
                        or real(s, path, columns, holding))
    rows = PurgeRows(parse_filter('visitorId = "v60"'))
    changes = [rewrite.inspect_store_file(str(store), add, rows) for add in delta_log.read_snapshot(str(store)).files.values()]
    changed = {c.add["path"] for c in changes if c.changed}
    assert len(changed) == 2 and len(changes) == 3
    assert sorted(c for _, c in reads if c != ["visitor_id"]) == [["visitor_id", "event_type"]] * 2
    assert {p for p, c in reads if "event_type" in c} == changed
    assert sum(sum(c.counts.get("by_event_type", {}).values()) for c in changes) == 2  # events 60 and 157
    assert all(c.counts["by_event_type"] == {"detail-page-view": 1} for c in changes if c.changed)


def test_a_look_at_every_column_gives_its_detail_from_the_same_read(tmp_path, monkeypatch):
    from eventlake.transforms import rewrite

    make_events(tmp_path / "a.jsonl", 30, bad_every=0)
    store = tmp_path / "store"
    assert main(["import", "--events", str(tmp_path / "a.jsonl"), "--store", str(store), "--no-report"]) == 0
    add = next(iter(delta_log.read_snapshot(str(store)).files.values()))
    reads = []
    real = rewrite.read_columns
    monkeypatch.setattr(rewrite, "read_columns",
                        lambda s, path, columns, holding=None: reads.append(columns) or real(s, path, columns, holding))

    class _Everything:
        columns = None
        detail_columns = ["event_type"]

        def inspect(self, table):
            return {"changed": len(table)}

        def detail(self, table):
            return {"session_ids": len(set(table.column("session_id").to_pylist()))}

    change = rewrite.inspect_store_file(str(store), add, _Everything())
    assert reads == [None] and change.counts["session_ids"] == change.counts["changed"] > 0
