"""The contract every source format keeps, and the registry that finds formats by name.

A format turns the bytes of one byte range of a source file into canonical batches
(``PARSED_SCHEMA``) and error records, and names the rules its source system applies to its
events. Everything else — matching files, decompressing, parallel reading, validation,
fingerprints, the join, the store — is shared, so a new format is one module: a subclass of
``EventFormat`` registered with ``register_format`` (or, from a package of the user's own,
through the ``eventlake.formats`` entry-point group, whose entries name such a class).
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import ClassVar

import numpy as np
import pyarrow as pa

from eventlake.io.files import ByteRange
from eventlake.schema import PARSED_SCHEMA

ENTRY_POINT_GROUP = "eventlake.formats"


@dataclass
class ParsedBlock:
    """What a format made of one block of records.

    ``lines`` counts the physical lines the block spanned (blank ones included), so that a byte
    range's line numbers can be made absolute once every earlier range has reported its count;
    ``records`` counts the records seen, so that ``records == len(batch) + len(errors)``.
    """

    batch: pa.RecordBatch
    errors: list[dict] = field(default_factory=list)
    lines: int = 0
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Records left out by a documented rule of the format (GA4's ``session_start``), by
    reason; they count in ``records`` too, so ``records == len(batch) + len(errors) + skipped``."""


class RecordRejected(ValueError):
    """One record breaks a rule of its format: which field, the reason code and the message, for
    formats that check records one by one."""

    def __init__(self, field: str, reason: str, message: str):
        super().__init__(message)
        self.field, self.reason = field, reason


class FormatOptionError(ValueError):
    """A format option is unknown or wrong; ``key`` names it (``timezone``, ``columns.time``)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


class SourceFileError(ValueError):
    """A whole file cannot be read as its format (a required column is missing, say): the run
    fails with this one line, naming the file, instead of one error per record."""


class EventFormat(abc.ABC):
    """One source system's event files.

    Subclasses set the class attributes and implement ``read_range``; ``rules`` is optional.
    Instances are made on each worker (``DoFn.setup``), so costly set-up belongs in ``__init__``.
    """

    name: ClassVar[str]
    """The name users give to ``--format``."""
    suffixes: ClassVar[tuple[str, ...]]
    """File names it reads end in one of these, before an optional ``.gz``/``.bz2``/``.zst``."""
    splittable: ClassVar[bool] = True
    """Whether a large uncompressed file may be read in byte ranges cut at line ends (false
    where a record may span lines, as a quoted CSV field can)."""
    default_event_type_map: ClassVar[Mapping[str, str]] = {}
    """Source event type -> canonical type, before the config's own ``event_type_map``."""
    description: ClassVar[str] = ""
    option_names: ClassVar[Mapping[str, str]] = {}
    """The options it takes (``format_options`` in the config), each with what it does."""
    detectable: ClassVar[bool] = True
    """Whether ``--format auto`` may choose it (a format that needs its options cannot be)."""
    table: ClassVar[str] = "events"
    """What its records are: ``events`` for the event store, ``features`` for a features table
    (``eventlake features import``), whose batches are ``PARSED_FEATURE_SCHEMA``."""

    def __init__(self, options: Mapping | None = None, *, event_type_map: Mapping[str, str] | None = None,
                 allowed_event_types: tuple[str, ...] = ()):
        """``options`` are checked by ``check_options``; the event-type settings are the import's,
        for formats that skip the events they cannot map (GA4's ``session_start``)."""
        self.options = self.check_options(options or {})
        self.event_type_map = {**self.default_event_type_map, **(event_type_map or {})}
        self.allowed_event_types = tuple(allowed_event_types)

    @classmethod
    def check_options(cls, options: Mapping) -> dict:
        """The options, checked: ``FormatOptionError`` naming the first unknown or wrong key.
        Formats with options override this to check their values too (and call it)."""
        return _known_options(cls, options)

    @classmethod
    def splittable_path(cls, path: str) -> bool:
        """Whether this file may be read in byte ranges. A Parquet file's range holds the row
        groups whose data starts in it (``eventlake.formats.tabular``)."""
        return cls.splittable

    @abc.abstractmethod
    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[ParsedBlock]:
        """The records that start in ``byte_range``, a block (about ``block_bytes``) at a time.

        Raises ``SourceFileError`` for a file that cannot be this format, and lets
        ``eventlake.io.files.DamagedSourceError`` through for one that does not decompress.
        """

    def rules(self, allowed_event_types: tuple[str, ...] = ()) -> list:
        """The source system's rules (``eventlake.formats.rules.Rule``) over canonical batches."""
        return []

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """Whether a file starting with ``head`` (its first 64 KiB, decompressed, without a
        byte-order mark) looks like this format; ``--format auto`` asks every format."""
        return False

    def check_file(self, path: str) -> None:
        """Before the job starts: ``SourceFileError`` when the file's header or schema already
        shows it cannot be read as this format (a column the format or its mapping needs is
        missing), so that the run fails at once in one line. Reads only the file's head."""
        return None

    def lines_before(self, byte_range: ByteRange) -> int:
        """Lines of the file before the first record ``byte_range`` owns (0 at the start), to
        make the range's relative line numbers absolute. Reads the file up to the range."""
        from eventlake.io.files import lines_before

        if is_parquet(byte_range.path):
            return 0  # a Parquet row's "line" is its row number in the file already
        return lines_before(byte_range)


