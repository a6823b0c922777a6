"""What the ``generic`` adapter's requests share: placeholders and JSON answers.

Every request (reply, note, look-ups, agent look-up) is a template: ``{name}`` placeholders
in its URL (filled URL-quoted), header and query values and every string of its JSON body.
:data:`REPLY_FIELDS` and :data:`NOTE_FIELDS` name what a reply's and a note's templates may
use besides the mapping's context names; :func:`check_placeholders` refuses any other name
when the configuration is loaded, so :func:`render` never meets an unknown one.
"""

from __future__ import annotations

import functools
import json
import re
import string
import urllib.parse
from collections.abc import Collection
from collections.abc import Mapping
from typing import Annotated
from typing import Any
from typing import ClassVar
from typing import Protocol
from typing import Self

import jmespath
import jmespath.functions
from jmespath.exceptions import JMESPathError
from pydantic import AfterValidator
from pydantic import SecretStr
from pydantic import ValidationInfo
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.markup import reply_html
from csat_hook.helpdesks.markup import reply_markdown
from csat_hook.helpdesks.markup import text_to_html
from csat_hook.helpdesks.payload import DOT_SEGMENTS
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.signing import HEADER_NAME
from csat_hook.settings import StrictModel
from csat_hook.settings import refuse_format_spec

REPLY_FIELDS = (
    "text",
    "html",
    "markdown",
    "link",
    "dialog_id",
    "agent_id",
    "agent_name",
    "agent_email",
    "customer_id",
    "customer_email",
    "idempotency_key",
)

# The placeholders of an internal note request (an alert): the note as plain text and as HTML
# (escaped, paragraphs), the alert's reference it carries, and the dialog.
NOTE_FIELDS = ("text", "html", "dialog_id", "marker", "idempotency_key")


class RequestTemplate(Protocol):
    """The templated parts of a request's options (reply, look-up, agent look-up)."""

    @property
    def url(self) -> str: ...
    @property
    def headers(self) -> dict[str, SecretStr]: ...
    @property
    def query(self) -> dict[str, SecretStr]: ...
    @property
    def body(self) -> Any: ...


# Headers whose value is a scheme and credentials (RFC 9110 11.6.2, 11.7.2), and the schemes
# that, written alone, leave the credentials out.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})
_SCHEMES = frozenset({"basic", "bearer", "digest", "token", "bot", "oauth", "apikey"})
# What str.format reads as more than a name in a placeholder ({a.b}, {a[0]}, {a:x}, {a!r}).
_NOT_IN_A_NAME = re.compile(r"[.\[\]{}:!]")


def require_context_names(names: Collection[str]) -> None:
    """ValueError unless each of ``names`` (the mapping's context values') can be a
    placeholder's: not one of the requests' own (:data:`REPLY_FIELDS`, :data:`NOTE_FIELDS`),
    nor one str.format reads as more than a name: ``{a.b}`` is an attribute of ``a``,
    ``{a[0]}`` an item, ``{0}`` (and ``{}``) a positional argument. Such a placeholder passed
    every check at load and failed every send (KeyError, IndexError)."""
    clash = set(names) & (set(REPLY_FIELDS) | set(NOTE_FIELDS))
    if clash:
        raise ValueError(f"context: names {sorted(clash)} are reserved")
    for name in names:
        if not name or name.isdecimal() or _NOT_IN_A_NAME.search(name):
            raise ValueError(
                f"context: {name!r} cannot be a placeholder's name (no '.', '[', ']', braces, "
                "':' or '!', not digits alone): name it e.g. account_id"
            )


