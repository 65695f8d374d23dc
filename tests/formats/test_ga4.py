"""Google Analytics 4 BigQuery export rows: the default mapping, skipped events and the counts
identity, GA4's purchase rule, Parquet alike, and the config mapping or allowing a name."""

from __future__ import annotations

import json
from pathlib import Path

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eventlake.cli import main
from tests.pipelines.conftest import assert_counts_add_up

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "ga4" / "events.jsonl"


def imported(tmp_path, events, *flags) -> tuple[dict, dict]:
    summary = tmp_path / "summary.json"
    code = main(["import", "--format", "ga4", "--events", str(events), "--catalog", str(ROOT / "examples" / "products.json"),
                 "--store", str(tmp_path / "store"), "--summary", str(summary), "--max-error-ratio", "0.5", *flags])
    assert code == 0
    s = json.loads(summary.read_text())
    assert_counts_add_up(s)
    rows = deltalake.DeltaTable(str(tmp_path / "store")).to_pyarrow_table().to_pylist()
    return s, {r["source_event_type"] + ("@root" if r["event_type"] == "home-page-view" else ""): r for r in rows}


def test_the_sample_maps_retail_events_skips_the_rest_and_counts_add_up(tmp_path):
    s, rows = imported(tmp_path, SAMPLE)
    assert (s["records"], s["stored"], s["duplicates"], s["errors"], s["skipped"]) == (11, 7, 0, 1, 3)
    assert s["skipped_by_reason"] == {"UNMAPPED_EVENT": 3}  # session_start, a product page's page_view, user_engagement
    assert s["by_event_type"] == {"add-to-cart": 1, "category-page-view": 1, "detail-page-view": 1,
                                  "home-page-view": 1, "purchase-complete": 1, "search": 1,
                                  "shopping-cart-page-view": 1}
    purchase = rows["purchase"]
    assert purchase["purchase_transaction"] == {"id": "T-1001", "revenue": 35.2, "tax": 3.2, "cost": None,
                                                "currency_code": "USD"}
    assert purchase["user_info"]["user_id"] == "member-7" and purchase["visitor_id"] == "1234567.1709708400"
    assert purchase["session_id"] == "1709708400" and purchase["uri"].endswith("/ordercompleted.html")
    assert [(d["product"]["id"], d["quantity"], d["product"]["title"] is not None) for d in purchase["product_details"]] \
        == [("GGCOGOAC101259", 2, True)]
    assert rows["view_search_results"]["search_query"] == "mug" and rows["view_item"]["search_query"] is None
    assert rows["view_item_list"]["page_categories"] == ["Apparel"]
    assert len(rows["view_item_list"]["product_details"]) == 2
    assert rows["page_view@root"]["product_details"] is None
    assert rows["add_to_cart"]["purchase_transaction"] is None
    attributes = {a["key"]: a["value"]["text"] for a in rows["view_item"]["attributes"]}
    assert attributes["device_category"] == ["desktop"] and attributes["country"] == ["United States"]
    assert attributes["traffic_source"] == ["(direct)"]
    [sample] = [json.loads(line)["details"][0] for line in
                next((tmp_path / "store" / "_errors").glob("*/errors.jsonl")).read_text().splitlines()]
    assert (sample["line"], sample["field"], sample["reason"]) == (10, "event_params.currency", "REQUIRED")


def test_parquet_rows_of_the_export_import_alike(tmp_path):
    lines = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    for line in lines:  # Parquet keeps 64-bit integers as numbers, where JSON export writes strings
        line["event_timestamp"] = int(line["event_timestamp"])
        for param in line["event_params"]:
            value = param["value"]["int_value"]
            param["value"]["int_value"] = None if value is None else int(value)
    pq.write_table(pa.Table.from_pylist(lines), tmp_path / "events.parquet")
    s, rows = imported(tmp_path, tmp_path / "events.parquet")
    assert (s["records"], s["stored"], s["errors"], s["skipped"]) == (11, 7, 1, 3)
    assert rows["purchase"]["session_id"] == "1709708400"
    assert rows["purchase"]["event_time"].timestamp() == 1709708439 + 8 * 5


def test_types_that_change_between_lines_still_read(tmp_path):
    lines = SAMPLE.read_text().splitlines()
    changed = json.loads(lines[4])  # view_item: its session id as a number, where the other lines have a string
    changed["event_params"][0]["value"]["int_value"] = 1709708400
    lines[4] = json.dumps(changed)
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    s, rows = imported(tmp_path, tmp_path / "events.jsonl")
    assert (s["stored"], s["errors"], s["skipped"]) == (7, 1, 3)
    assert rows["view_item"]["session_id"] == "1709708400"


def test_the_config_maps_or_allows_names_that_are_otherwise_skipped(tmp_path):
    config = tmp_path / "ga4.yaml"
    config.write_text("import:\n  event_type_map: {session_start: home-page-view}\n"
                      "  allowed_event_types: [user_engagement]\n")
    s, rows = imported(tmp_path, SAMPLE, "--config", str(config))
    assert (s["stored"], s["errors"], s["skipped"]) == (9, 1, 1)  # only the product page's page_view is skipped
    assert rows["user_engagement"]["event_type"] == "user_engagement"
    assert rows["session_start@root"]["source_event_type"] == "session_start"


@pytest.mark.parametrize(("change", "field"), [
    (lambda e: e["ecommerce"].update(transaction_id="(not set)"), "ecommerce.transaction_id"),
    (lambda e: e["ecommerce"].update(purchase_revenue=None) or e["event_params"].pop(-1), "ecommerce.purchase_revenue"),
])
def test_a_purchase_without_its_transaction_or_revenue_is_an_error_naming_the_field(tmp_path, change, field):
    purchase = json.loads(SAMPLE.read_text().splitlines()[8])
    change(purchase)
    (tmp_path / "events.jsonl").write_text(json.dumps(purchase) + "\n")
    code = main(["import", "--format", "ga4", "--events", str(tmp_path / "events.jsonl"), "--store",
                 str(tmp_path / "store"), "--max-error-ratio", "1"])
    assert code == 0
    [sample] = [json.loads(line)["details"][0] for line in
                next((tmp_path / "store" / "_errors").glob("*/errors.jsonl")).read_text().splitlines()]
    assert (sample["field"], sample["reason"]) == (field, "REQUIRED")
