"""``http://``, ``https://`` and ``sftp://`` inputs as Beam file systems: read-only, streamed,
through smart_open.

Public datasets and many vendors' exports are URLs. Registering them as Beam file systems puts
them behind the same ``FileSystems`` calls as local paths, ``gs://`` and ``s3://``: matching a
file, reading it from the start or from a byte range (so a large file is split over workers as
any other), and decompressing by suffix are the code every source already goes through.

smart_open does the reading: it streams the body, turns a seek into a ``Range`` request, and
sends the first response's ``ETag`` (or ``Last-Modified``) with every later range, so a file
replaced on the server mid-run fails instead of mixing two versions. A HEAD request gives the
size, the time and whether the server takes ranges; a file on a server that does not
(``Accept-Ranges`` missing or ``none``) is read whole from its start by one worker, and
Parquet, which must seek to its footer, is refused from such a server when the import is planned.

There is no listing over HTTP: a URL names one file, and a glob is refused (over SFTP too, to
keep one rule for URLs). Writing, deleting and renaming are refused: URLs are inputs only.
"""

from __future__ import annotations

import email.utils
import functools

from apache_beam.io.filesystem import (
    BeamIOError,
    CompressedFile,
    CompressionTypes,
    FileMetadata,
    FileSystem,
    MatchResult,
)

TIMEOUT_SECONDS = 60


class UrlInputError(ValueError):
    """A URL cannot be used as asked (a glob, an output, a server without what a read needs)."""


@functools.lru_cache(maxsize=1024)
def _head(url: str) -> tuple[int, float, bool]:
    """(size, last modified as Unix seconds, takes byte ranges) of ``url``; ``FileNotFoundError``
    when the server says it is not there."""
    import requests

    response = requests.head(url, allow_redirects=True, timeout=TIMEOUT_SECONDS,
                             headers={"Accept-Encoding": "identity"})
    if response.status_code in (404, 410):
        raise FileNotFoundError(url)
    if response.status_code == 405:  # HEAD not allowed: the headers of a GET, body unread
        response = requests.get(url, stream=True, timeout=TIMEOUT_SECONDS, headers={"Accept-Encoding": "identity"})
        response.close()
        if response.status_code in (404, 410):
            raise FileNotFoundError(url)
    response.raise_for_status()
    size = int(response.headers.get("Content-Length") or 0)
    modified = response.headers.get("Last-Modified")
    mtime = email.utils.parsedate_to_datetime(modified).timestamp() if modified else 0.0
    ranges = response.headers.get("Accept-Ranges", "").lower() == "bytes"
    return size, mtime, ranges


def forget_heads() -> None:
    """A new job starts: ask the servers again (a file may have changed since the last job)."""
    _head.cache_clear()
    _sftp_stat.cache_clear()


def takes_ranges(url: str) -> bool:
    """Whether the server of ``url`` answers byte-range requests (so the file can be split);
    an SFTP server always can (a read at an offset is part of the protocol)."""
    return url.startswith("sftp://") or _head(url)[2]


class HttpFileSystem(FileSystem):
    """``http://`` URLs, read-only."""

    @classmethod
    def scheme(cls) -> str:
        return "http"

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rpartition("/")
        return head, tail

    def has_dirs(self) -> bool:
        return False

    def _list(self, dir_or_prefix: str):
        raise BeamIOError(f"{self.scheme()}:// has no listing: name each file")

    def match(self, patterns, limits=None):
        results = []
        for pattern in patterns:
            if "*" in pattern or "[" in pattern:
                raise BeamIOError(f"{pattern}: {self.scheme()}:// has no listing, so no globs; name each file", {})
            try:
                results.append(MatchResult(pattern, [self.metadata(pattern)]))
            except FileNotFoundError:
                results.append(MatchResult(pattern, []))
        return results

    def _stat(self, path: str) -> tuple[int, float]:
        """(size, modified time) of ``path``; ``FileNotFoundError`` when the server has no such file."""
        size, mtime, _ = _head(path)
        return size, mtime

    def _open_raw(self, path: str):
        import smart_open

        raw = smart_open.open(path, "rb", compression="disable",
                              transport_params={"timeout": TIMEOUT_SECONDS})
        return raw if takes_ranges(path) else _Unseekable(raw, path)

    def metadata(self, path: str) -> FileMetadata:
        size, mtime = self._stat(path)
        return FileMetadata(path, size, mtime)

    def exists(self, path: str) -> bool:
        try:
            self._stat(path)
        except FileNotFoundError:
            return False
        return True

    def size(self, path: str) -> int:
        return self._stat(path)[0]

    def last_updated(self, path: str) -> float:
        return self._stat(path)[1]

    def checksum(self, path: str) -> str:
        size, mtime = self._stat(path)
        return f"{size}-{mtime}"

    def open(self, path: str, mime_type: str = "application/octet-stream",
             compression_type: str = CompressionTypes.AUTO):
        raw = self._open_raw(path)
        if compression_type == CompressionTypes.AUTO:
            compression_type = CompressionTypes.detect_compression_type(path)
        if compression_type == CompressionTypes.UNCOMPRESSED:
            return raw
        return CompressedFile(raw, compression_type=compression_type)

    def _read_only(self, *args, **kwargs):
        raise UrlInputError(f"{self.scheme()}:// URLs are inputs only: they cannot be written, renamed or deleted")

    create = copy = rename = delete = mkdirs = _read_only


class HttpsFileSystem(HttpFileSystem):
    """``https://`` URLs, read-only."""

    @classmethod
    def scheme(cls) -> str:
        return "https"


class SftpFileSystem(HttpFileSystem):
    """``sftp://user[:password]@host[:port]/path``, read-only, through smart_open (paramiko).

    Credentials come from the URL, or else as ssh would find them (``~/.ssh/config``, the agent,
    ``~/.ssh/id_*``); an unknown host's key is accepted on first use (smart_open's choice, as a
    first ``ssh`` asks). A read at an offset is part of the protocol: files split as local ones.
    """

    @classmethod
    def scheme(cls) -> str:
        return "sftp"

    def _stat(self, path: str) -> tuple[int, float]:
        return _sftp_stat(path)

    def _open_raw(self, path: str):
        raw = _sftp_open(path)
        raw.prefetch()  # ask for the rest ahead: a sequential read no longer waits on each block
        return raw


def _sftp_open(url: str):
    try:
        import smart_open
        import smart_open.ssh  # noqa: F401 - needs paramiko
    except ImportError:
        raise UrlInputError("sftp:// inputs need paramiko: pip install 'eventlake[sftp]'") from None
    return smart_open.open(url, "rb", compression="disable")


@functools.lru_cache(maxsize=1024)
def _sftp_stat(url: str) -> tuple[int, float]:
    """(size, modified time) of ``url``; ``FileNotFoundError`` when the server has no such file."""
    with _sftp_open(url) as handle:
        stat = handle.stat()
    return int(stat.st_size), float(stat.st_mtime or 0.0)


class _Unseekable:
    """A body from a server that takes no ranges: read from the start; a seek names the reason."""

    def __init__(self, raw, url: str):
        self._raw, self._url = raw, url

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def readinto(self, buffer) -> int:
        return self._raw.readinto(buffer)

    def readline(self, size: int = -1) -> bytes:
        return self._raw.readline(size)

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0 and offset == self._raw.tell():
            return offset
        raise UrlInputError(f"{self._url}: the server does not take byte-range requests, so this file can only be "
                            "read from its start; download it first")

    def close(self) -> None:
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["HttpFileSystem", "HttpsFileSystem", "SftpFileSystem", "UrlInputError", "forget_heads", "takes_ranges"]
