"""Where a job writes is checked before it runs; once its commit is in, it reports success."""

from __future__ import annotations

import errno
import subprocess

import pytest

from eventlake.io.delta_log import read_snapshot
from tests.pipelines.conftest import import_generated, make_catalog, make_events, run


def _args(tmp, *extra) -> list:
    return ["--events", tmp / "events" / "*.json*", "--catalog", tmp / "catalog.json", "--store", tmp / "store", *extra]


def _given(generated, key: str):
    """An output path of each unusable kind, and the start of the complaint about it."""
    if key == "summary-dir":
        (generated / "out").mkdir()
        return "--summary", generated / "out", f"summary: {generated / 'out'} is a directory"
    if key == "summary-under-file":
        (generated / "blocker").write_text("x")
        return "--summary", generated / "blocker" / "s.json", "summary: cannot create"
    (generated / "out").write_text("x")
    return f"--{key}", generated / "out", f"{key}: {generated / 'out'} is a file"


@pytest.mark.parametrize("key", ["summary-dir", "summary-under-file", "errors", "store"])
def test_an_unusable_output_path_is_refused_before_anything_runs(generated, capsys, key):
    flag, path, words = _given(generated, key)
    args = {"--events": generated / "events" / "*.json*", "--catalog": generated / "catalog.json",
            "--store": generated / "store", flag: path}
    code = run(*[x for pair in args.items() for x in pair])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"eventlake import: {words}"), lines
    assert not (generated / "store").exists()


def test_a_summary_that_cannot_be_written_after_the_commit_is_a_warning(generated, capsys, monkeypatch):
    import eventlake.pipelines.running as running

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(running, "write_bytes", full_disk)
    code = run(*_args(generated, "--summary", generated / "s.json"))
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: could not write the summary" in err and "No space left" in err
    assert read_snapshot(str(generated / "store")).version == 0


def test_a_file_url_store_is_the_local_path(generated):
    code = run("--events", generated / "events" / "*.json*", "--catalog", generated / "catalog.json",
               "--store", f"file://{generated / 'store'}")
    assert code == 0
    assert read_snapshot(str(generated / "store")).version == 0
    code, s = import_generated(generated)
    assert code == 0 and s["skipped_files"] == 2  # the same store, reached by its plain path


def _tmpfs(tmp_path, name: str, options: str):
    """A tmpfs mounted for one test (a read-only or a tiny file system); skips where mount is not allowed."""
    target = tmp_path / name
    target.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    if made.returncode:
        pytest.skip(f"this machine cannot mount a tmpfs ({options}) for the test")
    yield target
    if subprocess.run(["umount", str(target)], capture_output=True).returncode:
        subprocess.run(["umount", "--lazy", str(target)], check=False)  # never leave a mount for pytest to trip on


@pytest.fixture
def read_only_dir(tmp_path):
    yield from _tmpfs(tmp_path, "ro", "ro,size=1m")


def test_a_store_on_a_read_only_file_system_is_one_line(tmp_path, read_only_dir, capsys):
    make_events(tmp_path / "e.jsonl", 20, bad_every=0)
    make_catalog(tmp_path / "c.json")
    code = run("--events", tmp_path / "e.jsonl", "--catalog", tmp_path / "c.json", "--store", read_only_dir / "store")
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        f"eventlake import: store: cannot write under {read_only_dir} (read-only or not permitted)"]


@pytest.fixture
def tiny_disk(tmp_path):
    yield from _tmpfs(tmp_path, "tiny", "size=256k")


def test_a_full_disk_is_one_line_and_commits_nothing(tmp_path, tiny_disk, capsys):
    make_events(tmp_path / "e.jsonl", 20000, bad_every=0)
    make_catalog(tmp_path / "c.json")
    code = run("--events", tmp_path / "e.jsonl", "--catalog", tmp_path / "c.json", "--store", tiny_disk / "store")
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and "No space left on device" in lines[0], lines
    assert not (tiny_disk / "store" / "_delta_log").exists()
