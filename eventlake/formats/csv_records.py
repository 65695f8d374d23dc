"""CSV files with a header row, read a block of records at a time as a table of strings.

Large uncompressed files are read in byte ranges side by side, like JSON lines; a range that
starts mid-file reads the header from the file's start and finds its first record by counting
quotes before it (a quote inside an unquoted field, which RFC 4180 does not allow, would
mislead that count).

RFC 4180: fields may be quoted, and a quoted field may hold commas, doubled quotes and line
breaks, so a record can span lines. A block without any quote character (most event exports)
is read by Arrow's CSV reader with quoting off, one record per non-blank line; a block with
quotes goes through Python's ``csv`` module, which knows where each quoted record ends. Either
way every record keeps its byte offset, the physical line it starts on and its raw text, for
the error samples. A record that spans the end of a block is carried to the next one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from eventlake.errors import error_record
from eventlake.formats.base import SourceFileError
from eventlake.io.decompress import open_source
from eventlake.io.files import ByteRange

_BOM = b"\xef\xbb\xbf"


@dataclass
class CsvBlock:
    """Records of one block: their fields as strings (one column per header name), where each
    record is, and the records that could not be read as a row of the header's width."""

    source: str
    data: bytes  # the block's bytes; ``starts``/``ends`` index into it
    table: pa.Table  # one string column per header name, one row per good record
    starts: np.ndarray  # each good record's first byte in ``data``
    ends: np.ndarray  # the byte after its last (line break excluded)
    position: int  # the file offset of ``data``
    lines: np.ndarray  # 1-based line each good record starts on
    errors: list[dict]
    lines_spanned: int  # physical lines of the block, blank ones included
    records: int  # good records + bad ones

    @property
    def offsets(self) -> np.ndarray:
        return self.starts + self.position

    def raw(self, i: int) -> str:
        return self.data[self.starts[i]:self.ends[i]].decode("utf-8", "replace")

    def raw_records(self, rows: np.ndarray) -> pa.BinaryArray:
        """The raw text of the given records (sorted indices) without copying the block: each
        value runs on to the next given record; error samples keep only its first line."""
        bounds = np.append(self.starts[rows], len(self.data)).astype(np.int32)
        return pa.Array.from_buffers(pa.binary(), len(rows), [None, pa.py_buffer(bounds), pa.py_buffer(self.data)])


def read_csv_blocks(byte_range: ByteRange, block_bytes: int, file_kind: str,
                    first_record: tuple[int, int] | None = None,
                    column_names: list[str] | None = None) -> Iterator[CsvBlock]:
    """The records that start in ``byte_range``, a block at a time.

    A range that starts mid-file still knows the header (read from the file's first line) and
    starts at the first record boundary at or after its start: the first line break not inside
    a quoted field, found by counting quote characters from the start of the file. Its last
    record is read to its end, past the range if need be; line numbers are relative to the
    range, made absolute by the commit step as for JSON lines. ``file_kind`` names what the
    file should be, for the message when it has no header; ``first_record`` is what
    ``first_record_and_lines_before`` found for this range already, if it was asked.
    ``column_names``, for a file without a header row (Taobao's ``UserBehavior.csv``): the
    first line is a record, and these name its fields.
    """
    end = byte_range.end if byte_range.end >= 0 else None
    with open_source(byte_range.path, byte_range.compression) as handle:
        header: list[str] | None = list(column_names) if column_names else None
        header_lines = 0
        position, line = 0, 1  # of the first byte in ``pending``
        if byte_range.start > 0:
            header = header or _header(byte_range.path, _first_line(byte_range.path), file_kind)
            found = first_record or first_record_and_lines_before(byte_range.path, byte_range.start)
            position = None if found is None else found[0]
            if position is None or (end is not None and position >= end):
                return
            handle.seek(position)
        pending = b""
        while True:
            chunk = handle.read(block_bytes)
            data = pending + chunk
            final = not chunk
            if position == 0 and data.startswith(_BOM):
                data, position = data[len(_BOM):], len(_BOM)
            if header is None:
                newline = data.find(b"\n")
                if newline < 0 and not final:
                    pending = data
                    continue
                header_text = data if newline < 0 else data[: newline + 1]
                header = _header(byte_range.path, header_text, file_kind)
                data = data[len(header_text):]
                position += len(header_text)
                line += 1
                header_lines = 1
            if not data:
                if final:
                    return
                pending = b""
                continue
            limit = None if end is None else end - position  # records must start before it
            if limit is not None and limit <= 0:
                return
            read = _read_quoted if b'"' in data else _read_plain
            block, used, spanned, done = read(byte_range.path, data, header, position, line, final, limit)
            if block is not None:
                block.lines_spanned += header_lines
                header_lines = 0
                yield block
            pending = data[used:]
            position += used
            line += spanned
            if final or done:
                return


