"""Summaries are typed values: the jobs return them, the CLI prints them, history reads them."""

from __future__ import annotations

import json

import pytest

from eventlake.cli import format_summary, main
from eventlake.config import load_config
from eventlake.pipelines.history import store_history
from eventlake.pipelines.import_events import run_import
from eventlake.pipelines.purge import run_purge
from eventlake.pipelines.vacuum import vacuum
from eventlake.summaries import ImportSummary, PurgeSummary, VacuumSummary, summary_of
from tests.pipelines.conftest import make_catalog, make_events


def test_jobs_return_typed_summaries_that_still_read_as_mappings(tmp_path):
    make_events(tmp_path / "e.jsonl", 100)
    make_catalog(tmp_path / "c.json")
    s = run_import(load_config(None, {"events": [str(tmp_path / "e.jsonl")], "catalog": str(tmp_path / "c.json"),
                                      "store": str(tmp_path / "store"), "summary": str(tmp_path / "s.json")}))
    assert isinstance(s, ImportSummary) and s.records == s["records"] == 100 and s.version == 0
    assert s.records == s.stored + s.duplicates + s.errors
    assert json.loads((tmp_path / "s.json").read_text()) == s.to_dict() == dict(s)
    assert "note" not in s and s.get("note") is None  # reported keys only
    from eventlake.config import PurgeConfig

    p = run_purge(PurgeConfig(store=str(tmp_path / "store"), filter='visitorId = "v5"', force=True))
    assert isinstance(p, PurgeSummary) and p.dry_run is False and p.purged == p["purged"] > 0
    v = vacuum(str(tmp_path / "store"), dry_run=True)
    assert isinstance(v, VacuumSummary) and v.files_removed == 0 and v.paths == []
    assert "records" in format_summary(s) and "purged" in format_summary(p)


def test_history_reads_each_version_as_its_jobs_summary(tmp_path, capsys):
    make_events(tmp_path / "e.jsonl", 50)
    make_catalog(tmp_path / "c.json")
    assert main(["import", "--events", str(tmp_path / "e.jsonl"), "--catalog", str(tmp_path / "c.json"),
                 "--store", str(tmp_path / "store")]) == 0
    [entry] = store_history(str(tmp_path / "store"))
    typed = summary_of(entry["job"], entry["counts"])
    assert isinstance(typed, ImportSummary) and typed.records == 50


def test_a_value_of_the_wrong_type_is_refused_and_unknown_keys_are_kept():
    with pytest.raises(TypeError, match="ImportSummary.records"):
        ImportSummary.from_dict({"records": "many"})
    later = ImportSummary.from_dict({"records": 3, "a_count_of_a_later_version": 7})
    assert later["a_count_of_a_later_version"] == 7 and later.extra == {"a_count_of_a_later_version": 7}
    assert summary_of("a-job-of-a-later-version", {"run_id": "r", "x": 1})["x"] == 1
