"""The pipelines' shared inputs: generated event files and catalogs, and ways to look at a store."""

from __future__ import annotations

import gzip
import json

import deltalake
import pytest

from eventlake.cli import main


def run(*args) -> int:
    return main(["import", *[str(a) for a in args]])


def summary_of(path) -> dict:
    return json.loads(path.read_text())


def stored_rows(store) -> list[dict]:
    return deltalake.DeltaTable(str(store)).to_pyarrow_table().to_pylist()


def assert_counts_add_up(s: dict) -> None:
    """Every record is stored, a duplicate, an error or skipped by a documented rule."""
    assert s["records"] == s["stored"] + s["duplicates"] + s["errors"] + s["skipped"]
    if s["joined"] is None:  # no catalog: neither joined nor unjoined
        assert s["unjoined"] is None and s["stored"] == sum(s["by_event_type"].values())
    else:
        assert s["stored"] == s["joined"] + s["unjoined"] == sum(s["by_event_type"].values())
    assert s["errors"] == sum(s["errors_by_reason"].values())
    assert s["skipped"] == sum(s["skipped_by_reason"].values())


def make_events(path, n, start=0, bad_every=50, compress=False):
    lines = []
    for i in range(start, start + n):
        if bad_every and i % bad_every == 7 % bad_every:
            lines.append('{"eventType": "search", "visitorId": ')  # truncated
            continue
        product = f"p{i % 40}" if i % 10 else "unknown"
        lines.append(json.dumps({
            "eventType": "detail-page-view", "visitorId": f"v{i % 97}",
            "eventTime": f"2024-03-{1 + i % 3:02d}T10:{i % 60:02d}:00Z",
            "productDetails": [{"product": {"id": product}}], "sessionId": f"s{i}",
        }))
    data = ("\n".join(lines) + "\n").encode()
    if compress:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def make_catalog(path, n=40):
    path.write_text("".join(json.dumps({"id": f"p{i}", "title": f"Product {i}", "categories": ["c"],
                                        "priceInfo": {"price": str(i)}}) + "\n" for i in range(n)))


@pytest.fixture
def generated(tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    make_events(events / "a.jsonl", 700)
    make_events(events / "b.json.gz", 500, start=700, compress=True)
    (events / "ignored.txt").write_text("not an event file")
    make_catalog(tmp_path / "catalog.json")
    return tmp_path


def import_generated(tmp, *extra) -> tuple[int, dict]:
    summary = tmp / f"summary-{len(list(tmp.glob('summary-*')))}.json"
    code = run("--events", tmp / "events" / "*.json*", "--catalog", tmp / "catalog.json", "--store", tmp / "store",
               "--summary", summary, *extra)
    return code, summary_of(summary) if summary.exists() else {}