def _first_line(path: str) -> bytes:
    with open_source(path, "uncompressed") as handle:
        head = handle.readline()
    return head[len(_BOM):] if head.startswith(_BOM) else head


def first_record_and_lines_before(path: str, start: int, chunk_bytes: int = 8 << 20) -> tuple[int, int] | None:
    """Where the first record at or after ``start`` begins (just after the first line break at
    or after ``start - 1`` outside quotes) and how many lines come before it. None if none does."""
    with open_source(path, "uncompressed") as handle:
        quotes, lines, left = 0, 0, start - 1
        while left > 0:  # quote characters before the range: odd means it starts inside a field
            chunk = handle.read(min(chunk_bytes, left))
            if not chunk:
                return None
            quotes += chunk.count(b'"')
            lines += chunk.count(b"\n")
            left -= len(chunk)
        offset = start - 1
        while True:
            chunk = handle.read(chunk_bytes)
            if not chunk:
                return None
            at = 0
            while True:
                newline = chunk.find(b"\n", at)
                if newline < 0:
                    quotes += chunk.count(b'"', at)
                    lines += chunk.count(b"\n", at)
                    break
                quotes += chunk.count(b'"', at, newline)
                lines += 1
                if quotes % 2 == 0:
                    return offset + newline + 1, lines
                at = newline + 1
            offset += len(chunk)


def _header(path: str, text: bytes, file_kind: str) -> list[str]:
    try:
        names = next(csv.reader([text.decode("utf-8").rstrip("\r\n")]))
    except (UnicodeDecodeError, StopIteration, csv.Error):
        raise SourceFileError(f"{path}: the first line is not a CSV header of {file_kind}") from None
    names = [n.strip() for n in names]
    if not any(names):
        raise SourceFileError(f"{path}: the first line is not a CSV header of {file_kind}")
    seen = set()
    for name in names:
        if not name or name.upper() in seen:
            raise SourceFileError(f"{path}: the header names column {name!r} twice or has an empty name")
        seen.add(name.upper())
    return names


def _string_table(header: list[str], columns: list[list[str]] | None = None) -> pa.Table:
    if columns is None:
        columns = [[] for _ in header]
    return pa.table({name: pa.array(values, pa.string()) for name, values in zip(header, columns, strict=True)})


