"""Job settings: a small typed config, loaded from YAML and checked at start-up.

Beam ``PipelineOptions`` carry runner flags only; everything the job itself needs lives here,
with a default and a reason for each field. A bad key is named as ``file::key``. Relative
paths in a config file are relative to the file's own directory.
"""

from __future__ import annotations

import os
import re
import types
import typing
import urllib.parse
from dataclasses import dataclass, field

import yaml

from eventlake.schema import CATALOG_FIELD_TYPES, DEFAULT_CATALOG_FIELDS


class ConfigError(ValueError):
    """A config file or flag is wrong; the message names the key."""


def _coerce(where: str, hint, value):
    """``value`` checked against a field's real type hint (``list[str]``, ``float | None``, ...)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    name = getattr(hint, "__name__", str(hint))
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, args[0]) for v in value):
            raise ConfigError(f"{where}: expected a list of {args[0].__name__}s, got {type(value).__name__}")
        return list(value)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, args[0]) and isinstance(v, args[1])
                                                  for k, v in value.items()):
            raise ConfigError(f"{where}: expected a mapping of {args[0].__name__}s to {args[1].__name__}s")
        return dict(value)
    if isinstance(value, bool) and hint is not bool:
        raise ConfigError(f"{where}: expected {name}, got {value!r}")
    if hint is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {name}, got {type(value).__name__}")
    return value


class _Checked:
    """Config dataclasses coerce every field by its type hint and run ``check`` when made, so
    the Python API refuses what the command line refuses (``RejoinConfig(scope="bogus")``)."""

    def __post_init__(self):
        for name, hint in typing.get_type_hints(type(self)).items():
            setattr(self, name, _coerce(name, hint, getattr(self, name)))
        self.check()

    def check(self):
        return self


@dataclass
class ImportConfig(_Checked):
    """Settings of ``eventlake import`` (the ``import:`` section of a config file)."""

    events: list[str] = field(default_factory=list)
    """Event files: paths or globs (``*.json``, ``*.jsonl``, optionally ``.gz``/``.bz2``/``.zst``)."""
    format: str = "retail"
    """The events' source format: ``retail`` (Google Retail UserEvent JSON lines), ``personalize``
    (Amazon Personalize interactions CSV), ``personalize-events``, ``opensearch`` (Alibaba
    OpenSearch behavior documents), ``pairec-behavior``, ``pairec-callback``, ``ga4``, ``mapped``
    (columns named in ``format_options``), ``auto``, or one a package registers
    (``eventlake.formats``)."""
    catalog: str = ""
    """The product catalog to join events against (a path or glob). Optional: without one no
    join is done, ``joined`` is null, and a later ``rejoin`` with a catalog joins the events."""
    store: str = ""
    """The event store (a Delta Lake table), created on first import."""
    errors: str = ""
    """Where error samples go; default ``<store>/_errors/<run id>``."""
    summary: str = ""
    """Also write the run summary as JSON here."""
    report: bool = True
    """Write the run's HTML report beside its summary (``<store>/_runs/<job>.html``)."""
    keep_rejects: bool = False
    """Also write every rejected record whole to ``rejects.jsonl`` in the run's error folder (for ``replay``)."""
    replay: str = ""
    """Import the records an earlier run rejected (its run id, or a rejects file) instead of ``events``."""
    max_error_ratio: float | None = None
    """Fail (and commit nothing) when errors / records exceeds this; none means no limit."""
    max_error_samples: int = 1000
    """How many error samples to write; counts are always complete."""
    allowed_event_types: list[str] = field(default_factory=list)
    """Event types accepted besides the format's own (Retail's eight, OpenSearch's seven behaviors)."""
    event_type_map: dict[str, str] = field(default_factory=dict)
    """Source event type -> canonical type, e.g. ``cart: add-to-cart``."""
    catalog_format: str = "retail"
    """The catalog's format: ``retail`` (Retail Product JSON lines) or ``personalize-items``."""
    catalog_field_map: dict[str, str] = field(default_factory=dict)
    """Catalog source column -> catalog field, for formats with columns of the user's own
    (Personalize items: ``GENRE: categories``)."""
    catalog_fields: list[str] = field(default_factory=lambda: list(DEFAULT_CATALOG_FIELDS))
    """Catalog fields copied into each stored product."""
    format_options: dict[str, object] = field(default_factory=dict)
    """The event format's own options: ``timezone`` for ``pairec-behavior``, the column mapping
    of ``mapped`` (see each format's README section)."""
    catalog_format_options: dict[str, object] = field(default_factory=dict)
    """The catalog format's own options (the ``mapped`` catalog's column mapping)."""
    reimport: bool = False
    """Import files the store already has (their events then count as duplicates)."""
    allow_missing: bool = False
    """Go on when some ``events`` pattern matches no file (by default that is an error: a typo)."""
    split_bytes: int = 64 << 20
    """Uncompressed files larger than this are read in parallel byte ranges."""
    block_bytes: int = 8 << 20
    """Bytes of lines parsed at a time: the size of one Arrow batch."""
    progress: bool = False
    """Show progress on stderr while the files are read (the command line does on a terminal)."""

    def check(self) -> ImportConfig:
        if not self.events and not self.replay:
            raise ConfigError("events: give at least one file or glob (--events), or a run to --replay")
        if self.events and self.replay:
            raise ConfigError("replay: imports a run's rejected records instead of files; give --events or --replay")
        if not self.store:
            raise ConfigError("store: give the event store location (--store)")
        from eventlake.formats.base import format_names

        if self.format not in [*format_names(), "auto"]:
            raise ConfigError(f"format: unknown format {self.format!r}; known: {', '.join(format_names())}, or auto")
        _check_format_options(self.format, self.format_options)
        _check_catalog_format(self.catalog_format, self.catalog_field_map, self.catalog_format_options)
        unknown = [f for f in self.catalog_fields if f not in CATALOG_FIELD_TYPES]
        if unknown:
            raise ConfigError(f"catalog_fields: unknown field {unknown[0]!r}; choose from {', '.join(CATALOG_FIELD_TYPES)}")
        _check_reading(self)
        return self


