"""Commits on object storage: create-if-absent against real local GCS and S3 servers."""

from __future__ import annotations

import threading

import pytest

from eventlake.cli import main
from eventlake.io import delta_log
from eventlake.io.files import read_all, write_bytes
from eventlake.io.object_store import (
    CommitConflict,
    MissingCredentials,
    check_credentials,
    delete_paths,
    delete_tree,
    put_if_absent,
)


def test_put_if_absent_lets_only_the_first_writer_create(bucket):
    put_if_absent(f"{bucket}/log/0.json", b"first")
    with pytest.raises(CommitConflict):
        put_if_absent(f"{bucket}/log/0.json", b"second")
    assert read_all(f"{bucket}/log/0.json") == b"first"


def test_two_writers_racing_for_one_version_make_exactly_one_commit(bucket):
    store = f"{bucket}/store"
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def writer(name: str) -> None:
        start.wait()
        try:
            delta_log.commit(store, 0, [{"commitInfo": {"eventlake": {"run_id": name}}}])
            outcomes.append("committed")
        except CommitConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["committed", "refused", "refused", "refused"]
    snapshot = delta_log.read_snapshot(store)
    assert snapshot.version == 0 and len(snapshot.commits) == 1


def test_deletes_ignore_missing_objects_and_trees_go_whole(bucket):
    for name in ("t/a", "t/b/c", "keep"):
        write_bytes(f"{bucket}/{name}", b"x")
    delete_paths([f"{bucket}/t/a", f"{bucket}/t/never"])
    delete_tree(f"{bucket}/t")
    assert read_all(f"{bucket}/keep") == b"x"
    from apache_beam.io.filesystems import FileSystems

    assert [m.path for m in FileSystems.match([f"{bucket}/t/*"])[0].metadata_list] == []


def test_missing_credentials_fail_at_once_with_one_clear_message(monkeypatch, tmp_path, capsys):
    for key in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud login
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # not on Google Compute Engine
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(MissingCredentials, match="application-default login"):
        check_credentials(["gs://bucket/store"])
    with pytest.raises(MissingCredentials, match="AWS_ACCESS_KEY_ID"):
        check_credentials(["/local/events.json", "s3://bucket/store"])
    check_credentials(["/local/store"])  # local paths need nothing
    assert main(["purge", "--store", "gs://bucket/store", "--filter", 'visitorId = "v"']) == 1
    err = capsys.readouterr().err
    assert err.startswith("eventlake purge: no Google Cloud credentials") and err.count("\n") == 1