def _read_plain(path, data: bytes, header, position: int, line: int, final: bool, limit: int | None = None):
    """No quote in ``data``: one record per non-blank line, read by Arrow. Lines that start at
    or after ``limit`` are another range's: the block stops before them (``done``)."""
    done = False
    if limit is not None and limit <= len(data):
        newline = data.find(b"\n", max(limit - 1, 0))  # where the last line starting before the limit ends
        if newline >= 0 or final:
            data, final, done = data[: newline + 1] if newline >= 0 else data, True, True
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    if not final:
        if not len(newlines):
            return None, 0, 0, False  # not one whole line yet: read more
        used = int(newlines[-1]) + 1
    else:
        used = len(data)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.append(newlines, len(data))
    keep_lines = starts < used
    starts, ends = starts[keep_lines], ends[keep_lines]
    spanned = int(np.count_nonzero(newlines < used)) + (1 if final and used and data[used - 1:used] != b"\n" else 0)
    content_ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13))
    nonblank = np.flatnonzero(content_ends > starts)
    line_numbers = line + nonblank
    record_starts, record_ends = starts[nonblank], content_ends[nonblank]
    invalid: list[int] = []

    def on_invalid(row) -> str:
        invalid.append(row.number - 1)
        return "skip"

    table = pcsv.read_csv(
        pa.py_buffer(data[:used]),
        read_options=pcsv.ReadOptions(column_names=header, use_threads=False, block_size=max(used, 1 << 20)),
        parse_options=pcsv.ParseOptions(quote_char=False, invalid_row_handler=on_invalid),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in header}, strings_can_be_null=False,
                                            quoted_strings_can_be_null=False),
    )
    bad = np.zeros(len(record_starts), dtype=bool)
    bad[invalid] = True
    errors = [_width_error(path, int(line_numbers[i]), position + int(record_starts[i]),
                           data[record_starts[i]:record_ends[i]], len(header)) for i in invalid]
    good = np.flatnonzero(~bad)
    block = CsvBlock(path, data, table, record_starts[good].astype(np.int64), record_ends[good].astype(np.int64),
                     position, line_numbers[good].astype(np.int64), errors, spanned, len(record_starts))
    return block, used, spanned, done


def _read_quoted(path, data: bytes, header, position: int, line: int, final: bool, limit: int | None = None):
    """Quotes in ``data``: Python's csv module finds where each (possibly multi-line) record ends.
    Records that start at or after ``limit`` are another range's (``done`` once one is seen)."""
    raw_lines = data.splitlines(keepends=True)
    line_starts = np.concatenate(([0], np.cumsum([len(x) for x in raw_lines])))
    reader = csv.reader((x.decode("utf-8", "surrogateescape") for x in raw_lines), strict=False)
    records: list[tuple[int, int, list[str]]] = []  # (first line index, last line index + 1, fields)
    done = 0
    try:
        for fields in reader:
            first, done = done, reader.line_num
            if fields:
                records.append((first, done, fields))
    except csv.Error:
        pass  # a field cut by the block's end: the record is read again with the next block
    finished = False
    if limit is not None:
        beyond = [r for r in records if line_starts[r[0]] >= limit]
        if beyond:  # a record of the next range is in sight: every one before it is whole
            records = [r for r in records if line_starts[r[0]] < limit]
            used_lines = beyond[0][0]
            finished = True
    if finished:
        pass
    elif not final:
        if len(records) <= 1 and done >= len(raw_lines):
            return None, 0, 0, False  # one record longer than the block: read more
        # The last record may continue in the next block: keep it for then.
        last_first = records[-1][0] if records else done
        records = records[:-1]
        used_lines = last_first
    else:
        used_lines = len(raw_lines)
    used = int(line_starts[used_lines])
    columns: list[list[str]] = [[] for _ in header]
    starts, ends, lines, errors = [], [], [], []
    for first, stop, fields in records:
        start, end = int(line_starts[first]), int(line_starts[stop])
        text = data[start:end].rstrip(b"\r\n")
        if len(fields) != len(header):
            errors.append(_width_error(path, line + first, position + start, text, len(header), len(fields)))
            continue
        for column, value in zip(columns, fields, strict=True):
            column.append(value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
        starts.append(start)
        ends.append(start + len(text))
        lines.append(line + first)
    table = _string_table(header, columns)
    block = CsvBlock(path, data, table, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), position,
                     np.array(lines, dtype=np.int64), errors, used_lines, len(records))
    return block, used, used_lines, finished


def _width_error(path: str, line: int, offset: int, raw: bytes, width: int, got: int | None = None) -> dict:
    if got is None:
        got = len(next(csv.reader([raw.decode("utf-8", "replace")]), []))
    return error_record(path, line, offset, "", "INVALID_CSV_ROW",
                        f"the record has {got} fields where the header has {width}", raw.decode("utf-8", "replace"))


__all__ = ["CsvBlock", "first_record_and_lines_before", "read_csv_blocks"]
