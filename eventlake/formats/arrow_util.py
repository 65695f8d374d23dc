"""Small Arrow helpers shared by the formats and transforms."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])([A-Z])")


def camel_to_snake(name: str) -> str:
    return _CAMEL_BOUNDARY.sub(r"_\1", name).lower()


def snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def take_rows(batch: pa.RecordBatch, rows: np.ndarray) -> pa.RecordBatch:
    """``batch.take(rows)``, with all-null columns made anew instead of gathered.

    Most Retail fields are absent from most events; gathering their nulls was a fifth of the
    time of taking a whole batch.
    """
    indices = pa.array(rows, pa.int64())
    columns = [pa.nulls(len(rows), c.type) if c.null_count == len(c) else c.take(indices) for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)


def rows_where(mask: pa.Array | np.ndarray) -> np.ndarray:
    """Indices of the true values of a boolean mask (nulls count as false)."""
    if isinstance(mask, np.ndarray):
        return np.flatnonzero(mask)
    return np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))


def list_any(list_array: pa.Array, value_mask: np.ndarray) -> np.ndarray:
    """Per row of a list array: is ``value_mask`` true for any of its flattened values."""
    out = np.zeros(len(list_array), dtype=bool)
    out[pc.list_parent_indices(list_array).to_numpy()[value_mask]] = True
    return out


def convert(array: pa.Array, target: pa.DataType, rename=camel_to_snake) -> pa.Array:
    """Rebuild ``array`` as ``target``, matching struct fields by their renamed names.

    Fields the source lacks become null; fields the target lacks are dropped. Leaf values are
    cast (the caller checks beforehand that casts which could lose data are exact).
    """
    if pa.types.is_struct(target):
        by_name = {rename(array.type.field(i).name): i for i in range(array.type.num_fields)}
        children = []
        for field in target:
            if field.name in by_name:
                children.append(convert(array.field(by_name[field.name]), field.type, rename))
            else:
                children.append(pa.nulls(len(array), field.type))
        return pa.StructArray.from_arrays(
            children, fields=list(target), mask=array.is_null() if array.null_count else None
        )
    if pa.types.is_list(target):
        if pa.types.is_null(array.type):
            return pa.nulls(len(array), target)
        values = convert(array.values, target.value_type, rename)
        return pa.ListArray.from_arrays(
            array.offsets, values, type=target, mask=array.is_null() if array.null_count else None
        )
    if array.type == target:
        return array
    return pc.cast(array, target, safe=False)
