"""Damaged compressed inputs fail the run, name the file, and leave the store as it was."""

from __future__ import annotations

import bz2
import gzip
import json

import pytest
import zstandard

from tests.pipelines.conftest import make_catalog, run, stored_rows

COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".zst": lambda data: zstandard.ZstdCompressor().compress(data)}


def _events(n: int, start: int = 0) -> bytes:
    return "".join(json.dumps({
        "eventType": "detail-page-view", "visitorId": f"v{i}", "eventTime": "2024-03-01T10:00:00Z",
        "productDetails": [{"product": {"id": f"p{i % 40}"}}],
    }) + "\n" for i in range(start, start + n)).encode()


def _import(tmp_path, events, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = run("--events", events, "--catalog", tmp_path / "catalog.json", "--store", tmp_path / "store")
    return code, capsys.readouterr().err


@pytest.fixture
def catalog(tmp_path):
    make_catalog(tmp_path / "catalog.json")


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_a_truncated_compressed_file_fails_the_run_and_is_not_marked_imported(tmp_path, catalog, capsys, suffix):
    whole = COMPRESS[suffix](_events(1000))
    path = tmp_path / f"events.json{suffix}"
    path.write_bytes(whole[: len(whole) // 2])

    code, err = _import(tmp_path, path, capsys)

    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err and "ends early" in err
    assert not (tmp_path / "store" / "_delta_log").exists()
    path.write_bytes(whole)  # the file is complete now: the next run imports it
    code, _ = _import(tmp_path, path, capsys)
    assert code == 0 and len(stored_rows(tmp_path / "store")) == 1000


def test_plain_text_named_gz_fails_with_the_file_named(tmp_path, catalog, capsys):
    path = tmp_path / "events.json.gz"
    path.write_bytes(_events(10))

    code, err = _import(tmp_path, path, capsys)

    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err and "not valid gzip data" in err
    assert not (tmp_path / "store" / "_delta_log").exists()


def test_a_damaged_file_among_good_ones_commits_nothing(tmp_path, catalog, capsys):
    (tmp_path / "good.jsonl").write_bytes(_events(300))
    broken = bz2.compress(_events(300, start=300))
    (tmp_path / "broken.json.bz2").write_bytes(broken[:-20])

    code, err = _import(tmp_path, tmp_path / "*.json*", capsys)

    assert code == 1 and "broken.json.bz2" in err
    assert not (tmp_path / "store" / "_delta_log").exists()
    assert not list((tmp_path / "store").rglob("*.parquet"))


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_concatenated_members_read_as_one_stream(tmp_path, catalog, capsys, suffix):
    path = tmp_path / f"events.json{suffix}"
    path.write_bytes(COMPRESS[suffix](_events(100)) + COMPRESS[suffix](_events(100, start=100)))

    code, err = _import(tmp_path, path, capsys)

    assert code == 0, err
    assert len(stored_rows(tmp_path / "store")) == 200


def test_a_truncated_catalog_fails_the_import(tmp_path, capsys):
    make_catalog(tmp_path / "plain.json")
    whole = gzip.compress((tmp_path / "plain.json").read_bytes())
    (tmp_path / "catalog.json.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "events.jsonl").write_bytes(_events(50))
    capsys.readouterr()

    code = run("--events", tmp_path / "events.jsonl", "--catalog", tmp_path / "catalog.json.gz",
               "--store", tmp_path / "store")

    err = capsys.readouterr().err
    assert code == 1 and "catalog.json.gz" in err and "ends early" in err
    assert not (tmp_path / "store" / "_delta_log").exists()


@pytest.mark.parametrize(("content", "cause"), [
    (_events(20).decode().encode("utf-16"), "UTF-16"),
    (json.dumps([json.loads(line) for line in _events(20).splitlines()]).encode(), "JSON array"),
    (json.dumps(json.loads(_events(1).splitlines()[0]), indent=2).encode() * 3, "pretty-printed"),
    (b"eventType,visitorId,eventTime\nsearch,v1,2024-03-01T10:00:00Z\n", "another format"),
])
def test_a_file_with_no_valid_record_fails_with_a_hint(tmp_path, catalog, capsys, content, cause):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.jsonl").write_bytes(_events(50))
    (tmp_path / "in" / "odd.json").write_bytes(content)

    code, err = _import(tmp_path, tmp_path / "in" / "*.json*", capsys)

    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "odd.json" in err and cause in err and "--max-error-ratio" in err
    assert not (tmp_path / "store" / "_delta_log").exists()
    capsys.readouterr()
    code = run("--events", tmp_path / "in" / "*.json*", "--catalog", tmp_path / "catalog.json",
               "--store", tmp_path / "store", "--max-error-ratio", "1")
    assert code == 0 and len(stored_rows(tmp_path / "store")) == 50  # an explicit limit lets it through
