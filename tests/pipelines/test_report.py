"""The quality report: its figures checked against DuckDB over the same files, the page drawn in
a real headless Chromium (it loads, and every chart is there), and a report per run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import deltalake
import duckdb
import pytest

from eventlake.cli import main
from eventlake.report import render_html, store_report
from tests.pipelines.conftest import import_generated


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium package)")
    return found


def test_the_figures_match_duckdb_over_the_stores_files(generated):
    code, summary = import_generated(generated, "--max-error-ratio", "0.5")
    assert code == 0
    store = str(generated / "store")
    data = store_report(store)
    files = [f.removeprefix("file://") for f in deltalake.DeltaTable(store).file_uris()]
    con = duckdb.connect()
    con.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet({json.dumps(files)}, hive_partitioning=true)")
    assert data.events == con.execute("SELECT count(*) FROM ev").fetchone()[0] == summary["stored"]
    per_type = dict(con.execute("SELECT event_type, count(*) FROM ev GROUP BY 1").fetchall())
    assert data.per_day.sum().to_dict() == per_type
    missing = dict(con.execute("SELECT id, count(*) FROM (SELECT unnest(missing_product_ids) AS id FROM ev) "
                               "GROUP BY id").fetchall())
    assert data.missing_products and all(missing[k] == n for k, n in data.missing_products)
    assert data.missing_products[0][1] == max(missing.values())
    visitors = dict(con.execute("SELECT visitor_id, count(*) FROM ev GROUP BY 1").fetchall())
    assert data.top_visitors[0][1] == max(visitors.values()) and all(visitors[k] == n for k, n in data.top_visitors)
    joined = con.execute("SELECT avg(joined::INT) FROM ev").fetchone()[0]
    assert abs(data.joined_share.mean() - joined) < 0.05
    assert data.errors_by_reason == summary["errors_by_reason"] and data.sample_links
    assert data.catalog_products == summary["catalog_products"]
    # the Personalize readiness figures, as export --format personalize checks them
    from eventlake.report import personalize_readiness

    checks = {c["check"]: c for c in personalize_readiness(data)["checks"]}
    interactions = con.execute("SELECT count(*) FROM (SELECT unnest(product_details) FROM ev)").fetchone()[0]
    repeat = con.execute("SELECT count(*) FROM (SELECT visitor_id FROM ev GROUP BY 1 HAVING count(*) >= 2)").fetchone()[0]
    assert checks["interactions"]["value"] == interactions and checks["interactions"]["status"] == "ok"
    assert data.repeat_users == repeat and checks["users_with_2_interactions"]["status"] == "ok"
    assert checks["event_types_and_metadata_columns"]["value"] == len(per_type)
    assert "id='personalize-readiness'" in render_html(data)


def test_the_page_loads_in_headless_chromium_with_every_chart(generated, tmp_path):
    browser = _chromium()
    code, _ = import_generated(generated, "--max-error-ratio", "0.5")
    assert code == 0
    page = tmp_path / "report.html"
    assert main(["report", "--store", str(generated / "store"), "--output", str(page)]) == 0
    data = store_report(str(generated / "store"))
    assert len(data.charts) == 7
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<title>eventlake report" in dom
    figures = re.findall(r"<figure class=\"chart\" id=\"([a-z-]+)\">.*?</figure>", dom, re.S)
    assert figures == data.charts
    for chart in data.charts:  # each figure holds a drawn SVG
        body = dom.split(f'id="{chart}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in body and ("<path" in body or "<rect" in body)
    assert "CONSOLE" not in done.stderr and "Uncaught" not in done.stderr  # nothing went wrong loading it
    assert not re.search(r"(src|href)=[\"']https?:", page.read_text())  # self-contained: nothing fetched
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1100,1600", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # drawn, not blank


def test_each_import_rejoin_and_purge_writes_its_runs_report(generated, tmp_path):
    code, summary = import_generated(generated, "--max-error-ratio", "0.5")
    assert code == 0
    runs = generated / "store" / "_runs"
    page = (runs / "import.html").read_text()
    assert f"eventlake import {summary['run_id']}" in page and "id='events-per-day'" in page
    summaries = list(generated.glob("summary-*.json"))
    assert summaries and (generated / summaries[0].name.replace(".json", ".html")).exists()  # beside --summary too
    assert main(["rejoin", "--store", str(generated / "store"), "--catalog", str(generated / "catalog.json")]) == 0
    assert "eventlake rejoin" in (runs / "rejoin.html").read_text()
    assert main(["purge", "--store", str(generated / "store"), "--filter", 'visitorId = "v5"', "--force"]) == 0
    purge_page = (runs / "purge.html").read_text()
    assert "eventlake purge" in purge_page and '"v5"' not in purge_page and ">v5<" not in purge_page
    assert main(["import", "--events", str(generated / "events" / "a.jsonl"), "--store", str(tmp_path / "s2"),
                 "--no-report", "--max-error-ratio", "0.5"]) == 0
    assert not (tmp_path / "s2" / "_runs" / "import.html").exists()


def test_report_refuses_a_bad_day_and_a_missing_store(tmp_path, capsys):
    assert main(["report", "--store", str(tmp_path), "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["report", "--store", str(tmp_path / "none")]) == 1
    assert "no event store" in capsys.readouterr().err or "none" in capsys.readouterr().err


def test_an_empty_scope_draws_a_page_without_charts(generated):
    code, _ = import_generated(generated, "--max-error-ratio", "0.5")
    data = store_report(str(generated / "store"), since="2030-01-01")
    assert data.events == 0 and "events-per-day" not in data.charts and "No event in scope" in render_html(data)


def test_a_large_runs_page_leaves_its_event_charts_to_the_store_report(generated, tmp_path):
    from eventlake.report import RUN_SCAN_EVENTS, run_report

    code, summary = import_generated(generated, "--max-error-ratio", "0.5")
    assert code == 0
    page = tmp_path / "run.html"
    run_report(str(generated / "store"), "import", {**summary, "stored": RUN_SCAN_EVENTS + 1}, [str(page)])
    text = page.read_text()
    assert "its charts of events are left to" in text and "id='events-per-day'" not in text
    assert "id='errors-by-reason'" in text  # from the log: no read of the events
