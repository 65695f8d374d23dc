"""Amazon Personalize datasets from the store: interactions CSV, its Avro schema, items, readiness.

``interactions.csv`` has one row per event and product: ``USER_ID`` (the user id, else the
visitor id), ``ITEM_ID``, ``TIMESTAMP`` (Unix seconds), ``EVENT_TYPE``, and ``EVENT_VALUE``,
``IMPRESSION`` (ids joined by ``|``) and ``RECOMMENDATION_ID`` when some event has them.
Events imported from ``PutActionInteractions`` go to ``action_interactions.csv`` with
``ACTION_ID`` instead. Each CSV has its schema beside it (``*.schema.json``, the Avro record
Personalize's CreateSchema takes). With a catalog, ``items.csv`` holds the catalog fields
(lists joined by ``|``, marked categorical). ``readiness.json`` lists what Personalize would
refuse or warn about before a user pays for an import or a training run.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.formats.exporting import (
    Converted,
    ExportFormat,
    ExportTable,
    epoch_seconds,
    joined_text,
    per_product,
    register_export,
    user_ids,
)
from eventlake.formats.personalize.api_bodies import RECORD_KIND

ID_LIMIT = 256
CATEGORICAL_LIMIT = 1000
MIN_INTERACTIONS = 1000
MIN_USERS_WITH_TWO = 25
MAX_EVENT_TYPES_AND_METADATA = 10
# Attributes that eventlake's own readers add (PutEvents' envelope, the action-interaction
# mark): not interaction metadata.
NOT_METADATA = {"trackingId", "eventAttributionSource", RECORD_KIND}
METADATA_MARK = "attribute:"
OPTIONAL_COLUMNS = {"event_value": "EVENT_VALUE", "impression": "IMPRESSION", "recommendation_id": "RECOMMENDATION_ID"}
AVRO_TYPES = {"USER_ID": "string", "ITEM_ID": "string", "ACTION_ID": "string", "TIMESTAMP": "long",
              "EVENT_TYPE": "string", "EVENT_VALUE": "float", "IMPRESSION": "string", "RECOMMENDATION_ID": "string"}
REQUIRED = {"USER_ID", "ITEM_ID", "ACTION_ID", "TIMESTAMP"}
_ROW_COLUMNS = ("visitor_id", "user_info", "event_time", "event_type", "source_event_type", "event_value",
                "impression", "recommendation_id")
# Catalog field -> items column, and how Personalize should read it.
ITEM_COLUMNS = {"title": ("TITLE", "textual"), "brands": ("BRANDS", "categorical"),
                "categories": ("CATEGORIES", "categorical"), "price": ("PRICE", "float"),
                "original_price": ("ORIGINAL_PRICE", "float"), "currency_code": ("CURRENCY_CODE", "categorical"),
                "availability": ("AVAILABILITY", "categorical")}


@register_export
class PersonalizeExport(ExportFormat):
    """Amazon Personalize bulk-import datasets."""

    name = "personalize"
    description = "Amazon Personalize interactions.csv + schema, items.csv, readiness report"
    columns = ("event_type", "source_event_type", "visitor_id", "user_info.user_id", "event_time",
               "product_details.product.id", "event_value", "impression", "recommendation_id", "attributes",
               "source_format")
    survey_columns = ("event_type", "source_event_type", "event_value", "impression", "recommendation_id",
                      "attributes")
    survey_contents = ("attributes",)  # which keys: each becomes a metadata column
    uses_catalog = True

    def survey(self, batch: pa.RecordBatch) -> set[str]:
        found = super().survey(batch)
        if "attributes" in batch.schema.names and batch.column("attributes").null_count < len(batch):
            keys = pc.unique(pc.struct_field(pc.list_flatten(batch.column("attributes")), "key")).to_pylist()
            found |= {METADATA_MARK + k for k in keys if k is not None and k not in NOT_METADATA}
        return found
    item_id_columns = {"interactions": "ITEM_ID"}

    def _columns(self, survey: set[str], item: str) -> list[str]:
        typed = {"event_type", "source_event_type"} & survey
        out = ["USER_ID", item, "TIMESTAMP"] + (["EVENT_TYPE"] if typed else [])
        return out + [name for column, name in OPTIONAL_COLUMNS.items() if column in survey] + \
            [metadata_name(k) for k in metadata_keys(survey)]

    def tables(self, survey: set[str]) -> list[ExportTable]:
        return [ExportTable("interactions", "interactions", ".csv", "csv"),
                ExportTable("action_interactions", "action_interactions", ".csv", "csv")]

    def convert(self, batch: pa.RecordBatch, survey: set[str]) -> Converted:
        out = Converted()
        keys = metadata_keys(survey)
        if keys:
            batch = _with_metadata(batch, keys)
        rows, products, _, parents, no_product = per_product(batch, [*_ROW_COLUMNS, *map(metadata_name, keys)])
        out.skipped["no item id"] = int(no_product.sum())
        item = pc.struct_field(products, "id")
        actions = _actions(batch)[parents]
        values = {
            "USER_ID": user_ids(rows), "TIMESTAMP": epoch_seconds(rows.column("event_time")),
            "EVENT_TYPE": pc.coalesce(rows.column("event_type"), rows.column("source_event_type")),
            "EVENT_VALUE": rows.column("event_value"), "IMPRESSION": joined_text(rows.column("impression"), "|"),
            "RECOMMENDATION_ID": rows.column("recommendation_id"),
            **{metadata_name(k): rows.column(metadata_name(k)) for k in keys},
        }
        for table, id_column, mask in (("interactions", "ITEM_ID", ~actions), ("action_interactions", "ACTION_ID", actions)):
            if not mask.any():
                continue
            keep = pa.array(mask)
            names = self._columns(survey, id_column)
            arrays = [pc.filter(item if n == id_column else values[n], keep) for n in names]
            out.rows[table] = pa.table(arrays, names=names)
        return out

    def observe(self, converted: Converted, observed: dict) -> dict:
        stats = observed or {"interactions": 0, "action_interactions": 0, "long_ids": 0, "long_id": None,
                             "event_types": set(), "users": {}, "repeat_users": 0, "metadata": set(),
                             "long_metadata": 0}
        for table_name, table in converted.rows.items():
            stats[table_name] += len(table)
            for column in ("USER_ID", "ITEM_ID", "ACTION_ID"):
                if column in table.column_names:
                    long = pc.greater(pc.utf8_length(table.column(column)), ID_LIMIT)
                    n = int(pc.sum(pc.cast(long, pa.int64())).as_py() or 0)
                    if n and stats["long_id"] is None:
                        stats["long_id"] = f"{column} {pc.filter(table.column(column), long)[0].as_py()[:40]}..."
                    stats["long_ids"] += n
            if "EVENT_TYPE" in table.column_names:
                stats["event_types"] |= {t for t in pc.unique(table.column("EVENT_TYPE")).to_pylist() if t is not None}
            for column in table.column_names:
                if column not in AVRO_TYPES:  # a metadata column
                    stats["metadata"].add(column)
                    stats["long_metadata"] += int(pc.sum(pc.cast(pc.greater(pc.utf8_length(table.column(column)),
                                                                            CATEGORICAL_LIMIT), pa.int64())).as_py() or 0)
            if table_name == "interactions" and stats["repeat_users"] < MIN_USERS_WITH_TWO:
                counts = pc.value_counts(table.column("USER_ID")).to_pylist()
                _count_users(stats, ((c["values"], c["counts"]) for c in counts))
        return stats

    def merge(self, a: dict, b: dict) -> dict:
        if not a or not b:
            return a or b
        merged = {"interactions": a["interactions"] + b["interactions"],
                  "action_interactions": a["action_interactions"] + b["action_interactions"],
                  "long_ids": a["long_ids"] + b["long_ids"], "long_id": a["long_id"] or b["long_id"],
                  "event_types": a["event_types"] | b["event_types"], "users": dict(a["users"]),
                  "repeat_users": a["repeat_users"], "metadata": a["metadata"] | b["metadata"],
                  "long_metadata": a["long_metadata"] + b["long_metadata"]}
        if merged["repeat_users"] < MIN_USERS_WITH_TWO:
            _count_users(merged, b["users"].items())
        return merged

    def item_tables(self, catalog: pa.Table) -> list[tuple[ExportTable, pa.Table]]:
        return [(ExportTable("items", "items", ".csv", "csv", split=False), _items(catalog))]

    def finish(self, survey: set[str], observed: dict, catalog: pa.Table | None,
               item_ids_missing: int | None) -> tuple[dict[str, bytes], dict]:
        files = {"interactions.schema.json": _avro("Interactions", self._columns(survey, "ITEM_ID"))}
        if observed.get("action_interactions"):
            files["action_interactions.schema.json"] = _avro("ActionInteractions", self._columns(survey, "ACTION_ID"))
        items = _items(catalog) if catalog is not None else None
        if items is not None:
            files["items.schema.json"] = _avro("Items", items.column_names, items.schema)
        report = readiness(observed, items, item_ids_missing)
        files["readiness.json"] = (json.dumps(report, indent=2) + "\n").encode()
        return files, report


def _count_users(stats: dict, counts) -> None:
    """Add interactions per user until enough users have two: a count of every user cost more
    than the rest of the export, and the check needs only to know there are enough."""
    users = stats["users"]
    for user, n in counts:
        before = users.get(user, 0)
        users[user] = before + n
        if before < 2 <= before + n:
            stats["repeat_users"] += 1
            if stats["repeat_users"] >= MIN_USERS_WITH_TWO:
                stats["users"] = {}  # decided: the counts are no longer needed
                return


def metadata_keys(survey: set[str]) -> list[str]:
    """The attribute keys that become metadata columns, in a stable order."""
    return sorted(m[len(METADATA_MARK):] for m in survey if m.startswith(METADATA_MARK))


def metadata_name(key: str) -> str:
    """A metadata column's name: the attribute key, with characters an Avro name cannot hold as ``_``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return name if re.match(r"[A-Za-z_]", name) else "_" + name


