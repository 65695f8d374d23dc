"""Feature JSON -> typed columns (``--flatten-features``), with types decided over the whole run.

PAI-Rec logs features as JSON objects in text (``{"age": 25, "city": "beijing"}``). A trainer
wants a column per key with one type, but one file cannot tell the type: a key can be an integer
in one log and a decimal in the next. So the run first surveys every feature record's keys and
value kinds (``survey_kinds``, merged with ``merge_kinds``), then each writer turns its samples'
JSON into columns of the surveyed types (``flatten``). Kinds: ``bool``, ``int``, ``float``,
``string``, and ``json`` for lists, objects and keys whose kinds disagree (int and float make
float), which keep their JSON text.

Arrow's JSON reader parses a block of records at once; a block it cannot take whole (a key
that is a number on one line and text on another) is parsed line by line.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pjson

KIND_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "string": pa.string(),
              "json": pa.string()}


def _kind_of_type(data_type: pa.DataType) -> str | None:
    if pa.types.is_null(data_type):
        return None
    if pa.types.is_boolean(data_type):
        return "bool"
    if pa.types.is_integer(data_type):
        return "int"
    if pa.types.is_floating(data_type):
        return "float"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    return "json"


def _kind_of_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "json"


def merge_kind(a: str | None, b: str | None) -> str | None:
    if a is None or a == b:
        return b
    if b is None:
        return a
    if {a, b} == {"int", "float"}:
        return "float"
    return "json"


def merge_kinds(*surveys: dict[str, str | None]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for survey in surveys:
        for key, kind in survey.items():
            out[key] = merge_kind(out.get(key), kind) if key in out else kind
    return out


def _documents(strings: pa.Array) -> pa.Array:
    """The JSON texts, with null and empty ones as ``{}``."""
    strings = strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    text = pc.fill_null(strings.cast(pa.string()), "")
    return pc.if_else(pc.equal(pc.utf8_trim_whitespace(text), ""), "{}", text)


def _parse_block(strings: pa.Array) -> pa.Table | None:
    """The JSON objects as one Arrow table (a column per key), or None when Arrow cannot take
    the block whole."""
    if not len(strings):
        return pa.table({})
    data = "\n".join(_documents(strings).to_pylist()).encode()
    try:
        table = pjson.read_json(pa.BufferReader(data), read_options=pjson.ReadOptions(block_size=max(len(data), 1 << 20)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table if len(table) == len(strings) else None


def _parse_rows(strings: pa.Array) -> list[dict]:
    out = []
    for text in _documents(strings).to_pylist():
        try:
            value = json.loads(text)
        except ValueError:
            value = {}
        out.append(value if isinstance(value, dict) else {})
    return out


def survey_kinds(strings: pa.Array) -> dict[str, str | None]:
    """Each key's kind over these JSON objects."""
    table = _parse_block(strings)
    if table is not None:
        return {name: _kind_of_type(table.schema.field(name).type) for name in table.column_names}
    kinds: dict[str, str | None] = {}
    for record in _parse_rows(strings):
        for key, value in record.items():
            kinds[key] = merge_kind(kinds.get(key), _kind_of_value(value)) if key in kinds else _kind_of_value(value)
    return kinds


def _json_text(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def column_name(source: str, key: str) -> str:
    """``user_features`` + ``age`` -> ``user__age``."""
    return f"{source.removesuffix('_features')}__{key}"


def flatten(strings: pa.Array, kinds: dict[str, str | None]) -> dict[str, pa.Array]:
    """Key -> its column of the surveyed kind (a key never seen with a value reads as text)."""
    n = len(strings)
    table = _parse_block(strings)
    out = {}
    if table is not None:
        for key, kind in kinds.items():
            target = KIND_TYPES[kind or "string"]
            if key not in table.column_names:
                out[key] = pa.nulls(n, target)
                continue
            column = table.column(key).combine_chunks()
            if kind == "json":  # lists, objects, or kinds that disagree over the run: JSON text
                out[key] = pa.array([_json_text(v) for v in column.to_pylist()], pa.string())
            else:
                out[key] = column.cast(target) if not pa.types.is_null(column.type) else pa.nulls(n, target)
        return out
    records = _parse_rows(strings)
    for key, kind in kinds.items():
        values = [r.get(key) for r in records]
        if kind == "json":
            values = [_json_text(v) for v in values]
        out[key] = pa.array(values, KIND_TYPES[kind or "string"])
    return out


__all__ = ["column_name", "flatten", "merge_kinds", "survey_kinds"]
