"""Canonical columns built from flat Python lists, for formats that read records one by one.

``pa.array`` over lists of nested dicts costs microseconds per value (it inspects every dict);
the same columns built from flat lists of strings and numbers plus offsets cost a fraction of
that. Measured on 100k OpenSearch documents with six attributes each: 1.9 s -> 0.2 s.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.schema import ATTRIBUTES, USER_INFO, product_details_type

_NUMBER = (int, float)


def one_product_each(ids: pa.Array | list) -> pa.ListArray:
    """``product_details`` with one entry per row, the given product id (none where it is null)."""
    ids = ids if isinstance(ids, pa.Array) else pa.array(ids, pa.string())
    details = product_details_type()
    entry = details.value_type
    present = ids.is_valid().to_numpy(zero_copy_only=False)
    offsets = np.concatenate(([0], np.cumsum(present))).astype(np.int32)
    kept = ids.filter(pa.array(present))
    product = pa.StructArray.from_arrays([kept], fields=list(entry.field("product").type))
    values = pa.StructArray.from_arrays([product, pa.nulls(len(kept), pa.int64())], fields=list(entry))
    mask = pa.array(~present) if not present.all() else None
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=details, mask=mask)


def user_info_of(user_ids: pa.Array) -> pa.StructArray:
    """``user_info`` holding only the user id."""
    n = len(user_ids)
    return pa.StructArray.from_arrays([user_ids] + [pa.nulls(n, f.type) for f in list(USER_INFO)[1:]],
                                      fields=list(USER_INFO))


def _assemble(names: list[str], present: list[np.ndarray], values: list[pa.StructArray],
              rows_without_null: bool = True) -> pa.ListArray:
    """``attributes`` from one value column per key (``values[k]``, each as long as the batch),
    taking the present values row-major: each row's attributes in key order. A row with none
    is null, unless ``rows_without_null`` is false (then an empty list)."""
    n = len(present[0])
    matrix = np.stack(present, axis=1)  # rows x keys
    rows, which = np.nonzero(matrix)
    counts = np.bincount(rows, minlength=n)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    value = pa.concat_arrays(values).take(pa.array(which * n + rows, pa.int64()))
    keys = pa.array(np.array(names, dtype=object)[which], pa.string())
    entries = pa.StructArray.from_arrays([keys, value], fields=list(ATTRIBUTES.value_type))
    mask = pa.array(counts == 0) if rows_without_null and (counts == 0).any() else None
    return pa.ListArray.from_arrays(pa.array(offsets), entries, type=ATTRIBUTES, mask=mask)


_VALUE_FIELDS = list(ATTRIBUTES.value_type.field("value").type)


def attributes_from_records(records: list[dict], skip: set[str], separator: str | None = None) -> pa.ListArray:
    """``attributes`` from each record's keys other than ``skip``, built a key at a time (a
    file's records mostly share their keys): numbers as numbers, other values as text (split at
    ``separator`` when given), nested values as their JSON text. Each row's attributes are in
    key order, whatever order its record wrote them in, so that the same event gives the same
    content fingerprint."""
    import json

    seen: set[str] = set()
    for record in records:
        seen.update(record)
    keys = sorted(seen - skip)
    n = len(records)
    if not keys:
        return pa.nulls(n, ATTRIBUTES)
    present, values = [], []
    for key in keys:
        column = [r.get(key) for r in records]
        present.append(np.fromiter((v is not None for v in column), dtype=bool, count=n))
        texts = [None if v is None or (isinstance(v, _NUMBER) and not isinstance(v, bool)) else
                 v if isinstance(v, str) else ("true" if v else "false") if isinstance(v, bool)
                 else json.dumps(v, ensure_ascii=False) for v in column]
        texts = [None if t is None else t.split(separator) for t in texts] if separator else \
            [None if t is None else [t] for t in texts]
        numbers = [[float(v)] if isinstance(v, _NUMBER) and not isinstance(v, bool) else None for v in column]
        values.append(pa.StructArray.from_arrays([pa.array(texts, pa.list_(pa.string())),
                                                  pa.array(numbers, pa.list_(pa.float64()))], fields=_VALUE_FIELDS))
    return _assemble(keys, present, values)


def attributes_from_columns(names: list[str], columns: list[pa.Array], separator: str | None = None,
                            rows_without_null: bool = True) -> pa.ListArray:
    """``attributes`` from whole columns (one per attribute key, all of one length), without a
    Python loop over rows: numeric columns as numbers, string and boolean ones as text (split
    at ``separator`` when given); each row's attributes in the given order, nulls left out."""
    n = len(columns[0]) if columns else 0
    if not names:
        return pa.nulls(n, ATTRIBUTES)
    singles = pa.array(np.arange(n + 1, dtype=np.int32))
    present, values = [], []
    for column in columns:
        if pa.types.is_boolean(column.type):
            column = pc.if_else(column, "true", "false")
        valid = column.is_valid()
        present.append(pc.fill_null(valid, False).to_numpy(zero_copy_only=False))
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        if numeric:
            text = pa.nulls(n, pa.list_(pa.string()))
            numbers = pa.ListArray.from_arrays(singles, pc.cast(column, pa.float64()), mask=pc.invert(valid))
        else:
            strings = pc.cast(column, pa.string())
            text = pc.split_pattern(strings, separator) if separator else \
                pa.ListArray.from_arrays(singles, strings, mask=pc.invert(valid))
            numbers = pa.nulls(n, pa.list_(pa.float64()))
        values.append(pa.StructArray.from_arrays([text, numbers], fields=_VALUE_FIELDS))
    return _assemble(names, present, values, rows_without_null)


__all__ = ["attributes_from_columns", "attributes_from_records", "one_product_each", "user_info_of"]