def _with_metadata(batch: pa.RecordBatch, keys: list[str]) -> pa.RecordBatch:
    """``batch`` with a text column per attribute key: its text values joined by ``|`` (Personalize's
    separator of categorical values), or its numbers."""
    attributes = batch.column("attributes")
    flat = pc.list_flatten(attributes)
    if not len(flat):
        columns = [pa.nulls(len(batch), pa.string()) for _ in keys]
    else:
        parents = pc.list_parent_indices(attributes).to_numpy()
        names = pc.struct_field(flat, "key")
        text = joined_text(pc.struct_field(flat, ["value", "text"]), "|")
        numbers = pc.cast(pc.list_element(pc.fill_null(pc.struct_field(flat, ["value", "numbers"]), pa.scalar([0.0], pa.list_(pa.float64()))), 0), pa.string())
        has_numbers = pc.fill_null(pc.greater(pc.list_value_length(pc.struct_field(flat, ["value", "numbers"])), 0), False)
        values = pc.coalesce(text, pc.if_else(has_numbers, numbers, pa.scalar(None, pa.string())))
        columns = []
        for key in keys:
            hits = np.flatnonzero(pc.fill_null(pc.equal(names, key), False).to_numpy(zero_copy_only=False))
            at = np.full(len(batch), -1, np.int64)
            at[parents[hits]] = hits
            columns.append(values.take(pa.array(at, mask=at < 0)))
    for key, column in zip(keys, columns, strict=True):
        batch = batch.append_column(metadata_name(key), column)
    return batch


