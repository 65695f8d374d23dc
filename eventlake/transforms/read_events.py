"""``ReadEvents``: event files of any registered format -> canonical batches, errors and stats.

The first half of an import as one public transform, as Beam's ``ReadFromText`` is to text:
its arguments are checked and the files matched when it is made, and ``expand`` only wires the
steps. The format's reader does the rest (suffixes, compression, headers, line numbers).
"""

from __future__ import annotations

import apache_beam as beam

from eventlake.formats.base import format_class
from eventlake.io.files import ByteRange, match_files, split_ranges
from eventlake.transforms.parse import DEFAULT_BLOCK_BYTES, ParseEvents

DEFAULT_SPLIT_BYTES = 64 << 20


class ReadEvents(beam.PTransform):
    """A pipeline root -> ``events`` (``PARSED_SCHEMA`` batches), ``errors`` and per-range ``stats``.

    Give either ``patterns`` (paths or globs, matched now: a pattern that matches nothing is a
    ``ValueError`` naming it) or ``ranges`` already planned (``eventlake.io.files.split_ranges``,
    as the import job does after leaving out files it imported before).

    Args:
        patterns: event files or globs.
        format: a registered event format (``eventlake.formats.base.format_names()``).
        ranges: byte ranges to read instead of ``patterns``.
        block_bytes: bytes of records parsed at a time (the size of one batch).
        split_bytes: uncompressed files larger than this are read in parallel byte ranges, where
            the format allows it (records that may span lines are read whole).
    """

    def __init__(self, patterns: list[str] | None = None, format: str = "retail", *,  # noqa: A002 - the user's word
                 ranges: list[ByteRange] | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
                 split_bytes: int = DEFAULT_SPLIT_BYTES):
        super().__init__()
        if (patterns is None) == (ranges is None):
            raise ValueError("ReadEvents needs either patterns or ranges")
        event_format = format_class(format)
        if ranges is None:
            files, unmatched = match_files(list(patterns), event_format.suffixes)
            if unmatched:
                raise ValueError(f"no {format} event file matches {', '.join(unmatched)}")
            ranges = split_ranges(files, split_bytes if event_format.splittable else 1 << 62)
        self._ranges, self._format, self._block_bytes = list(ranges), format, block_bytes

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.pvalue.DoOutputsTuple:
        return (
            pbegin
            | "ListByteRanges" >> beam.Create(self._ranges, reshuffle=True)  # reshuffled: spread over the workers
            | "ParseEvents" >> ParseEvents(self._format, self._block_bytes)
        )


__all__ = ["ReadEvents"]
