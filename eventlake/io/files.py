"""Source files: match globs, split large files into byte ranges, read ranges as line blocks.

Everything goes through Beam's ``FileSystems`` so that local paths, ``gs://``, ``s3://`` and
``http(s)://`` (``eventlake.io.url_files``) read the same way. A range owns every line that starts inside it; compressed files cannot be
split and are read whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from eventlake.formats.lines import LineBlock, split_lines
from eventlake.io import url_files  # registers http:// and https:// with Beam's FileSystems
from eventlake.io.decompress import DamagedSourceError, open_source
from eventlake.memory import keep_large_blocks_off_the_heap

_GLOB_CHARACTERS = re.compile(r"[*?\[]")
_UTF8_BOM = b"\xef\xbb\xbf"
URL_SCHEMES = ("http://", "https://", "sftp://")
COMPRESSION_BY_SUFFIX = {".gz": CompressionTypes.GZIP, ".bz2": CompressionTypes.BZIP2, ".zst": CompressionTypes.ZSTD}


@dataclass(frozen=True)
class SourceFile:
    path: str
    size: int
    mtime: float

    def as_log_entry(self) -> dict:
        return {"path": self.path, "size": self.size, "mtime": self.mtime}


@dataclass(frozen=True)
class ByteRange:
    path: str
    start: int
    end: int  # exclusive; -1 for "to the end" (compressed files)

    @property
    def compression(self) -> str:
        return compression_of(self.path)


def name_part(path: str) -> str:
    """The path as its file name tells: a URL without its ``?query`` or ``#fragment``."""
    if path.startswith(URL_SCHEMES):
        return path.split("#", 1)[0].split("?", 1)[0]
    return path


def compression_of(path: str) -> str:
    path = name_part(path)
    for suffix, kind in COMPRESSION_BY_SUFFIX.items():
        if path.endswith(suffix):
            return kind
    return CompressionTypes.UNCOMPRESSED


class InputPathError(ValueError):
    """An input path names a directory, not files; the message says what to pass instead."""


def match_files(patterns: list[str], suffixes: tuple[str, ...]) -> tuple[list[SourceFile], list[str]]:
    """Files matching any pattern whose names end in ``suffixes`` (before a compression suffix).

    Returns the files (sorted, unique) and the patterns that matched nothing. A path that exists
    is taken literally, even with glob characters in its name (``with space [1].json``); a
    directory raises ``InputPathError``: taking every file under it would slurp catalogs,
    samples and anything else that lives there.
    """
    files: dict[str, SourceFile] = {}
    unmatched = []
    for pattern in patterns:
        hits = [f for f in _matches(pattern) if uncompressed_name(f.path).endswith(suffixes)]
        if not hits:
            unmatched.append(pattern)
        files.update((f.path, f) for f in hits)
    return [files[p] for p in sorted(files)], unmatched


def source_file(path: str) -> SourceFile:
    """One named file's size and time; ``FileNotFoundError`` when there is none."""
    hits = _matches(path)
    if len(hits) != 1:
        raise FileNotFoundError(path)
    return hits[0]


def _matches(pattern: str) -> list[SourceFile]:
    if pattern.startswith(URL_SCHEMES) and ("*" in pattern or "[" in pattern):
        raise InputPathError(f"{pattern}: http(s):// and sftp:// inputs have no listing, so no globs; name each file")
    if pattern.endswith(("/", "\\")) or ("://" not in pattern and os.path.isdir(pattern)):
        glob = pattern.rstrip("/\\") + "/*.jsonl"
        raise InputPathError(f"{pattern} is a directory; pass a glob of the files in it, such as '{glob}'")
    try:
        if _GLOB_CHARACTERS.search(pattern) and FileSystems.exists(pattern):
            metadata = [FileSystems.get_filesystem(pattern).metadata(pattern)]  # the file of that very name
        else:
            metadata = FileSystems.match([pattern])[0].metadata_list
    except Exception:  # Beam raises BeamIOError for a missing path; treat it as no match
        return []
    return [SourceFile(m.path, int(m.size_in_bytes), float(m.last_updated_in_seconds or 0.0)) for m in metadata]


def uncompressed_name(path: str) -> str:
    path = name_part(path)
    for suffix in COMPRESSION_BY_SUFFIX:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def splittable(path: str) -> bool:
    """Whether a part of the file can be read without the rest: not from a server without ranges."""
    return not path.startswith(URL_SCHEMES) or url_files.takes_ranges(path)


