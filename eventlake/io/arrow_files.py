"""Arrow IPC files between a job's steps (a catalog snapshot, a shuffle's buckets): written
through Beam's file systems, read back memory-mapped on local disk."""

from __future__ import annotations

import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from eventlake.io.files import read_all


def write_arrow(path: str, table: pa.Table, compression: str | None = None) -> str:
    """``table`` as an Arrow IPC file at ``path`` (``compression``: ``lz4`` or ``zstd`` buffers)."""
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        with pa.ipc.new_file(pa.PythonFile(handle, mode="w"), table.schema, options=options) as writer:
            writer.write_table(table)
    return path


def read_arrow(path: str) -> pa.Table:
    if "://" in path:
        return pa.ipc.open_file(pa.BufferReader(read_all(path))).read_all()
    return pa.ipc.open_file(pa.memory_map(path)).read_all()  # zero-copy: workers share the pages


__all__ = ["read_arrow", "write_arrow"]
