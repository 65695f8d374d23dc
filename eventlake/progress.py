"""Progress of a long import on the terminal: files and bytes read of the total, events per
second, errors so far, time left; with the local runner's worker processes as with one process.

Workers cannot reach the driver's terminal, and Beam's metrics are read only after the
pipeline ends. So each parsing worker keeps its running totals in a small JSON file of its
own under a local folder named after the run (written at most twice a second, replaced
atomically), and a thread of the driver sums the folder's files about once a second and draws
the bar with ``rich``. Work on another machine (a distributed runner) writes files the driver
cannot see: the bar then stays at zero, and the job is unaffected.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time

_WRITE_EVERY_SECONDS = 0.5


def progress_dir(run_id: str) -> str:
    return os.path.join(tempfile.gettempdir(), "eventlake-progress", run_id)


class ProgressReporter:
    """A worker's running totals for one run (one file per process and thread)."""

    def __init__(self, directory: str):
        self._path = os.path.join(directory, f"{os.getpid()}-{threading.get_ident()}.json")
        self._totals = {"bytes": 0, "records": 0, "errors": 0, "ranges": {}}
        self._written = 0.0
        os.makedirs(directory, exist_ok=True)

    def add(self, *, bytes_read: int = 0, records: int = 0, errors: int = 0, finished: str | None = None) -> None:
        """Add to the totals; ``finished``: the file of a byte range read to its end."""
        totals = self._totals
        totals["bytes"] += bytes_read
        totals["records"] += records
        totals["errors"] += errors
        if finished is not None:
            totals["ranges"][finished] = totals["ranges"].get(finished, 0) + 1
        now = time.monotonic()
        if finished is not None or now - self._written >= _WRITE_EVERY_SECONDS:
            self._written = now
            temporary = f"{self._path}.tmp"
            try:
                with open(temporary, "w") as handle:
                    json.dump(totals, handle)
                os.replace(temporary, self._path)
            except OSError:
                pass  # the run ended and its folder went: nothing left to show


def read_totals(directory: str) -> dict:
    """Every worker's totals under ``directory``, summed (``ranges``: file -> ranges read)."""
    out: dict = {"bytes": 0, "records": 0, "errors": 0, "ranges": {}}
    try:
        names = [n for n in os.listdir(directory) if n.endswith(".json")]
    except OSError:
        return out
    for name in names:
        try:
            with open(os.path.join(directory, name)) as handle:
                found = json.load(handle)
        except (OSError, ValueError):
            continue
        for key in ("bytes", "records", "errors"):
            out[key] += int(found.get(key, 0))
        for path, n in found.get("ranges", {}).items():
            out["ranges"][path] = out["ranges"].get(path, 0) + int(n)
    return out


class ProgressDisplay:
    """The bar on stderr while ``with`` lasts; the folder is removed at the end."""

    def __init__(self, directory: str, total_bytes: int, ranges_per_file: dict[str, int], label: str = "import"):
        self._directory, self._total, self._label = directory, total_bytes, label
        self._ranges = ranges_per_file  # a file is read when all its ranges are
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ProgressDisplay:
        os.makedirs(self._directory, exist_ok=True)
        self._thread = threading.Thread(target=self._draw, name="eventlake-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        import shutil

        shutil.rmtree(self._directory, ignore_errors=True)

    def _draw(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        started = time.monotonic()
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[rate]}"),
                   TextColumn("{task.fields[errors]}"), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(self._label, total=max(self._total, 1), rate="", errors="")
            while True:
                stopping = self._stop.wait(1.0)
                totals = read_totals(self._directory)
                seconds = max(time.monotonic() - started, 1e-6)
                files = sum(1 for path, n in totals["ranges"].items() if n >= self._ranges.get(path, 1))
                bar.update(task, completed=min(totals["bytes"], self._total),
                           description=f"{self._label} {files}/{len(self._ranges)} files",
                           rate=f"{totals['records'] / seconds:,.0f} events/s",
                           errors=f"{totals['errors']:,} errors")
                if stopping:  # drawn once more with the final totals
                    break


__all__ = ["ProgressDisplay", "ProgressReporter", "progress_dir", "read_totals"]
