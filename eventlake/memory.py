"""Keep a long job's resident memory from creeping with the size of its input.

glibc's malloc serves blocks above its mmap threshold with ``mmap`` and gives them back to the
system when they are freed. But after the first such free it raises the threshold to that
block's size, so every later multi-megabyte read buffer comes from its heap instead, where
small objects that outlive the buffer pin the pages. Fixing the threshold turns that raise off.
"""

from __future__ import annotations

import ctypes
import functools
import os

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
MMAP_THRESHOLD = 1 << 20


@functools.cache
def keep_large_blocks_off_the_heap() -> bool:
    """Fix glibc's mmap threshold at 1 MiB in this process; True when it did.

    Nothing happens when the user set the threshold themselves (``MALLOC_MMAP_THRESHOLD_`` or
    ``GLIBC_TUNABLES``) or the C library is not glibc.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
