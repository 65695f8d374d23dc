"""The command line: flags are checked before anything runs, help and version, and the way it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import deltalake
import pytest

from eventlake import __version__
from eventlake.cli import build_parser, main
from tests.pipelines.conftest import make_catalog, make_events


@pytest.fixture
def inputs(tmp_path):
    make_events(tmp_path / "events.jsonl", 200, bad_every=0)
    make_catalog(tmp_path / "catalog.json")
    return tmp_path


def _import_args(tmp, *extra):
    return ["import", "--events", str(tmp / "events.jsonl"), "--catalog", str(tmp / "catalog.json"),
            "--store", str(tmp / "store"), *extra]


@pytest.mark.parametrize(("flag", "suggestion"), [
    (["--max-error-rate", "0"], "--max-error-ratio"),
    (["--reimprot"], "--reimport"),
    (["--direct_num_worker=2"], "--direct_num_workers"),
])
def test_a_mistyped_flag_is_refused_with_the_closest_known_one(inputs, capsys, flag, suggestion):
    code = main(_import_args(inputs, *flag))
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [f"eventlake import: unknown flag {flag[0].split('=')[0]}; did you mean {suggestion}?"]
    assert not (inputs / "store").exists()


def test_a_stray_word_and_a_bad_beam_value_are_refused(inputs, capsys):
    assert main(_import_args(inputs, "typo")) == 2
    assert "unexpected argument 'typo'" in capsys.readouterr().err
    assert main(_import_args(inputs, "--direct_num_workers=two")) == 2
    assert "--direct_num_workers" in capsys.readouterr().err
    assert not (inputs / "store").exists()


def test_beam_flags_still_pass_through(inputs, capsys):
    code = main(_import_args(inputs, "--direct_num_workers=1", "--runner", "FnApiRunner"))
    assert code == 0, capsys.readouterr().err


def test_debug_is_accepted_after_the_job_name(inputs, capsys):
    parser, _ = build_parser()
    assert parser.parse_known_args(["import", "--debug"])[0].debug is True
    assert parser.parse_known_args(["--debug", "import"])[0].debug is True
    assert parser.parse_known_args(["import"])[0].debug is False
    main(_import_args(inputs, "--debug"))
    assert "unknown flag" not in capsys.readouterr().err


def test_version_and_help_describe_the_tool(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"eventlake {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "Delta Lake" in text and "exit status" in text and "130" in text
    for job, words in (("import", "_errors"), ("rejoin", "catalog"), ("purge", "--force"), ("history", "versions")):
        with pytest.raises(SystemExit):
            main([job, "--help"])
        text = capsys.readouterr().out
        assert words in text and "exit status" in text, job


def _eventlake(*args) -> list[str]:
    return [sys.executable, "-m", "eventlake.cli", *args]


def test_a_closed_stdout_after_the_commit_is_still_success(inputs):
    process = subprocess.Popen(_eventlake(*_import_args(inputs)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # as `| head -0` does: the summary cannot be printed
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert b"Traceback" not in err
    history = subprocess.run(_eventlake("history", "--json", "--store", str(inputs / "store")), capture_output=True,
                             check=True)
    assert [json.loads(line)["version"] for line in history.stdout.splitlines()] == [0]


INTERRUPTED = "eventlake: interrupted; nothing was committed and the store is as it was"


def _versions(store) -> list[str]:
    log = store / "_delta_log"
    return sorted(p.name for p in log.iterdir() if p.name.endswith(".json")) if log.exists() else []


def _assert_interrupt_outcome(process, err: bytes, store) -> None:
    """Whenever the Ctrl-C lands, the exit code says what the store shows: 130 with nothing
    committed and nothing left behind, or 0 when the commit had landed."""
    lines = err.decode().strip().splitlines()
    if process.returncode == 0 and _versions(store):
        assert _versions(store) == ["00000000000000000000.json"]
        assert len(lines) <= 1 and "Traceback" not in err.decode()
        return
    assert process.returncode == 130, err.decode()[-2000:]
    assert lines == [INTERRUPTED]
    assert _versions(store) == []
    assert not [p for p in store.rglob("*") if p.is_file()] if store.exists() else True


def _wait_until_the_run_started(process, store, timeout: float = 60.0) -> None:
    """Until the job has marked its run alive (``_tmp/<run id>/running``) or ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None and not list(store.glob("_tmp/*/running")):
        time.sleep(0.05)


