"""What each job reports: typed values shared by the jobs, the command line's table and ``history``.

A summary is a frozen dataclass with a field per count, and it still reads like the mapping it
is written as (``summary["records"]``, ``summary.get("note")``): the JSON summary file and the
log's commit info hold ``to_dict()``. Keys a newer version writes and this one does not know
are kept in ``extra``, so ``history`` reads any version's log. Values are checked against the
fields' types when a summary is made, as the configs are.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Summary(Mapping):
    """Base of every job's summary; ``present`` lists the keys the job reported, in its order."""

    job: ClassVar[str] = ""
    run_id: str | None = None
    status: str = "ok"
    version: int | None = None
    seconds: float | None = None
    leftovers_removed: int = 0
    workers: dict = field(default_factory=dict)  # the runner, and the local runner's worker processes
    note: str | None = None
    failure: str | None = None
    extra: dict = field(default_factory=dict)
    present: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Summary:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", "present"}
        hints = typing.get_type_hints(cls)
        known = {}
        for key, value in values.items():
            if key in names:
                known[key] = _checked(cls, key, hints[key], value)
        extra = {k: v for k, v in values.items() if k not in names}
        return cls(**known, extra=extra, present=tuple(values))

    def to_dict(self) -> dict:
        return {key: self[key] for key in self.present}

    def __getitem__(self, key: str):
        if key in ("extra", "present") or key not in self.present:
            raise KeyError(key)
        return self.extra[key] if key in self.extra else getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.present)

    def __len__(self) -> int:
        return len(self.present)

    def with_values(self, **values) -> Summary:
        """A copy with ``values`` set (and reported)."""
        return type(self).from_dict({**self.to_dict(), **values})


def _checked(cls, key: str, hint, value):
    """``value`` when it fits the field's type (ints are floats too); ``TypeError`` naming it otherwise."""
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType) \
        else (hint,)
    plain = tuple(typing.get_origin(a) or a for a in allowed)
    if value is None and type(None) in plain:
        return value
    if float in plain and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, plain) or (isinstance(value, bool) and bool not in plain):
        raise TypeError(f"{cls.__name__}.{key}: expected {hint}, got {value!r}")
    return value


@dataclass(frozen=True)
class ImportSummary(Summary):
    """``eventlake import``: every record stored, dropped as a duplicate, skipped by a documented
    rule of its format (``skipped_by_reason``), or an error sample."""

    job: ClassVar[str] = "import"
    records: int = 0
    stored: int = 0
    joined: int | None = 0  # None: the run had no catalog, and joined none
    unjoined: int | None = 0
    duplicates: int = 0
    errors: int = 0
    errors_by_reason: dict = field(default_factory=dict)
    skipped: int = 0
    skipped_by_reason: dict = field(default_factory=dict)
    catalog_products: int | None = 0
    catalog_errors: int = 0
    skipped_files: int = 0
    skipped_paths: list = field(default_factory=list)
    files: int = 0
    data_files: int = 0
    by_event_type: dict = field(default_factory=dict)
    formats: dict = field(default_factory=dict)
    by_format: dict = field(default_factory=dict)
    errors_path: str | None = None
    events_per_second: float | None = None
    replayed_from: str | None = None  # --replay: the rejects file imported again
    replayed_records: int | None = None
    replay_inputs: str | None = None


@dataclass(frozen=True)
class RejoinSummary(Summary):
    """``eventlake rejoin``: how the events in scope changed against the new catalog."""

    job: ClassVar[str] = "rejoin"
    scope: str = "all"
    events_in_scope: int = 0
    joined_in_scope: int = 0
    rejoined: int = 0
    newly_joined: int = 0
    newly_unjoined: int = 0
    events_changed: int = 0
    files_scanned: int = 0
    files_skipped: int = 0
    files_rewritten: int = 0
    catalog_products: int = 0
    catalog_errors: int = 0
    errors_path: str | None = None


