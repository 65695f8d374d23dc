"""Retail's user-event filter language, parsed (never evaluated as code) into an Arrow expression.

    eventTime > "2012-04-23T18:25:43.511Z" eventTime < "2012-04-23T18:30:43.511Z"
    eventsMissingCatalogItems eventType = (NOT search) visitorId = "visitor1024"
    eventType = (detail-page-view OR search) productId = "GGOEGAAX0037"

Terms side by side are ANDed (an explicit ``AND`` is accepted too), as in Retail's purge and
export filters. A filter also says which store files cannot hold a match (by event date, the
per-file event-time range and the joined count in the log), so that a purge reads only the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.acero as acero
import pyarrow.compute as pc

from eventlake.io.store import file_joined_rows, file_rows

MAX_FILTER_CHARS = 5000
EXAMPLES = ('eventTime > "2012-04-23T18:25:43.511Z" eventTime < "2012-04-23T18:30:43.511Z"',
            'visitorId = "visitor1024"',
            'eventsMissingCatalogItems eventType = (NOT search)',
            'eventType = (detail-page-view OR search)')

# Filter field -> the stored column it compares (a tuple is a nested field).
EQUALITY_FIELDS = {"eventType": "event_type", "visitorId": "visitor_id", "userId": ("user_info", "user_id"),
                   "sessionId": "session_id", "productId": None}
_TIME = pa.timestamp("us", tz="UTC")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|[=<>()])|(?P<word>[^\s"=<>()]+)|(?P<bad>\S))')


class FilterError(ValueError):
    """The filter cannot be used; the message quotes it, points at the place and shows examples."""

    def __init__(self, text: str, position: int, problem: str):
        lo, hi = max(position - 100, 0), position + 100
        quoted = ("..." if lo else "") + text[lo:position] + "<HERE>" + text[position:hi] + ("..." if hi < len(text) else "")
        quoted = " ".join(quoted.splitlines())
        super().__init__(f"invalid filter at character {position + 1}: {problem}: '{quoted}'; "
                         f"valid filters look like: {' | '.join(EXAMPLES)}")
        self.position, self.problem = position, problem


@dataclass(frozen=True)
class _Token:
    kind: str  # string, op, word, end
    text: str
    position: int

    @property
    def value(self) -> str:
        if self.kind == "string":
            return re.sub(r"\\(.)", r"\1", self.text[1:-1])
        return self.text


@dataclass(frozen=True)
class TimeTerm:
    op: str
    time: dt.datetime

    def expression(self) -> pc.Expression:
        bound = pa.scalar(self.time, type=_TIME)
        column = pc.field("event_time")
        return {">": column > bound, ">=": column >= bound, "<": column < bound, "<=": column <= bound}[self.op]

    def may_match(self, low: dt.datetime, high: dt.datetime) -> bool:
        """Whether any time in ``[low, high]`` satisfies the term."""
        return {">": high > self.time, ">=": high >= self.time, "<": low < self.time, "<=": low <= self.time}[self.op]


@dataclass(frozen=True)
class EqualityTerm:
    field: str
    values: tuple[str, ...]
    negated: bool = False

    def expression(self, helper: str | None = None) -> pc.Expression:
        if self.field == "productId":
            hit = pc.field(helper)
        else:
            column = EQUALITY_FIELDS[self.field]
            reference = pc.field(*column) if isinstance(column, tuple) else pc.field(column)
            hit = reference.isin(list(self.values))  # null (no such value) is simply not a hit
        return ~hit if self.negated else hit


@dataclass(frozen=True)
class MissingCatalogItemsTerm:
    def expression(self) -> pc.Expression:
        return ~pc.field("joined")


@dataclass(frozen=True)
class EventFilter:
    """A parsed filter: the AND of its terms.

    ``redacted`` is the text as the store's log keeps it: each quoted value, and each bare value
    of an identifying field, replaced by ``"sha256:<hex>"`` of the value. An erasure request
    must not leave the erased id in the record of its erasure; an auditor who knows the id
    can still check that it was purged.
    """

    text: str
    terms: tuple
    redacted: str = ""

    def expression(self) -> pc.Expression:
        """The filter as one Arrow expression over stored columns.

        Arrow has no list-membership kernel, so each ``productId`` term reads a helper column
        ``_product_<i>`` that ``matches`` computes first.
        """
        parts = []
        for i, term in enumerate(self.terms):
            parts.append(term.expression(f"_product_{i}") if isinstance(term, EqualityTerm) else term.expression())
        out = parts[0]
        for part in parts[1:]:
            out = out & part
        return out

    @property
    def columns(self) -> list[str]:
        """The stored columns the filter reads."""
        out = set()
        for term in self.terms:
            if isinstance(term, TimeTerm):
                out.add("event_time")
            elif isinstance(term, EqualityTerm):
                column = EQUALITY_FIELDS[term.field] or "product_details"
                out.add(column[0] if isinstance(column, tuple) else column)
            else:
                out.add("joined")
        return sorted(out)

    def matches(self, table: pa.Table) -> np.ndarray:
        """Boolean mask of the rows the filter selects."""
        if not len(table):
            return np.zeros(0, dtype=bool)
        for i, term in enumerate(self.terms):
            if isinstance(term, EqualityTerm) and term.field == "productId":
                table = table.append_column(f"_product_{i}", names_any_product(table.column("product_details"), term.values))
        # A one-node Acero plan on this thread: a dataset scan cost six times as much per file.
        plan = acero.Declaration.from_sequence([
            acero.Declaration("table_source", acero.TableSourceNodeOptions(table)),
            acero.Declaration("project", acero.ProjectNodeOptions([self.expression()], ["m"])),
        ])
        mask = plan.to_table(use_threads=False).column("m")
        return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)

    def required_values(self, columns: dict[str, str]) -> list[tuple[str, tuple[str, ...]]]:
        """``(column, values)`` for each term that every matching row must satisfy by having
        one of ``values`` in ``column``: the positive equality terms on the fields that
        ``columns`` maps to a stored column path (a file's Bloom filters can rule them out)."""
        return [(columns[t.field], t.values) for t in self.terms
                if isinstance(t, EqualityTerm) and not t.negated and t.field in columns]

    def may_match_file(self, add: dict) -> bool:
        """False when the file's partition date or log statistics rule every row out."""
        low, high = file_time_range(add)
        if low is not None and not all(t.may_match(low, high) for t in self.terms if isinstance(t, TimeTerm)):
            return False
        joined, rows = file_joined_rows(add), file_rows(add)
        if joined is not None and rows is not None and joined == rows:
            return not any(isinstance(t, MissingCatalogItemsTerm) for t in self.terms)
        return True


def names_any_product(details: pa.ChunkedArray | pa.Array, ids: tuple[str, ...]) -> pa.Array:
    """Per event: does any of its product details name one of ``ids``."""
    details = details.combine_chunks() if isinstance(details, pa.ChunkedArray) else details
    hits = pc.is_in(pc.struct_field(pc.list_flatten(details), ["product", "id"]), value_set=pa.array(ids, pa.string()))
    parents = pc.list_parent_indices(details).to_numpy()
    hit_rows = parents[pc.fill_null(hits, False).to_numpy(zero_copy_only=False)]
    out = np.zeros(len(details), dtype=bool)
    out[hit_rows] = True
    return pa.array(out)


def file_time_range(add: dict) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The times a file's rows can have, from its date partition and its min/max statistics.

    Statistics are kept to the millisecond, so the maximum is widened by one millisecond.
    """
    low = high = None
    date = add.get("partitionValues", {}).get("event_date")
    if date:
        day = dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc)
        low, high = day, day + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    stats = _stats(add) or {}
    least = stats.get("minValues", {}).get("event_time")
    most = stats.get("maxValues", {}).get("event_time")
    if least and most:
        least, most = _parse_time(least), _parse_time(most) + dt.timedelta(milliseconds=1)
        low, high = (least, most) if low is None else (max(low, least), min(high, most))
    return low, high


def _stats(add: dict) -> dict | None:
    text = add.get("stats")
    return json.loads(text) if text else None


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def parse_filter(text: str) -> EventFilter:
    """Parse ``text``; raise ``FilterError`` naming the position of the first problem."""
    if not text or not text.strip():
        raise FilterError(text or "", 0, "the filter is empty")
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(text, 0, f"the filter has {len(text)} characters, more than {MAX_FILTER_CHARS}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes that were not UTF-8 on the command line
        raise FilterError(text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), exc.start,
                          "the filter is not valid UTF-8") from None
    return _Parser(text).parse()


IDENTIFYING_FIELDS = ("visitorId", "userId", "sessionId")


def hashed_value(value: str) -> str:
    """How the log names a filter value: ``sha256:`` and the hex digest of its UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = list(self._tokenize(text))
        self.at = 0
        self.secret: list[_Token] = []  # value tokens the redacted text hashes

    def redacted(self) -> str:
        out, at = [], 0
        for token in sorted(set(self.secret), key=lambda t: t.position):
            out += [self.text[at:token.position], f'"{hashed_value(token.value)}"']
            at = token.position + len(token.text)
        return "".join(out) + self.text[at:]

    def _tokenize(self, text: str):
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:  # only trailing blanks are left
                break
            kind = match.lastgroup
            start = match.start(kind)
            if kind == "bad":
                problem = "an unclosed quote" if text[start] == '"' else f"unexpected character {text[start]!r}"
                raise FilterError(text, start, problem)
            yield _Token(kind, match.group(kind), start)
            position = match.end()
        yield _Token("end", "", len(text.rstrip()))

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, token: _Token, problem: str) -> NoReturn:
        raise FilterError(self.text, token.position, problem)

    def parse(self) -> EventFilter:
        terms = [self.term()]
        while self.peek().kind != "end":
            if self.peek().kind == "word" and self.peek().text == "AND":
                self.take()
            terms.append(self.term())
        self.secret += [t for t in self.tokens if t.kind == "string"]
        return EventFilter(self.text, tuple(terms), self.redacted())

    def term(self):
        token = self.take()
        if token.kind != "word":
            self.fail(token, "expected a field name (eventTime, eventType, visitorId, userId, sessionId, productId or "
                             "eventsMissingCatalogItems)" + ("" if token.kind != "end" else " but the filter ended"))
        if token.text == "eventsMissingCatalogItems":
            return MissingCatalogItemsTerm()
        if token.text == "eventTime":
            return self.time_term()
        if token.text in EQUALITY_FIELDS:
            return self.equality_term(token.text)
        if token.text in ("OR", "NOT"):
            self.fail(token, f"{token.text} is only allowed inside parentheses after '=', as in eventType = (NOT search)")
        self.fail(token, f"unknown field {token.text!r}; fields are eventTime, eventType, visitorId, userId, sessionId, "
                         "productId and eventsMissingCatalogItems")

    def time_term(self) -> TimeTerm:
        op = self.take()
        if op.kind != "op" or op.text not in (">", ">=", "<", "<="):
            self.fail(op, "eventTime takes >, >=, < or <= followed by a quoted RFC 3339 time")
        value = self.take()
        if value.kind != "string":
            self.fail(value, 'expected a quoted RFC 3339 time such as "2012-04-23T18:25:43.511Z"')
        if not _RFC3339.fullmatch(value.value):
            self.fail(value, f"{value.text} is not an RFC 3339 time with a UTC offset, such as \"2012-04-23T18:25:43.511Z\"")
        try:
            time = _parse_time(value.value)
        except (ValueError, OverflowError):  # month 13; or past year 9999 once in UTC
            self.fail(value, f"{value.text} is not a valid date and time between years 1 and 9999 in UTC")
        return TimeTerm(op.text, time)

    def equality_term(self, field: str) -> EqualityTerm:
        op = self.take()
        if op.kind != "op" or op.text != "=":
            self.fail(op, f"{field} takes '=' followed by a value or (value OR value) or (NOT value)")
        token = self.take()
        if token.kind == "op" and token.text == "(":
            negated = self.peek().kind == "word" and self.peek().text == "NOT"
            if negated:
                self.take()
            values = [self.value(field)]
            while self.peek().kind == "word" and self.peek().text == "OR":
                or_token = self.take()
                if negated:
                    self.fail(or_token, "NOT takes one value; write one (NOT value) term per value")
                values.append(self.value(field))
            close = self.take()
            if close.kind != "op" or close.text != ")":
                self.fail(close, "expected OR or a closing parenthesis")
            return EqualityTerm(field, tuple(values), negated)
        self.at -= 1
        return EqualityTerm(field, (self.value(field),))

    def value(self, field: str) -> str:
        token = self.take()
        if token.kind == "string" or (token.kind == "word" and token.text not in ("AND", "OR", "NOT")):
            if field in IDENTIFYING_FIELDS:
                self.secret.append(token)
            return token.value
        self.fail(token, f"expected a value for {field}" + (" but the filter ended" if token.kind == "end" else ""))
