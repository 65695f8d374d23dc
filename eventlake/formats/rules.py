"""The toolkit every format's validation rules are written with.

A rule is a vectorised mask of the rows of a canonical batch that break it; ``check`` (in
``eventlake.transforms.validate``) reports each row once, for the first rule it breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.arrow_util import list_any


@dataclass(frozen=True)
class Rule:
    field: str
    reason: str
    message: str
    broken: Callable[[pa.RecordBatch], np.ndarray]


def as_mask(mask) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def column_at(batch: pa.RecordBatch, path: str) -> pa.Array:
    head, *rest = path.split(".")
    array = batch.column(head)
    for name in rest:
        array = pc.struct_field(array, name)
    return array


class CheckedBatch:
    """A batch under check, with the event-type masks that many rules share computed once."""

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self._types = pc.dictionary_encode(batch.column("event_type"))
        self._masks: dict[tuple, np.ndarray] = {}

    def column(self, name: str) -> pa.Array:
        return self.batch.column(name)

    def __len__(self) -> int:
        return len(self.batch)

    def is_type(self, types) -> np.ndarray:
        key = tuple(types)
        if key not in self._masks:
            hits = pc.is_in(self._types.dictionary, pa.array(list(key), pa.string())).to_numpy(zero_copy_only=False)
            indices = self._types.indices.to_numpy(zero_copy_only=False)
            mask = np.zeros(len(self.batch), dtype=bool)
            valid = ~np.isnan(indices) if indices.dtype.kind == "f" else np.ones(len(indices), dtype=bool)
            mask[valid] = hits[indices[valid].astype(np.int64)]
            self._masks[key] = mask
        return self._masks[key]


def is_type(batch, types) -> np.ndarray:
    return batch.is_type(types)


def present(batch, path) -> np.ndarray:
    return as_mask(pc.is_valid(column_at(batch, path)))


def longer(batch, path, limit, in_bytes=False) -> np.ndarray:
    column = column_at(batch, path)
    length = pc.binary_length(column) if in_bytes else pc.utf8_length(column)
    return as_mask(pc.greater(length, limit))


def missing(batch, path) -> np.ndarray:
    column = column_at(batch, path)
    return as_mask(pc.or_kleene(pc.is_null(column), pc.equal(pc.utf8_length(column), 0)))


def non_empty_list(batch, path) -> np.ndarray:
    return as_mask(pc.greater(pc.list_value_length(batch.column(path)), 0))


def products(batch) -> pa.StructArray:
    return pc.list_flatten(batch.column("product_details"))


def product_ids(batch) -> pa.Array:
    return pc.struct_field(products(batch), ["product", "id"])


def any_product(batch, value_mask) -> np.ndarray:
    return list_any(batch.column("product_details"), as_mask(value_mask))
