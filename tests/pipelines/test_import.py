"""The import job end to end, through the CLI, on real sample files and generated ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from eventlake.cli import main
from eventlake.io.delta_log import read_snapshot
from tests.pipelines.conftest import (
    assert_counts_add_up,
    import_generated,
    make_catalog,
    make_events,
    run,
    stored_rows,
    summary_of,
)


def test_google_user_events_are_stored_and_joined(retail_data, tmp_path):
    summary = tmp_path / "summary.json"
    code = run("--events", retail_data / "user_events.json", "--catalog", retail_data / "products.json",
               "--store", tmp_path / "store", "--summary", summary)
    assert code == 0
    s = summary_of(summary)
    assert (s["records"], s["stored"], s["joined"], s["errors"]) == (4, 4, 4, 0)
    assert_counts_add_up(s)
    rows = stored_rows(tmp_path / "store")
    assert sorted(r["event_type"] for r in rows) == ["detail-page-view", "home-page-view", "search", "search"]
    detail = next(r for r in rows if r["event_type"] == "detail-page-view")
    assert detail["product_details"][0]["product"]["id"] == "GGCOGAEC100616"
    assert detail["product_details"][0]["product"]["title"]  # a catalog field joined in
    assert str(detail["event_date"]) == "2022-02-23"
    assert not (tmp_path / "store" / "_tmp").exists()  # the run's catalog snapshot is cleaned up


def test_google_invalid_sample_gives_three_stored_and_one_error_at_line_two(retail_data, tmp_path):
    summary = tmp_path / "summary.json"
    errors = tmp_path / "errors"
    code = run("--events", retail_data / "user_events_some_invalid.json", "--catalog", retail_data / "products.json",
               "--store", tmp_path / "store", "--summary", summary, "--errors", errors)
    assert code == 0
    s = summary_of(summary)
    assert (s["stored"], s["joined"], s["errors"]) == (3, 3, 1)
    assert s["errors_by_reason"] == {"INVALID_EVENT_TYPE": 1}
    assert_counts_add_up(s)
    assert (errors / "latest").read_text().strip() == s["run_id"]
    [sample] = [json.loads(line) for line in (errors / s["run_id"] / "errors.jsonl").read_text().splitlines()]
    assert sample["code"] == 3
    detail = sample["details"][0]
    assert (detail["line"], detail["field"], detail["reason"]) == (2, "eventType", "INVALID_EVENT_TYPE")
    assert detail["source"].endswith("user_events_some_invalid.json")
    assert '"eventType":"invalid"' in detail["record"]
    assert len(stored_rows(tmp_path / "store")) == 3


def test_invalid_catalog_products_are_catalog_errors(retail_data, tmp_path):
    errors = tmp_path / "errors"
    summary = tmp_path / "s.json"
    assert run("--events", retail_data / "user_events.json", "--catalog", retail_data / "products_some_invalid.json",
               "--store", tmp_path / "store", "--errors", errors, "--summary", summary) == 0
    s = summary_of(summary)
    assert s["catalog_errors"] == 1 and s["catalog_products"] == 2
    sample = json.loads((errors / s["run_id"] / "catalog_errors.jsonl").read_text())["details"][0]
    assert (sample["line"], sample["field"], sample["reason"]) == (1, "availability", "INVALID_VALUE")
    assert s["unjoined"] == 1  # the detail-page-view's product is not in this small catalog
    row = next(r for r in stored_rows(tmp_path / "store") if r["event_type"] == "detail-page-view")
    assert (row["joined"], row["missing_product_ids"]) == (False, ["GGCOGAEC100616"])










def test_counts_add_up_and_the_table_holds_exactly_the_stored_rows(generated):
    code, s = import_generated(generated)
    assert code == 0
    assert s["records"] == 1200 and s["files"] == 2
    assert s["errors"] == 24 and s["errors_by_reason"] == {"INVALID_JSON": 24}
    assert s["unjoined"] == 120  # every tenth event names an unknown product
    assert_counts_add_up(s)
    rows = stored_rows(generated / "store")
    assert len(rows) == s["stored"] == 1176
    assert len({(r["source_uri"], r["source_offset"]) for r in rows}) == len(rows)
    assert {str(r["event_date"]) for r in rows} == {"2024-03-01", "2024-03-02", "2024-03-03"}


def test_a_second_run_skips_imported_files_and_reimport_finds_only_duplicates(generated):
    import_generated(generated)
    code, again = import_generated(generated)
    assert code == 0 and again["skipped_files"] == 2 and again["records"] == 0
    assert read_snapshot(str(generated / "store")).version == 0
    code, redo = import_generated(generated, "--reimport")
    assert code == 0
    assert (redo["stored"], redo["duplicates"], redo["errors"]) == (0, 1176, 24)
    assert_counts_add_up(redo)
    assert len(stored_rows(generated / "store")) == 1176
    assert redo["version"] is None and redo["note"] == "nothing to change"  # no empty commit
    assert read_snapshot(str(generated / "store")).version == 0


def test_duplicates_within_a_run_are_dropped_once(generated):
    source = (generated / "events" / "a.jsonl").read_text().splitlines()
    # The same events again, keys reordered, in another file.
    reordered = [json.dumps(dict(reversed(list(json.loads(line).items())))) for line in source[:100] if line.endswith("}")]
    (generated / "events" / "c.jsonl").write_text("\n".join(reordered) + "\n")
    code, s = import_generated(generated)
    assert code == 0
    assert s["duplicates"] == len(reordered)
    assert_counts_add_up(s)
    rows = stored_rows(generated / "store")
    assert len(rows) == s["stored"]
    assert not any(r["source_uri"].endswith("c.jsonl") for r in rows)  # the first copy is the one kept


def test_too_many_errors_fails_and_leaves_the_store_as_it_was(generated):
    import_generated(generated)
    before = sorted(os.path.relpath(os.path.join(d, f), generated / "store")
                    for d, _, files in os.walk(generated / "store") for f in files if "_errors" not in d)
    make_events(generated / "events" / "d.jsonl", 100, bad_every=2)
    code, s = import_generated(generated, "--max-error-ratio", "0.1")
    assert code == 1
    assert s["status"] == "failed" and "over the limit" in s["failure"]
    after = sorted(os.path.relpath(os.path.join(d, f), generated / "store")
                   for d, _, files in os.walk(generated / "store") for f in files if "_errors" not in d)
    assert after == before


def test_cli_failures_are_one_line_without_traceback(tmp_path, retail_data):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "eventlake.cli", "import", "--events", str(tmp_path / "nothing*.json"),
         "--catalog", str(retail_data / "products.json"), "--store", str(tmp_path / "store")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"eventlake import: no event file matches {tmp_path / 'nothing*.json'} "
                                                  "(names of retail files must end in .json or .jsonl, optionally .gz, "
                                                  ".bz2 or .zst)"]
    assert not (tmp_path / "store").exists()


def test_missing_catalog_and_bad_config_key_are_refused(tmp_path, retail_data, capsys):
    assert run("--events", retail_data / "user_events.json", "--catalog", tmp_path / "none.json",
               "--store", tmp_path / "store") == 1
    assert "cannot read the catalog" in capsys.readouterr().err
    config = tmp_path / "job.yaml"
    config.write_text("import:\n  evnts: [a.json]\n")
    assert main(["import", "--config", str(config)]) == 2
    assert f"{config}::evnts: unknown setting" in capsys.readouterr().err


def test_an_import_committed_meanwhile_is_kept_and_its_events_not_stored_twice(generated):
    import apache_beam as beam
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from eventlake.config import load_config
    from eventlake.pipelines.import_events import ImportEvents, plan_import, run_import

    (generated / "other").mkdir()
    shutil.copy(generated / "events" / "a.jsonl", generated / "other" / "a-copy.jsonl")
    settings = {"catalog": str(generated / "catalog.json"), "store": str(generated / "store")}
    slow = plan_import(load_config(None, {**settings, "events": [str(generated / "events" / "a.jsonl")]}))
    fast = run_import(load_config(None, {**settings, "events": [str(generated / "other" / "*.jsonl")]}))
    assert fast["version"] == 0 and fast["stored"] == 686
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        _ = pipeline | ImportEvents(slow)
    s = summary_of(generated / "store" / "_errors" / slow.commit.run_id / "summary.json")
    assert s["version"] == 1 and (s["stored"], s["duplicates"]) == (0, 686)
    assert_counts_add_up(s)
    assert len(stored_rows(generated / "store")) == 686


def test_a_pattern_matching_nothing_fails_unless_allowed(generated, capsys):
    tmp = generated
    args = ["--catalog", tmp / "catalog.json", "--store", tmp / "store"]
    assert run("--events", tmp / "events" / "a.jsonl", "--events", tmp / "events" / "typo.jsonl", *args) == 1
    err = capsys.readouterr().err
    assert "typo.jsonl" in err and "--allow-missing" in err and len(err.strip().splitlines()) == 1
    assert not (tmp / "store").exists()
    assert run("--events", tmp / "events" / "a.jsonl", "--events", tmp / "events" / "typo.jsonl", "--allow-missing",
               *args) == 0
    assert len(stored_rows(tmp / "store")) > 0


def test_a_directory_is_refused_with_a_glob_hint(generated, capsys):
    for given in (generated / "events", f"{generated / 'events'}/"):
        assert run("--events", given, "--catalog", generated / "catalog.json", "--store", generated / "store") == 1
        err = capsys.readouterr().err
        assert "is a directory" in err and "events/*.jsonl" in err
    assert run("--events", generated / "events" / "a.jsonl", "--catalog", generated, "--store", generated / "store") == 1
    assert "is a directory" in capsys.readouterr().err
    assert not (generated / "store").exists()


def test_a_path_that_exists_is_taken_literally_glob_characters_and_all(tmp_path):
    make_events(tmp_path / "with space [1].json", 30, bad_every=0)
    make_events(tmp_path / "with space 1.json", 30, start=30, bad_every=0)  # what [1] would match as a glob
    make_catalog(tmp_path / "catalog.json")
    assert run("--events", tmp_path / "with space [1].json", "--catalog", tmp_path / "catalog.json",
               "--store", tmp_path / "store") == 0
    assert {r["source_uri"] for r in stored_rows(tmp_path / "store")} == {str(tmp_path / "with space [1].json")}


def test_runs_sharing_an_errors_folder_each_keep_their_samples(generated):
    errors = generated / "errors"
    code, first = import_generated(generated, "--errors", errors)
    assert code == 0 and first["errors"] > 0
    code, second = import_generated(generated, "--errors", errors, "--reimport")
    assert code == 0 and second["run_id"] != first["run_id"]
    for s in (first, second):
        assert s["errors_path"] == str(errors / s["run_id"])
        lines = (errors / s["run_id"] / "errors.jsonl").read_text().splitlines()
        assert len(lines) == s["errors"]
    assert (errors / "latest").read_text().strip() == second["run_id"]


def test_a_second_run_lists_the_files_it_skipped(generated, capsys):
    import_generated(generated)
    capsys.readouterr()
    code, s = import_generated(generated)
    assert code == 0 and s["skipped_files"] == 2
    assert s["skipped_paths"] == sorted(str(p) for p in (generated / "events").glob("*.json*") if p.suffix != ".txt")
    out = capsys.readouterr().out
    assert "--reimport" in out and str(generated / "events" / "a.jsonl") in out



def test_every_job_refuses_a_store_whose_data_file_is_missing(generated, capsys):
    import_generated(generated)
    store = generated / "store"
    lost = sorted(read_snapshot(str(store)).files)[0]
    (store / lost).unlink()
    capsys.readouterr()
    for job in (["import", "--events", generated / "events" / "*.json*", "--catalog", generated / "catalog.json",
                 "--reimport"],
                ["rejoin", "--catalog", generated / "catalog.json"],
                ["purge", "--filter", 'visitorId = "v1"', "--force"]):
        assert main([str(a) for a in job] + ["--store", str(store)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is damaged" in err and lost in err, job
    assert read_snapshot(str(store)).version == 0


def _copy_import(generated):
    from eventlake.config import load_config

    import_generated(generated)
    (generated / "other").mkdir()
    shutil.copy(generated / "events" / "a.jsonl", generated / "other" / "a-copy.jsonl")
    return load_config(None, {"events": [str(generated / "other" / "*.jsonl")], "store": str(generated / "store"),
                              "catalog": str(generated / "catalog.json")})


def _purge_v5(generated) -> dict:
    from eventlake.config import PurgeConfig
    from eventlake.pipelines.purge import run_purge

    return run_purge(PurgeConfig(store=str(generated / "store"), filter='visitorId = "v5"', force=True))


def _assert_purge_then_import(generated, purged: dict, imported: dict) -> None:
    """The outcome of the serial order purge -> import: the copy's v5 events are stored."""
    rows = stored_rows(generated / "store")
    copy_v5 = [r for r in rows if r["visitor_id"] == "v5"]
    assert len(copy_v5) == imported["stored"] > 0
    assert {r["source_uri"] for r in copy_v5} == {str(generated / "other" / "a-copy.jsonl")}
    assert len(rows) == 1176 - purged["purged"] + imported["stored"]


