"""A Chatwoot message as an agent or a customer reads it: Chatwoot renders every message,
private notes too, in the dashboard and the web widget with markdown-it
(``app/javascript/shared/helpers/MessageFormatter.js``: markdown-it ^13, ``html: false``,
``breaks``, ``typographer``, ``linkify``); markdown-it-py is its port and renders here with
linkify on, ``lheading`` disabled.

linkify-it-py (what markdown-it-py's linkify calls) is not a dependency, so :class:`Linkish`
stands in for it: it flags more than linkify-it does (any run of non-blanks with a ``.``,
``@`` or ``:`` between two word characters or slashes), so that text which reaches linkify in
one piece (``evil.com``, ``a@evil.com``, ``http://x``) becomes a link here too. Like
markdown-it >= 13, markdown-it-py runs linkify on ``text`` tokens before ``text_join``: a
backslash escape (a ``text_special`` token) splits the text it stands in.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

_LINKISH = re.compile(r"[^\s<>]*[\w/][.@:]+[\w/][^\s<>]*")


@dataclass(frozen=True)
class _Found:
    url: str
    text: str
    index: int
    last_index: int
    schema: str


class Linkish:
    """linkify-it's interface (``pretest``, ``test``, ``match``, ``match_at_start``), more
    eager than linkify-it: a bare domain, URL or e-mail address is always a link."""

    def pretest(self, text: str) -> bool:
        return bool(_LINKISH.search(text))

    test = pretest

    def match(self, text: str) -> list[_Found]:
        return [_found(m) for m in _LINKISH.finditer(text)]

    def match_at_start(self, text: str) -> _Found | None:
        m = _LINKISH.match(text)
        return _found(m) if m else None


def _found(m: re.Match[str]) -> _Found:
    text = m.group()
    if "://" in text:
        schema, url = text.split(":", 1)[0] + ":", text
    elif "@" in text:
        schema, url = "mailto:", "mailto:" + text
    else:
        schema, url = "", "http://" + text
    return _Found(url=url, text=text, index=m.start(), last_index=m.end(), schema=schema)


def _chatwoot() -> MarkdownIt:
    md = MarkdownIt(
        "js-default",
        {"html": False, "breaks": True, "typographer": True, "xhtmlOut": True, "linkify": True},
    ).disable("lheading")
    md.linkify = Linkish()
    return md


CHATWOOT_MARKDOWN = _chatwoot()
# What would make customer text live: links, images, emphasis, headings, rules, lists, code,
# tables, strikethrough.
LIVE = re.compile(r"<(?:a|img|strong|em|h[1-6]|hr|ul|ol|li|code|pre|table|s|del)\b")


def shown(markdown: str) -> str:
    """The message's text as rendered, whitespace folded; AssertionError when it renders
    anything live or leaves ``:``, ``.`` or ``@`` bare (the real linkify-it may find more than
    :class:`Linkish`: a note has no link of ours, so none is left to find)."""
    rendered = CHATWOOT_MARKDOWN.render(markdown)
    assert not LIVE.search(rendered), rendered
    assert not re.search(r"(?<!\\)[:.@]", markdown), markdown
    return _text(rendered)


def as_read(plain: str) -> str:
    """Plain text as it should read once rendered: a line's leading ``> `` shown as a quote,
    not as text; whitespace folded."""
    return " ".join(" ".join(line.removeprefix("> ") for line in plain.split("\n")).split())


def links_and_text(markdown: str) -> tuple[list[str], str]:
    """The hrefs of the links the message renders (images too, as ``img:<src>``) and its text
    as read, whitespace folded; AssertionError for raw HTML or any formatting."""
    tokens = CHATWOOT_MARKDOWN.parse(markdown)
    hrefs: list[str] = []
    for token in _flat(tokens):
        assert not token.type.startswith("html_"), token
        if token.type == "link_open":
            hrefs.append(str(token.attrs["href"]))
        elif token.type == "image":
            hrefs.append(f"img:{token.attrs['src']}")
    rendered = CHATWOOT_MARKDOWN.renderer.render(tokens, CHATWOOT_MARKDOWN.options, {})
    live = re.sub(r"<a\b", "", rendered)  # links are counted above
    assert not LIVE.search(live), rendered
    return hrefs, _text(rendered)


def _flat(tokens: list[Token]) -> list[Token]:
    return [t for token in tokens for t in (token, *_flat(token.children or []))]


def _text(rendered: str) -> str:
    # Blocks and line breaks part words; an inline tag (a link) does not.
    spaced = re.sub(r"</?(?:p|br|blockquote|div)\b[^>]*>", " ", rendered)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", spaced)).split())