@dataclass(frozen=True)
class PurgeSummary(Summary):
    """``eventlake purge``: what matched (and, with ``--force``, was deleted for good)."""

    job: ClassVar[str] = "purge"
    filter: str = ""
    dry_run: bool = True
    purged: int = 0
    purged_by_event_type: dict = field(default_factory=dict)
    files_total: int = 0
    files_scanned: int = 0  # looked at: their footers at least
    files_ruled_out: int = 0  # of those, ruled out by their Bloom filters without reading a column
    files_rewritten: int = 0
    bytes_scanned: int = 0  # the sizes of the files whose columns were read
    error_samples_removed: int = 0
    features: dict | None = None  # the purge of the features table beside the store, when it has one


@dataclass(frozen=True)
class VacuumSummary(Summary):
    """``eventlake vacuum``: the leftovers removed (or, in a dry run, found)."""

    job: ClassVar[str] = "vacuum"
    dry_run: bool = False
    superseded: int = 0
    unreferenced: int = 0
    scratch: int = 0
    log_temps: int = 0
    files_removed: int = 0
    bytes_removed: int = 0
    paths: list = field(default_factory=list)


@dataclass(frozen=True)
class ExportSummary(Summary):
    """``eventlake export``: what was read, written where, and left out and why. ``version`` is
    the store version exported: the next incremental run passes it as ``since_version``."""

    job: ClassVar[str] = "export"
    format: str = ""
    output: str = ""
    since_version: int | None = None
    split: str | None = None
    files_total: int = 0
    files_read: int = 0
    events_read: int = 0
    events_exported: int = 0
    events_skipped: int = 0
    skipped_by_reason: dict = field(default_factory=dict)
    events_by_part: dict = field(default_factory=dict)
    rows_written: int = 0
    files_written: dict = field(default_factory=dict)
    catalog_products: int | None = None
    catalog_errors: int = 0
    readiness: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FeaturesImportSummary(Summary):
    """``eventlake features import``: every feature-log record stored in the features table,
    dropped as a duplicate, or an error sample."""

    job: ClassVar[str] = "features-import"
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: int = 0
    errors_by_reason: dict = field(default_factory=dict)
    skipped: int = 0
    skipped_by_reason: dict = field(default_factory=dict)
    skipped_files: int = 0
    skipped_paths: list = field(default_factory=list)
    files: int = 0
    data_files: int = 0
    by_module: dict = field(default_factory=dict)
    features_store: str | None = None
    errors_path: str | None = None
    events_per_second: float | None = None


@dataclass(frozen=True)
class SamplesSummary(Summary):
    """``eventlake samples``: every exposure read is a sample, a duplicate or skipped by a rule
    (``skipped_by_reason``); every label event is claimed by an exposure or counted as
    ``unattributed_<label>``; features missing, or written only after the exposure, are counted."""

    job: ClassVar[str] = "samples"
    output: str = ""
    features_store: str | None = None
    features_version: int | None = None
    window_seconds: int = 0
    labels: dict = field(default_factory=dict)
    split: str | None = None
    format: str = "parquet"
    files_read: int = 0
    feature_files_read: int = 0
    exposures: int = 0
    duplicate_exposures: int = 0
    exposures_skipped: int = 0
    skipped_by_reason: dict = field(default_factory=dict)
    samples: int = 0
    rows_written: int = 0
    positives: dict = field(default_factory=dict)
    positive_rate: dict = field(default_factory=dict)
    label_events: dict = field(default_factory=dict)
    exposures_without_user_features: int = 0
    exposures_without_item_features: int = 0
    user_features_written_after_exposure: int = 0
    item_features_written_after_exposure: int = 0
    samples_by_part: dict = field(default_factory=dict)
    files_written: dict = field(default_factory=dict)


BY_JOB: dict[str, type[Summary]] = {c.job: c for c in (ImportSummary, RejoinSummary, PurgeSummary, VacuumSummary,
                                                        ExportSummary, FeaturesImportSummary, SamplesSummary)}


def summary_of(job: str, values: Mapping[str, Any]) -> Summary:
    """The typed summary of ``job`` (``Summary`` itself for a job this version does not know)."""
    return BY_JOB.get(job, Summary).from_dict(values)


__all__ = ["BY_JOB", "ExportSummary", "FeaturesImportSummary", "ImportSummary", "PurgeSummary", "RejoinSummary", "SamplesSummary", "Summary", "VacuumSummary", "summary_of"]
