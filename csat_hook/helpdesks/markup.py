r"""A reply in each vendor's markup: HTML (Intercom, Help Scout, Freshdesk, Zendesk's
``html_body``), Markdown (Chatwoot's web widget and e-mail channels) or plain text (chat
channels that show text as it is: WhatsApp, Telegram, SMS...).

The rendered reply carries names (an agent's, a customer's: the close's payload says them,
so whoever can set a display name controls them) and URLs with ``&`` in their query. Sent
as-is into an HTML body, a name could inject markup and a URL could be mangled by entity
parsing, so text is escaped and links made real anchors. In Markdown every piece of text (the
template's words and the names in them) goes through the one escaper notes use
(:func:`text_to_markdown`'s): a name like ``evil.com``, ``a@evil.com``,
``http://evil.example/login``, ``[click](http://x)`` or ``<http://x>`` shows as written and is
never a link; the survey link is written as an autolink ``<url>`` (a link whatever surrounds
it), the scale as ``[label](url)`` links: those are the only links of the message.

The Markdown renderer assumed is Chatwoot's: markdown-it ^13 with ``linkify`` (its
``MessageFormatter.js``, the web widget and the dashboard). Since markdown-it 13 a backslash
escape is a token of its own (``text_special``) and linkify, which runs before the text is
joined again, only sees the text between escapes: ``evil\.com`` is ``evil``, ``.``, ``com``,
none of them a link. (markdown-it before 13 joined the escape into the text first and would
have linked it.)

An internal note (an alert) is plain text holding the customer's comment: where the vendor
renders notes as HTML it goes through :func:`text_to_html`, where it renders them as Markdown
(Chatwoot) through :func:`text_to_markdown`, so the comment shows as written, never as a
link, an image or formatting.
"""

from __future__ import annotations

import html
import re
import urllib.parse

from csat_hook.helpdesks.records import Reply
from csat_hook.links import Body
from csat_hook.links import Segment
from csat_hook.links import plain_text
from csat_hook.links.body import has_scale

# A score link styled as a button where the mail client keeps inline styles (most do).
_BUTTON = (
    "display:inline-block;min-width:1.6em;padding:6px 10px;margin:2px;border:1px solid #c6cbd1;"
    "border-radius:6px;text-align:center;text-decoration:none"
)
# A CommonMark autolink: a scheme, ":", then anything but a space, "<", ">" or a control.
_AUTOLINK = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\x00-\x20\x7f]*")
# What a link destination keeps as it is (RFC 3986's unreserved and reserved characters but
# the parentheses, and "%" of an existing escape); anything else is percent-encoded.
_URL_SAFE = "!#$%&'*+,-./:;=?@[]_~"
# Every ASCII punctuation character but the hyphen: CommonMark (and markdown-it, marked) read
# a backslash before any of them as that character, literally.
_ASCII_PUNCTUATION = re.compile(r"([!\"#$%&'()*+,./:;<=>?@\[\\\]^_`{|}~])")
# A hyphen that can be syntax: first on a line (a list item, a rule) or beside another (the
# typographer's "--" en dash). Elsewhere it is left bare: an alert's ref (csat-alert-…) must
# stay in the note's text as it is, to be found after an unknown outcome.
_SYNTAX_HYPHEN = re.compile(r"^-|-(?=-)|(?<=-)-")
_LEADING_BLANKS = re.compile(r"^[ \t]+")
QUOTE_MARKER = "> "
# Chatwoot channels whose messages render Markdown (the web widget; e-mail turns it into
# HTML). Others (WhatsApp, Telegram, SMS, Line, API...) get plain text.
MARKDOWN_CHANNELS = frozenset({"channel::webwidget", "channel::email"})


def text_to_html(text: str, link: str | None = None) -> str:
    """Escape ``text`` into ``<p>`` paragraphs (blank lines) with ``<br>`` line breaks.

    Every occurrence of ``link`` becomes ``<a href="link">link</a>``; the link is escaped
    like the rest, so the browser decodes exactly the original URL from ``href``.
    """
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    rendered = []
    for paragraph in paragraphs or [""]:
        escaped = html.escape(paragraph.strip("\n"), quote=True)
        if link:
            safe_link = html.escape(link, quote=True)
            escaped = escaped.replace(safe_link, f'<a href="{safe_link}">{safe_link}</a>')
        rendered.append("<p>" + escaped.replace("\n", "<br>") + "</p>")
    return "".join(rendered)


def text_to_markdown(text: str) -> str:
    """Plain ``text`` as Markdown that renders as it reads.

    Every ASCII punctuation character is backslash-escaped, a hyphen only where it can be
    syntax (see ``_SYNTAX_HYPHEN``): no link, image, emphasis, heading, list, table, HTML,
    entity, auto-link of a bare URL or address (their ``:``, ``.`` and ``@`` are escaped) or
    typographic replacement. Leading blanks become no-break spaces (four spaces would open a
    code block, which shows backslashes as they are). A line's leading ``> `` stays a quote
    marker, as in a plain-text e-mail; the rest of the line is escaped. Line breaks are kept:
    Chatwoot renders them (markdown-it ``breaks: true``).
    """
    return _escape_markdown(text, quotes=True, line_start=True)


