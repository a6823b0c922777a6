"""Requests to the Google fakes checked against Google's own discovery documents.

The documents are the ones google-api-python-client ships
(``googleapiclient/discovery_cache/documents/<api>.<version>.json``; a test dependency of this
project): a fake refuses what Google's description of the API refuses. Two levels:

* :func:`check_request`, for any API in :data:`DOCUMENTS`: the method (path template and HTTP
  method), the query parameters (known names, the method's or the API's standard ones; types:
  int32 range, booleans, enums; repeated or not; required ones present), a ``fields``
  selector against the response schema, and the body (none for a method without a request
  schema, else checked by :func:`validate`);
* :func:`validate`, recursively from a schema: unknown field names, JSON types (int32 range),
  enum values, one kind per Sheets ``Request`` (the API's oneof), and field masks (``fields``
  of the Sheets update requests, and a ``spreadsheets.get`` ``fields`` parameter) against the
  object they apply to, in the ``a.b``, ``a/b`` and ``a(b,c)`` syntaxes.

A pass means "well-formed per the document", not "accepted": server-side rules (an id that
already exists, a filter's grammar...) are the fake's business.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import urllib.parse
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

# API name → the discovery document google-api-python-client ships for it.
DOCUMENTS = {"sheets": "sheets.v4.json", "forms": "forms.v1.json"}

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
def document(api: str = "sheets") -> dict[str, Any]:
    """Google's discovery document of ``api`` (a key of :data:`DOCUMENTS`), read once."""
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or spec.origin is None:
        raise DiscoveryMissingError(
            "the Google fakes check requests against Google's discovery documents, which "
            "google-api-python-client ships: pip install -e '.[test]'"
        )
    path = Path(spec.origin).parent / "discovery_cache" / "documents" / DOCUMENTS[api]
    return dict(json.loads(path.read_text(encoding="utf-8")))


def schemas(api: str = "sheets") -> dict[str, Any]:
    """The ``schemas`` of ``api``'s discovery document."""
    return dict(document(api)["schemas"])


def revision(api: str = "sheets") -> str:
    return str(document(api)["revision"])


def validate(value: Any, schema: str, where: str = "", *, api: str = "sheets") -> list[str]:
    """Problems of ``value`` as an instance of ``schema`` of ``api`` (empty: well-formed)."""
    definition = _schemas(api)[schema]
    if not isinstance(value, dict):
        return [f"{where or schema}: expected an object ({schema})"]
    errors: list[str] = []
    properties = definition.get("properties", {})
    for key, item in value.items():
        prop = properties.get(key)
        if prop is None:
            errors.append(f"Unknown name \"{key}\" at '{where or schema}': Cannot find field.")
            continue
        errors.extend(_check(item, prop, f"{where}.{key}" if where else key, api))
    if schema == "Request" and len(value) != 1:
        errors.append(f"{where}: a Request sets exactly one kind, got {sorted(value)}")
    if schema in MASKED:
        mask = value.get("fields")
        if not isinstance(mask, str) or not mask.strip():
            errors.append(f"{where}: 'fields' is required")
        else:
            errors.extend(check_mask(mask, MASKED[schema], f"{where}.fields", api=api))
    return errors


def _check(value: Any, prop: dict[str, Any], where: str, api: str) -> list[str]:
    if value is None:
        return []  # proto3 JSON: null is accepted for every field and means "not set"
    if "$ref" in prop:
        return validate(value, prop["$ref"], where, api=api)
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
            errors.extend(_check(item, items, f"{where}[{i}]", api))
        return errors
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        extra = prop.get("additionalProperties")
        if extra is None:
            return []
        return [e for k, v in value.items() for e in _check(v, extra, f"{where}.{k}", api)]
    if kind == "any":
        return []
    return [f"{where}: unknown schema type {kind!r}"]


@functools.cache
def _schemas(api: str) -> dict[str, Any]:
    return schemas(api)


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


def check_mask(mask: str, schema: str, where: str, *, api: str = "sheets") -> list[str]:
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
            prop = _schemas(api)[current].get("properties", {}).get(name)
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
                errors.extend(check_mask(sub, current, where, api=api))
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


# --- whole requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class ApiMethod:
    """One method of a discovery document (``forms.forms.responses.list``...)."""

    id: str
    http_method: str
    pattern: re.Pattern[str]  # the path template, matched against the request's raw path
    parameters: dict[str, dict[str, Any]] = field(repr=False)
    request: str | None  # the body's schema; None: the body must be empty
    response: str | None