def split_ranges(files: list[SourceFile], split_bytes: int) -> list[ByteRange]:
    """Byte ranges of at most ``split_bytes``, equal in size within a file.

    Equal parts keep workers even: the local runner deals ranges out in turn, so a file cut
    into full ranges and a short rest gave one worker every full range and the other every rest
    (at 5M events one worker ran alone for the last 3 s).
    """
    ranges = []
    for f in files:
        if compression_of(f.path) != CompressionTypes.UNCOMPRESSED or f.size <= split_bytes or not splittable(f.path):
            ranges.append(ByteRange(f.path, 0, -1))
            continue
        parts = -(-f.size // split_bytes)
        ranges += [ByteRange(f.path, f.size * i // parts, f.size * (i + 1) // parts) for i in range(parts)]
    return ranges


def read_blocks(byte_range: ByteRange, block_bytes: int) -> Iterator[tuple[LineBlock, int]]:
    """Line blocks of the lines that start in ``byte_range``, with the line count of each block.

    Line numbers are 1-based within the range; a range that starts mid-file has them corrected
    once every range has reported its line count.
    """
    keep_large_blocks_off_the_heap()  # blocks are megabytes each; see eventlake.memory
    with open_source(byte_range.path, byte_range.compression) as handle:
        position = 0
        if byte_range.start > 0:
            handle.seek(byte_range.start - 1)
            # Skip the tail of the line that began in the previous range.
            skipped = handle.readline()
            position = byte_range.start - 1 + len(skipped)
        end = byte_range.end
        first_line = 1
        pending = b""
        done = False
        while not done:
            buffer = _read_after(handle, pending, block_bytes)
            if len(buffer) == len(pending):
                data, pending, done = buffer, b"", True
            else:
                cut = buffer.rfind(b"\n") + 1
                if cut == 0:
                    pending = buffer
                    continue
                pending = buffer[cut:]
                del buffer[cut:]
                data = buffer
            if position == 0 and data[:3] == _UTF8_BOM:  # a byte-order mark is not part of the first record
                data, position = data[3:], 3
            if end >= 0 and position + len(data) > end:
                data, done = _lines_starting_before(data, end - position), True
            if not data:
                continue
            block, line_count = split_lines(byte_range.path, data, position, first_line)
            position += len(data)
            first_line += line_count
            yield block, line_count


def _read_after(handle, pending: bytes | bytearray, size: int) -> bytearray:
    """``pending`` followed by up to ``size`` more bytes of ``handle``, in one new buffer.

    Reading into the buffer that becomes the block saves the two copies of joining the tail of
    the last block to the next read and cutting off the new tail: each copy of a block also
    costs the page faults of fresh memory, as blocks live outside the heap (``eventlake.memory``).
    """
    buffer = bytearray(len(pending) + size)
    buffer[: len(pending)] = pending
    filled = len(pending)
    readinto = getattr(handle, "readinto", None)  # the decompressing reader has only read
    with memoryview(buffer) as view:
        while filled < len(buffer):
            if readinto is not None:
                count = readinto(view[filled:])
            else:
                chunk = handle.read(len(buffer) - filled)
                count = len(chunk)
                view[filled : filled + count] = chunk
            if not count:
                break
            filled += count
    del buffer[filled:]
    return buffer


def _lines_starting_before(data: bytes | bytearray, limit: int) -> bytes | bytearray:
    """The lines of ``data`` that start before byte ``limit`` (the last one whole)."""
    if limit <= 0:
        return b""
    newline = data.find(b"\n", limit - 1)
    return data if newline < 0 else data[: newline + 1]


def lines_before(byte_range: ByteRange, chunk_bytes: int = 8 << 20) -> int:
    """Lines of the file before the first line ``byte_range`` owns: add it to the range's line numbers.

    Those are the lines ending before byte ``start - 1`` plus the one the range skips, which ends
    at or after it. Reads the file up to the range, so call it only when a line number is needed.
    """
    if byte_range.start <= 0:
        return 0
    count, left = 1, byte_range.start - 1
    with FileSystems.open(byte_range.path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        while left > 0:
            chunk = handle.read(min(chunk_bytes, left))
            if not chunk:
                break
            count += chunk.count(b"\n")
            left -= len(chunk)
    return count


def read_all(path: str) -> bytes:
    with open_source(path, compression_of(path)) as handle:
        return handle.read()


__all__ = ["ByteRange", "DamagedSourceError", "InputPathError", "SourceFile", "compression_of", "lines_before", "match_files", "read_all",
           "read_blocks", "source_file", "split_ranges", "write_bytes"]


def write_bytes(path: str, data: bytes) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write(data)

