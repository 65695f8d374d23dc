"""Decompressing readers that fail loudly on a damaged or truncated stream.

Beam's ``CompressedFile`` stops at the first point it cannot decompress and reports the end
of the file: half of a ``.bz2`` or ``.zst`` reads as empty, half of a ``.gz`` as its first
part, and plain text named ``.gz`` as a traceback that never names the file. Here every
stream must decompress cleanly to its last byte or ``DamagedSourceError`` names the file and
what is wrong with it. Concatenated members (``cat a.gz b.gz``) read as one stream, as gzip,
bzip2 and zstd tools all allow.
"""

from __future__ import annotations

import bz2
import zlib

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_READ_BYTES = 1 << 20


class DamagedSourceError(Exception):
    """A compressed source that does not decompress to its end; the message names the file."""


def _gzip():
    return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


def _zstd():
    import zstandard  # imported here: only zstd sources need it

    return zstandard.ZstdDecompressor().decompressobj()


def _bzip2():
    return bz2.BZ2Decompressor()


_DECOMPRESSORS = {CompressionTypes.GZIP: ("gzip", _gzip), CompressionTypes.BZIP2: ("bzip2", _bzip2),
                  CompressionTypes.ZSTD: ("zstd", _zstd)}


def open_source(path: str, compression: str):
    """A file object with ``read(n)`` over ``path`` decompressed; plain files are opened as they are."""
    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    if compression == CompressionTypes.UNCOMPRESSED:
        return raw
    name, factory = _DECOMPRESSORS[compression]
    return CheckedDecompressor(raw, path, name, factory)


class CheckedDecompressor:
    """Reads a compressed stream member by member and checks that the last member is whole."""

    def __init__(self, raw, path: str, kind: str, factory):
        self._raw = raw
        self._path = path
        self._kind = kind
        self._factory = factory
        self._decompressor = factory()
        self._member_started = False  # the current decompressor has been given bytes
        self._consumed = 0
        self._output = bytearray()
        self._at_end = False

    def read(self, size: int = -1) -> bytes:
        while not self._at_end and (size < 0 or len(self._output) < size):
            self._fill()
        if size < 0 or size >= len(self._output):
            out, self._output = bytes(self._output), bytearray()
        else:
            out = bytes(self._output[:size])
            del self._output[:size]
        return out

    def _fill(self) -> None:
        chunk = self._raw.read(_READ_BYTES)
        if not chunk:
            self._at_end = True
            if self._member_started and not self._decompressor.eof:
                raise DamagedSourceError(
                    f"{self._path}: the {self._kind} stream ends early, after {self._consumed} compressed bytes "
                    "(is the file truncated or still being written?)")
            return
        while chunk:
            self._member_started = True
            try:
                self._output += self._decompressor.decompress(chunk)
            except Exception as error:  # zlib.error, OSError, zstandard.ZstdError: all mean bad data
                raise DamagedSourceError(
                    f"{self._path}: not valid {self._kind} data near compressed byte {self._consumed} ({error})"
                ) from None
            if self._decompressor.eof:
                rest = self._decompressor.unused_data
                self._consumed += len(chunk) - len(rest)
                self._decompressor = self._factory()  # the next member, if any
                self._member_started = False
                chunk = rest
            else:
                self._consumed += len(chunk)
                chunk = b""

    def close(self) -> None:
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
