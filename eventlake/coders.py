"""Beam coders for Arrow data, so that batches never go through pickle.

Beam estimates the size of sampled elements by encoding them, and it samples the first ten
elements of every output and then about ten per doubling: with a few dozen large batches per
worker, that is most of them. Without a coder of its own a ``RecordBatch`` is pickled each time
(a copy of every buffer); this coder reads the size off the buffers instead and, when a batch
really must cross a process boundary, writes the Arrow IPC stream format.
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa


def _to_ipc(data: pa.RecordBatch | pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write(data)
    return sink.getvalue().to_pybytes()


class RecordBatchCoder(beam.coders.Coder):
    """``pyarrow.RecordBatch`` <-> Arrow IPC stream bytes."""

    def encode(self, batch: pa.RecordBatch) -> bytes:
        return _to_ipc(batch)

    def decode(self, encoded: bytes) -> pa.RecordBatch:
        table = pa.ipc.open_stream(encoded).read_all()
        return table.combine_chunks().to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], table.schema)

    def estimate_size(self, batch: pa.RecordBatch) -> int:
        return batch.get_total_buffer_size()

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return pa.RecordBatch


class TableCoder(beam.coders.Coder):
    """``pyarrow.Table`` <-> Arrow IPC stream bytes."""

    def encode(self, table: pa.Table) -> bytes:
        return _to_ipc(table)

    def decode(self, encoded: bytes) -> pa.Table:
        return pa.ipc.open_stream(encoded).read_all()

    def estimate_size(self, table: pa.Table) -> int:
        return table.get_total_buffer_size()

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return pa.Table


beam.coders.registry.register_coder(pa.RecordBatch, RecordBatchCoder)
beam.coders.registry.register_coder(pa.Table, TableCoder)
