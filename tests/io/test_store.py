"""Store files: batches split by event date."""

import pyarrow as pa
import pyarrow.parquet as pq

from eventlake.io.store import split_by_date


def test_split_by_date_gives_each_date_its_rows_sorted_or_not():
    day = 86_400_000_000
    times = [3 * day, 1 * day, 3 * day + 5, 2 * day, 1 * day + 7]
    batch = pa.RecordBatch.from_pydict({
        "event_time": pa.array(times, pa.timestamp("us", tz="UTC")), "n": list(range(5))})
    parts = {date: part.column("n").to_pylist() for date, part in split_by_date(batch)}
    assert parts == {"1970-01-02": [1, 4], "1970-01-03": [3], "1970-01-04": [0, 2]}
    ordered = batch.take(pa.array([1, 4, 3, 0, 2]))
    assert {d: p.column("n").to_pylist() for d, p in split_by_date(ordered)} == parts


def test_open_files_never_hold_more_row_groups_than_the_limit(tmp_path, monkeypatch):
    """Parquet writers keep each row group's metadata until close: open row groups stay bounded."""
    from eventlake.io import store as store_module
    from eventlake.schema import stored_schema

    monkeypatch.setattr(store_module, "MAX_BUFFERED_ROWS", 40)
    monkeypatch.setattr(store_module, "MAX_OPEN_ROW_GROUPS", 12)
    schema = stored_schema()
    writer = store_module.StoreFileWriter(str(tmp_path), "run", schema)
    day, held, offset = 86_400_000_000, [], 0
    hot = [0] * 30 + [d % 6 for d in range(30)]  # one hot date, then six dates in turn
    for date in hot:
        batch = pa.RecordBatch.from_arrays(
            [pa.array([date * day + i for i in range(10)], pa.timestamp("us", tz="UTC")) if f.name == "event_time"
             else pa.array(range(offset, offset + 10), pa.int64()) if f.name == "source_offset"
             else pa.array([False] * 10) if f.name == "joined"
             else pa.nulls(10, f.type) for f in schema], schema=schema)
        offset += 10
        writer.add(batch)
        held.append(writer.row_groups)
        assert writer.row_groups == sum(f.row_groups for f in writer.open.values())
    files = writer.close_full() + writer.close()
    assert max(held) <= 12 and writer.row_groups == 0
    assert len(files) > 6  # the limit closed files early
    offsets = sorted(o for f in files for o in pq.read_table(tmp_path / f.path).column("source_offset").to_pylist())
    assert offsets == list(range(offset))  # every row written once
    assert sum(f.rows for f in files) == offset


def test_a_rewrite_merges_small_row_groups_in_runs_of_whole_groups(tmp_path, monkeypatch):
    """An import leaves row groups of a few thousand rows; a rewrite writes runs of them as one
    row group each, never splitting a group and never over ``ROW_GROUP_ROWS`` unless one group is."""
    from eventlake.io import store as store_module

    monkeypatch.setattr(store_module, "ROW_GROUP_ROWS", 250)
    table = pa.table({"event_time": pa.array(range(900), pa.timestamp("us", tz="UTC")),
                      "event_type": pa.array(["view", "buy"] * 450), "joined": pa.array([True] * 900),
                      "n": pa.array(range(900), pa.int64())})
    pq.write_table(table, tmp_path / "old.parquet", row_group_size=100)  # nine groups of 100 rows
    new = store_module.rewrite_file(str(tmp_path), "old.parquet", store_module.WrittenFile("new.parquet", "1970-01-01"),
                                    lambda rows: rows.filter(pa.compute.not_equal(rows["event_type"], "buy")))
    written = pq.ParquetFile(tmp_path / "new.parquet")
    # runs of two whole groups (200 rows read, 100 kept), the last run one group
    assert [written.metadata.row_group(g).num_rows for g in range(written.num_row_groups)] == [100, 100, 100, 100, 50]
    assert written.read().column("n").to_pylist() == list(range(0, 900, 2))
    assert (new.rows, new.by_event_type, new.joined) == (450, {"view": 450}, 450)
    assert new.size == (tmp_path / "new.parquet").stat().st_size


def test_a_rewrite_that_keeps_no_row_writes_no_file(tmp_path):
    from eventlake.io.store import WrittenFile, rewrite_file

    pq.write_table(pa.table({"event_time": pa.array([1, 2], pa.timestamp("us", tz="UTC"))}), tmp_path / "old.parquet")
    new = rewrite_file(str(tmp_path), "old.parquet", WrittenFile("new.parquet", "1970-01-01"), lambda rows: rows.slice(0, 0))
    assert new.rows == 0 and not (tmp_path / "new.parquet").exists()


def test_keep_rows_gives_the_kept_rows_in_order_however_many_go(monkeypatch):
    import numpy as np

    from eventlake.io import store as store_module

    table = pa.table({"n": pa.array(range(50), pa.int64()),
                      "items": pa.array([[{"id": str(i)}] if i % 3 else None for i in range(50)])})
    rng = np.random.default_rng(7)
    cases = [np.ones(50, bool), np.zeros(50, bool), np.arange(50) != 0, np.arange(50) != 49,
             np.isin(np.arange(50), [3, 4, 5, 20], invert=True), rng.random(50) < 0.5]
    for limit in (256, 2):  # slices, and a filter once more rows go than the limit
        monkeypatch.setattr(store_module, "MAX_KEPT_SLICES", limit)
        for keep in cases:
            kept = store_module.keep_rows(table, keep)
            assert kept.to_pylist() == table.filter(pa.array(keep)).to_pylist()
            assert kept.schema == table.schema
