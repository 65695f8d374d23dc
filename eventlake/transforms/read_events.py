"""``ReadEvents``: event files of any registered format -> canonical batches, errors and stats.

The first half of an import as one public transform, as Beam's ``ReadFromText`` is to text:
its arguments are checked and the files matched when it is made, and ``expand`` only wires the
steps. The format's reader does the rest (suffixes, compression, headers, line numbers).
"""

from __future__ import annotations

import apache_beam as beam

from eventlake.formats.base import AUTO, detect_format, format_class, format_names
from eventlake.io.files import ByteRange, SourceFile, match_files, split_ranges
from eventlake.transforms.parse import DEFAULT_BLOCK_BYTES, ParseEvents

DEFAULT_SPLIT_BYTES = 64 << 20


class ReadEvents(beam.PTransform):
    """A pipeline root -> ``events`` (``PARSED_SCHEMA`` batches), ``errors`` and per-range ``stats``.

    Give either ``patterns`` (paths or globs, matched now: a pattern that matches nothing is a
    ``ValueError`` naming it) or ``ranges`` already planned (``eventlake.io.files.split_ranges``,
    as the import job does after leaving out files it imported before).

    Args:
        patterns: event files or globs.
        format: a registered event format (``eventlake.formats.base.format_names()``), or
            ``auto``: each file's own, from its name and first record (or, with ``ranges``, a
            mapping of path to format, as the import plans it).
        ranges: byte ranges to read instead of ``patterns``.
        block_bytes: bytes of records parsed at a time (the size of one batch).
        split_bytes: uncompressed files larger than this are read in parallel byte ranges, where
            the format allows it.
        absolute_lines: line numbers from the file's start in every range (on by default). The
            import turns it off and lets its commit step correct them, which costs no read of
            the file before each range.
        format_options: the format's own options (``EventFormat.option_names``), e.g. PAI-Rec's
            ``timezone`` or the ``mapped`` format's column mapping.
        event_type_map, allowed_event_types: the import's; formats that skip the events they
            cannot map (GA4's ``session_start``) consult them.
        progress: ``(folder, file sizes)``: report bytes, records and errors read there for a
            ``eventlake.progress.ProgressDisplay`` (the import does, on a terminal).
    """

    def __init__(self, patterns: list[str] | None = None, format: str | dict[str, str] = "retail", *,  # noqa: A002
                 ranges: list[ByteRange] | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
                 split_bytes: int = DEFAULT_SPLIT_BYTES, absolute_lines: bool = True,
                 format_options: dict | None = None, event_type_map: dict[str, str] | None = None,
                 allowed_event_types: tuple[str, ...] = (), progress: tuple[str, dict[str, int]] | None = None):
        super().__init__()
        if (patterns is None) == (ranges is None):
            raise ValueError("ReadEvents needs either patterns or ranges")
        formats: str | dict[str, str] = format
        if ranges is None:
            suffixes = all_suffixes() if format == AUTO else format_class(format).suffixes
            files, unmatched = match_files(list(patterns), suffixes)
            if unmatched:
                raise ValueError(f"no {format} event file matches {', '.join(unmatched)}")
            if format == AUTO:
                formats = {f.path: detect_format(f.path) for f in files}
            ranges = plan_ranges(files, formats, split_bytes)
        elif format == AUTO:
            formats = {r.path: detect_format(r.path) for r in ranges}
        if isinstance(formats, dict):
            formats = dict(formats)
        self._ranges, self._format, self._block_bytes = list(ranges), formats, block_bytes
        self._absolute = absolute_lines
        self._settings = {"format_options": format_options, "event_type_map": event_type_map,
                          "allowed_event_types": tuple(allowed_event_types), "progress": progress}

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.pvalue.DoOutputsTuple:
        return (
            pbegin
            | "ListByteRanges" >> beam.Create(self._ranges, reshuffle=True)  # reshuffled: spread over the workers
            | "ParseEvents" >> ParseEvents(self._format, self._block_bytes, self._absolute, **self._settings)
        )


class _ReadOneFormat(ReadEvents):
    """``ReadEvents`` of one format, as its own transform."""

    format_name = "retail"

    def __init__(self, patterns: list[str] | None = None, **kwargs):
        super().__init__(patterns, self.format_name, **kwargs)


class ReadRetailEvents(_ReadOneFormat):
    """Google Cloud Retail UserEvent JSON lines -> ``events``, ``errors``, ``stats``."""

    format_name = "retail"


class ReadPersonalizeInteractions(_ReadOneFormat):
    """Amazon Personalize interactions CSV -> ``events``, ``errors``, ``stats``."""

    format_name = "personalize"


class ReadPersonalizeEvents(_ReadOneFormat):
    """Amazon Personalize PutEvents / PutActionInteractions bodies -> ``events``, ``errors``, ``stats``."""

    format_name = "personalize-events"


class ReadOpenSearchBehavior(_ReadOneFormat):
    """Alibaba OpenSearch behavior documents -> ``events``, ``errors``, ``stats``."""

    format_name = "opensearch"


class ReadPaiRecBehavior(_ReadOneFormat):
    """Alibaba PAI-Rec behavior rows (CSV, JSON lines or Parquet) -> ``events``, ``errors``, ``stats``."""

    format_name = "pairec-behavior"


class ReadPaiRecCallback(_ReadOneFormat):
    """Alibaba PAI-Rec callback bodies -> ``events`` (one exposure per item), ``errors``, ``stats``."""

    format_name = "pairec-callback"


class ReadGa4Events(_ReadOneFormat):
    """GA4 BigQuery export rows -> ``events``, ``errors``, ``stats`` (``stats`` count the skipped)."""

    format_name = "ga4"


class ReadMappedEvents(_ReadOneFormat):
    """Any CSV, JSON-lines or Parquet log -> ``events``, ``errors``, ``stats``, by a column mapping
    (``format_options``: ``fields``, ``time_unit``, ``explode``, ...; see ``eventlake.formats.mapped``)."""

    format_name = "mapped"

    def __init__(self, patterns: list[str] | None = None, format_options: dict | None = None, **kwargs):
        super().__init__(patterns, format_options=format_options, **kwargs)


def all_suffixes() -> tuple[str, ...]:
    """The file name endings some event format reads (what ``auto`` matches)."""
    return tuple(sorted({suffix for name in format_names() if format_class(name).detectable
                         for suffix in format_class(name).suffixes}))


def plan_ranges(files: list[SourceFile], formats: str | dict[str, str], split_bytes: int) -> list[ByteRange]:
    """Byte ranges of ``files``; a file whose format's records may span lines is one range."""
    def splittable(path: str) -> bool:
        return format_class(formats if isinstance(formats, str) else formats[path]).splittable_path(path)

    return split_ranges([f for f in files if splittable(f.path)], split_bytes) + split_ranges(
        [f for f in files if not splittable(f.path)], 1 << 62)


__all__ = ["ReadEvents", "ReadGa4Events", "ReadMappedEvents", "ReadOpenSearchBehavior", "ReadPaiRecBehavior",
           "ReadPaiRecCallback", "ReadPersonalizeEvents", "ReadPersonalizeInteractions", "ReadRetailEvents",
           "all_suffixes", "plan_ranges"]