REJOIN_SCOPES = ("all", "joined", "unjoined")


@dataclass
class RejoinConfig(_Checked):
    """Settings of ``eventlake rejoin`` (the ``rejoin:`` section of a config file)."""

    store: str = ""
    """The event store whose events are joined again."""
    catalog: str = ""
    """The new Retail Product JSON lines (a path or glob)."""
    catalog_format: str = "retail"
    """The catalog's format: ``retail`` (Retail Product JSON lines) or ``personalize-items``."""
    catalog_field_map: dict[str, str] = field(default_factory=dict)
    """Catalog source column -> catalog field, as for import."""
    catalog_format_options: dict[str, object] = field(default_factory=dict)
    """The catalog format's own options, as for import."""
    scope: str = "all"
    """Which events: ``unjoined`` (find products now in the catalog), ``joined`` (refresh their
    catalog fields), or ``all``, as Retail's ``UserEventRejoinScope``."""
    summary: str = ""
    """Also write the run summary as JSON here."""
    report: bool = True
    """Write the run's HTML report beside its summary (``<store>/_runs/<job>.html``)."""
    allow_mass_unjoin: bool = False
    """Commit even when more than half of the joined events in scope would become unjoined."""

    def check(self) -> RejoinConfig:
        if not self.store:
            raise ConfigError("store: give the event store location (--store)")
        if not self.catalog:
            raise ConfigError("catalog: give the product catalog (--catalog)")
        _check_catalog_format(self.catalog_format, self.catalog_field_map, self.catalog_format_options)
        if self.scope not in REJOIN_SCOPES:
            raise ConfigError(f"scope: {self.scope!r} is not one of {', '.join(REJOIN_SCOPES)}")
        return self


@dataclass
class PurgeConfig(_Checked):
    """Settings of ``eventlake purge`` (the ``purge:`` section of a config file)."""

    store: str = ""
    """The event store to delete events from."""
    filter: str = ""
    """Which events, in Retail's filter language, e.g. ``visitorId = "visitor1024"``."""
    force: bool = False
    """Delete for good; without it the purge only counts what it would delete."""
    summary: str = ""
    """Also write the run summary as JSON here."""
    report: bool = True
    """Write the run's HTML report beside its summary (``<store>/_runs/<job>.html``)."""

    def check(self) -> PurgeConfig:
        if not self.store:
            raise ConfigError("store: give the event store location (--store)")
        return self  # the filter is checked by its parser, which says where it is wrong


EXPORT_COMPRESSIONS = ("", "gzip")


