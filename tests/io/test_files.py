import gzip
import json

import pytest

from eventlake.formats.retail_json import parse_block
from eventlake.io.files import ByteRange, SourceFile, lines_before, read_blocks, split_ranges


def write_events(path, n):
    lines = [json.dumps({"eventType": "home-page-view", "visitorId": f"visitor-{i}" + "x" * (i % 37),
                         "eventTime": "2022-02-23T10:27:42Z"}) for i in range(n)]
    lines[5] = ""  # a blank line: not a record, but it still counts for line numbers
    lines[17] = "{broken"
    path.write_text("\r\n".join(lines) + "\n")


def records(ranges, block_bytes=4096):
    rows, errors, lines = [], [], 0
    for r in ranges:
        for block, count in read_blocks(r, block_bytes):
            batch, errs = parse_block(block)
            rows += batch.select(["visitor_id", "source_offset"]).to_pylist()
            errors += [(e["offset"], e["reason"]) for e in errs]
            lines += count
    return sorted(rows, key=lambda r: r["source_offset"]), errors, lines


@pytest.mark.parametrize("split_bytes", [1000, 4096, 7777])
def test_a_file_split_into_ranges_reads_exactly_as_whole(tmp_path, split_bytes):
    path = tmp_path / "events.jsonl"
    write_events(path, 600)
    size = path.stat().st_size
    ranges = split_ranges([SourceFile(str(path), size, 0.0)], split_bytes)
    assert len(ranges) > 3
    whole = records([ByteRange(str(path), 0, -1)], block_bytes=1 << 20)
    assert records(ranges) == whole
    assert len(whole[0]) == 598 and whole[2] == 600


def test_a_file_is_cut_into_equal_ranges_within_the_limit():
    ranges = split_ranges([SourceFile("events.jsonl", 1000, 0.0)], 400)
    assert [(r.start, r.end) for r in ranges] == [(0, 333), (333, 666), (666, 1000)]
    assert split_ranges([SourceFile("events.jsonl", 800, 0.0)], 400) == [
        ByteRange("events.jsonl", 0, 400), ByteRange("events.jsonl", 400, 800)]


def test_compressed_files_are_read_whole(tmp_path):
    plain = tmp_path / "events.jsonl"
    write_events(plain, 300)
    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert split_ranges([SourceFile(str(packed), 10**9, 0.0)], 1000) == [ByteRange(str(packed), 0, -1)]
    assert records([ByteRange(str(packed), 0, -1)])[0] == records([ByteRange(str(plain), 0, -1)])[0]


def test_lines_before_a_range_make_its_line_numbers_absolute(tmp_path):
    path = tmp_path / "events.jsonl"
    write_events(path, 200)  # CRLF line ends and a blank line
    size = path.stat().st_size
    data = path.read_bytes()
    for split_bytes in (700, 1000, 4096):
        for r in split_ranges([SourceFile(str(path), size, 0.0)], split_bytes):
            for block, _ in read_blocks(r, 512):
                for i in range(len(block)):
                    absolute = data[: int(block.offsets[i])].count(b"\n") + 1
                    assert block.line_numbers[i] + lines_before(r) == absolute


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.json.gz"])
def test_a_byte_order_mark_is_not_part_of_the_first_record(tmp_path, name):
    text = b"\xef\xbb\xbf" + b'{"eventType": "home-page-view", "visitorId": "v1", "eventTime": "2022-02-23T10:27:42Z"}\n'
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    ranges = split_ranges([SourceFile(str(path), path.stat().st_size, 0.0)], 1 << 20)
    rows, errors, lines = records(ranges)
    assert errors == [] and lines == 1
    assert rows == [{"visitor_id": "v1", "source_offset": 3}]
