"""A Chatwoot message as an agent reads it: Chatwoot renders every message, private notes
too, with markdown-it (``app/javascript/shared/helpers/MessageFormatter.js``: ``html: false``,
``breaks``, ``typographer``, ``linkify``, ``lheading`` disabled); markdown-it-py is its port.
Linkify needs linkify-it, so it is checked apart: no ``:``, ``.`` or ``@`` left bare."""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

CHATWOOT_MARKDOWN = MarkdownIt(
    "js-default", {"html": False, "breaks": True, "typographer": True, "xhtmlOut": True}
).disable("lheading")
# What would make customer text live: links, images, emphasis, headings, rules, lists, code,
# tables, strikethrough.
LIVE = re.compile(r"<(?:a|img|strong|em|h[1-6]|hr|ul|ol|li|code|pre|table|s|del)\b")


def shown(markdown: str) -> str:
    """The message's text as rendered, whitespace folded; AssertionError when it renders
    anything live or leaves something linkify could pick up."""
    rendered = CHATWOOT_MARKDOWN.render(markdown)
    assert not LIVE.search(rendered), rendered
    assert not re.search(r"(?<!\\)[:.@]", markdown), markdown
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", rendered)).split())


def as_read(plain: str) -> str:
    """Plain text as it should read once rendered: a line's leading ``> `` shown as a quote,
    not as text; whitespace folded."""
    return " ".join(" ".join(line.removeprefix("> ") for line in plain.split("\n")).split())
