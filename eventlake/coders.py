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


class _ArrowIpcCoder(beam.coders.Coder):
    """Arrow data <-> Arrow IPC stream bytes; its size is read off its buffers."""

    arrow_type: type

    def encode(self, data: pa.RecordBatch | pa.Table) -> bytes:
        return _to_ipc(data)

    def estimate_size(self, data: pa.RecordBatch | pa.Table) -> int:
        return data.get_total_buffer_size()

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return self.arrow_type


class RecordBatchCoder(_ArrowIpcCoder):
    """``pyarrow.RecordBatch`` <-> Arrow IPC stream bytes."""

    arrow_type = pa.RecordBatch

    def decode(self, encoded: bytes) -> pa.RecordBatch:
        table = pa.ipc.open_stream(encoded).read_all()
        return table.combine_chunks().to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], table.schema)


class TableCoder(_ArrowIpcCoder):
    """``pyarrow.Table`` <-> Arrow IPC stream bytes."""

    arrow_type = pa.Table

    def decode(self, encoded: bytes) -> pa.Table:
        return pa.ipc.open_stream(encoded).read_all()


beam.coders.registry.register_coder(pa.RecordBatch, RecordBatchCoder)
beam.coders.registry.register_coder(pa.Table, TableCoder)
