"""The shared row reader: JSON lines whose fields change type or appear late still read whole."""

from __future__ import annotations

import json

from eventlake.formats.tabular import read_rows
from eventlake.io.files import ByteRange


def test_a_block_arrow_cannot_read_whole_keeps_every_key_and_reports_broken_lines(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join([json.dumps({"a": 1}), json.dumps({"a": "x", "late": {"n": 1}}), "{broken",
                               json.dumps([1, 2]), json.dumps({"late": {"n": "two"}})]) + "\n")
    [block] = list(read_rows(ByteRange(str(path), 0, -1), 1 << 20, "jsonl", "rows"))
    assert block.records == 5 and block.table.num_rows == 3
    assert block.table.column("a").to_pylist() == ["1", "x", None]  # a number here, text there: text
    assert block.table.column("late").to_pylist() == [None, {"n": "1"}, {"n": "two"}]  # a key of later lines only
    assert [(e["line"], e["reason"]) for e in block.errors] == [(3, "INVALID_JSON"), (4, "INVALID_RECORD")]
    assert block.lines.tolist() == [1, 2, 5] and block.raw(2) == json.dumps({"late": {"n": "two"}})
