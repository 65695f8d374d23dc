"""Amazon Personalize interactions CSV: Personalize's own rules, line numbers, quoting."""

from __future__ import annotations

import gzip

import pytest

from eventlake.formats.base import SourceFileError, get_format
from eventlake.io.files import ByteRange


def read(path, block_bytes: int = 8 << 20):
    batches, errors, records, lines = [], [], 0, 0
    for parsed in get_format("personalize").read_range(ByteRange(str(path), 0, -1), block_bytes):
        batches.append(parsed.batch)
        errors += parsed.errors
        records += parsed.records
        lines += parsed.lines
    rows = [r for b in batches for r in b.to_pylist()]
    assert records == len(rows) + len(errors)  # every record is a row or an error
    return rows, errors, lines


def test_a_good_file_maps_every_column(tmp_path):
    path = tmp_path / "interactions.csv"
    path.write_text("ITEM_ID,USER_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE,IMPRESSION,RECOMMENDATION_ID,GENRE,DEVICE\n"
                    "i1,u1,1700000000,click,2.5,i1|i2|i3,rec-7,Action|Comedy,\n"
                    "i2,u2,1700000001,,,,,,phone\n")
    rows, errors, lines = read(path)
    assert errors == [] and lines == 3
    first, second = rows
    assert (first["visitor_id"], first["user_info"]["user_id"]) == ("u1", "u1")
    assert [p["product"]["id"] for p in first["product_details"]] == ["i1"]
    assert first["event_time"].timestamp() == 1700000000
    assert (first["event_type"], first["source_event_type"], first["event_value"]) == ("click", "click", 2.5)
    assert first["impression"] == ["i1", "i2", "i3"] and first["recommendation_id"] == "rec-7"
    assert first["attributes"] == [{"key": "GENRE", "value": {"text": ["Action", "Comedy"], "numbers": None}}]
    assert second["attributes"] == [{"key": "DEVICE", "value": {"text": ["phone"], "numbers": None}}]
    assert second["event_type"] is None and second["event_value"] is None and second["impression"] is None
    assert (first["source_format"], first["source_line"], second["source_line"]) == ("personalize", 2, 3)


@pytest.mark.parametrize(("line", "field", "reason", "words"), [
    (",i1,1700000000", "USER_ID", "REQUIRED", "USER_ID is required"),
    ("u1,,1700000000", "ITEM_ID", "REQUIRED", "ITEM_ID is required"),
    (f"{'u' * 257},i1,1700000000", "USER_ID", "TOO_LONG", "at most 256"),
    (f"u1,{'i' * 257},1700000000", "ITEM_ID", "TOO_LONG", "at most 256"),
    ("u1,i1,", "TIMESTAMP", "REQUIRED", "TIMESTAMP is required"),
    ("u1,i1,2023-11-14T22:13:20Z", "TIMESTAMP", "INVALID_TIMESTAMP", "whole Unix seconds"),
    ("u1,i1,1700000000.5", "TIMESTAMP", "INVALID_TIMESTAMP", "whole Unix seconds"),
    ("u1,i1,1700000000000", "TIMESTAMP", "INVALID_TIMESTAMP", "looks like milliseconds"),
    ("u1,i1,1700000000000000", "TIMESTAMP", "INVALID_TIMESTAMP", "looks like microseconds"),
    ("u1,i1,1700000000,,NaN", "EVENT_VALUE", "INVALID_VALUE", "finite number"),
    ("u1,i1,1700000000,,inf", "EVENT_VALUE", "INVALID_VALUE", "finite number"),
    ("u1,i1,1700000000,,abc", "EVENT_VALUE", "INVALID_VALUE", "finite number"),
    (f"u1,i1,1700000000,{'t' * 257},", "EVENT_TYPE", "TOO_LONG", "at most 256"),
    ("u1,i1,1700000000,,,a||b", "IMPRESSION", "INVALID_IMPRESSION", "separated by '|'"),
    (f"u1,i1,1700000000,,,,,{'g' * 1001}", "GENRE", "TOO_LONG", "at most 1000"),
    ("u1,i1,1700000000,,,,,,extra", "", "INVALID_CSV_ROW", "9 fields where the header has 8"),
])
def test_each_rule_names_the_line_and_the_field(tmp_path, line, field, reason, words):
    path = tmp_path / "interactions.csv"
    path.write_text("USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE,IMPRESSION,RECOMMENDATION_ID,GENRE\n"
                    "u0,i0,1700000000,view,,,,\n"
                    f"{line}{',' * (7 - line.count(',')) if line.count(',') < 7 else ''}\n")
    rows, errors, _ = read(path)
    assert len(rows) == 1
    [error] = errors
    assert (error["line"], error["field"], error["reason"]) == (3, field, reason)
    assert words in error["message"] and error["record"].startswith(line[:20])


