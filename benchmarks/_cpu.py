"""CPU seconds of process trees, read from /proc (Linux): what a benchmark charges to "our
processes" (user + system time of a process and its descendants, live ones only)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def tree_cpu(*roots: int) -> float:
    """User + system CPU seconds of ``roots`` and all their live descendants."""
    tree = _children()
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        fields = _stat(pid)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        todo.extend(tree.get(pid, []))
    return total


def named_cpu(name: str) -> float:
    """User + system CPU seconds of every live process called ``name`` (e.g. postgres)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if comm == name:
            fields = _stat(int(entry))
            if fields is not None:
                total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def self_cpu() -> float:
    """This process and its children that were waited for (the load generator's pool)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
