import numpy as np

from eventlake.formats.lines import split_lines


def test_blank_lines_are_not_records_but_keep_line_numbers():
    data = b'{"a":1}\r\n\n   \n{"b":2}\n{"c":3}'
    block, count = split_lines("f", data, 100, 1)
    assert count == 5
    assert [block.raw(i) for i in range(len(block))] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert block.line_numbers.tolist() == [1, 4, 5]
    assert block.offsets.tolist() == [100, 114, 122]


def test_joined_keeps_only_the_chosen_lines():
    block, _ = split_lines("f", b"one\ntwo\r\nthree", 0, 1)
    assert block.joined(np.array([0, 2])) == b"one\nthree\n"
    assert block.joined(np.array([1])) == b"two\r\n"
