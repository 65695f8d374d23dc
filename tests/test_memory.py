"""glibc's mmap threshold stays fixed, so multi-megabyte buffers are not served from its heap."""

import os
import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from eventlake.memory import keep_large_blocks_off_the_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fix":
    assert keep_large_blocks_off_the_heap()
first = bytes(8 << 20)
del first  # glibc would now raise its threshold to 8 MiB
second = bytes(7 << 20)
print(libc.mallinfo2().hblkhd >= 7 << 20)  # is the second buffer mmapped?
"""


def _mmapped(mode: str, **env) -> bool:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return out.stdout.strip() == "True"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_a_later_large_buffer_is_still_mmapped():
    assert not _mmapped("plain")  # what glibc does by itself
    assert _mmapped("fix")


def test_a_threshold_the_user_set_is_left_alone(monkeypatch):
    from eventlake import memory

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    memory.keep_large_blocks_off_the_heap.cache_clear()
    try:
        assert memory.keep_large_blocks_off_the_heap() is False
    finally:
        memory.keep_large_blocks_off_the_heap.cache_clear()
