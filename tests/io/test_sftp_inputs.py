"""Event inputs from sftp:// URLs, against a real SFTP server (asyncssh's) the test starts on
loopback: read in byte ranges as local files are, decompressed by suffix, refused as outputs."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading

import pytest

from eventlake.cli import main
from tests.pipelines.conftest import assert_counts_add_up, make_events

asyncssh = pytest.importorskip("asyncssh")
pytest.importorskip("paramiko")


@pytest.fixture
def sftp_root(tmp_path):
    """A folder served over SFTP on loopback (user eventlake, password secret): (folder, URL base)."""
    root = tmp_path / "drop"
    root.mkdir()
    started, ports, stop = threading.Event(), [], {}

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username):
            return True

        def password_auth_supported(self):
            return True

        def validate_password(self, username, password):
            return (username, password) == ("eventlake", "secret")

    async def serve():
        server = await asyncssh.listen("127.0.0.1", 0, server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
                                       server_factory=Server,
                                       sftp_factory=lambda channel: asyncssh.SFTPServer(channel, chroot=str(root).encode()))
        ports.append(server.sockets[0].getsockname()[1])
        stop["event"], stop["loop"] = asyncio.Event(), asyncio.get_running_loop()
        started.set()
        await stop["event"].wait()
        server.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(30)
    yield root, f"sftp://eventlake:secret@127.0.0.1:{ports[0]}"
    stop["loop"].call_soon_threadsafe(stop["event"].set)
    thread.join(10)


def test_events_import_from_sftp_in_ranges(sftp_root, tmp_path):
    root, base = sftp_root
    make_events(root / "events.jsonl", 3000)
    (root / "more.jsonl.gz").write_bytes(gzip.compress(b"".join(
        json.dumps({"eventType": "home-page-view", "visitorId": f"g{i}", "eventTime": "2024-03-02T10:00:00Z"}).encode()
        + b"\n" for i in range(10))))
    (tmp_path / "small.yaml").write_text("import:\n  split_bytes: 65536\n")
    summary = tmp_path / "s.json"
    assert main(["import", "--events", f"{base}/events.jsonl", "--events", f"{base}/more.jsonl.gz",
                 "--store", str(tmp_path / "store"), "--config", str(tmp_path / "small.yaml"),
                 "--max-error-ratio", "0.5", "--summary", str(summary)]) == 0
    s = json.loads(summary.read_text())
    assert_counts_add_up(s)
    local = tmp_path / "local.jsonl"
    local.write_bytes((root / "events.jsonl").read_bytes())
    assert main(["import", "--events", str(local), "--store", str(tmp_path / "local-store"), "--max-error-ratio", "0.5",
                 "--summary", str(tmp_path / "l.json")]) == 0
    expected = json.loads((tmp_path / "l.json").read_text())
    assert (s["records"], s["stored"], s["errors"]) == (expected["records"] + 10, expected["stored"] + 10,
                                                         expected["errors"])
    assert main(["import", "--events", f"{base}/events.jsonl", "--store", str(tmp_path / "store"),
                 "--summary", str(summary)]) == 0
    assert json.loads(summary.read_text())["skipped_files"] == 1  # known by its size and time, as local files


def test_sftp_urls_name_each_file_and_are_inputs_only(sftp_root, tmp_path, capsys):
    root, base = sftp_root
    make_events(root / "events.jsonl", 10)
    assert main(["import", "--events", f"{base}/*.jsonl", "--store", str(tmp_path / "store")]) != 0
    assert "no listing, so no globs" in capsys.readouterr().err
    assert main(["import", "--events", f"{base}/missing.jsonl", "--store", str(tmp_path / "store")]) != 0
    assert "missing.jsonl" in capsys.readouterr().err
    assert main(["import", "--events", f"{base}/events.jsonl", "--store", f"{base}/store"]) == 2
    assert "inputs only" in capsys.readouterr().err
