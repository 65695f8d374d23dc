"""``--keep-rejects`` keeps every rejected record whole; ``--replay`` imports them again under a
fixed config, deduplicated against the store; a forced purge reaches both."""

from __future__ import annotations

import json

import pytest

from eventlake.cli import main
from tests.pipelines.conftest import assert_counts_add_up, stored_rows


def _events(path, n: int = 300) -> int:
    """Events where every fifth has an event type Retail does not know; one line is broken,
    one record is long (over the samples' kilobyte). Returns how many are rejected."""
    lines = []
    for i in range(n):
        kind = "page-visit" if i % 5 == 0 else "detail-page-view"
        record = {"eventType": kind, "visitorId": f"v{i % 7}", "eventTime": f"2024-03-01T10:{i % 60:02d}:00Z",
                  "productDetails": [{"product": {"id": f"p{i}"}}]}
        if i == 5:
            record["attributes"] = {"note": {"text": ["x" * 3000]}}
        lines.append(json.dumps(record))
    lines.insert(7, '{"eventType": "search", "visitorId": ')
    path.write_text("\n".join(lines) + "\n")
    return n // 5 + 1


def _rejects(store) -> list[dict]:
    [path] = list((store / "_errors").glob("*/rejects.jsonl"))
    return [json.loads(line)["details"][0] for line in path.read_text().splitlines()]


def test_every_rejected_record_is_kept_whole_with_its_file_line(tmp_path):
    rejected = _events(tmp_path / "e.jsonl")
    (tmp_path / "small.yaml").write_text("import:\n  split_bytes: 65536\n  max_error_samples: 3\n")
    summary = tmp_path / "s.json"
    assert main(["import", "--events", str(tmp_path / "e.jsonl"), "--store", str(tmp_path / "store"), "--config",
                 str(tmp_path / "small.yaml"), "--keep-rejects", "--max-error-ratio", "0.5",
                 "--summary", str(summary)]) == 0
    s = json.loads(summary.read_text())
    assert s["errors"] == rejected
    rejects = _rejects(tmp_path / "store")
    assert len(rejects) == rejected  # not capped like the 3 samples
    lines = (tmp_path / "e.jsonl").read_text().splitlines()
    for r in rejects:  # the line is the file's own (ranges were read mid-file), the record whole
        assert lines[r["line"] - 1] == r["record"] and r["format"] == "retail"
    long = [r for r in rejects if "x" * 3000 in r["record"]]
    assert len(long) == 1
    samples = [json.loads(line)["details"][0] for line in
               next((tmp_path / "store" / "_errors").glob("*/errors.jsonl")).read_text().splitlines()]
    assert len(samples) == 3 and all(len(x["record"].encode()) <= 1024 for x in samples)
    assert not list((tmp_path / "store" / "_errors").glob("*/rejects-parts"))


def test_replay_imports_the_rejected_records_under_a_fixed_config_once(tmp_path):
    rejected = _events(tmp_path / "e.jsonl")
    store = tmp_path / "store"
    assert main(["import", "--events", str(tmp_path / "e.jsonl"), "--store", str(store), "--keep-rejects",
                 "--max-error-ratio", "0.1"]) == 1  # refused: too many errors; nothing committed, rejects kept
    assert not (store / "_delta_log").exists() or not stored_rows(store)
    [run] = [p.name for p in (store / "_errors").iterdir() if p.is_dir()]
    # the store first gets the good records, then the rejected ones come back with a mapping
    assert main(["import", "--events", str(tmp_path / "e.jsonl"), "--store", str(store), "--max-error-ratio", "0.5"]) == 0
    (tmp_path / "fix.yaml").write_text("import:\n  event_type_map:\n    page-visit: home-page-view\n")
    summary = tmp_path / "replay.json"
    assert main(["import", "--replay", run, "--store", str(store), "--config", str(tmp_path / "fix.yaml"),
                 "--summary", str(summary)]) == 0
    s = json.loads(summary.read_text())
    assert_counts_add_up(s)
    assert s["replayed_records"] == rejected and s["records"] == rejected
    # still rejected: the broken line, and the long record's attribute (over Retail's limit)
    assert (s["stored"], s["errors"]) == (rejected - 2, 2)
    rows = stored_rows(store)
    assert sum(r["event_type"] == "home-page-view" for r in rows) == rejected - 2
    assert all(r["source_event_type"] == "page-visit" for r in rows if r["event_type"] == "home-page-view")
    origins = [json.loads(line) for line in next(store.glob(f"_errors/{run}/replay-*/origins.jsonl")).read_text()
               .splitlines()]
    assert {o["source_line"] for o in origins} == {r["line"] for r in _rejects(store)}
    # again: the same records are duplicates now
    assert main(["import", "--replay", run, "--store", str(store), "--config", str(tmp_path / "fix.yaml"),
                 "--summary", str(summary)]) == 0
    again = json.loads(summary.read_text())
    assert (again["stored"], again["duplicates"]) == (0, rejected - 2)


