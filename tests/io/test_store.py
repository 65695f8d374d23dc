"""Store files: batches split by event date."""

import pyarrow as pa

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
