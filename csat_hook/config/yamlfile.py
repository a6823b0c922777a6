"""Reading the configuration file: UTF-8 YAML, one document, bounded, every key given once.

PyYAML's ``safe_load`` alone keeps the last of two equal keys without a word, builds whatever
an alias chain expands to (a few lines can stand for a billion values), recurses without a
limit and lets some errors out as tracebacks. Here the document is composed first and checked
before anything is built. Errors give the line and column, never the line's text: the file
holds secrets.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode
from yaml.nodes import Node
from yaml.nodes import ScalarNode
from yaml.nodes import SequenceNode

from csat_hook.errors import ConfigError

MAX_DEPTH = 64  # mappings and lists nested in each other; the configuration needs about 8
# Values, keys and collections once aliases are expanded: config.example.yaml has about 600.
MAX_NODES = 100_000
MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than :data:`MAX_DEPTH` while composing (the
    composer recurses), and a date that does not exist as a YAML error with its position."""

    depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.depth >= MAX_DEPTH:
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:  # 2025-13-45: PyYAML lets datetime's ValueError through
            raise yaml.constructor.ConstructorError(
                None, None, "not a valid date (quote it to mean text)", node.start_mark
            ) from None

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        # Only a plain scalar can be read as another number; a quoted one is text.
        text = str(node.value).lstrip("+-").replace("_", "")
        if _OTHER_BASE.fullmatch(text):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a number written with a leading 0 (octal), 0x or 0b is read by YAML as "
                "another number (012 is 10): quote it to mean text, such as an id ('012'), "
                "or write the number in decimal",
                node.start_mark,
            )
        return super().construct_yaml_int(node)


# YAML 1.1's integers in another base than 10: 012 (octal: 10), 0x1F, 0b11. An agent's or a
# team's id written so became another id ("10") where the configuration compares ids as
# text: the directory never matched a webhook's "012".
_OTHER_BASE = re.compile(r"0[0-9]+|0[xX][0-9a-fA-F]+|0[bB][01]+")

_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def load_yaml(data: bytes, source: str) -> Any:
    """The one YAML document in ``data``; ConfigError naming ``source`` and the line when it
    is not UTF-8, not YAML, nested deeper than :data:`MAX_DEPTH`, larger than
    :data:`MAX_NODES` once aliases are expanded, aliased into itself, or repeats a key; or holds
    a character YAML does not allow (a NUL, a control character)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{source}: line {line}: not UTF-8 text (save it as UTF-8)") from None
    try:
        loader = _Loader(text)  # the reader refuses characters YAML does not allow, here
    except yaml.reader.ReaderError as exc:
        # Its text quotes nothing of the file, but PyYAML's wording names no line: the
        # character's code and its line, so a NUL or a pasted ESC can be found and removed.
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            f"{source}: line {line}: the character U+{exc.character:04X} is not allowed in YAML "
            "(a control character: remove it, or write it as an escape in double quotes)"
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check(node, source, loader)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {_describe(exc)}") from None
    finally:
        loader.dispose()


def _describe(exc: yaml.YAMLError) -> str:
    """What is wrong and where, without the excerpt of the file PyYAML's text includes."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return type(exc).__name__
    what = "; ".join(part for part in (exc.context, exc.problem) if part)
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return what
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}"


def _check(root: Node, source: str, loader: _Loader) -> None:
    """Refuse a repeated key, an alias into itself, and a document too deep or too large once
    aliases are expanded (a chain of aliases nests without nesting in the text).

    Each node is looked into once (aliases share nodes): its size and height are kept."""
    measured: dict[int, tuple[int, int]] = {}  # id → (size, height) of what it expands to
    open_nodes: set[int] = set()

    def measure(node: Node, path: str, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in open_nodes:
            raise _problem(source, node, f"{path or '(top level)'}: an alias refers to itself")
        if key not in measured:
            if depth > MAX_DEPTH:
                raise _problem(source, node, f"nested deeper than {MAX_DEPTH} levels")
            open_nodes.add(key)
            size, height = 1, 0
            for child, where in _children(node, path, source, loader):
                child_size, child_height = measure(child, where, depth + 1)
                size, height = size + child_size, max(height, child_height + 1)
                if size > MAX_NODES:
                    raise _problem(
                        source, node, f"more than {MAX_NODES} values once aliases are expanded"
                    )
            open_nodes.discard(key)
            measured[key] = (size, height)
        size, height = measured[key]
        if depth + height > MAX_DEPTH:
            raise _problem(source, node, f"nested deeper than {MAX_DEPTH} levels")
        return size, height

    measure(root, "", 0)


def _children(node: Node, path: str, source: str, loader: _Loader) -> list[tuple[Node, str]]:
    """The nodes inside ``node`` with their dotted paths; a key given twice is refused, also
    written another way (:func:`_key_read`)."""
    if isinstance(node, SequenceNode):
        return [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
    if not isinstance(node, MappingNode):
        return []
    children = []
    seen: dict[Any, Node] = {}
    for key_node, value in node.value:
        name = key_node.value if isinstance(key_node, ScalarNode) else "?"
        where = f"{path}.{name}" if path else str(name)
        if isinstance(key_node, ScalarNode) and key_node.tag != MERGE_TAG:
            first = seen.setdefault(_key_read(key_node, loader), key_node)
            if first is not key_node:
                same = (first.tag, first.value) == (key_node.tag, key_node.value)
                raise _problem(
                    source,
                    key_node,
                    f"{where}: given twice (first on line {first.start_mark.line + 1}"
                    f"{'' if same else ', written another way: the same key'}); keep one",
                )
        children += [(key_node, where), (value, where)]
    return children


def _key_read(key_node: ScalarNode, loader: _Loader) -> Any:
    """The key as the configuration reads it: its value, an integer as its decimal text. A
    mapping of ids reads ``14:`` and ``'14':`` as the id "14" (helpdesks/ids.py), and YAML
    builds ``14:`` and ``1_4:`` as one integer: the entry written first was dropped without a
    word, where the text of the keys differed."""
    key = loader.construct_object(key_node)
    return str(key) if isinstance(key, int) and not isinstance(key, bool) else key


def _problem(source: str, node: Node, message: str) -> ConfigError:
    return ConfigError(f"{source}: line {node.start_mark.line + 1}: {message}")
