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


def attributes_of(rows: list[list[tuple[str, object]]], separator: str | None = None) -> pa.ListArray:
    """``attributes`` from each row's ``(key, value)`` pairs: numbers as numbers, everything
    else as text (split at ``separator`` when given; ``true``/``false`` for booleans). A row
    without pairs has null attributes."""
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    keys, texts, numbers = [], [], []
    for row in rows:
        for key, value in row:
            keys.append(key)
            if isinstance(value, _NUMBER) and not isinstance(value, bool):
                texts.append(None)
                numbers.append([float(value)])
            else:
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                texts.append(text.split(separator) if separator else [text])
                numbers.append(None)
    entry = ATTRIBUTES.value_type
    value_type = entry.field("value").type
    value = pa.StructArray.from_arrays([pa.array(texts, pa.list_(pa.string())),
                                        pa.array(numbers, pa.list_(pa.float64()))], fields=list(value_type))
    entries = pa.StructArray.from_arrays([pa.array(keys, pa.string()), value], fields=list(entry))
    mask = pa.array(counts == 0) if (counts == 0).any() else None
    return pa.ListArray.from_arrays(pa.array(offsets), entries, type=ATTRIBUTES, mask=mask)


def attributes_from_records(records: list[dict], skip: set[str], separator: str | None = None) -> pa.ListArray:
    """``attributes`` from each record's keys other than ``skip``, built a key at a time (a
    file's records mostly share their keys): numbers as numbers, other values as text, nested
    values as their JSON text (split at ``separator`` when given). Each row's attributes are in key order, whatever order its
    record wrote them in, so that the same event gives the same content fingerprint."""
    import json

    seen: set[str] = set()
    for record in records:
        seen.update(record)
    keys = sorted(seen - skip)
    n = len(records)
    if not keys:
        return pa.nulls(n, ATTRIBUTES)
    present_columns, text_columns, number_columns = [], [], []
    for key in keys:
        values = [r.get(key) for r in records]
        present_columns.append(np.fromiter((v is not None for v in values), dtype=bool, count=n))
        texts = [None if v is None or (isinstance(v, _NUMBER) and not isinstance(v, bool)) else
                 v if isinstance(v, str) else ("true" if v else "false") if isinstance(v, bool)
                 else json.dumps(v, ensure_ascii=False) for v in values]
        text_columns.append([None if t is None else t.split(separator) for t in texts] if separator else
                            [None if t is None else [t] for t in texts])
        number_columns.append([[float(v)] if isinstance(v, _NUMBER) and not isinstance(v, bool) else None
                               for v in values])
    present = np.stack(present_columns, axis=1)  # rows x keys
    rows, which = np.nonzero(present)  # row-major: each row's attributes in key order
    counts = np.bincount(rows, minlength=n)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    take = pa.array(which * n + rows, pa.int64())
    texts = pa.concat_arrays([pa.array(c, pa.list_(pa.string())) for c in text_columns]).take(take)
    numbers = pa.concat_arrays([pa.array(c, pa.list_(pa.float64())) for c in number_columns]).take(take)
    entry = ATTRIBUTES.value_type
    value = pa.StructArray.from_arrays([texts, numbers], fields=list(entry.field("value").type))
    names = pa.array(np.array(keys, dtype=object)[which], pa.string())
    entries = pa.StructArray.from_arrays([names, value], fields=list(entry))
    mask = pa.array(counts == 0) if (counts == 0).any() else None
    return pa.ListArray.from_arrays(pa.array(offsets), entries, type=ATTRIBUTES, mask=mask)


def attributes_from_columns(names: list[str], columns: list[pa.Array]) -> pa.ListArray:
    """``attributes`` from whole columns (one per attribute key, all of one length), without a
    Python loop over rows: numeric columns as numbers, string and boolean ones as text; each
    row's attributes in the given order, nulls left out."""
    n = len(columns[0]) if columns else 0
    if not names:
        return pa.nulls(n, ATTRIBUTES)
    entry = ATTRIBUTES.value_type
    value_type = entry.field("value").type
    singles = pa.array(np.arange(n + 1, dtype=np.int32))
    present, values = [], []
    for column in columns:
        if pa.types.is_boolean(column.type):
            column = pc.if_else(column, "true", "false")
        valid = column.is_valid()
        present.append(pc.fill_null(valid, False).to_numpy(zero_copy_only=False))
        numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
        text = pa.ListArray.from_arrays(singles, pc.cast(column, pa.string()), mask=pc.invert(valid)) \
            if not numeric else pa.nulls(n, pa.list_(pa.string()))
        numbers = pa.ListArray.from_arrays(singles, pc.cast(column, pa.float64()), mask=pc.invert(valid)) \
            if numeric else pa.nulls(n, pa.list_(pa.float64()))
        values.append(pa.StructArray.from_arrays([text, numbers], fields=list(value_type)))
    matrix = np.stack(present, axis=1)  # rows x keys
    rows, which = np.nonzero(matrix)  # row-major: each row's attributes in key order
    counts = np.bincount(rows, minlength=n)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
    value = pa.concat_arrays(values).take(pa.array(which * n + rows, pa.int64()))
    keys = pa.array(np.array(names, dtype=object)[which], pa.string())
    entries = pa.StructArray.from_arrays([keys, value], fields=list(entry))
    mask = pa.array(counts == 0) if (counts == 0).any() else None
    return pa.ListArray.from_arrays(pa.array(offsets), entries, type=ATTRIBUTES, mask=mask)


__all__ = ["attributes_from_columns", "attributes_from_records", "attributes_of", "one_product_each", "user_info_of"]
