"""JSON documents edited by path: what the hostile-input tests and the webhook fuzzer use to
put one bad value at one place of a vendor's real payload."""

from __future__ import annotations

import json
from typing import Any

Path = tuple[Any, ...]


def leaves(value: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    """(path, value) of every scalar in a JSON document, in document order."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in leaves(v, (*path, i))]
    return [(path, value)]


def replaced(document: Any, path: Path, new: Any) -> Any:
    """A deep copy of ``document`` with the value at ``path`` replaced by ``new``."""
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def at(document: Any, dotted: str) -> Path:
    """A dotted path (``a.0.b``) as a path for :func:`replaced`, checking it exists."""
    path: list[Any] = []
    target = document
    for part in dotted.split("."):
        step: Any = int(part) if isinstance(target, list) else part
        target = target[step]
        path.append(step)
    return tuple(path)