def _actions(batch: pa.RecordBatch) -> np.ndarray:
    """Events imported from PutActionInteractions (they carry the attribute that says so)."""
    out = np.zeros(len(batch), bool)
    formats = batch.column("source_format")
    if not len(batch) or not pc.any(pc.equal(formats, "personalize-events")).as_py():
        return out
    attributes = batch.column("attributes")
    flat = pc.list_flatten(attributes)
    if not len(flat):
        return out
    hit = pc.and_(pc.equal(pc.struct_field(flat, "key"), RECORD_KIND),
                  pc.equal(pc.list_element(pc.struct_field(flat, ["value", "text"]), 0), "action-interaction"))
    hit = pc.fill_null(hit, False).to_numpy(zero_copy_only=False)
    out[pc.list_parent_indices(attributes).to_numpy()[hit]] = True
    return out


def _items(catalog: pa.Table) -> pa.Table:
    columns, names = [catalog.column("id")], ["ITEM_ID"]
    for field, (name, _) in ITEM_COLUMNS.items():
        if field not in catalog.column_names or catalog.column(field).null_count == len(catalog):
            continue
        values = catalog.column(field).combine_chunks()
        columns.append(joined_text(values, "|") if pa.types.is_list(values.type) else values)
        names.append(name)
    return pa.table(columns, names=names)