def test_a_csv_format_replays_under_its_files_header(tmp_path):
    header = "uid,item_id,event,time,scene"
    (tmp_path / "b.csv").write_text(f"{header}\nu1,i1,click,1709708439,home\nu:2,i2,click,1709708440,home\n")
    store = tmp_path / "store"
    summary = tmp_path / "s.json"
    assert main(["import", "--events", str(tmp_path / "b.csv"), "--format", "pairec-behavior", "--store", str(store),
                 "--keep-rejects", "--max-error-ratio", "0.9", "--summary", str(summary)]) == 0
    first = json.loads(summary.read_text())
    [run] = [p.name for p in (store / "_errors").iterdir() if p.is_dir()]
    [reject] = _rejects(store)
    assert (reject["format"], reject["line"], reject["record"]) == ("pairec-behavior", 3, "u:2,i2,click,1709708440,home")
    # replayed as it is, the row fails again for the same reason: it was read under its header
    assert main(["import", "--replay", run, "--store", str(store), "--max-error-ratio", "1",
                 "--summary", str(summary)]) == 0
    again = json.loads(summary.read_text())
    assert (again["records"], again["errors"], again["errors_by_reason"]) == (1, 1, first["errors_by_reason"])
    replayed = next(store.glob(f"_errors/{run}/replay-*/000-b.csv"))
    assert replayed.read_text().splitlines() == [header, "u:2,i2,click,1709708440,home"]


def test_a_forced_purge_leaves_no_rejected_copy_of_the_visitor(tmp_path):
    _events(tmp_path / "e.jsonl")
    store = tmp_path / "store"
    assert main(["import", "--events", str(tmp_path / "e.jsonl"), "--store", str(store), "--keep-rejects",
                 "--max-error-ratio", "0.5"]) == 0
    [run] = [p.name for p in (store / "_errors").iterdir() if p.is_dir()]
    (tmp_path / "fix.yaml").write_text("import:\n  event_type_map:\n    page-visit: home-page-view\n")
    assert main(["import", "--replay", run, "--store", str(store), "--config", str(tmp_path / "fix.yaml")]) == 0
    replayed = next(store.glob(f"_errors/{run}/replay-*/000-e.jsonl"))
    size = replayed.stat().st_size
    assert '"v3"' in replayed.read_text()
    assert main(["purge", "--store", str(store), "--filter", 'visitorId = "v3"', "--force"]) == 0
    for path in store.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".json", ".csv"):
            assert '"v3"' not in path.read_text(), path
    assert replayed.stat().st_size == size  # blanked in place: other stored events keep their offsets
    assert not [r for r in stored_rows(store) if r["visitor_id"] == "v3"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--replay", "nosuchrun"], "was the run made with --keep-rejects"),
    (["--replay", "x", "--events", "e.jsonl"], "give --events or --replay"),
])
def test_bad_replays_are_refused_in_one_line(tmp_path, capsys, flags, message):
    code = main(["import", "--store", str(tmp_path / "store"), *flags])
    err = capsys.readouterr().err
    assert code in (1, 2) and message in err and len(err.strip().splitlines()) == 1