def test_quoted_fields_hold_commas_quotes_and_line_breaks(tmp_path):
    path = tmp_path / "interactions.csv"
    path.write_text('USER_ID,ITEM_ID,TIMESTAMP,NOTE\n'
                    'u1,i1,1700000000,"a, b"\n'
                    'u2,i2,1700000001,"two\nlines and ""quotes"""\n'
                    '\n'
                    'u3,,1700000002,"after a blank line"\n'
                    'u4,i4,1700000003,plain\n')
    rows, errors, lines = read(path)
    assert [r["attributes"][0]["value"]["text"] for r in rows] == [["a, b"], ['two\nlines and "quotes"'], ["plain"]]
    assert [r["source_line"] for r in rows] == [2, 3, 7]  # the physical line each record starts on
    assert [(e["line"], e["field"]) for e in errors] == [(6, "ITEM_ID")]
    assert lines == 7


@pytest.mark.parametrize("block_bytes", [64, 1024])
def test_records_spanning_blocks_are_read_whole(tmp_path, block_bytes):
    lines = ["USER_ID,ITEM_ID,TIMESTAMP,NOTE"]
    for i in range(300):
        note = f'"note {i}\nwith a break"' if i % 7 == 0 else f"n{i}"
        lines.append(f"u{i},i{i},{1700000000 + i},{note}")
    path = tmp_path / "interactions.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    rows, errors, _ = read(path, block_bytes)
    assert errors == [] and [r["visitor_id"] for r in rows] == [f"u{i}" for i in range(300)]
    assert rows[7]["attributes"][0]["value"]["text"] == ["note 7\nwith a break"]
    expected_line, expected = 2, []
    for i in range(300):
        expected.append(expected_line)
        expected_line += 2 if i % 7 == 0 else 1
    assert [r["source_line"] for r in rows] == expected


def test_a_missing_required_column_is_one_error_for_the_file(tmp_path):
    path = tmp_path / "interactions.csv"
    path.write_text("USER_ID,ITEM,TIMESTAMP\nu1,i1,1700000000\n")
    with pytest.raises(SourceFileError, match=r"interactions.csv: the header has no ITEM_ID column"):
        read(path)


def test_the_shared_personalize_sample_reads_without_errors(tmp_path):
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "personalize" / "interactions.csv"
    if not path.exists():
        pytest.skip("the shared sample data is not here")
    rows, errors, lines = read(path)
    assert (len(rows), errors, lines) == (158_371, [], 158_372)
    assert {r["event_type"] for r in rows} == {"click", "watch"}


def read_items(path, fields=("title", "categories", "price"), field_map=None):
    reader = get_format_catalog("personalize-items")(fields, field_map or {})
    tables, errors = [], []
    for table, errs in reader.read_range(ByteRange(str(path), 0, -1), 1 << 20):
        tables.append(table)
        errors += errs
    return [r for t in tables for r in t.to_pylist()], errors


def get_format_catalog(name):
    from eventlake.formats.base import catalog_format_class

    return catalog_format_class(name)