def _avro(record: str, columns: list[str], schema: pa.Schema | None = None) -> bytes:
    """The Avro record schema Personalize takes for a dataset with ``columns``."""
    kinds = {name: kind for name, kind in ITEM_COLUMNS.values()}
    fields = []
    for name in columns:
        avro_type = AVRO_TYPES.get(name) or ("float" if kinds.get(name) == "float" else "string")
        field = {"name": name, "type": avro_type if name in REQUIRED else ["null", avro_type]}
        if kinds.get(name) == "categorical" or name not in AVRO_TYPES and name not in kinds:
            field["categorical"] = True  # an item's list field, or an interaction's metadata column
        if kinds.get(name) == "textual":
            field["textual"] = True
        fields.append(field)
    body = {"type": "record", "name": record, "namespace": "com.amazonaws.personalize.schema", "fields": fields,
            "version": "1.0"}
    return (json.dumps(body, indent=2) + "\n").encode()


def readiness(observed: dict, items: pa.Table | None, item_ids_missing: int | None) -> dict:
    """What Personalize would refuse (``error``) or warn about, check by check."""
    checks = []

    def check(name: str, ok: bool, value, message: str, level: str = "error") -> None:
        checks.append({"check": name, "status": "ok" if ok else level, "value": value, "message": message})

    interactions = observed.get("interactions", 0)
    check("interactions", interactions >= MIN_INTERACTIONS, interactions,
          f"Personalize trains on at least {MIN_INTERACTIONS} item interactions")
    repeat = observed.get("repeat_users", 0)
    check("users_with_2_interactions", repeat >= MIN_USERS_WITH_TWO, repeat,
          f"Personalize trains only with at least {MIN_USERS_WITH_TWO} users that have 2 or more interactions "
          f"(counting stops at {MIN_USERS_WITH_TWO})")
    check("ids_within_256_characters", not observed.get("long_ids"), observed.get("long_ids", 0),
          f"ids over {ID_LIMIT} characters are refused" + (f" (first: {observed['long_id']})" if observed.get("long_id") else ""))
    types = len(observed.get("event_types", ())) + len(observed.get("metadata", ()))
    check("event_types_and_metadata_columns", types <= MAX_EVENT_TYPES_AND_METADATA, types,
          f"at most {MAX_EVENT_TYPES_AND_METADATA} event types plus interaction metadata columns")
    long = observed.get("long_metadata", 0)
    for name, kind in ITEM_COLUMNS.values() if items is not None else ():
        if kind == "categorical" and name in items.column_names:
            long += int(pc.sum(pc.cast(pc.greater(pc.utf8_length(items.column(name)), CATEGORICAL_LIMIT),
                                       pa.int64())).as_py() or 0)
    check("categorical_values_within_1000_characters", not long, long,
          f"categorical values over {CATEGORICAL_LIMIT} characters are refused")
    if item_ids_missing is None:
        checks.append({"check": "interactions_with_items", "status": "not checked", "value": None,
                       "message": "give --catalog to check that every interaction's item is in items.csv"})
    else:
        check("interactions_with_items", not item_ids_missing, item_ids_missing,
              "interactions whose item is not in items.csv are not used with the item's metadata", level="warning")
    worst = "error" if any(c["status"] == "error" for c in checks) else \
        "warning" if any(c["status"] == "warning" for c in checks) else "ok"
    return {"status": worst, "checks": checks}
