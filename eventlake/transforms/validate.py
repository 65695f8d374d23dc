"""Validation: each format's rules over whole batches, one error sample per rejected row.

The rules live with their format (``eventlake.formats``); this module applies them. Each rule is
a vectorised mask of the rows that break it. A row is reported once, for the first rule it
breaks, so that every rejected record is one error sample.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.errors import ERRORS, error_record
from eventlake.formats.arrow_util import take_rows
from eventlake.formats.base import get_format
from eventlake.formats.rules import CheckedBatch, Rule
from eventlake.schema import SOURCE_DETAIL_FIELDS

_SOURCE_DETAILS = [f.name for f in SOURCE_DETAIL_FIELDS]


def check(batch: pa.RecordBatch, rules: list[Rule]) -> tuple[pa.RecordBatch, list[dict]]:
    """Split ``batch`` into the rows that keep every rule and one error per row that does not.

    Kept rows leave without ``source_line`` and ``source_record``. When rows are dropped, the
    kept ones come out grouped by event date: the copy is made anyway, and the store writer then
    slices the batch per date instead of copying it again.
    """
    failed = np.full(len(batch), -1, dtype=np.int32)
    checked = CheckedBatch(batch)
    for index, rule in enumerate(rules):
        broken = rule.broken(checked)
        failed[(failed < 0) & broken] = index
    bad = np.flatnonzero(failed >= 0)
    valid = batch.drop_columns(_SOURCE_DETAILS)  # only error samples need the line and its text
    if not len(bad):
        return valid, []
    errors = []
    details = batch.select(["source_uri", "source_line", "source_offset", "source_record"]).take(pa.array(bad))
    for row, detail in zip(bad, details.to_pylist(), strict=True):
        rule = rules[failed[row]]
        line = detail["source_line"] if detail["source_line"] >= 0 else None
        errors.append(
            error_record(detail["source_uri"], line, detail["source_offset"], rule.field, rule.reason, rule.message,
                         detail["source_record"])
        )
    return take_rows(valid, _by_date(batch, np.flatnonzero(failed < 0))), errors


def _by_date(batch: pa.RecordBatch, rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by event date (stable); rows without a time were rejected above."""
    micros = pc.cast(batch.column("event_time"), pa.int64()).to_numpy(zero_copy_only=False)[rows]
    return rows[np.argsort(micros // 86_400_000_000, kind="stable")]


def map_event_types(batch: pa.RecordBatch, mapping: dict[str, str]) -> pa.RecordBatch:
    """Rename source event types to canonical ones (``source_event_type`` keeps the original); a
    type the map does not name keeps the ``event_type`` its format gave it."""
    if not mapping:
        return batch
    source = batch.column("source_event_type")
    position = pc.index_in(source, value_set=pa.array(list(mapping)))
    mapped = pc.coalesce(pa.array(list(mapping.values())).take(position), batch.column("event_type"))
    return batch.set_column(batch.schema.get_field_index("event_type"), "event_type", mapped)


class _ValidateFn(beam.DoFn):
    def __init__(self, allowed_event_types: tuple[str, ...], event_type_map: dict[str, str], format_options: dict):
        self._allowed, self._map, self._options = allowed_event_types, event_type_map, format_options

    def setup(self):
        self._by_format: dict[str, tuple[list[Rule], dict[str, str]]] = {}

    def _for(self, format_name: str) -> tuple[list[Rule], dict[str, str]]:
        if format_name not in self._by_format:
            found = get_format(format_name, self._options, event_type_map=self._map,
                               allowed_event_types=self._allowed)
            self._by_format[format_name] = (found.rules(self._allowed), found.event_type_map)
        return self._by_format[format_name]

    def process(self, batch: pa.RecordBatch):
        if not len(batch):
            return
        rules, mapping = self._for(batch.column("source_format")[0].as_py())  # a batch is one range: one format
        valid, errors = check(map_event_types(batch, mapping), rules)
        for error in errors:
            yield beam.pvalue.TaggedOutput(ERRORS, error)
        if len(valid):
            yield valid


class ValidateEvents(beam.PTransform):
    """Parsed batches -> batches that keep every rule of their format, plus an ``errors`` output.

    Each batch is checked by the rules of the format it was read as (its ``source_format``),
    after its event types are mapped (the format's defaults, then ``event_type_map``). The kept
    batches are events and their origin: the source line and text stay behind, as only error
    samples use them.

    Args:
        allowed_event_types: event types accepted besides a format's own (Retail's eight).
        event_type_map: source event type -> canonical type; overrides the format's defaults.
        format_options: the format's options, as ``ReadEvents`` was given them.
    """

    def __init__(self, allowed_event_types: tuple[str, ...] = (), event_type_map: dict[str, str] | None = None,
                 format_options: dict | None = None):
        super().__init__()
        self._allowed, self._map = tuple(allowed_event_types), dict(event_type_map or {})
        self._options = dict(format_options or {})

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> beam.pvalue.DoOutputsTuple:
        return batches | (
            beam.ParDo(_ValidateFn(self._allowed, self._map, self._options)).with_output_types(pa.RecordBatch).with_outputs(ERRORS, main="events")
        )


ValidateRetailEvents = ValidateEvents  # the name from before formats: Retail batches get Retail's rules
