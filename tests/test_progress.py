"""Progress on a terminal: workers' totals summed, the bar drawn on a real pseudo-terminal with
the local runner's worker processes, nothing drawn when stderr is not a terminal."""

from __future__ import annotations

import os
import pty
import re
import sys

from eventlake.progress import ProgressReporter, read_totals
from tests.pipelines.conftest import make_events


def test_reporters_of_several_workers_are_summed(tmp_path):
    first, second = ProgressReporter(str(tmp_path)), ProgressReporter(str(tmp_path))
    second._path = str(tmp_path / "other.json")  # another worker's file  # noqa: SLF001
    first.add(bytes_read=10, records=3, errors=1, finished="a.jsonl")
    second.add(bytes_read=5, records=2, finished="a.jsonl")
    second.add(bytes_read=1, finished="b.jsonl")
    assert read_totals(str(tmp_path)) == {"bytes": 16, "records": 5, "errors": 1, "ranges": {"a.jsonl": 2, "b.jsonl": 1}}
    assert read_totals(str(tmp_path / "gone")) == {"bytes": 0, "records": 0, "errors": 0, "ranges": {}}


def _on_terminal(args: list[str]) -> tuple[int, str]:
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "eventlake.cli", *args],
                  {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "160"})
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data.decode(errors="replace"))


def test_the_bar_shows_bytes_parts_and_errors_with_worker_processes(tmp_path):
    make_events(tmp_path / "a.jsonl", 20000)
    make_events(tmp_path / "b.jsonl", 20000, start=20000)
    (tmp_path / "ranges.yaml").write_text("import:\n  split_bytes: 1048576\n  block_bytes: 262144\n")
    code, out = _on_terminal(["import", "--events", str(tmp_path / "*.jsonl"), "--store", str(tmp_path / "store"),
                              "--config", str(tmp_path / "ranges.yaml"), "--max-error-ratio", "0.5",
                              "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert code == 0, out
    size = sum(os.path.getsize(tmp_path / n) for n in ("a.jsonl", "b.jsonl")) / 1e6
    drawn = re.findall(r"events (\d+)/(\d+) files .*? ([\d.]+)/([\d.]+) MB .*? ([\d,]+) errors", out)
    assert drawn, out[-2000:]
    last = drawn[-1]
    assert last[0] == last[1] == "2" and float(last[2]) == float(last[3]) == round(size, 1)
    assert int(last[4].replace(",", "")) == 800  # every 50th line is broken
    assert "workers" in out and "2 (multi_processing)" in out


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path, capfd):
    from eventlake.cli import main

    make_events(tmp_path / "a.jsonl", 100)
    assert main(["import", "--events", str(tmp_path / "a.jsonl"), "--store", str(tmp_path / "store"),
                 "--max-error-ratio", "0.5"]) == 0
    assert " files " not in capfd.readouterr().err