def test_ctrl_c_exits_130_with_one_line_and_no_version(tmp_path):
    lines = [json.dumps({"eventType": "home-page-view", "visitorId": f"v{i}", "eventTime": "2024-03-01T10:00:00Z"})
             for i in range(200_000)]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    make_catalog(tmp_path / "catalog.json")
    process = subprocess.Popen(_eventlake(*_import_args(tmp_path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_until_the_run_started(process, tmp_path / "store")  # a fixed sleep raced Python's start-up under load
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    _assert_interrupt_outcome(process, err, tmp_path / "store")


def test_ctrl_c_at_a_terminal_stops_every_process_with_one_line(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group, multi-process workers included."""
    lines = [json.dumps({"eventType": "home-page-view", "visitorId": f"v{i}", "eventTime": "2024-03-01T10:00:00Z"})
             for i in range(600_000)]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    make_catalog(tmp_path / "catalog.json")
    args = _import_args(tmp_path, "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    process = subprocess.Popen(_eventlake(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(3.0)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    _assert_interrupt_outcome(process, err, tmp_path / "store")


def _interrupted_at(point: str, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVENTLAKE_KILL_AT": f"{point}:SIGINT"}
    return subprocess.run(_eventlake(*map(str, args)), env=env, capture_output=True, text=True, timeout=120)


def test_ctrl_c_just_before_the_commit_commits_nothing_and_leaves_nothing(inputs):
    done = _interrupted_at("import-before-commit", *_import_args(inputs))
    assert done.returncode == 130 and done.stderr.strip().splitlines() == [INTERRUPTED]
    store = inputs / "store"
    assert not store.exists() or not [p for p in store.rglob("*") if p.is_file()]


def test_ctrl_c_just_after_the_commit_is_success(inputs):
    """The commit landed: the run did what it was asked, whatever it was doing next."""
    done = _interrupted_at("import-after-commit", *_import_args(inputs))
    store = inputs / "store"
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"eventlake: interrupted after the commit landed: version 0 of {store} is complete ('eventlake history' shows it)"]
    assert len(deltalake.DeltaTable(str(store)).to_pyarrow_table()) == 200


@pytest.mark.parametrize(("point", "code", "version"), [("rewrite-before-commit", 130, 0),
                                                         ("rewrite-after-commit", 0, 1)])
def test_a_purge_interrupted_around_its_commit_keeps_no_superseded_file(inputs, point, code, version):
    assert main(_import_args(inputs)) == 0
    store = inputs / "store"
    visitor = deltalake.DeltaTable(str(store)).to_pyarrow_table().column("visitor_id")[0].as_py()
    done = _interrupted_at(point, "purge", "--store", store, "--filter", f'visitorId = "{visitor}"', "--force")
    assert done.returncode == code and len(done.stderr.strip().splitlines()) == 1, done.stderr
    table = deltalake.DeltaTable(str(store))
    assert table.version() == version
    referenced = {os.path.relpath(uri.removeprefix("file://"), store) for uri in table.file_uris()}
    on_disk = {str(p.relative_to(store)) for p in store.rglob("*.parquet")}
    assert on_disk == referenced  # the interrupted run cleaned up after itself


EXIT_PROBE = """
import atexit, sys
from eventlake.cli import entry_point
marker, sys.argv = sys.argv[1], ["eventlake", *sys.argv[2:]]
atexit.register(lambda: open(marker, "w").write("hooks ran"))
print("before the job", end="")  # buffered: the exit must flush it
entry_point()
"""


@pytest.mark.parametrize("ok", [True, False])
def test_the_command_exits_with_its_code_after_its_exit_hooks_and_output(inputs, tmp_path, ok):
    """The command ends without the interpreter's teardown: the code, the buffered output and
    the exit hooks (atexit) must all still be there."""
    args = _import_args(inputs) if ok else ["import", "--events", str(tmp_path / "missing.jsonl"), "--store",
                                            str(tmp_path / "store")]
    marker = tmp_path / "hooks"
    done = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(marker), *args], capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode == 0) == ok, done.stderr
    assert done.stdout.startswith("before the job") and marker.read_text() == "hooks ran"
    if ok:
        assert "stored" in done.stdout and done.stderr == ""
    else:
        assert done.returncode == 1 and "missing.jsonl" in done.stderr and "Traceback" not in done.stderr