def test_items_map_columns_to_catalog_fields(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("ITEM_ID,GENRE,PRICE,TITLE,YEAR\n"
                    "1,Action|Comedy,9.5,One,1995\n"
                    ",Drama,1,Nameless,1996\n"
                    "3,,cheap,Three,1997\n"
                    "4,,,Four,1998\n")
    rows, errors = read_items(path, field_map={"GENRE": "categories"})
    assert rows == [{"id": "1", "title": "One", "categories": ["Action", "Comedy"], "price": 9.5},
                    {"id": "4", "title": "Four", "categories": None, "price": None}]
    assert [(e["line"], e["field"], e["reason"]) for e in errors] == [(3, "ITEM_ID", "REQUIRED"),
                                                                      (4, "PRICE", "INVALID_VALUE")]


def test_items_need_an_item_id_column_and_the_mapped_ones(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("ID,GENRE\n1,Drama\n")
    with pytest.raises(SourceFileError, match="no ITEM_ID column"):
        read_items(path)
    path.write_text("ITEM_ID,GENRE\n1,Drama\n")
    with pytest.raises(SourceFileError, match="catalog_field_map names column GENRES"):
        read_items(path, field_map={"GENRES": "categories"})


def test_the_shared_personalize_items_load_with_genres_as_lists():
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "personalize" / "item-meta.csv"
    if not path.exists():
        pytest.skip("the shared sample data is not here")
    rows, errors = read_items(path, field_map={"GENRE": "categories"})
    assert errors == [] and len(rows) > 9000
    first = rows[0]
    assert first["id"] == "1" and first["categories"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]


def test_put_items_bodies_make_products(tmp_path):
    import json

    from eventlake.formats.base import detect_format

    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"datasetArn": "arn:demo", "items": [
        {"itemId": "1", "properties": json.dumps({"genre": "Action|Comedy", "price": 9.5, "title": "One"})},
        {"itemId": "", "properties": "{}"},
        {"itemId": "3", "properties": json.dumps({"price": "cheap"})},
        {"itemId": "4"}]}) + "\n" + "not json\n")
    assert detect_format(str(path), catalog=True) == "personalize-items"
    rows, errors = read_items(path, field_map={"GENRE": "categories"})
    assert rows == [{"id": "1", "title": "One", "categories": ["Action", "Comedy"], "price": 9.5},
                    {"id": "4", "title": None, "categories": None, "price": None}]
    assert [(e["line"], e["field"]) for e in errors] == [(1, "items[1].itemId"), (1, "items[2].properties.price"),
                                                         (2, "")]


@pytest.mark.parametrize("split_bytes", [97, 301, 1024])
def test_byte_ranges_that_start_mid_file_know_the_header_and_their_first_record(tmp_path, split_bytes):
    """Ranges cut anywhere (inside quoted line breaks too) read every record exactly once, and
    their line numbers, made absolute as the commit step does, are the file's."""
    from eventlake.io.files import source_file, split_ranges
    from tests.conftest import write_interactions

    path = tmp_path / "interactions.csv"
    expected_lines = write_interactions(
        path, 120, item=lambda i: "" if i % 17 == 3 else f"i{i}",  # an error every now and then
        note=lambda i: f'"note {i},\nwith ""quotes"" and\na break"' if i % 5 == 0 else f"n{i}")
    ranges = split_ranges([source_file(str(path))], split_bytes)
    assert len(ranges) > 2
    fmt = get_format("personalize")
    seen, errors, before = [], [], 0
    for byte_range in ranges:
        lines_in_range = 0
        for parsed in fmt.read_range(byte_range, 64):
            seen += [(r["visitor_id"], r["source_line"] + before) for r in parsed.batch.to_pylist()]
            errors += [(e["record"].split(",")[0], e["line"] + before) for e in parsed.errors]
            lines_in_range += parsed.lines
        before += lines_in_range
    by_visitor = dict(seen + errors)
    assert sorted(by_visitor) == sorted(f"u{i}" for i in range(120)) and len(seen) + len(errors) == 120
    assert [by_visitor[f"u{i}"] for i in range(120)] == expected_lines
    assert sorted(v for v, _ in errors) == sorted(f"u{i}" for i in range(120) if i % 17 == 3)
