"""The C allocator's setting for a sync process: large blocks given back when freed.

glibc's ``malloc`` serves a block of 128 KiB or more from a mapping of its own, returned to
the system when the block is freed, but each such free raises that threshold to the block's
size (up to 32 MiB), and later blocks under it come from the heap, whose freed memory stays
in the process. A sync frees large blocks at every step (a 13 MB values read, each tab's
encoding, the dataset's numpy columns, lists of 100,000 items), so it kept them: on the sync
benchmark (100,000 answers) a first sync peaked at 199-200 MiB and the later syncs of the
same process at 205-213 MiB. With the threshold held at glibc's default, the first sync peaks
at 196-197 MiB and the later ones at 202-211, for no CPU the benchmark tells apart
(docs/performance.md, the forty-first round).

Only glibc is changed, and only when the environment leaves the threshold alone: an
operator's ``MALLOC_MMAP_THRESHOLD_`` (which glibc read as the process started) is kept."""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>
THRESHOLD = 128 * 1024  # glibc's default, before a free raises it
ENVIRONMENT = "MALLOC_MMAP_THRESHOLD_"


def keep_large_blocks_mapped() -> bool:
    """Hold glibc's mmap threshold at :data:`THRESHOLD` for this process (idempotent); True
    when set. False, changing nothing, when the environment sets the threshold, and where
    the C library is not glibc (``mallopt`` missing, or refusing the option: musl's
    does nothing and returns 0)."""
    if ENVIRONMENT in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
