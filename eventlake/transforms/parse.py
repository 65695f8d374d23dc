"""Read byte ranges of Retail JSON-lines files into canonical batches, errors and line counts."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from eventlake.errors import ERRORS
from eventlake.formats.retail_json import FastFields, parse_block
from eventlake.io.files import ByteRange, DamagedSourceError, read_blocks

STATS = "stats"
DEFAULT_BLOCK_BYTES = 8 << 20


class _ParseRangeFn(beam.DoFn):
    def __init__(self, block_bytes: int):
        self._block_bytes = block_bytes

    def setup(self):
        self._fields = FastFields()

    def process(self, byte_range: ByteRange):
        lines = records = 0
        stats = {"path": byte_range.path, "start": byte_range.start}
        try:
            for block, line_count in read_blocks(byte_range, self._block_bytes):
                batch, errors = parse_block(block, self._fields)
                lines += line_count
                records += len(block)
                for error in errors:
                    yield beam.pvalue.TaggedOutput(ERRORS, error)
                if len(batch):
                    yield batch
        except DamagedSourceError as error:
            stats["failure"] = str(error)  # the commit step refuses the run; what was read is discarded
        yield beam.pvalue.TaggedOutput(STATS, {**stats, "lines": lines, "records": records})


class ParseRetailJson(beam.PTransform):
    """Byte ranges -> ``events`` (``PARSED_SCHEMA`` batches), ``errors`` and per-range ``stats``.

    ``stats`` counts every non-blank line as a record, so that records = parsed + errors. A
    compressed file that does not decompress to its end gets ``failure`` in its stats instead of
    an exception, so that the commit step can refuse the whole run with the file's name.
    """

    def __init__(self, block_bytes: int = DEFAULT_BLOCK_BYTES):
        super().__init__()
        if block_bytes < 1024:
            raise ValueError("block_bytes must be at least 1024")
        self._block_bytes = block_bytes

    def expand(self, ranges: beam.PCollection[ByteRange]) -> beam.pvalue.DoOutputsTuple:
        return ranges | (
            beam.ParDo(_ParseRangeFn(self._block_bytes)).with_output_types(pa.RecordBatch).with_outputs(ERRORS, STATS, main="events")
        )


__all__ = ["ParseRetailJson", "STATS"]