@dataclass
class RequestCheck:
    """What :func:`check_request` found: the method (None: no such method, a 404 at Google),
    its path parameters (decoded), and the problems that make it a 400."""

    method: ApiMethod | None
    path_params: dict[str, str]
    problems: list[str]


def _template(path: str) -> re.Pattern[str]:
    """``v4/spreadsheets/{spreadsheetId}/values/{range}:clear`` → a regex over the raw path
    (``{+name}`` may span slashes, ``{name}`` may not)."""
    out, last = ["^/"], 0
    for found in re.finditer(r"\{(\+?)([A-Za-z_][A-Za-z0-9_]*)\}", path):
        out.append(re.escape(path[last : found.start()]))
        out.append(f"(?P<{found.group(2)}>{'.+' if found.group(1) else '[^/]+'}?)")
        last = found.end()
    out.append(re.escape(path[last:]) + "$")
    return re.compile("".join(out))


@functools.cache
def methods(api: str) -> tuple[ApiMethod, ...]:
    """Every method of ``api``, from the document's (nested) resources."""
    found: list[ApiMethod] = []

    def walk(resource: dict[str, Any]) -> None:
        for method in resource.get("methods", {}).values():
            found.append(
                ApiMethod(
                    id=method["id"],
                    http_method=method["httpMethod"],
                    pattern=_template(document(api).get("servicePath", "") + method["path"]),
                    parameters=dict(method.get("parameters", {})),
                    request=method.get("request", {}).get("$ref"),
                    response=method.get("response", {}).get("$ref"),
                )
            )
        for inner in resource.get("resources", {}).values():
            walk(inner)

    walk(document(api))
    # A literal segment beats a template one (values:batchGet before values/{range}).
    found.sort(key=lambda m: -len(m.pattern.pattern.replace("[^/]+?", "").replace(".+?", "")))
    return tuple(found)


def check_request(
    api: str, http_method: str, path: str, query: dict[str, list[str]], body: bytes
) -> RequestCheck:
    """Whether Google's description of ``api`` admits this request (``path`` raw, as sent;
    ``query`` as ``urllib.parse.parse_qs`` gives it). Messages follow Google's 400s."""
    matched = [m for m in methods(api) if m.pattern.match(path)]
    method = next((m for m in matched if m.http_method == http_method), None)
    if method is None:
        return RequestCheck(None, {}, [f"no {api} method answers {http_method} {path}"])
    found = method.pattern.match(path)
    assert found is not None
    path_params = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
    problems: list[str] = []
    standard = document(api).get("parameters", {})
    for name, values in query.items():
        spec = method.parameters.get(name) or standard.get(name)
        if spec is None or spec.get("location") == "path":
            problems.append(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                f"parameter. Field '{name}' could not be found in request message."
            )
            continue
        if len(values) > 1 and not spec.get("repeated"):
            problems.append(f"Invalid value at '{name}': given {len(values)} times")
        problems.extend(_query_value(name, value, spec) for value in values)
    for name, spec in method.parameters.items():
        if spec.get("required") and spec.get("location") == "query" and name not in query:
            problems.append(f"Missing required parameter '{name}'")
    fields = query.get("fields")
    if fields and method.response is not None:
        problems.extend(check_mask(fields[0], method.response, "fields", api=api))
    if method.request is None:
        if body.strip():
            problems.append("Invalid JSON payload received. The request body must be empty.")
    else:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            problems.append("Invalid JSON payload received. Unexpected token.")
        else:
            problems.extend(validate(data, method.request, api=api))
    return RequestCheck(method, path_params, [p for p in problems if p])


def _query_value(name: str, value: str, spec: dict[str, Any]) -> str:
    """The problem with one query value as ``spec`` types it ("" when none)."""
    kind = spec.get("type")
    if kind == "integer":
        try:
            number = int(value)
        except ValueError:
            return f"Invalid value at '{name}' (TYPE_INT32), \"{value}\""
        if spec.get("format") == "int32" and not -(2**31) <= number < 2**31:
            return f"Invalid value at '{name}' (TYPE_INT32), \"{value}\""
    elif kind == "boolean" and value not in ("true", "false", "1", "0"):
        return f"Invalid value at '{name}' (TYPE_BOOL), \"{value}\""
    elif kind == "number":
        try:
            float(value)
        except ValueError:
            return f"Invalid value at '{name}' (TYPE_DOUBLE), \"{value}\""
    if "enum" in spec and value not in spec["enum"]:
        return f"Invalid value at '{name}', \"{value}\""
    return ""
