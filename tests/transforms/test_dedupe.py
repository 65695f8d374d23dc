"""Dedupe by date: the first copy of an event is kept, and nothing the store already has."""

import numpy as np
import pyarrow as pa

from eventlake.io.store import StoreFileWriter, read_columns
from eventlake.schema import stored_schema
from eventlake.transforms.dedupe import dedupe_files, fingerprint_words, first_new


def words(*values: int) -> np.ndarray:
    return np.array([[v, v * 7] for v in values], dtype=np.uint64).reshape(-1, 2)


def test_first_copy_by_order_is_kept():
    keep = first_new(words(5, 1, 5, 2, 1), np.array([30, 20, 10, 40, 0]), words())
    assert keep.tolist() == [False, False, True, True, True]


def test_keys_the_store_has_are_all_dropped():
    keep = first_new(words(1, 2, 2, 3), np.arange(4), words(2, 9))
    assert keep.tolist() == [True, False, False, True]


def test_keys_differing_in_one_word_are_different():
    keys = np.array([[1, 2], [1, 3], [2, 2]], dtype=np.uint64)
    assert first_new(keys, np.arange(3), np.array([[1, 3]], dtype=np.uint64)).tolist() == [True, False, True]


def test_first_new_agrees_with_a_plain_loop_when_words_collide():
    rng = np.random.default_rng(7)
    pool = rng.integers(0, 3, size=(6, 2)).astype(np.uint64)  # few keys: ties in one word and in both
    for _ in range(200):
        keys, known = pool[rng.integers(0, 6, size=rng.integers(0, 40))], pool[rng.integers(0, 6, size=rng.integers(0, 5))]
        order = rng.permutation(len(keys))
        seen = {tuple(k) for k in known.tolist()}
        expected = np.zeros(len(keys), dtype=bool)
        for row in np.argsort(order):
            if tuple(keys[row].tolist()) not in seen:
                seen.add(tuple(keys[row].tolist()))
                expected[row] = True
        assert first_new(keys, order, known).tolist() == expected.tolist()


def test_fingerprint_words_read_a_sliced_binary_column():
    prints = pa.array([bytes([i]) * 16 for i in range(4)], pa.binary())
    got = fingerprint_words(prints.slice(1, 2))
    assert got.shape == (2, 2) and got[0, 0] == int.from_bytes(b"\x01" * 8, "little")


def _events(n: int, offset_base: int, print_of) -> pa.RecordBatch:
    schema = stored_schema()
    columns = {
        "event_type": pa.array(["search"] * n),
        "event_time": pa.array([1_700_000_000_000_000] * n, pa.timestamp("us", tz="UTC")),
        "source_uri": pa.array(["a.jsonl"] * n),
        "source_offset": pa.array([offset_base + i for i in range(n)], pa.int64()),
        "joined": pa.array([True] * n),
        "event_fingerprint": pa.array([print_of(i) for i in range(n)], pa.binary()),
    }
    arrays = [columns.get(f.name, pa.nulls(n, f.type)) for f in schema]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def test_files_losing_rows_are_rewritten_and_counts_follow(tmp_path):
    store = str(tmp_path)
    writer = StoreFileWriter(store, "run", stored_schema())
    writer.add(_events(6, 0, lambda i: bytes([i % 3]) * 16))  # each print twice
    [written] = writer.close()
    old = stored = StoreFileWriter(store, "old", stored_schema())
    stored.add(_events(1, 100, lambda i: bytes([2]) * 16))  # the store already has print 2
    [known] = old.close()
    [result] = dedupe_files(store, [written], [known.path], {"a.jsonl": 0})
    assert result.rows == 2 and result.path != written.path
    kept = read_columns(store, result.path, ["source_offset", "event_fingerprint"])
    assert kept.column("source_offset").to_pylist() == [0, 1]  # first copies, print 2 dropped
    assert not (tmp_path / written.path).exists()



def test_a_store_file_replaced_meanwhile_is_left_to_the_commit_check(tmp_path):
    store = str(tmp_path)
    writer = StoreFileWriter(store, "run", stored_schema())
    writer.add(_events(2, 0, lambda i: bytes([i]) * 16))
    [written] = writer.close()
    assert dedupe_files(store, [written], ["event_date=2023-11-14/gone.parquet"], {"a.jsonl": 0}) == [written]