def canonical_batch(columns: dict[str, pa.Array], source: str, offsets: np.ndarray, lines: np.ndarray,
                    records: pa.Array, format_name: str) -> pa.RecordBatch:
    """A ``PARSED_SCHEMA`` batch from the event columns a format has (the rest null) and each
    record's origin: its file, byte offset, 1-based line (-1: not known yet) and raw text."""
    n = len(offsets)
    origin = {
        "source_uri": pa.repeat(pa.scalar(source, pa.string()), n),
        "source_offset": pa.array(offsets, pa.int64()),
        "source_line": pa.array(lines, pa.int64()),
        "source_record": records,
        "source_format": pa.repeat(pa.scalar(format_name, pa.string()), n),
    }
    arrays = []
    for f in PARSED_SCHEMA:
        value = origin.get(f.name, columns.get(f.name))
        arrays.append(pa.nulls(n, f.type) if value is None else value)
    return pa.RecordBatch.from_arrays(arrays, schema=PARSED_SCHEMA)


class CatalogFormat(abc.ABC):
    """One source system's product (item) files, read for the join.

    ``read_range`` gives tables in ``catalog_schema(fields)``: the product ``id`` and the catalog
    fields the store keeps. ``field_map`` names, for formats whose columns are the user's own
    (Personalize's item metadata), which source column fills which catalog field.
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    splittable: ClassVar[bool] = True
    description: ClassVar[str] = ""
    option_names: ClassVar[Mapping[str, str]] = {}
    detectable: ClassVar[bool] = True

    def __init__(self, fields: tuple[str, ...], field_map: Mapping[str, str] | None = None,
                 options: Mapping | None = None):
        self.fields, self.field_map = tuple(fields), dict(field_map or {})
        self.options = self.check_options(options or {})

    @classmethod
    def check_options(cls, options: Mapping) -> dict:
        """As ``EventFormat.check_options``, for ``catalog_format_options``."""
        return _known_options(cls, options)

    @classmethod
    def splittable_path(cls, path: str) -> bool:
        return cls.splittable

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """As ``EventFormat.sniff``, for ``--catalog-format auto``."""
        return False

    @abc.abstractmethod
    def read_range(self, byte_range: ByteRange, block_bytes: int) -> Iterator[tuple[pa.Table, list[dict]]]:
        """The products whose records start in ``byte_range``, and an error for each invalid one.

        Error line numbers are relative to the range (a range that starts mid-file has them
        made absolute by the caller); the same exceptions as ``EventFormat.read_range``.
        """


def _known_options(cls, options: Mapping) -> dict:
    if not isinstance(options, Mapping):
        raise FormatOptionError("format_options", f"must be a mapping of option names to values, not {options!r}")
    for key in options:
        if key not in cls.option_names:
            known = ", ".join(cls.option_names) or "none"
            raise FormatOptionError(str(key), f"not an option of the {cls.name} format (its options: {known})")
    return dict(options)


def is_parquet(path: str) -> bool:
    """Parquet files are read by row groups: a byte range holds the groups that start in it."""
    from eventlake.io.files import name_part

    return name_part(path).lower().endswith(".parquet")


_registry: dict[str, type[EventFormat]] = {}
_catalog_registry: dict[str, type[CatalogFormat]] = {}
_entry_points_loaded = False


def register_format(cls):
    """Make an ``EventFormat`` or ``CatalogFormat`` subclass available by its ``name``; usable
    as a class decorator."""
    if isinstance(cls, type) and issubclass(cls, EventFormat):
        registry = _registry
    elif isinstance(cls, type) and issubclass(cls, CatalogFormat):
        registry = _catalog_registry
    else:
        raise TypeError(f"{cls!r} is neither an EventFormat nor a CatalogFormat subclass")
    existing = registry.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"a format named {cls.name!r} is registered already ({existing.__module__})")
    registry[cls.name] = cls
    return cls


def _load_builtin_and_plugins() -> None:
    global _entry_points_loaded
    from eventlake.formats import (  # noqa: F401 - registering
        ga4,
        mapped,
        opensearch,
        pairec,
        pairec_callback,
        pairec_features,
        personalize,
        retail_catalog,
        retail_json,
    )

    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        register_format(entry.load())


def _lookup(registry: dict, name: str, kind: str):
    _load_builtin_and_plugins()
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}") from None


def catalog_format_names() -> list[str]:
    _load_builtin_and_plugins()
    return sorted(_catalog_registry)


def catalog_format_class(name: str) -> type[CatalogFormat]:
    return _lookup(_catalog_registry, name, "catalog format")


def format_names(table: str = "events") -> list[str]:
    """The registered formats whose records go to ``table`` (``events`` or ``features``)."""
    _load_builtin_and_plugins()
    return sorted(n for n, cls in _registry.items() if cls.table == table)


def format_class(name: str) -> type[EventFormat]:
    return _lookup(_registry, name, "format")


def get_format(name: str, options: Mapping | None = None, **event_types) -> EventFormat:
    """A new instance of the format called ``name``; ``KeyError`` naming the known ones,
    ``FormatOptionError`` naming a bad option. ``event_types``: ``event_type_map`` and
    ``allowed_event_types``, as ``EventFormat`` takes them."""
    cls = format_class(name)
    try:
        inspect.signature(cls).bind(options, **event_types)
    except TypeError:  # a plugin written before formats took options, with an ``__init__(self)`` of its own
        instance = cls()
        EventFormat.__init__(instance, options, **event_types)
        return instance
    return cls(options, **event_types)


AUTO = "auto"
SNIFF_BYTES = 64 << 10


def file_head(path: str) -> bytes:
    """The first ``SNIFF_BYTES`` of a file, decompressed, without a UTF-8 byte-order mark."""
    from eventlake.io.decompress import open_source
    from eventlake.io.files import compression_of

    with open_source(path, compression_of(path)) as handle:
        head = handle.read(SNIFF_BYTES)
    return head[3:] if head.startswith(b"\xef\xbb\xbf") else head


def detect_format(path: str, catalog: bool = False) -> str:
    """The one registered format whose suffixes and ``sniff`` fit ``path``; ``ValueError``
    naming the file and the candidates when none or several do."""
    _load_builtin_and_plugins()
    registry = _catalog_registry if catalog else _registry
    from eventlake.io.files import uncompressed_name

    name = uncompressed_name(path)
    by_suffix = sorted(n for n, cls in registry.items()
                       if cls.detectable and getattr(cls, "table", "events") == "events" and name.endswith(cls.suffixes))
    try:
        head = file_head(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file: said here, in one line
        raise ValueError(f"{path}: cannot read its first bytes to tell its format: {exc}") from None
    fits = [n for n in by_suffix if registry[n].sniff(head)]
    if len(fits) == 1:
        return fits[0]
    kind = "catalog format" if catalog else "format"
    candidates = ", ".join(fits or by_suffix) or "none (no format reads such file names)"
    raise ValueError(f"{path}: cannot tell its {kind} from its name and first record (candidates: {candidates}); "
                     f"give --{'catalog-' if catalog else ''}format")


def first_json_object(head: bytes):
    """The first non-blank line of ``head`` as JSON, or None."""
    import orjson

    for line in head.split(b"\n"):
        if line.strip():
            try:
                return orjson.loads(line)
            except orjson.JSONDecodeError:
                return None
    return None


def csv_header(head: bytes) -> set[str]:
    """The upper-case column names of a CSV file's first line."""
    import csv

    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    return {n.strip().upper() for n in next(csv.reader([first]), [])}
