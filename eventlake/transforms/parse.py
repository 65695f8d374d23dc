"""Read byte ranges of source files, in any registered format, into canonical batches.

``ParseEvents(format)`` is the one parse step of every import: the format (``eventlake.formats``)
reads the range's records; this transform counts them, tags rejected ones as errors, and turns a
file that cannot be read (a truncated ``.gz``, a CSV without a required column) into a
``failure`` in the range's stats, which the commit step refuses the run on, naming the file.
"""

from __future__ import annotations

from collections import Counter

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from eventlake.errors import ERRORS
from eventlake.formats.base import SourceFileError, get_format
from eventlake.io.files import ByteRange, DamagedSourceError

STATS = "stats"
DEFAULT_BLOCK_BYTES = 8 << 20


class _ParseRangeFn(beam.DoFn):
    def __init__(self, formats: str | dict[str, str], block_bytes: int, absolute_lines: bool = False,
                 settings: dict | None = None, progress: tuple[str, dict[str, int]] | None = None):
        self._formats, self._block_bytes, self._absolute = formats, block_bytes, absolute_lines
        self._settings = settings or {}
        self._progress = progress  # (folder, file sizes) for eventlake.progress, when shown

    def setup(self):
        self._readers: dict = {}
        self._reporter = None
        if self._progress is not None:
            from eventlake.progress import ProgressReporter

            self._reporter = ProgressReporter(self._progress[0])

    def _reader(self, name: str):
        if name not in self._readers:
            self._readers[name] = get_format(name, **self._settings)
        return self._readers[name]

    def process(self, byte_range: ByteRange):
        lines = records = 0
        skipped: Counter = Counter()
        name = self._formats if isinstance(self._formats, str) else self._formats[byte_range.path]
        stats = {"path": byte_range.path, "start": byte_range.start, "format": name}
        try:
            reader = self._reader(name)
            before = reader.lines_before(byte_range) if self._absolute and byte_range.start > 0 else 0
            if self._absolute:
                stats["absolute_lines"] = True  # the commit step must not add earlier ranges' lines again
            size, reported = self._range_size(byte_range), 0
            step = self._block_bytes if byte_range.compression == "uncompressed" else self._block_bytes // 5
            for parsed in reader.read_range(byte_range, self._block_bytes):
                lines += parsed.lines
                records += parsed.records
                skipped.update(parsed.skipped)
                if self._reporter is not None:  # bytes as an estimate per block, made exact when the range ends
                    done = min(step, size - reported)
                    reported += done
                    self._reporter.add(bytes_read=done, records=parsed.records, errors=len(parsed.errors))
                for error in parsed.errors:
                    if before and error.get("line") is not None:
                        error = {**error, "line": error["line"] + before}
                    yield beam.pvalue.TaggedOutput(ERRORS, error)
                if len(parsed.batch):
                    yield _shift_lines(parsed.batch, before) if before else parsed.batch
        except (DamagedSourceError, SourceFileError) as error:
            stats["failure"] = str(error)  # the commit step refuses the run; what was read is discarded
        if skipped:
            stats["skipped"] = dict(skipped)
        if self._reporter is not None:
            self._reporter.add(bytes_read=max(self._range_size(byte_range) - reported, 0), finished=byte_range.path)
        yield beam.pvalue.TaggedOutput(STATS, {**stats, "lines": lines, "records": records})

    def _range_size(self, byte_range: ByteRange) -> int:
        if byte_range.end >= 0:
            return byte_range.end - byte_range.start
        return self._progress[1].get(byte_range.path, 0) - byte_range.start if self._progress else 0


def _shift_lines(batch: pa.RecordBatch, before: int) -> pa.RecordBatch:
    index = batch.schema.get_field_index("source_line")
    lines = batch.column(index)
    shifted = pc.if_else(pc.greater_equal(lines, 0), pc.add(lines, before), lines)
    return batch.set_column(index, "source_line", shifted)


class ParseEvents(beam.PTransform):
    """Byte ranges -> ``events`` (``PARSED_SCHEMA`` batches), ``errors`` and per-range ``stats``.

    ``stats`` counts every record, so that records = parsed + errors + skipped (``skipped``:
    records a format leaves out by a documented rule, by reason). A file that cannot be read
    gets ``failure`` in its stats instead of an exception, so that the commit step can refuse
    the whole run with the file's name.

    Args:
        format_name: a registered format (``eventlake.formats.base.format_names()``), or a
            mapping of file path to format (what ``--format auto`` chose for each file).
        block_bytes: bytes of records parsed at a time: the size of one batch.
        absolute_lines: make line numbers absolute in each range itself, by counting the lines
            before it (a read of the file up to the range). Off, a range that starts mid-file
            numbers its lines from 1 and ``stats`` lets a later step add the earlier ranges'
            counts, as the import's commit step does at no cost.
    """

    def __init__(self, format_name: str | dict[str, str] = "retail", block_bytes: int = DEFAULT_BLOCK_BYTES,
                 absolute_lines: bool = False, format_options: dict | None = None,
                 event_type_map: dict[str, str] | None = None, allowed_event_types: tuple[str, ...] = (),
                 progress: tuple[str, dict[str, int]] | None = None):
        super().__init__()
        if block_bytes < 1024:
            raise ValueError("block_bytes must be at least 1024")
        self._settings = {"options": dict(format_options or {}), "event_type_map": dict(event_type_map or {}),
                          "allowed_event_types": tuple(allowed_event_types)}
        for name in {format_name} if isinstance(format_name, str) else set(format_name.values()):
            get_format(name, **self._settings)  # an unknown name or a bad option fails here, not on a worker
        self._formats, self._block_bytes, self._absolute = format_name, block_bytes, absolute_lines
        self._progress = progress

    def expand(self, ranges: beam.PCollection[ByteRange]) -> beam.pvalue.DoOutputsTuple:
        return ranges | (
            beam.ParDo(_ParseRangeFn(self._formats, self._block_bytes, self._absolute, self._settings, self._progress))
            .with_output_types(pa.RecordBatch).with_outputs(ERRORS, STATS, main="events")
        )


def ParseRetailJson(block_bytes: int = DEFAULT_BLOCK_BYTES) -> ParseEvents:  # noqa: N802 - reads as a class
    """``ParseEvents`` for Google Retail JSON lines (the name the import used before formats)."""
    return ParseEvents("retail", block_bytes)


__all__ = ["STATS", "ParseEvents", "ParseRetailJson"]
