"""Sheets API v4 request bodies checked against Google's discovery document.

The document is the one google-api-python-client ships
(``googleapiclient/discovery_cache/documents/sheets.v4.json``; a test dependency of this
project): the emulator refuses what Google's schema refuses. Checked, recursively from a
schema: unknown field names, JSON types (int32 range), enum values, one kind per ``Request``
(the API's oneof), and field masks (``fields`` of the update requests, and a
``spreadsheets.get`` ``fields`` parameter) against the object they apply to, in the
``a.b``, ``a/b`` and ``a(b,c)`` syntaxes. A pass means "well-formed per the schema", not
"accepted": server-side rules (an id that already exists...) are the emulator's business.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

# Request schema → the schema its ``fields`` mask is relative to.
MASKED = {
    "RepeatCellRequest": "CellData",
    "UpdateCellsRequest": "CellData",
    "UpdateSheetPropertiesRequest": "SheetProperties",
    "UpdateDimensionPropertiesRequest": "DimensionProperties",
    "UpdateBandingRequest": "BandedRange",
    "UpdateSpreadsheetPropertiesRequest": "SpreadsheetProperties",
    "UpdateEmbeddedObjectPositionRequest": "EmbeddedObjectPosition",
    "UpdateDeveloperMetadataRequest": "DeveloperMetadata",
}


class DiscoveryMissingError(RuntimeError):
    """google-api-python-client (which ships the document) is not installed."""


@functools.cache
def schemas() -> dict[str, Any]:
    """The ``schemas`` of Google's Sheets v4 discovery document (read once)."""
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or spec.origin is None:
        raise DiscoveryMissingError(
            "the Sheets emulator checks requests against Google's discovery document, which "
            "google-api-python-client ships: pip install -e '.[test]'"
        )
    path = Path(spec.origin).parent / "discovery_cache" / "documents" / "sheets.v4.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    return dict(document["schemas"])


def revision() -> str:
    spec = importlib.util.find_spec("googleapiclient")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "discovery_cache" / "documents" / "sheets.v4.json"
    return str(json.loads(path.read_text(encoding="utf-8"))["revision"])


def validate(value: Any, schema: str, where: str = "") -> list[str]:
    """Problems of ``value`` as an instance of ``schema`` (empty: well-formed)."""
    definition = schemas()[schema]
    if not isinstance(value, dict):
        return [f"{where or schema}: expected an object ({schema})"]
    errors: list[str] = []
    properties = definition.get("properties", {})
    for key, item in value.items():
        prop = properties.get(key)
        if prop is None:
            errors.append(f"Unknown name \"{key}\" at '{where or schema}': Cannot find field.")
            continue
        errors.extend(_check(item, prop, f"{where}.{key}" if where else key))
    if schema == "Request" and len(value) != 1:
        errors.append(f"{where}: a Request sets exactly one kind, got {sorted(value)}")
    if schema in MASKED:
        mask = value.get("fields")
        if not isinstance(mask, str) or not mask.strip():
            errors.append(f"{where}: 'fields' is required")
        else:
            errors.extend(check_mask(mask, MASKED[schema], f"{where}.fields"))
    return errors


def _check(value: Any, prop: dict[str, Any], where: str) -> list[str]:
    if "$ref" in prop:
        return validate(value, prop["$ref"], where)
    kind = prop.get("type")
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type(value).__name__}"]
        if "enum" in prop and value not in prop["enum"]:
            return [f"{where}: invalid value {value!r}"]
        return []
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{where}: expected an integer, got {type(value).__name__}"]
        if prop.get("format") == "int32" and not -(2**31) <= value < 2**31:
            return [f"{where}: {value} is out of range for int32"]
        return []
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{where}: expected a number, got {type(value).__name__}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected true or false"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        items = prop.get("items", {})
        if _anything(items):  # e.g. ValueRange.values: cells of any JSON type
            return []
        errors: list[str] = []
        for i, item in enumerate(value):
            errors.extend(_check(item, items, f"{where}[{i}]"))
        return errors
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        extra = prop.get("additionalProperties")
        if extra is None:
            return []
        return [e for k, v in value.items() for e in _check(v, extra, f"{where}.{k}")]
    if kind == "any":
        return []
    return [f"{where}: unknown schema type {kind!r}"]


def _anything(prop: dict[str, Any]) -> bool:
    if prop.get("type") == "any":
        return True
    return prop.get("type") == "array" and _anything(prop.get("items", {}))


def split_top(text: str) -> list[str]:
    """``a(b,c),d`` → ``["a(b,c)", "d"]``; ValueError on unbalanced parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in {text!r}")
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '(' in {text!r}")
    parts.append(text[start:].strip())
    return parts


def parse_item(item: str) -> tuple[list[str], str | None]:
    """``a/b(c,d)`` or ``a.b`` → (["a", "b"], "c,d" or None)."""
    head, sub = item, None
    if "(" in item:
        if not item.endswith(")"):
            raise ValueError(f"bad selector {item!r}")
        head, sub = item[: item.index("(")], item[item.index("(") + 1 : -1]
    return head.replace("/", ".").split("."), sub


def _ref_of(prop: dict[str, Any]) -> str | None:
    if "$ref" in prop:
        return str(prop["$ref"])
    for holder in ("items", "additionalProperties"):
        inner = prop.get(holder)
        if isinstance(inner, dict) and "$ref" in inner:
            return str(inner["$ref"])
    return None


def check_mask(mask: str, schema: str, where: str) -> list[str]:
    """Problems of a field mask or partial-response selector relative to ``schema``."""
    if mask.strip() == "*":
        return []
    try:
        items = split_top(mask)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    errors: list[str] = []
    for item in items:
        try:
            path, sub = parse_item(item)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            continue
        current = schema
        for depth, name in enumerate(path):
            prop = schemas()[current].get("properties", {}).get(name)
            if prop is None:
                errors.append(f"{where}: {current} has no field {name!r} (in {mask!r})")
                break
            ref = _ref_of(prop)
            if ref is None:
                if depth < len(path) - 1 or sub is not None:
                    errors.append(f"{where}: {current}.{name} has no fields below it")
                break
            current = ref
        else:
            if sub is not None:
                errors.extend(check_mask(sub, current, where))
    return errors


def select(value: Any, mask: str) -> Any:
    """What a partial response holds: ``value`` reduced to the fields ``mask`` names."""
    if mask.strip() == "*":
        return value
    if isinstance(value, list):
        return [select(item, mask) for item in value]
    if not isinstance(value, dict):
        return value
    picked: dict[str, Any] = {}
    for item in split_top(mask):
        path, sub = parse_item(item)
        _pick(value, path, sub, picked)
    return picked


def _pick(value: dict[str, Any], path: list[str], sub: str | None, into: dict[str, Any]) -> None:
    name, rest = path[0], path[1:]
    if name not in value:
        return
    found = value[name]
    if rest:
        if isinstance(found, list):
            into[name] = [_picked(item, rest, sub) for item in found]
        elif isinstance(found, dict):
            _pick(found, rest, sub, into.setdefault(name, {}))
        return
    chosen = select(found, sub) if sub is not None else found
    if isinstance(chosen, dict) and isinstance(into.get(name), dict):
        into[name].update(chosen)
    else:
        into[name] = chosen


def _picked(item: Any, path: list[str], sub: str | None) -> Any:
    if not isinstance(item, dict):
        return item
    holder: dict[str, Any] = {}
    _pick(item, path, sub, holder)
    return holder
