"""Arrow coders: batches round-trip, and Beam's size sampling never encodes them."""

import apache_beam as beam
import pyarrow as pa

from eventlake.coders import RecordBatchCoder, TableCoder


def test_batches_and_tables_round_trip():
    batch = pa.record_batch({"a": [1, None, 3], "b": [["x"], [], None]})
    assert RecordBatchCoder().decode(RecordBatchCoder().encode(batch)).equals(batch)
    empty = batch.slice(0, 0)
    assert RecordBatchCoder().decode(RecordBatchCoder().encode(empty)).schema == batch.schema
    table = pa.Table.from_batches([batch, batch])
    assert TableCoder().decode(TableCoder().encode(table)).equals(table)


def test_size_is_read_off_the_buffers_without_encoding(monkeypatch):
    batch = pa.record_batch({"a": list(range(1000))})
    monkeypatch.setattr(RecordBatchCoder, "encode", lambda self, b: (_ for _ in ()).throw(AssertionError("encoded")))
    assert RecordBatchCoder().get_impl().estimate_size(batch) == batch.get_total_buffer_size()


def test_the_registry_gives_arrow_types_their_coders():
    import eventlake.transforms  # noqa: F401 - registers the coders

    assert isinstance(beam.coders.registry.get_coder(pa.RecordBatch), RecordBatchCoder)
    assert isinstance(beam.coders.registry.get_coder(pa.Table), TableCoder)
