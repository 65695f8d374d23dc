"""JSON documents that are not one per line: arrays of documents, pretty-printed or not,
documents one per line, or a mix, each document with the line it starts on.

Alibaba OpenSearch's behavior pushes are JSON arrays of ``{"cmd": ..., "fields": ...}``
documents, written one array per file or per line. ``json``'s ``raw_decode`` reads one value at
a time and says where it ended; a document that is not valid JSON is cut out by matching its
brackets (strings respected), reported with the line and column where parsing failed, and the
documents after it are still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"


@dataclass
class Document:
    """One document: its value (``None`` when it is broken), where it is, and its text."""

    value: object
    start: int  # character offset in the text
    end: int
    line: int  # 1-based line it starts on
    problem: str | None = None  # why it is not valid JSON, with its line and column


def documents(text: str) -> Iterator[Document]:
    """Every top-level document of ``text``; the elements of a top-level array are documents."""
    newlines = np.flatnonzero(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == 10) if text else []

    def line_of(position: int) -> int:
        return int(np.searchsorted(newlines, position, side="right")) + 1

    def one(position: int) -> Document:
        try:
            value, end = _DECODER.raw_decode(text, position)
            return Document(value, position, end, line_of(position))
        except json.JSONDecodeError as exc:
            end = _matching_end(text, position)
            return Document(None, position, end, line_of(position),
                            f"{exc.msg} at line {exc.lineno} column {exc.colno}")

    i, n = 0, len(text)
    while i < n:
        if text[i] in _SPACE:
            i += 1
            continue
        if text[i] != "[":
            doc = one(i)
            yield doc
            i = max(doc.end, i + 1)
            continue
        i += 1  # an array of documents
        while i < n:
            if text[i] in _SPACE or text[i] == ",":
                i += 1
                continue
            if text[i] == "]":
                i += 1
                break
            doc = one(i)
            yield doc
            i = max(doc.end, i + 1)


def _matching_end(text: str, start: int) -> int:
    """Where the value starting at ``start`` ends, by its brackets; for a value that is broken."""
    opener = text[start] if start < len(text) else ""
    if opener not in "{[":
        end = start
        while end < len(text) and text[end] not in ",\n]":
            end += 1
        return max(end, start + 1)
    depth, i, in_string = 0, start, False
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


__all__ = ["Document", "documents"]
