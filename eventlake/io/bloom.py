"""Parquet Bloom filters of the store's user columns, written by pyarrow and probed here.

A purge of one visitor used to read the visitor column of every store file to find the few
files that hold the visitor. Each row group now carries a split-block Bloom filter (the
Parquet format's SBBF) of ``visitor_id`` and ``user_info.user_id``: a look at a file reads its
footer and a few kilobytes of filter per row group, and reads the column only where a filter
says the value may be there. A filter never misses a value it was given; a false positive
only costs the read the file would have had anyway.

pyarrow writes the filters but cannot read them, so the probe is here: the filter's header
(Thrift compact protocol), XXH64 of the value's plain bytes, and the eight-bit block check,
as the Parquet format's ``BloomFilter.md`` specifies them. Whatever is not as expected (no
filter, another algorithm, a damaged header) answers "may hold", never "does not".
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import pyarrow.parquet as pq
import xxhash

# The ids an erasure request names: the events' visitor and user, the features table's user.
BLOOM_COLUMNS = ("visitor_id", "user_info.user_id", "user_id")
FALSE_POSITIVE_RATE = 0.05  # 3% bigger files and 4% more write time in a measurement; see write_options
_SALTS = (0x47B6137B, 0x44974D91, 0x8824AD5B, 0xA2B7289D, 0x705495C7, 0x2DF1424B, 0x9EFC4947, 0x5C6BFB31)
_BLOCK = struct.Struct("<8I")
_BLOCK_BYTES = 32
_HEADER_GUESS = 64  # bytes read for a header whose length the metadata does not give


def bloom_options(schema_paths: Iterable[str], rows_per_group: int) -> dict:
    """pyarrow's ``bloom_filter_options`` for the user columns among ``schema_paths``, sized for
    row groups of ``rows_per_group`` rows (the filter's size follows the number of values)."""
    ndv = max(int(rows_per_group), 1)
    return {p: {"ndv": ndv, "fpp": FALSE_POSITIVE_RATE} for p in BLOOM_COLUMNS if p in set(schema_paths)}


def row_groups_that_may_hold(parquet: pq.ParquetFile, source, holding: list[tuple[str, tuple[str, ...]]]) -> list[int]:
    """The row groups of ``parquet`` (read through ``source``, a seekable binary file) that may
    hold a row with, for every (column path, values) pair in ``holding``, one of the values."""
    metadata = parquet.metadata
    columns = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    # A column the file does not have rules nothing out.
    hashed = [(columns[path], [xxhash.xxh64_intdigest(v.encode("utf-8")) for v in values])
              for path, values in holding if path in columns]
    out = []
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        if all(_column_may_hold(row_group.column(column), source, hashes) for column, hashes in hashed):
            out.append(group)
    return out


def _column_may_hold(chunk: pq.ColumnChunkMetaData, source, hashes: list[int]) -> bool:
    bitset = _read_bitset(chunk, source)
    return bitset is None or any(bitset_may_hold(bitset, h) for h in hashes)


def bitset_may_hold(bitset: memoryview, hash64: int) -> bool:
    """The split-block check of one value's XXH64 against a filter's bitset (blocks of eight
    little-endian 32-bit words): the block the hash's top half picks must have all eight bits
    its bottom half sets, one per word."""
    block = ((hash64 >> 32) * (len(bitset) // _BLOCK_BYTES)) >> 32
    key = hash64 & 0xFFFFFFFF
    words = _BLOCK.unpack_from(bitset, block * _BLOCK_BYTES)
    return all(word >> (((key * salt) & 0xFFFFFFFF) >> 27) & 1 for word, salt in zip(words, _SALTS, strict=True))


def _read_bitset(chunk: pq.ColumnChunkMetaData, source) -> memoryview | None:
    """The filter's bitset, or None when the chunk has no filter this probe can read."""
    offset, length = chunk.bloom_filter_offset, chunk.bloom_filter_length
    if offset is None or offset < 0:
        return None
    source.seek(offset)
    data = source.read(length if length and length > 0 else _HEADER_GUESS)
    header = _parse_header(data)
    if header is None:
        return None
    size, start = header
    if len(data) < start + size:
        data += source.read(start + size - len(data))
    if len(data) < start + size:
        return None
    return memoryview(data)[start : start + size]


def _parse_header(data: bytes) -> tuple[int, int] | None:
    """``(bitset bytes, header length)`` of a ``BloomFilterHeader``, or None unless it names
    the split-block algorithm, XXH64 and no compression."""
    try:
        fields, end = _read_struct(data, 0)
    except (IndexError, ValueError):
        return None
    size = fields.get(1)
    plain = {1: {}}  # each union's first member, an empty struct: BLOCK, XXHASH, UNCOMPRESSED
    if not isinstance(size, int) or size <= 0 or size % _BLOCK_BYTES or any(fields.get(k) != plain for k in (2, 3, 4)):
        return None
    return size, end


# Thrift compact protocol: just the types a BloomFilterHeader uses.
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _STRUCT = 0, 1, 2, 3, 4, 5, 6, 12


def _read_struct(data: bytes, at: int) -> tuple[dict, int]:
    fields: dict = {}
    last = 0
    while True:
        head = data[at]
        at += 1
        kind = head & 0x0F
        if kind == _STOP:
            return fields, at
        delta = head >> 4
        if delta:
            field_id = last + delta
        else:
            zigzag, at = _varint(data, at)
            field_id = _unzigzag(zigzag)
        last = field_id
        if kind in (_TRUE, _FALSE):
            fields[field_id] = kind == _TRUE
        elif kind == _BYTE:
            fields[field_id] = struct.unpack_from("b", data, at)[0]
            at += 1
        elif kind in (_I16, _I32, _I64):
            zigzag, at = _varint(data, at)
            fields[field_id] = _unzigzag(zigzag)
        elif kind == _STRUCT:
            fields[field_id], at = _read_struct(data, at)
        else:
            raise ValueError(f"unexpected Thrift type {kind}")


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)