def template_fields(template: str) -> list[str]:
    """The placeholder names of a ``str.format`` template; ValueError for a malformed one
    (an unmatched brace), a format spec or a conversion (``{body:x}``, ``{body!r}``)."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        refuse_format_spec(name, spec, conversion)
        names.append(name)
    return names


def check_placeholders(key: str, request: RequestTemplate, allowed: set[str]) -> set[str]:
    """Refuse a placeholder outside ``allowed``, or a malformed template, naming where it is
    (``reply.headers.Authorization``, ``reply.body.message.parts[1]``) and never its text (a
    header or query value is a secret); return the placeholders used."""
    texts = [
        (f"{key}.url", request.url),
        *[(f"{key}.headers.{n}", v.get_secret_value()) for n, v in request.headers.items()],
        *[(f"{key}.query.{n}", v.get_secret_value()) for n, v in request.query.items()],
        *_strings(request.body, f"{key}.body"),
    ]
    for header, value in request.headers.items():
        if not HEADER_NAME.fullmatch(header):
            raise ValueError(
                f"{key}.headers: {header!r} is not a header name (letters, digits and "
                "!#$%&'*+-.^_`|~, no spaces or colon)"
            )
        if _CONTROL.search(value.get_secret_value()):
            # requests refuses it (InvalidHeader): every request would fail for good.
            raise ValueError(
                f"{key}.headers.{header}: a line break or NUL cannot be sent in a header "
                "(nor any control character but the tab)"
            )
        if not value.get_secret_value().strip() or (
            header.lower() in _CREDENTIAL_HEADERS
            and value.get_secret_value().strip().casefold() in _SCHEMES
        ):
            # "Bearer ${TOKEN:-}" with TOKEN unset: every request was refused (401) and the
            # reply failed for good, as a vendor's blank API credential (nonblank_credential).
            raise ValueError(
                f"{key}.headers.{header}: empty, or an authentication scheme without its "
                "credentials (is its environment variable set?)"
            )
    used: set[str] = set()
    for where, text in texts:
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:  # an unmatched brace
            hint = " (write {{ and }} for a literal brace)" if "Single" in str(exc) else ""
            raise ValueError(f"{where}: {exc}{hint}") from None
        names = [name for _, name, _, _ in parsed]
        for _, name, spec, conversion in parsed:
            if name is not None:
                refuse_format_spec(name, spec, conversion, where=where)
        literal = "".join(text + (_MARK if name is not None else "") for text, name, *_ in parsed)
        for written in _LITERAL_PLACEHOLDER.findall(literal):
            if written in allowed:
                # Zendesk's and Freshdesk's placeholders are {{ticket.id}}: written so here,
                # the value was never filled in (every reply to ".../{dialog_id}/...").
                raise ValueError(
                    f"{where}: {{{{{written}}}}} is the literal text {{{written}}}, never "
                    f"filled in: write {{{written}}} for its value"
                )
        for name in names:
            if name is not None and name not in allowed:
                raise ValueError(
                    f"{where}: unknown placeholder {{{name}}}; known: {', '.join(sorted(allowed))}"
                )
        used.update(name for name in names if name is not None)
    return used


def _placeholder_in(text: str) -> str | None:
    """The first ``{name}`` in ``text`` (a body's key), or None (a malformed brace: none)."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        return None
    return f"{{{names[0]}}}" if names else None


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    """Each text in a body template with its path (``body.message.parts[1]``)."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        for key in value:
            placeholder = _placeholder_in(str(key))
            if placeholder:
                raise ValueError(
                    f"{where}: {placeholder} in a key is not filled (only values are): the "
                    "key would be sent as written"
                )
        return [s for k, v in value.items() for s in _strings(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{where}[{i}]")]
    return []


class _Quoted(dict[str, str]):
    """``values`` URL-quoted, each when the template first uses it: a reply's values include
    its whole text, HTML and Markdown, which a URL never holds, and quoting them costs more
    than the rest of the rendering. An unknown name is a KeyError, as with a plain dict."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__()
        self._values = values

    def __missing__(self, key: str) -> str:
        quoted = self[key] = urllib.parse.quote(self._values[key], safe="")
        return quoted


def render(template: Any, values: Mapping[str, str], *, quote: bool = False) -> Any:
    """Fill ``{name}`` placeholders in every string of a JSON-like template (``quote``: each
    value URL-quoted, nothing kept safe)."""
    if isinstance(template, str):
        source = _Quoted(values) if quote else dict(values)
        return string.Formatter().vformat(template, (), source)
    if isinstance(template, dict):
        return {k: render(v, values, quote=quote) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values, quote=quote) for v in template]
    return template


# A known placeholder's name in a template's literal text (written with doubled braces).
_LITERAL_PLACEHOLDER = re.compile(r"\{\s*(\w+)\s*\}")
# What no header value may hold (RFC 9110 5.5): the C0 controls but the tab, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Stands for a placeholder while a URL template is split into its parts: a character no
# configured URL holds (a NUL cannot be written in YAML's plain text, nor sent in a URL).
_MARK = "\0"


