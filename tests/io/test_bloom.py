"""The Bloom filters of store files: every value written is found, DuckDB's own probe agrees,
and whatever the probe cannot read counts as "may hold"."""

import random

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eventlake.io import bloom
from eventlake.io.store import write_options

ROWS_PER_GROUP = 2000


def _users_table(rows: int, seed: int = 3) -> pa.Table:
    """Visitors that repeat (dictionary pages) and, past the first groups, hardly do (plain
    pages once the dictionary is full); user ids with nulls and non-ASCII text."""
    rng = random.Random(seed)
    visitors = [f"v-{rng.randrange(300)}" if i < 3 * ROWS_PER_GROUP else f"visitor-{rng.getrandbits(64):x}"
                for i in range(rows)]
    users = [None if i % 3 == 0 else {"user_id": f"ü-{rng.randrange(5000)}-ñ"} for i in range(rows)]
    return pa.table({"visitor_id": visitors,
                     "user_info": pa.array(users, pa.struct([("user_id", pa.string())]))})


def _write(table: pa.Table, path, rows_per_group: int | None = ROWS_PER_GROUP) -> pq.ParquetFile:
    pq.write_table(table, path, row_group_size=ROWS_PER_GROUP, **write_options(table.schema, rows_per_group))
    return pq.ParquetFile(path)


def _groups(path, parquet, column: str, value: str) -> list[int]:
    with open(path, "rb") as source:
        return bloom.row_groups_that_may_hold(parquet, source, [(column, (value,))])


def test_every_value_written_is_found_in_its_row_group(tmp_path):
    path = tmp_path / "f.parquet"
    table = _users_table(8 * ROWS_PER_GROUP)
    parquet = _write(table, path)
    assert parquet.num_row_groups == 8
    assert parquet.metadata.row_group(0).column(0).bloom_filter_offset is not None
    with open(path, "rb") as source:
        for group in range(parquet.num_row_groups):
            rows = parquet.read_row_group(group)
            for value in set(rows.column("visitor_id").to_pylist()):
                assert group in bloom.row_groups_that_may_hold(parquet, source, [("visitor_id", (value,))])
            for user in {u["user_id"] for u in rows.column("user_info").to_pylist() if u}:
                assert group in bloom.row_groups_that_may_hold(parquet, source, [("user_info.user_id", (user,))])
        # Absent values are ruled out in most groups: the filters are not a constant "may hold".
        absent = [len(bloom.row_groups_that_may_hold(parquet, source, [("visitor_id", (f"nobody-{i}",))]))
                  for i in range(500)]
    assert sum(absent) / (500 * parquet.num_row_groups) < 0.15


def test_the_probe_agrees_with_duckdbs(tmp_path):
    """DuckDB reads the same filters with its own code: both say the same of every row group,
    for values that are there and values that are not."""
    path = tmp_path / "f.parquet"
    table = _users_table(6 * ROWS_PER_GROUP, seed=11)
    parquet = _write(table, path)
    present = random.Random(5).sample(sorted(set(table.column("visitor_id").to_pylist())), 40)
    for value in present + [f"nobody-{i}" for i in range(200)]:
        theirs = duckdb.execute("SELECT row_group_id FROM parquet_bloom_probe(?, 'visitor_id', ?) "
                                "WHERE NOT bloom_filter_excludes ORDER BY 1", [str(path), value]).fetchall()
        assert _groups(path, parquet, "visitor_id", value) == [g for (g,) in theirs], value


def test_a_row_group_must_hold_every_pair(tmp_path):
    path = tmp_path / "f.parquet"
    table = _users_table(4 * ROWS_PER_GROUP)
    parquet = _write(table, path)
    last = parquet.read_row_group(3)
    visitor, user = last.column("visitor_id")[1].as_py(), last.column("user_info")[1].as_py()["user_id"]
    with open(path, "rb") as source:
        both = bloom.row_groups_that_may_hold(parquet, source, [("visitor_id", (visitor,)),
                                                                ("user_info.user_id", (user,))])
        either = bloom.row_groups_that_may_hold(parquet, source, [("visitor_id", ("nobody", visitor))])
        assert bloom.row_groups_that_may_hold(parquet, source, [("visitor_id", (visitor,)),
                                                                ("user_info.user_id", ("nobody",))]) == []
    assert 3 in both and 3 in either


def test_without_filters_every_row_group_may_hold_anything(tmp_path):
    path = tmp_path / "f.parquet"
    parquet = _write(_users_table(3 * ROWS_PER_GROUP), path, rows_per_group=None)
    assert parquet.metadata.row_group(0).column(0).bloom_filter_offset is None
    assert _groups(path, parquet, "visitor_id", "nobody") == [0, 1, 2]
    assert _groups(path, parquet, "no_such_column", "nobody") == [0, 1, 2]


PLAIN_HEADER = bytes.fromhex("15 80 04 1c 1c 00 00 1c 1c 00 00 1c 1c 00 00 00")  # as pyarrow writes it, for 256 bytes


@pytest.mark.parametrize("header", [
    b"",  # nothing there
    PLAIN_HEADER.replace(bytes.fromhex("15 80 04 1c 1c"), bytes.fromhex("15 80 04 1c 2c")),  # another algorithm
    PLAIN_HEADER[:11] + bytes.fromhex("1c 2c 00 00 00"),  # compressed
    PLAIN_HEADER.replace(bytes.fromhex("80 04"), bytes.fromhex("82 04")),  # not a whole number of blocks
    b"\xff\xff\xff\xff",  # not Thrift at all
])
def test_a_header_the_probe_does_not_know_is_not_read(header):
    assert bloom._parse_header(header) is None  # noqa: SLF001


def test_the_header_pyarrow_writes_is_read():
    # numBytes, then BLOCK, XXHASH and UNCOMPRESSED: each union's first member, an empty struct
    assert bloom._parse_header(PLAIN_HEADER) == (256, 16)  # noqa: SLF001


def test_filters_are_sized_for_the_row_groups():
    schema_paths = ["visitor_id", "user_info.user_id", "event_time"]
    options = bloom.bloom_options(schema_paths, 4000)
    assert options == {"visitor_id": {"ndv": 4000, "fpp": bloom.FALSE_POSITIVE_RATE},
                       "user_info.user_id": {"ndv": 4000, "fpp": bloom.FALSE_POSITIVE_RATE}}
    assert bloom.bloom_options(["event_time"], 4000) == {}
