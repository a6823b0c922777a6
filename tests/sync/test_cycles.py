"""The sync's cycle collection: paused for the run, and a part's cyclic garbage freed after the
part without walking what the run already holds."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref

from csat_hook.sync.summary import FULL_COLLECTION_EVERY
from csat_hook.sync.summary import cycles_freed_as_made
from csat_hook.sync.summary import cyclic_gc_paused


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


def test_a_part_s_cycles_are_freed_after_it_and_older_objects_are_not_walked():
    with cyclic_gc_paused():
        older = Node()
        older_ref = weakref.ref(older)
        del older  # cyclic garbage made before the loop: set aside with everything else
        with cycles_freed_as_made() as free_cycles:
            assert gc.get_freeze_count() > 0
            part = Node()
            part_ref = weakref.ref(part)
            del part
            assert part_ref() is not None  # the collector is paused
            free_cycles()
            assert part_ref() is None
            assert older_ref() is not None  # frozen: not walked by the part's collection
        assert gc.get_freeze_count() == 0  # handed back on leaving
    # Thawed into the oldest generation, which a run's own collection leaves: collected by
    # the full collection that ends one run in FULL_COLLECTION_EVERY.
    for _ in range(FULL_COLLECTION_EVERY):
        with cyclic_gc_paused():
            pass
    assert older_ref() is None


def test_a_long_lived_runner_s_cyclic_garbage_stays_bounded():
    # Each run holds a cycle past its end (as a runner holds what it keeps for the next
    # run) and the next run drops it: old garbage by then, which a collection of the young
    # generations never frees, and the collector is off through every run.
    held: list[Node] = []
    refs = []
    for _ in range(4 * FULL_COLLECTION_EVERY):
        with cyclic_gc_paused():
            node = Node()
            held[:] = [node]
            refs.append(weakref.ref(node))
            del node
    assert sum(ref() is not None for ref in refs) <= FULL_COLLECTION_EVERY


def test_everything_is_handed_back_when_a_part_fails():
    try:
        with cycles_freed_as_made():
            raise RuntimeError("a part failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0


def test_the_sync_imports_numpy_only_when_it_first_uses_it():
    # numpy's own memory (≈ 4 MB resident) came at a first sync's peak, in its ingest, when
    # a module the runner imports imported it at the top (sync_bench: 199 → 203 MB).
    code = (
        "import sys; import csat_hook.sync.runner, csat_hook.cli, csat_hook.app; "
        "print('numpy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