def test_a_purge_committed_after_the_import_planned_is_seen_by_its_dedupe(generated):
    from eventlake.pipelines.import_events import execute_import, plan_import

    config = _copy_import(generated)
    slow = plan_import(config)  # read version 0
    purged = _purge_v5(generated)  # version 1, before the import's pipeline runs
    s = execute_import(slow)
    assert s["status"] == "ok" and s["version"] == 2
    _assert_purge_then_import(generated, purged, s)


def test_a_purge_landing_between_the_imports_dedupe_and_commit_makes_it_run_again(generated, monkeypatch):
    """The import dropped the copy's events as duplicates of twins the purge then deletes, before
    the import commits: committing would lose the v5 events, so it conflicts and runs again."""
    import eventlake.pipelines.import_events as import_events

    config = _copy_import(generated)
    original, landed = import_events.commit_import, []

    def purge_lands_first(*args, **kwargs):
        if not landed:
            landed.append(_purge_v5(generated))
        return original(*args, **kwargs)

    monkeypatch.setattr(import_events, "commit_import", purge_lands_first)
    s = import_events.run_import(config)
    assert s["status"] == "ok" and s["version"] == 2 and landed[0]["version"] == 1
    _assert_purge_then_import(generated, landed[0], s)


def test_the_import_built_from_its_public_parts_in_a_pipeline_of_ones_own(generated):
    """ReadCatalog, ReadEvents, ValidateEvents, FingerprintEvents, JoinCatalog and
    WriteToEventStore compose into the import, with a step of the user's own between them."""
    import apache_beam as beam
    import pyarrow.compute as pc
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from eventlake.config import load_config
    from eventlake.errors import ERRORS
    from eventlake.pipelines.import_events import WriteToEventStore, plan_import
    from eventlake.transforms.catalog import ReadCatalog
    from eventlake.transforms.fingerprint import FingerprintEvents
    from eventlake.transforms.join import JoinCatalog
    from eventlake.transforms.parse import STATS
    from eventlake.transforms.read_events import ReadEvents
    from eventlake.transforms.validate import ValidateEvents

    def shout(batch):  # the user's own step: visitor ids in upper case
        return batch.set_column(batch.schema.get_field_index("visitor_id"), "visitor_id",
                                pc.utf8_upper(batch.column("visitor_id")))

    events = [str(generated / "events" / "*.json*")]
    settings = {"events": events, "catalog": str(generated / "catalog.json")}
    expected = run("--events", events[0], "--catalog", generated / "catalog.json", "--store", generated / "reference")
    assert expected == 0
    plan = plan_import(load_config(None, {**settings, "store": str(generated / "store")}))
    fields = plan.commit.catalog_fields
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        catalog = pipeline | "ReadCatalog" >> ReadCatalog(plan.catalog_paths, fields, plan.commit.temp_dir)
        read = pipeline | "ReadEvents" >> ReadEvents(events, "retail")
        valid = read.events | "Validate" >> ValidateEvents()
        joined = (valid.events | "Shout" >> beam.Map(shout) | "Fingerprint" >> FingerprintEvents()
                  | "Join" >> JoinCatalog(beam.pvalue.AsSingleton(catalog["products"]), fields))
        summary = {"events": joined, "errors": (read[ERRORS], valid[ERRORS]), "stats": read[STATS],
                   "catalog": catalog["products"], "catalog_errors": catalog[ERRORS]} | WriteToEventStore(plan.commit)
        _ = summary
    s = summary_of(generated / "store" / "_errors" / plan.commit.run_id / "summary.json")
    assert_counts_add_up(s)
    reference = stored_rows(generated / "reference")
    ours = stored_rows(generated / "store")
    assert s["stored"] == len(ours) == len(reference) and s["version"] == 0
    assert sorted(r["visitor_id"].upper() for r in reference) == sorted(r["visitor_id"] for r in ours)


def test_read_events_refuses_a_pattern_that_matches_nothing(tmp_path):
    import pytest

    from eventlake.transforms.read_events import ReadEvents

    with pytest.raises(ValueError, match="no personalize event file matches"):
        ReadEvents([str(tmp_path / "*.csv")], "personalize")
    with pytest.raises(ValueError, match="either patterns or ranges"):
        ReadEvents()
