"""The sync process's allocator setting (sync/allocator.py): large blocks given back."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from csat_hook.sync.allocator import ENVIRONMENT
from csat_hook.sync.allocator import keep_large_blocks_mapped

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# A large block freed (glibc then serves blocks under its size from the heap), then 64 blocks
# of 1 MiB, each followed by a small block that stays: freed, the 1 MiB blocks are holes in
# the heap unless each had a mapping of its own. Prints the MiB given back.
PROBE = """
import os, sys
from csat_hook.sync.allocator import keep_large_blocks_mapped
print(keep_large_blocks_mapped() if sys.argv[1] == "set" else None, file=sys.stderr)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
big = bytearray(20 * 2**20)
del big
blocks, pins = [], []
for i in range(64):
    blocks.append(bytearray(b"x" * 2**20))
    pins.append(bytes(600) + bytes([i % 256]))
before = rss()
del blocks
print(before - rss())
"""


def given_back(mode: str) -> tuple[float, str]:
    """The MiB the probe's process gave back, and what the setting returned there."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != ENVIRONMENT},
    )
    return float(done.stdout), done.stderr.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's mmap threshold: this C library is not glibc")
def test_a_sync_process_gives_large_blocks_back_where_the_heap_kept_them():
    held, _ = given_back("none")
    back, said = given_back("set")
    assert said == "True"
    assert back >= 60  # of the 64 MiB freed
    assert held < back - 10  # without the setting the heap keeps a share of them


def test_an_operators_threshold_and_another_system_are_left_as_they_are(monkeypatch):
    # glibc read MALLOC_MMAP_THRESHOLD_ as the process started: the operator's choice.
    monkeypatch.setenv(ENVIRONMENT, "131072")
    assert keep_large_blocks_mapped() is False
    monkeypatch.delenv(ENVIRONMENT)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_large_blocks_mapped() is False