@functools.lru_cache(maxsize=256)
def _marked(template: str) -> tuple[urllib.parse.SplitResult, tuple[str, ...]]:
    """``template`` split into its URL parts with each placeholder as :data:`_MARK`, and the
    placeholders' names in order (a template :func:`check_placeholders` has read). Cached:
    every reply's request asks it of its configured URL (:func:`_empty_segments`)."""
    text: list[str] = []
    names: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        text.append(literal)
        if name is not None:
            text.append(_MARK)
            names.append(name)
    return urllib.parse.urlsplit("".join(text)), tuple(names)


def _netloc(template: str) -> str:
    """The user, host and port of a URL template ('' when it cannot be read: refused else)."""
    try:
        return urllib.parse.urlsplit(template).netloc
    except ValueError:
        return ""


def check_url(template: str) -> str:
    """ValueError unless ``template`` names its server literally: a host, and no placeholder
    in the scheme, the user, the host or the port. A placeholder's value is the payload's
    (a context value, an id): in the host it chose the server (``{account}.desk.example`` with
    ``evil.com`` was ``evil.com.desk.example``; ``ä`` a host of percent escapes)."""
    try:
        list(string.Formatter().parse(template))
    except ValueError:  # a malformed brace: check_placeholders names where it is
        return template
    try:
        parts, names = _marked(template)
    except ValueError:  # urlsplit's: https://[::1 was let through, a traceback later
        raise ValueError("is not a URL: a host in [ ] must be a whole IPv6 address") from None
    if _MARK in parts.netloc:  # one in the scheme is no http(s) URL, refused before
        raise ValueError(
            f"a placeholder ({{{names[0]}}}) in the host: the payload would choose the "
            "server; write the server literally (a ${VAR} from the environment is fine) and "
            "put placeholders in the path or the query"
        )
    if "{" in parts.netloc or "}" in parts.netloc:
        raise ValueError(
            "a brace in the host ({{ and }} are literal braces, which no host name holds); "
            "write the server literally (a ${VAR} from the environment is fine)"
        )
    if _MARK in parts.fragment:
        name = names[len(names) - parts.fragment.count(_MARK)]
        raise ValueError(
            f"a placeholder ({{{name}}}) after '#': a URL's fragment is never sent; put it in "
            "the path or the query"
        )
    if not parts.hostname:
        raise ValueError("has no host (write https://host/path)")
    try:
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError:  # :99999 or :80a, taken, then every request failed
        raise ValueError("the port must be a number up to 65535") from None
    return template


def _empty_segments(template: str, values: Mapping[str, str]) -> list[str]:
    """The placeholders of ``template`` whose values leave a path segment empty: ``/api/{a}/d``
    with no ``a`` is ``/api//d``, which most servers read as another path."""
    parts, names = _marked(template)
    empty: list[str] = []
    index = parts.netloc.count(_MARK)  # none: check_url refused them
    for segment in parts.path.split("/"):
        pieces = segment.split(_MARK)
        used = names[index : index + len(pieces) - 1]
        index += len(pieces) - 1
        if used and not "".join(pieces) and not any(values.get(n) for n in used):
            empty.extend(used)
    return empty


def unsendable_path_values(
    template: str, values: Mapping[str, str], names: Collection[str], *, empty: bool
) -> list[tuple[str, str]]:
    """The placeholders among ``names`` (their ``values`` known: a close's context) that make
    a path segment of ``template`` one no request can be sent to, each with why: ``"dot"``
    when the segment, made of those placeholders alone, reads ``.`` or ``..`` (RFC 3986
    removes such a segment: the request would go to another path, and the transport refuses
    it), ``"empty"`` (with ``empty``) when it is left empty (``/api//d``:
    :func:`rendered_parts` refuses it). A segment that also holds literal text or another
    placeholder is not judged here."""
    parts, marked = _marked(template)
    found: list[tuple[str, str]] = []
    index = parts.netloc.count(_MARK)  # none: check_url refused them
    for segment in parts.path.split("/"):
        pieces = segment.split(_MARK)
        used = marked[index : index + len(pieces) - 1]
        index += len(pieces) - 1
        if not used or "".join(pieces) or not all(name in names for name in used):
            continue
        text = "".join(values.get(name) or "" for name in used)
        if text in DOT_SEGMENTS:
            found.extend((name, "dot") for name in used)
        elif empty and not text:
            found.extend((name, "empty") for name in used)
    return found


