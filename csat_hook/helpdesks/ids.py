"""Vendor ids in adapter options.

YAML reads ``admin_id: 123`` and ``teams: {5017691: Billing}`` as integers, while payloads are
compared as text (``as_text``): options that hold ids run through :func:`ids_as_text` first, so
quoting an id in YAML is never required.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def ids_as_text(value: Any) -> Any:
    """Integers (and the keys and items of a mapping or list) as strings; the rest unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        return {ids_as_text(k): v for k, v in value.items()}
    if isinstance(value, list):
        return [ids_as_text(v) for v in value]
    return value
