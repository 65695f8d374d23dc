import numpy as np

from eventlake.formats.lines import split_lines


def test_blank_lines_are_not_records_but_keep_line_numbers():
    data = b'{"a":1}\r\n\n   \n{"b":2}\n{"c":3}'
    block, count = split_lines("f", data, 100, 1)
    assert count == 5
    assert [block.raw(i) for i in range(len(block))] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert block.line_numbers.tolist() == [1, 4, 5]
    assert block.offsets.tolist() == [100, 114, 122]


def test_only_blanks_every_other_line_between_the_chosen_ones():
    block, _ = split_lines("f", b"one\ntwo\r\n\nthree\nfour\nfive", 0, 1)
    assert bytes(block.only(np.array([0, 2, 4]))) == b"one\n    \n\nthree\n    \nfive"
    assert bytes(block.only(np.array([1, 2]))) == b"two\r\n\nthree\n"
    assert bytes(block.only(np.array([3]))) == b"four\n"
    assert block.only(np.arange(5)) is block.data
    assert block.only(np.array([], dtype=np.int64)) == b""