def unsendable_header_values(
    spec: RequestTemplate, values: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The placeholders among ``values`` (a close's, as stored) that put a control character
    in one of ``spec``'s headers, each with the header: :func:`rendered_parts` would refuse
    to send the request (a line break, NUL, ESC...), whatever the other values."""
    found: list[tuple[str, str]] = []
    for header, template in spec.headers.items():
        for _, name, _, _ in string.Formatter().parse(template.get_secret_value()):
            if name is not None and name in values and _CONTROL.search(values[name]):
                found.append((name, header))
    return found


def rendered_parts(
    spec: RequestTemplate, values: Mapping[str, str]
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The request's URL (values URL-quoted), headers and query parameters, filled.

    DeliveryError (permanent, nothing sent) when a value would leave a path segment empty
    (:func:`_empty_segments`): the request would reach another path."""
    empty = _empty_segments(spec.url, values)
    if empty:
        raise DeliveryError(
            f"not sent: {', '.join('{' + n + '}' for n in empty)} is empty in the URL's path, "
            "which would send the request to another path",
            retryable=False,
        )
    url = render(spec.url, values, quote=True)
    headers = {k: render(v.get_secret_value(), values) for k, v in spec.headers.items()}
    for name, value in headers.items():
        if _CONTROL.search(value):
            # A line break would start another header (requests refuses it); NUL, DEL, ESC
            # and the rest RFC 9110 allows in no field value went out as they were.
            raise DeliveryError(
                f"not sent: the header {name} would hold a control character (a line break, "
                "NUL...) from a placeholder's value",
                retryable=False,
            )
    params = {k: render(v.get_secret_value(), values) for k, v in spec.query.items()}
    return url, headers, params


def reply_values(reply: Reply) -> dict[str, str]:
    """The placeholder values a reply template may use."""
    values = {
        "text": reply.text,
        # The same reply for APIs whose messages are HTML or Markdown (the scale of score
        # links as anchors / [label](url); otherwise the text with its link).
        "html": reply_html(reply),
        "markdown": reply_markdown(reply),
        "link": reply.link,
        "dialog_id": reply.dialog_id,
        "agent_id": reply.agent.id or "",
        "agent_name": reply.agent.name or "",
        "agent_email": reply.agent.email or "",
        "customer_id": reply.customer.id or "",
        "customer_email": reply.customer.email or "",
        "idempotency_key": reply.idempotency_key,
    }
    values.update({k: "" if v is None else str(v) for k, v in reply.context.items()})
    return values


def note_values(note: Note) -> dict[str, str]:
    """The placeholder values a note template may use (:data:`NOTE_FIELDS` and the context)."""
    values = {
        "text": note.text,
        "html": text_to_html(note.text),
        "dialog_id": note.dialog_id,
        "marker": note.marker,
        "idempotency_key": note.idempotency_key,
    }
    values.update({k: "" if v is None else str(v) for k, v in note.context.items()})
    return values


def text_values(context: Mapping[str, Any]) -> dict[str, str]:
    """A dialog's reply context as placeholder values (None as empty)."""
    return {k: "" if v is None else str(v) for k, v in context.items()}


class _Functions(jmespath.functions.Functions):
    """JMESPath's functions, but ``to_string`` of null is null: the text "null" is no value a
    payload or an answer carries (it became a dialog id, a team, an agent's name)."""

    @jmespath.functions.signature({"types": []})
    def _func_to_string(self, arg: Any) -> Any:
        if arg is None or isinstance(arg, str):
            return arg
        return json.dumps(arg, separators=(",", ":"), default=str)  # as JMESPath's own


# How every generic expression is evaluated (the mapping, the requests' answers).
JMESPATH_OPTIONS = jmespath.Options(custom_functions=_Functions())


def search_or_none(expression: str, data: Any) -> Any:
    """``jmespath.search``, None when a function refuses what ``data`` holds there (``join``
    over numbers: a vendor's answer chose the types; ``floor`` or ``ceil`` of the infinity
    or NaN ``to_number`` reads ``"inf"`` as), as for a value that is missing (``to_string``
    of a missing value too: :data:`JMESPATH_OPTIONS`)."""
    try:
        return jmespath.search(expression, data, options=JMESPATH_OPTIONS)
    except (JMESPathError, OverflowError, ValueError):  # math.floor/ceil of inf or NaN too
        # Escaping send_reply after a 2xx, it was an unknown outcome: the reply posted again.
        return None


def _written(expression: str, info: ValidationInfo) -> str:
    """``expression`` unless it is empty or blank (ValueError): what ``${VAR:-}`` gives with
    VAR unset. Read as no expression, an empty ``event`` or ``status`` was no value, every
    webhook answered 200 "ignored"; an empty ``dialog_id`` refused every close (400)."""
    if expression.strip():
        return expression
    if info.field_name == "dialog_id":
        instead = ""
    elif info.field_name == "context":
        instead = ", or leave the name out"
    else:
        instead = ", or null for a value the payload does not carry"
    raise ValueError(
        "empty (is its environment variable set?): write a JMESPath into the webhook body" + instead
    )


# A JMESPath into the webhook body, as a mapping key holds it (checked whole by the mapping).
Expression = Annotated[str, AfterValidator(_written)]


def require_jmespath(expression: str, key: str | None = None) -> None:
    """ValueError (naming ``key`` when given) unless ``expression`` is a valid JMESPath."""
    where = f"{key}: " if key else ""
    try:
        parsed = jmespath.compile(expression)
    except JMESPathError as exc:
        spelt = _jmespath_spelling(expression)
        hint = f" (a path is written so in JMESPath: write {spelt})" if spelt else ""
        raise ValueError(
            f"{where}{expression!r} is not a valid JMESPath: {str(exc).splitlines()[0]}{hint}"
        ) from None
    except RecursionError:  # the parser recurses once per bracket or parenthesis
        raise ValueError(f"{where}the expression nests too deeply to be read") from None
    problem = _call_problem(dict(parsed.parsed))
    if problem:
        raise ValueError(f"{where}{problem}")


# A plain path as other tools write one: JSONPath's "$." root, a.0.b indices, hyphenated keys.
_PLAIN_PATH = re.compile(r"\$?\.?[A-Za-z_][\w-]*(?:\.[\w-]+)*")


def _jmespath_spelling(expression: str) -> str | None:
    """``expression``, a plain path JMESPath refused, as JMESPath writes it (``$.a.0.b-c`` →
    ``a[0]."b-c"``); None when it is no such path or that does not compile either."""
    if not _PLAIN_PATH.fullmatch(expression):
        return None
    spelt = ""
    for segment in expression.lstrip("$").lstrip(".").split("."):
        if segment.isascii() and segment.isdigit():
            spelt += f"[{segment}]"
        else:
            name = f'"{segment}"' if "-" in segment or segment[:1].isdigit() else segment
            spelt += f".{name}" if spelt else name
    try:
        jmespath.compile(spelt)
    except JMESPathError:
        return None
    return spelt if spelt != expression else None


def require_one_value(expression: str, key: str) -> None:
    """ValueError naming ``key`` when ``expression`` (valid: :func:`require_jmespath`) gives
    a list or an object whatever the payload holds (a projection, a filter, a flatten, a
    multi-select, ``sort()``...): a mapped field reads one text or number, and read from a
    list it was always none (an event never a close, a name or a context value empty)."""
    if _always_many(dict(jmespath.compile(expression).parsed)):
        raise ValueError(
            f"{key}: {expression!r} always gives a list (or an object): a projection such "
            "as [*], [] or .*, a filter, a slice, a multi-select or a function returning a "
            "list; pick one item, e.g. events[0].name or events[*].name | [0]"
        )


# The AST nodes whose value is a list or an object whatever the input, and such functions.
_MANY_NODES = frozenset(
    {
        "projection",
        "value_projection",
        "filter_projection",
        "flatten",
        "multi_select_list",
        "multi_select_dict",
    }
)
_MANY_FUNCTIONS = frozenset({"keys", "values", "sort", "sort_by", "map", "to_array", "merge"})


def _always_many(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    children = [c for c in node.get("children", ()) if isinstance(c, Mapping)]
    if kind in _MANY_NODES:
        return True
    if kind == "function_expression":
        return node.get("value") in _MANY_FUNCTIONS
    if kind in ("subexpression", "pipe") and children:
        return _always_many(children[-1])
    if kind == "or_expression" and children:
        return all(_always_many(child) for child in children)
    return False


_FUNCTIONS: dict[str, Any] = jmespath.functions.Functions().FUNCTION_TABLE
FUNCTIONS_URL = "https://jmespath.org/specification.html#built-in-functions"


def _call_problem(tree: Mapping[str, Any]) -> str | None:
    """What is wrong with a function call in a parsed expression: a name JMESPath does not
    know, or a wrong number of arguments; None when every call can be made. Both compile,
    and then failed on every payload (a 400 blaming the sender) or every answer."""
    pending: list[Mapping[str, Any]] = [tree]
    while pending:
        node = pending.pop()
        pending.extend(child for child in node.get("children", ()) if isinstance(child, dict))
        if node.get("type") != "function_expression":
            continue
        name, given = str(node.get("value")), len(node.get("children", ()))
        entry = _FUNCTIONS.get(name)
        if entry is None:
            return f"unknown JMESPath function {name}() (the built-in ones: {FUNCTIONS_URL})"
        signature = entry["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        wanted = len(signature)
        plural = "argument" if wanted == 1 else "arguments"
        if variadic and given < wanted:
            return f"{name}() takes at least {wanted} {plural}, not {given}"
        if not variadic and given != wanted:
            return f"{name}() takes {wanted} {plural}, not {given}"
    return None


class RequestOptions(StrictModel):
    """What the options of every configurable request (reply, note, look-up, agent) check:
    an http(s) ``url``, no ``body`` with ``GET``, and valid JMESPath in the fields named by
    :attr:`jmespath_fields` (None skipped). Subclasses declare the fields themselves."""

    jmespath_fields: ClassVar[tuple[str, ...]] = ()

    @field_validator("url", check_fields=False)
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Without the spaces and line break around it: ``${GENERIC_REPLY_URL}`` from a file
        # or a Kubernetes secret ends with a newline, which urlsplit drops for the check and
        # requests sends (``/messages%0A``: a 404, every request failed for good).
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return check_url(value)

    @model_validator(mode="after")
    def _checked(self) -> Self:
        body = getattr(self, "body", None)
        if body is not None and getattr(self, "method", None) == "GET":
            raise ValueError("body is only sent with method POST")
        if getattr(self, "encoding", "json") == "json" and _json_document_text(body):
            # Sent as JSON, a text is one JSON string ("{\"text\": ...}"), never the object
            # it spells: every request refused by the helpdesk, or broken by a quote.
            raise ValueError(
                "body: a JSON document written as a text would be sent as one JSON string; "
                'write it as a YAML mapping or list instead (body: {content: "{text}"}), '
                "whose values are filled and escaped"
            )
        headers = getattr(self, "headers", None) or {}
        url = getattr(self, "url", "")
        if any(name.lower() == "authorization" for name in headers) and "@" in _netloc(url):
            # requests sends a URL's credentials as Basic auth over the header: the header's
            # token never left, and every request was refused (401).
            raise ValueError(
                "url: a user:password@ and an Authorization header: the URL's would be sent "
                "in place of the header's; keep one of them"
            )
        for key in self.jmespath_fields:
            expression = getattr(self, key)
            if expression is not None:
                require_jmespath(expression, key)
        return self


def _json_document_text(body: Any) -> bool:
    """Whether ``body`` is a text that spells a JSON object or array, as written or once its
    placeholders (``{{`` and ``}}`` literal braces) are filled."""
    if not isinstance(body, str) or not body.lstrip().startswith(("{", "[")):
        return False
    candidates = [body]
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(body) if name is not None}
        candidates.append(string.Formatter().vformat(body, (), dict.fromkeys(fields, "x")))
    except (ValueError, KeyError, IndexError, AttributeError):
        pass  # a malformed template: check_placeholders names it
    for text in candidates:
        try:
            if isinstance(json.loads(text), dict | list):
                return True
        except ValueError:
            continue
    return False
