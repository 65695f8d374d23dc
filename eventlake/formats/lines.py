"""Line-delimited blocks: find line boundaries in raw bytes with numpy, not a Python loop."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa

_NEWLINE = ord("\n")
_CR = ord("\r")
_SPACE = ord(" ")
_WHITESPACE = np.array([ord(c) for c in " \t\r\n"], dtype=np.uint8)


@dataclass(frozen=True)
class LineBlock:
    """Whole lines of one source file, blank lines dropped, with where each line starts.

    ``starts``/``ends`` index into ``data`` (``ends`` excludes the line terminator, ``stops`` is
    the position of the newline or the end of ``data``);
    ``offsets`` are byte offsets in the source file; ``line_numbers`` are 1-based, or -1 when
    not known yet (a byte range in the middle of a split file).
    """

    source: str
    data: bytes | bytearray
    starts: np.ndarray
    ends: np.ndarray
    stops: np.ndarray
    offsets: np.ndarray
    line_numbers: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def raw(self, i: int) -> bytes:
        return bytes(self.data[self.starts[i] : self.ends[i]])

    def records(self, rows: np.ndarray) -> pa.BinaryArray:
        """The raw text of the given lines (sorted indices), without copying the block.

        Each value runs on to the next given line, so it may carry the lines left out after it;
        ``errors.error_record`` keeps only the first line of a value.
        """
        bounds = np.append(self.starts[rows], len(self.data)).astype(np.int32)  # blocks are < 2 GiB
        return pa.Array.from_buffers(pa.binary(), len(rows), [None, pa.py_buffer(bounds), pa.py_buffer(self.data)])

    def records_each(self, rows: np.ndarray) -> pa.BinaryArray:
        """``records`` for rows that may repeat (several records on one line, as in a request
        body holding several events), in the given (sorted) order: each line's text once."""
        if not len(rows):
            return pa.array([], pa.binary())
        unique, which = np.unique(rows, return_inverse=True)
        return self.records(unique).take(pa.array(which, pa.int64()))

    def only(self, rows: np.ndarray) -> bytes | bytearray:
        """The given lines (sorted indices) in place: from the first to the last, others blanked.

        A reader that skips blank lines (Arrow's JSON reader does) then sees just those lines.
        It costs one copy of that stretch, where gathering the lines took two.
        """
        if len(rows) == len(self):
            return self.data
        if not len(rows):
            return b""
        first, last = int(rows[0]), int(rows[-1])
        base = int(self.starts[first])
        data = bytearray(memoryview(self.data)[base : int(self.stops[last]) + 1])  # one copy, not two
        dropped = np.ones(last - first + 1, dtype=bool)
        dropped[rows - first] = False
        lines = np.flatnonzero(dropped) + first
        if len(lines):
            # Blank runs of consecutive dropped lines at once: runs are as few as the lines kept.
            breaks = np.flatnonzero(np.diff(lines) != 1)
            firsts = lines[np.concatenate(([0], breaks + 1))]
            lasts = lines[np.concatenate((breaks, [len(lines) - 1]))]
            buf = np.frombuffer(data, dtype=np.uint8)
            for a, b in zip((self.starts[firsts] - base).tolist(), (self.stops[lasts] - base).tolist(), strict=True):
                buf[a:b] = _SPACE
        return data


def split_lines(source: str, data: bytes | bytearray, base_offset: int, first_line: int) -> tuple[LineBlock, int]:
    """Split ``data`` (whole lines; the last may lack its newline) into a ``LineBlock``.

    Returns the block and the number of lines seen, blank ones included, so that the caller can
    carry the line count on to the next block.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = _newlines(buf)
    ends = newlines
    if len(buf) and (len(newlines) == 0 or newlines[-1] != len(buf) - 1):
        ends = np.append(newlines, len(buf))
    starts = np.concatenate(([0], newlines + 1))[: len(ends)].astype(np.int64)
    line_count = len(ends)
    stops = ends.astype(np.int64)
    ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == _CR))  # CRLF
    keep = np.flatnonzero(_nonblank(buf, starts, ends))
    starts, ends, stops = starts[keep], ends[keep].astype(np.int64), stops[keep]
    if first_line >= 0:
        numbers = keep.astype(np.int64) + first_line
    else:
        numbers = np.full(len(keep), -1, dtype=np.int64)
    return LineBlock(source, data, starts, ends, stops, starts + base_offset, numbers), line_count


def _newlines(buf: np.ndarray, piece: int = 1 << 18) -> np.ndarray:
    """Where the newlines are, looked for a piece at a time: a mask as long as the block would be
    fresh memory, and its page faults cost more than the search."""
    found = [np.flatnonzero(buf[at : at + piece] == _NEWLINE) + at for at in range(0, len(buf), piece)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _nonblank(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """True for lines with at least one byte that is not white space."""
    out = np.zeros(len(starts), dtype=bool)
    filled = ends > starts
    out[filled] = ~np.isin(buf[starts[filled]], _WHITESPACE)
    # Lines that begin with white space are rare: look at those one by one.
    for i in np.flatnonzero(filled & ~out):
        out[i] = bool(bytes(buf[starts[i] : ends[i]]).strip())
    return out


def loads_record(raw: bytes):
    """One line as JSON. Bare ``NaN`` and ``Infinity`` parse (as Arrow's fast reader takes them),
    so that the field rules reject them by name, like the strings ``"NaN"`` and ``"Infinity"``,
    instead of calling the line broken JSON. Raises ``orjson.JSONDecodeError`` otherwise."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        if b"NaN" not in raw and b"Infinity" not in raw:
            raise
        try:
            return json.loads(raw)
        except ValueError:
            pass
        raise