def _escape_markdown(text: str, *, quotes: bool, line_start: bool) -> str:
    """:func:`text_to_markdown`'s escaping. ``quotes``: a line's leading ``> `` stays a quote
    marker (a note's quoted comment; never in a reply, where it could come from a name).
    ``line_start``: ``text`` starts a line of the message (else its first line continues one,
    and its leading blanks are not syntax)."""
    lines = []
    for i, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")):
        starts = line_start or i > 0
        quote = QUOTE_MARKER if quotes and starts and line.startswith(QUOTE_MARKER) else ""
        rest = line[len(quote) :]
        blanks = _LEADING_BLANKS.match(rest) if starts else None
        lead = "\u00a0" * len(blanks.group()) if blanks else ""
        rest = _ASCII_PUNCTUATION.sub(r"\\\1", rest[len(lead) :])
        lines.append(quote + lead + _SYNTAX_HYPHEN.sub(r"\\-", rest))
    return "\n".join(lines)


def body_to_html(body: Body) -> str:
    """``body`` as HTML: text escaped (paragraphs, line breaks), the link an anchor, the scale
    a row of button-like anchors."""
    out: list[str] = []
    for segment in body:
        if segment.choices:
            buttons = "".join(
                f'<a href="{html.escape(c.href, quote=True)}" style="{_BUTTON}">'
                f"{html.escape(c.label)}</a>"
                for c in segment.choices
            )
            out.append(f"</p><p>{buttons}</p><p>")
        elif segment.href is not None:
            safe = html.escape(segment.href, quote=True)
            out.append(f'<a href="{safe}">{html.escape(segment.text)}</a>')
        else:
            text = html.escape(segment.text.replace("\r\n", "\n"), quote=True)
            out.append(text.replace("\n\n", "</p><p>").replace("\n", "<br>"))
    rendered = "<p>" + "".join(out) + "</p>"
    return re.sub(r"<p>(?:\s|<br>)*</p>", "", rendered)


def body_to_markdown(body: Body) -> str:
    """``body`` as Markdown: every text escaped (:func:`text_to_markdown`'s escaping, without
    its quote markers), the link an autolink ``<url>``, the scale ``[label](url)`` links on
    one line. Those are the message's only links (see the module docstring)."""
    out: list[str] = []
    for segment in body:
        line_start = not out or out[-1].endswith("\n")
        if segment.choices:
            links = " · ".join(_markdown_link(c.label, c.href) for c in segment.choices)
            out.append(("" if line_start else "\n\n") + links)
        elif segment.href is not None:
            out.append(_markdown_link(segment.text, segment.href, autolink=True))
        else:
            out.append(_escape_markdown(segment.text, quotes=False, line_start=line_start))
    return "".join(out)


def _markdown_link(text: str, href: str, *, autolink: bool = False) -> str:
    """``<href>`` when ``text`` is ``href`` and CommonMark can write it so (an autolink: its
    text is the URL as it is, a link whatever is beside it, unlike a bare URL that linkify may
    cut at an escaped ``)``); else ``[text](href)``, the text escaped."""
    if autolink and text == href and _AUTOLINK.fullmatch(href):
        return f"<{href}>"
    return f"[{_escape_markdown(text, quotes=False, line_start=False)}]({_md_url(href)})"


def _md_url(url: str) -> str:
    # Our URLs are base + base64url reference + digits, or the form's URL-quoted link; a
    # configured base could still hold what ends a link destination (a space, parentheses,
    # "<", a control character): percent-encoded, as a browser would.
    return urllib.parse.quote(url, safe=_URL_SAFE)


def _as_body(text: str, link: str) -> Body:
    """A reply known only as text: its text with each occurrence of ``link`` a link."""
    segments: list[Segment] = []
    for i, piece in enumerate(text.split(link) if link else [text]):
        if i:
            segments.append(Segment(link, href=link))
        if piece:
            segments.append(Segment(piece))
    return tuple(segments)


def reply_html(reply: Reply) -> str:
    """The reply as HTML: with the scale when it has one, else the text with its link."""
    if has_scale(reply.body):
        return body_to_html(reply.body)
    return text_to_html(reply.text, reply.link)


def reply_markdown(reply: Reply) -> str:
    """The reply as Markdown (:func:`body_to_markdown`): its text escaped, the survey link or
    the scale of score links its only links. A reply without pieces (text and link only) is
    split at its link."""
    return body_to_markdown(reply.body or _as_body(reply.text, reply.link))


def reply_for_channel(reply: Reply) -> str:
    """Markdown for a chat channel that renders it (Chatwoot's web widget and e-mail), else
    plain text (what WhatsApp, Telegram or SMS show as it is)."""
    if reply.channel.strip().casefold() in MARKDOWN_CHANNELS:
        return reply_markdown(reply)
    return plain_text(reply.body) if reply.body else reply.text
