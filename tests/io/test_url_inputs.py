"""Event and catalog inputs from http:// URLs, against local HTTP servers started by the test:
one that answers byte-range requests (files split over workers as local ones are) and one that
does not (files read whole from their start; Parquet refused in one line)."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import re
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eventlake.cli import main
from tests.pipelines.conftest import assert_counts_add_up, make_catalog, make_events, stored_rows


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Python's file server (no ranges), plus ``Range: bytes=a-b`` when the server allows them."""

    ranges = False
    seen: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def end_headers(self) -> None:
        if self.ranges:
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        wanted = self.headers.get("Range")
        self.seen.append(wanted or "")
        found = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
        path = self.translate_path(self.path)
        if not (self.ranges and found and os.path.isfile(path)):
            return super().do_GET()
        size = os.path.getsize(path)
        start = int(found.group(1))
        end = min(int(found.group(2)) if found.group(2) else size - 1, size - 1)
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return
        with open(path, "rb") as handle:
            handle.seek(start)
            body = handle.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a reader that seeks closes the body it no longer needs: not an error here


@pytest.fixture(params=["ranges", "no-ranges"])
def web(request, tmp_path):
    """A folder served over HTTP on loopback: (folder, base URL, handler class)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"ranges": request.param == "ranges", "seen": []})
    server = _Server(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_events_and_a_catalog_import_from_urls(web, tmp_path):
    root, base, handler = web
    make_events(root / "events.jsonl", 3000)
    (root / "events.jsonl.gz").write_bytes(gzip.compress(b"".join(
        json.dumps({"eventType": "home-page-view", "visitorId": f"g{i}", "eventTime": "2024-03-02T10:00:00Z"}).encode()
        + b"\n" for i in range(10))))
    make_catalog(root / "catalog.json")
    assert (root / "events.jsonl").stat().st_size > 3 * 65536  # large enough to be split in 64 KiB ranges
    summary = tmp_path / "s.json"
    (tmp_path / "small-ranges.yaml").write_text("import:\n  split_bytes: 65536\n")
    code = main(["import", "--events", f"{base}/events.jsonl", "--events", f"{base}/events.jsonl.gz?download=1",
                 "--catalog", f"{base}/catalog.json", "--store", str(tmp_path / "store"), "--config",
                 str(tmp_path / "small-ranges.yaml"), "--summary", str(summary), "--max-error-ratio", "0.5"])
    assert code == 0
    s = json.loads(summary.read_text())
    assert_counts_add_up(s)
    local = tmp_path / "local.jsonl"
    local.write_bytes((root / "events.jsonl").read_bytes())
    main(["import", "--events", str(local), "--catalog", str(root / "catalog.json"), "--store",
          str(tmp_path / "local-store"), "--summary", str(tmp_path / "l.json"), "--max-error-ratio", "0.5"])
    expected = json.loads((tmp_path / "l.json").read_text())
    assert s["records"] == expected["records"] + 10 and s["stored"] == expected["stored"] + 10
    assert (s["errors"], s["joined"]) == (expected["errors"], expected["joined"] + 10)  # no product: joined
    assert len(stored_rows(tmp_path / "store")) == s["stored"]
    ranged = [r for r in handler.seen if r]
    if handler.ranges:
        assert ranged  # the file was read in ranges, from several starting points
    else:
        assert not [r for r in ranged if not r.startswith("bytes=0-")]  # read from the start only


def test_parquet_needs_a_server_that_takes_ranges(web, tmp_path, capsys):
    root, base, handler = web
    pq.write_table(pa.table({"uid": ["u1", "u2"], "item_id": ["a", "b"], "event": ["click", "expr"],
                             "time": [1709708439, 1709708440], "scene": ["home", "home"]}),
                   root / "behavior.parquet")
    code = main(["import", "--events", f"{base}/behavior.parquet", "--format", "pairec-behavior",
                 "--store", str(tmp_path / "store"), "--summary", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    if handler.ranges:
        assert code == 0 and json.loads((tmp_path / "s.json").read_text())["stored"] == 2
    else:
        assert code == 1 and "does not take byte-range requests" in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1


def test_urls_are_inputs_only_and_name_each_file(web, tmp_path, capsys):
    root, base, _ = web
    make_events(root / "events.jsonl", 10)
    assert main(["import", "--events", f"{base}/*.jsonl", "--store", str(tmp_path / "store")]) != 0
    assert "no listing, so no globs" in capsys.readouterr().err
    assert main(["import", "--events", f"{base}/missing.jsonl", "--store", str(tmp_path / "store")]) != 0
    assert "missing.jsonl" in capsys.readouterr().err
    assert main(["import", "--events", f"{base}/events.jsonl", "--store", f"{base}/store"]) == 2
    assert "store: " in capsys.readouterr().err
    assert not (tmp_path / "store").exists()