@dataclass
class ExportConfig(_Checked):
    """Settings of ``eventlake export`` (the ``export:`` section of a config file)."""

    store: str = ""
    """The event store to export from."""
    format: str = ""
    """The output format: ``personalize``, ``retail``, ``recbole``, ``parquet``, ``csv``, or one a
    package registers (``eventlake.exports``)."""
    output: str = ""
    """The output folder (local, ``gs://`` or ``s3://``); it must be empty unless ``overwrite``."""
    filter: str = ""
    """Only events matching this filter (the purge filter language)."""
    catalog: str = ""
    """A product catalog for the formats' item files (Personalize ``items.csv``, RecBole ``.item``)
    and the readiness check that every interaction's item is in it."""
    catalog_format: str = "auto"
    """The catalog's format: ``retail``, ``personalize-items``, ``opensearch-items`` or ``auto``."""
    catalog_field_map: dict[str, str] = field(default_factory=dict)
    """Catalog source column -> catalog field, as for import."""
    catalog_format_options: dict[str, object] = field(default_factory=dict)
    """The catalog format's own options, as for import."""
    since_version: int | None = None
    """Only the events imported after this store version (an incremental export); the summary's
    ``version`` is the one to pass next time."""
    split: str = ""
    """``time:0.8,0.1,0.1`` (cut at global times) or ``leave-last:N`` (per user); empty: no split."""
    compression: str = ""
    """``gzip`` for compressed text files (and gzip-coded Parquet); empty: none."""
    name: str = ""
    """The dataset name where a format names files by it (RecBole); default the output folder's name."""
    rows_per_file: int = 1_000_000
    """About how many events go to one output file before the output is sharded."""
    overwrite: bool = False
    """Replace the output folder's files; without it a non-empty output folder is refused."""
    summary: str = ""
    """Also write the run summary as JSON here."""

    def check(self) -> ExportConfig:
        if not self.store:
            raise ConfigError("store: give the event store location (--store)")
        if not self.output:
            raise ConfigError("output: give the output folder (--output)")
        from eventlake.formats.exporting import export_names

        if self.format not in export_names():
            raise ConfigError(f"format: {'unknown export format ' + repr(self.format) if self.format else 'give the output format'}"
                              f" (--format); known: {', '.join(export_names())}")
        if self.compression not in EXPORT_COMPRESSIONS:
            raise ConfigError(f"compression: {self.compression!r} is not one of gzip or none")
        if self.since_version is not None and self.since_version < -1:
            raise ConfigError("since_version: must be a store version (0 or more)")
        if self.rows_per_file < 1:
            raise ConfigError("rows_per_file: must be at least 1")
        if self.split:
            from eventlake.transforms.split import SplitError, parse_split

            try:
                parse_split(self.split)
            except SplitError as exc:
                raise ConfigError(str(exc)) from None
        if self.catalog:
            _check_catalog_format(self.catalog_format, self.catalog_field_map, self.catalog_format_options)
        if self.output.rstrip("/").count("/") < (3 if "://" in self.output else 0):
            raise ConfigError(f"output: {self.output} is a bucket; give a folder inside it")
        return self


def _check_reading(config: ImportConfig | FeaturesConfig) -> None:
    """The settings every file-importing job shares: error limits and how files are cut."""
    if config.max_error_ratio is not None and not 0 <= config.max_error_ratio <= 1:
        raise ConfigError("max_error_ratio: must be between 0 and 1")
    if config.max_error_samples < 0:
        raise ConfigError("max_error_samples: must not be negative")
    if config.split_bytes < 1 << 16 or not 1 << 10 <= config.block_bytes <= 1 << 30:
        raise ConfigError("split_bytes must be at least 64 KiB, block_bytes between 1 KiB and 1 GiB")


def _check_format_options(name: str, options: dict, catalog: bool = False) -> None:
    """A bad format option is named as ``format_options.<key>`` before anything runs."""
    from eventlake.formats.base import FormatOptionError, catalog_format_class, format_class

    setting = "catalog_format_options" if catalog else "format_options"
    if name == "auto":
        if not options:
            return
        raise ConfigError(f"{setting}: options belong to one format; give --{'catalog-' if catalog else ''}format")
    try:
        (catalog_format_class if catalog else format_class)(name).check_options(options)
    except FormatOptionError as exc:
        raise ConfigError(f"{setting}.{exc}") from None


def _check_catalog_format(name: str, field_map: dict[str, str], options: dict | None = None) -> None:
    from eventlake.formats.base import catalog_format_names

    if name not in [*catalog_format_names(), "auto"]:
        raise ConfigError(f"catalog_format: unknown catalog format {name!r}; known: {', '.join(catalog_format_names())}, "
                          "or auto")
    _check_format_options(name, options or {}, catalog=True)
    for column, target in field_map.items():
        if target not in CATALOG_FIELD_TYPES:
            raise ConfigError(f"catalog_field_map: {column} maps to {target!r}, which is not a catalog field; choose "
                              f"from {', '.join(CATALOG_FIELD_TYPES)}")


