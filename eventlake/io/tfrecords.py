"""Rows -> TFRecord files of ``tf.train.Example`` records, for EasyRec and other TensorFlow trainers.

The ``tfrecord`` package gives the Example message and TFRecord's framing (length, masked
CRC32C) without TensorFlow itself, a 500 MB dependency for a few bytes of framing. Each row is
one Example: text as ``bytes_list``, integers and booleans as ``int64_list``, decimals as
``float_list``, timestamps as Unix seconds in ``int64_list``; a null value leaves its feature
out, as TensorFlow's parsers expect of a missing value.
"""

from __future__ import annotations

import struct

import pyarrow as pa


def _kind(data_type: pa.DataType) -> str:
    if pa.types.is_timestamp(data_type) or pa.types.is_integer(data_type) or pa.types.is_boolean(data_type):
        return "int"
    if pa.types.is_floating(data_type):
        return "float"
    return "byte"


def _values(column: pa.ChunkedArray | pa.Array) -> list:
    if pa.types.is_timestamp(column.type):
        from eventlake.formats.exporting import epoch_seconds

        column = epoch_seconds(column)
    elif pa.types.is_boolean(column.type):
        column = column.cast(pa.int64())
    return column.to_pylist()


def write_examples(handle, table: pa.Table) -> int:
    """Write ``table``'s rows to the open binary ``handle``; the number of records written."""
    from tfrecord import example_pb2
    from tfrecord.writer import TFRecordWriter

    kinds = [_kind(f.type) for f in table.schema]
    columns = [_values(table.column(i)) for i in range(table.num_columns)]
    names = table.column_names
    for row in range(table.num_rows):
        example = example_pb2.Example()
        features = example.features.feature
        for name, kind, values in zip(names, kinds, columns, strict=True):
            value = values[row]
            if value is None:
                continue
            if kind == "int":
                features[name].int64_list.value.append(int(value))
            elif kind == "float":
                features[name].float_list.value.append(float(value))
            else:
                features[name].bytes_list.value.append(value.encode() if isinstance(value, str) else bytes(value))
        record = example.SerializeToString()
        length = struct.pack("<Q", len(record))
        handle.write(length + TFRecordWriter.masked_crc(length) + record + TFRecordWriter.masked_crc(record))
    return table.num_rows


__all__ = ["write_examples"]
