"""Content fingerprints: two records are the same event when their canonical content is equal.

The canonical content is the parsed event (so key order and number spelling in the source do
not matter), written out column by column into one unambiguous byte string per row with Arrow
kernels (every leaf is length-prefixed), then hashed with XXH3-128: a fast, well-distributed
128-bit hash whose output is fixed by its specification, so stored fingerprints stay comparable
across versions. Duplicates are not an adversarial setting; a cryptographic hash would cost six
times as much for no gain.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from eventlake.schema import EVENT_FIELDS, FINGERPRINT_FIELD

CONTENT_COLUMNS = tuple(f.name for f in EVENT_FIELDS)
_NULL = "~"
# "n:" for the string lengths most values have: taking them is cheaper than formatting numbers.
_LENGTH_PREFIXES = pa.array([f"{n}:" for n in range(4096)])


def fingerprints(batch: pa.RecordBatch, columns: tuple[str, ...] = CONTENT_COLUMNS) -> pa.BinaryArray:
    return hash_each(content_keys(batch, columns))


def hash_each(keys: pa.StringArray | pa.BinaryArray) -> pa.BinaryArray:
    """XXH3-128 of each value (none may be null), as a binary array of 16-byte values.

    The values are hashed as slices of the array's own data buffer and the digests joined into
    one buffer: a list of Python bytes objects each way cost a third more.
    """
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32, count=len(keys) + 1, offset=keys.offset * 4).tolist()
    data = memoryview(keys.buffers()[2] or b"")
    digests = b"".join([xxhash.xxh3_128_digest(data[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)])
    bounds = np.arange(0, 16 * (len(keys) + 1), 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), len(keys), [None, pa.py_buffer(bounds), pa.py_buffer(digests)])


def content_keys(batch: pa.RecordBatch, columns: tuple[str, ...] = CONTENT_COLUMNS) -> pa.StringArray:
    """One canonical string per row over ``columns``; equal strings mean equal content."""
    parts, done = [], []
    for name in columns:
        column = batch.column(name)
        # source_event_type repeats event_type unless types are renamed: build that key once.
        part = next((p for c, p in done if c.type == column.type and c.equals(column)), None)
        if part is None:
            part = _part(column)
            done.append((column, part))
        parts.append(part)
    return _as_array(_join(parts, "|"), len(batch))


def _join(parts: list, separator: str):
    """``parts`` (arrays, or strings that stand for a whole column) joined row by row.

    Each part costs the kernel as much as a column, and most Retail fields are absent: runs of
    constant parts become one string first. All constant: the result is a string.
    """
    merged: list = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += separator + part
        else:
            merged.append(part)
    return merged[0] if len(merged) == 1 else pc.binary_join_element_wise(*merged, separator)


def _as_array(part, length: int) -> pa.Array:
    return pa.repeat(pa.scalar(part, pa.string()), length) if isinstance(part, str) else part


def _part(array: pa.Array):
    """A column's key; the string ``~`` when the whole column is null (the same keys, cheaper)."""
    return _NULL if array.null_count == len(array) else _key(array)


def _key(array: pa.Array):
    kind = array.type
    if array.null_count * 4 > len(array) and (pa.types.is_struct(kind) or pa.types.is_list(kind)):
        # Often null (purchase_transaction on all but purchases, user_info on anonymous visits):
        # build keys for the rest only. Past a quarter null this costs less than masking after.
        valid = array.is_valid()
        present = array.filter(valid)
        return pc.replace_with_mask(pa.repeat(pa.scalar(_NULL), len(array)), valid, _as_array(_key(present), len(present)))
    if pa.types.is_struct(kind):
        children = [_part(array.field(i)) for i in range(kind.num_fields)]
        inner = _join(["{", *children, "}"], ",") if children else "{}"
        if not array.null_count:
            return inner
        return pc.if_else(array.is_valid(), _as_array(inner, len(array)), _NULL)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        values = _as_array(_key(array.values), len(array.values))
        lists = pa.ListArray.from_arrays(array.offsets, values, mask=array.is_null() if array.null_count else None)
        joined = pc.binary_join(lists, ",")
        return pc.fill_null(pc.binary_join_element_wise("[", joined, "]", ""), _NULL)
    if pa.types.is_string(kind):
        lengths = pc.utf8_length(array)
        if (pc.max(lengths).as_py() or 0) < len(_LENGTH_PREFIXES):
            return pc.fill_null(pc.binary_join_element_wise(_LENGTH_PREFIXES.take(lengths), array, ""), _NULL)
        return pc.fill_null(pc.binary_join_element_wise(pc.cast(lengths, pa.string()), array, ":"), _NULL)
    if pa.types.is_timestamp(kind):
        array = pc.cast(array, pa.int64())
    return pc.fill_null(pc.cast(array, pa.string()), _NULL)


def add_fingerprints(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.append_column(FINGERPRINT_FIELD, with_event_ids(batch, fingerprints(batch)))


def with_event_ids(batch: pa.RecordBatch, prints: pa.BinaryArray) -> pa.BinaryArray:
    """An event that carries its source's own event id (Personalize's ``eventId``) is the same
    event as any other with that id from the same format, whatever else differs: its
    fingerprint is the hash of the format and the id, so dedupe drops a later copy."""
    ids = batch.column("event_id")
    if ids.null_count == len(ids):
        return prints
    formats = batch.column("source_format") if "source_format" in batch.schema.names else pa.nulls(len(ids), pa.string())
    keys = pc.binary_join_element_wise("event_id", pc.fill_null(formats, ""), ids, "\x00")
    by_id = hash_each(pc.fill_null(keys, ""))  # rows without an id keep their content's print below
    return pc.if_else(pc.is_valid(ids), by_id, prints)


@beam.ptransform_fn
def FingerprintEvents(batches):  # noqa: N802 - a transform reads like a class at the call site
    """Add ``event_fingerprint`` (XXH3-128 of the canonical content, or of the source's own
    event id where it has one) to every row."""
    return batches | beam.Map(add_fingerprints).with_output_types(pa.RecordBatch)