@dataclass
class FeaturesConfig(_Checked):
    """Settings of ``eventlake features import`` (the ``features:`` section of a config file)."""

    store: str = ""
    """The event store the features belong to; the features table is ``<store>/_features``."""
    features_store: str = ""
    """The features table (a Delta table) when it should live elsewhere than ``<store>/_features``."""
    files: list[str] = field(default_factory=list)
    """Feature-log files: paths or globs (JSON lines, CSV or Parquet; optionally compressed)."""
    format: str = "pairec-feature-log"
    """The feature logs' format: ``pairec-feature-log`` (PAI-Rec's callback logs)."""
    errors: str = ""
    """Where error samples go; default ``<features table>/_errors/<run id>``."""
    summary: str = ""
    """Also write the run summary as JSON here."""
    max_error_ratio: float | None = None
    """Fail (and commit nothing) when errors / records exceeds this; none means no limit."""
    max_error_samples: int = 1000
    """How many error samples to write; counts are always complete."""
    reimport: bool = False
    """Import files the features table has already (their records then count as duplicates)."""
    allow_missing: bool = False
    """Go on when some pattern matches no file."""
    split_bytes: int = 64 << 20
    """Uncompressed files larger than this are read in parallel byte ranges."""
    block_bytes: int = 8 << 20
    """Bytes of records parsed at a time."""
    progress: bool = False
    """Show progress on stderr while the files are read (the command line does on a terminal)."""

    def check(self) -> FeaturesConfig:
        if not self.files:
            raise ConfigError("files: give at least one feature-log file or glob")
        if not self.store and not self.features_store:
            raise ConfigError("store: give the event store (--store) or the features table (--features-store)")
        from eventlake.formats.base import format_names

        if self.format not in format_names("features"):
            raise ConfigError(f"format: unknown feature-log format {self.format!r}; known: "
                              f"{', '.join(format_names('features'))}")
        _check_reading(self)
        return self

    @property
    def table(self) -> str:
        """Where the features table is."""
        from eventlake.io.delta_log import join_path

        return self.features_store or join_path(self.store, "_features")


_LABEL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_WINDOW = re.compile(r"^([1-9][0-9]*)([smhd])$")
_WINDOW_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SAMPLE_FORMATS = ("parquet", "tfrecord")


@dataclass
class SamplesConfig(_Checked):
    """Settings of ``eventlake samples`` (the ``samples:`` section of a config file)."""

    store: str = ""
    """The event store whose exposures and label events make the samples."""
    output: str = ""
    """The output folder (local, ``gs://`` or ``s3://``); it must be empty unless ``overwrite``."""
    features_store: str = ""
    """The features table, when not ``<store>/_features``; without one the features are null."""
    exposure_types: list[str] = field(default_factory=lambda: ["expose"])
    """The event types that are exposures (one sample per user, request and item)."""
    labels: dict[str, str] = field(default_factory=lambda: {"click": "detail-page-view", "cart": "add-to-cart",
                                                            "buy": "purchase-complete"})
    """Label name -> the event types (comma-separated) that make it 1."""
    window: str = "30m"
    """How long after an exposure a label event still counts: a number and s, m, h or d."""
    filter: str = ""
    """Only events matching this filter (the purge filter language) are read."""
    flatten_features: bool = False
    """Also give each feature key its own typed column (``user__age``), typed over the whole run."""
    format: str = "parquet"
    """``parquet`` or ``tfrecord`` (tf.train.Example records, for EasyRec / TensorFlow)."""
    split: str = ""
    """``time:0.8,0.1,0.1`` (cut at global exposure times) or ``leave-last:N`` (per user)."""
    overwrite: bool = False
    """Replace the output folder's files; without it a non-empty output folder is refused."""
    summary: str = ""
    """Also write the run summary as JSON here."""

    def check(self) -> SamplesConfig:
        if not self.store:
            raise ConfigError("store: give the event store location (--store)")
        if not self.output:
            raise ConfigError("output: give the output folder (--output)")
        if not self.exposure_types or not all(t.strip() for t in self.exposure_types):
            raise ConfigError("exposure_types: give at least one event type")
        if not self.labels:
            raise ConfigError("labels: give at least one label (--label click=detail-page-view)")
        taken = {"request_id", "scene", "user_id", "item_id", "exposure_time"}
        for name, listed_types in self.labels.items():
            if not _LABEL_NAME.match(name) or name in taken or name.endswith("_value"):
                raise ConfigError(f"labels.{name}: a label name is lower-case letters, digits and _, starts with a "
                                  "letter, and is not an output column's name")
            listed = [t.strip() for t in listed_types.split(",")]
            if not all(listed):
                raise ConfigError(f"labels.{name}: give its event types, comma-separated (click=detail-page-view)")
            shared = set(listed) & set(self.exposure_types)
            if shared:
                raise ConfigError(f"labels.{name}: {sorted(shared)[0]} is an exposure type; a label needs other events")
        self.window_seconds  # noqa: B018 - checks it
        if self.format not in SAMPLE_FORMATS:
            raise ConfigError(f"format: {self.format!r} is not one of {', '.join(SAMPLE_FORMATS)}")
        if self.format == "tfrecord":
            import importlib.util

            if importlib.util.find_spec("tfrecord") is None:
                raise ConfigError("format: tfrecord needs the tfrecord package: pip install 'eventlake[tfrecord]'")
        if self.split:
            from eventlake.transforms.split import SplitError, parse_split

            try:
                parse_split(self.split)
            except SplitError as exc:
                raise ConfigError(str(exc)) from None
        if self.output.rstrip("/").count("/") < (3 if "://" in self.output else 0):
            raise ConfigError(f"output: {self.output} is a bucket; give a folder inside it")
        return self

    @property
    def window_seconds(self) -> int:
        found = _WINDOW.match(self.window.strip())
        if not found:
            raise ConfigError(f"window: {self.window!r} is not a duration; give a number and s, m, h or d (30m)")
        return int(found.group(1)) * _WINDOW_SECONDS[found.group(2)]

    @property
    def features_table(self) -> str:
        from eventlake.io.delta_log import join_path

        return self.features_store or join_path(self.store, "_features")


SECTIONS = {ImportConfig: "import", RejoinConfig: "rejoin", PurgeConfig: "purge", ExportConfig: "export",
            FeaturesConfig: "features", SamplesConfig: "samples"}


def load_config(path: str | None, overrides: dict, kind: type = ImportConfig):
    """Defaults, then the YAML file's section for ``kind`` (or top level), then ``overrides``."""
    hints = typing.get_type_hints(kind)
    values: dict = {}
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                document = yaml.safe_load(handle) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(document, dict):
            raise ConfigError(f"{path}: the config must be a mapping of settings")
        name = SECTIONS[kind]
        sectioned = any(key in SECTIONS.values() for key in document)
        section = document.get(name) or {} if sectioned else document
        if not isinstance(section, dict):
            raise ConfigError(f"{path}::{name}: must be a mapping of settings")
        for key, value in section.items():
            if key not in hints:
                raise ConfigError(f"{path}::{key}: unknown setting of {name}; known: {', '.join(hints)}")
            values[key] = _relative_to(path, _coerce(f"{path}::{key}", hints[key], value)) if key in PATH_SETTINGS \
                else _coerce(f"{path}::{key}", hints[key], value)
    for key, value in overrides.items():
        if value is not None:
            value = _coerce(f"--{key.replace('_', '-')}", hints[key], value)
            # a flag's KEY=VALUE pairs add to (or override keys of) the config's own mapping
            values[key] = {**values[key], **value} if isinstance(value, dict) and key in values else value
    for key in PATH_SETTINGS & set(values):
        values[key] = [_without_file_scheme(v) for v in values[key]] if isinstance(values[key], list) \
            else _without_file_scheme(values[key])
    return kind(**values)  # checked on construction


def _without_file_scheme(path: str) -> str:
    """``file:///data/x.json`` -> ``/data/x.json``: Beam's file systems know local paths, not file URLs."""
    if not path.startswith("file:"):
        return path
    parsed = urllib.parse.urlparse(path)
    if parsed.netloc not in ("", "localhost"):
        raise ConfigError(f"{path}: a file:// URL must name a local path (file:///path)")
    return urllib.parse.unquote(parsed.path)


PATH_SETTINGS = {"events", "catalog", "store", "errors", "summary", "output", "files", "features_store"}


def _relative_to(config_path: str, value):
    """A relative local path in a config file means relative to that file, as in docker-compose
    and dbt: a config then works from any working directory. Flags stay relative to the cwd."""
    base = os.path.dirname(os.path.abspath(config_path))

    def resolve(p: str) -> str:
        if not p or "://" in p or p.startswith("file:") or os.path.isabs(p):
            return p
        return os.path.normpath(os.path.join(base, os.path.expanduser(p)))

    return [resolve(v) for v in value] if isinstance(value, list) else resolve(value)
