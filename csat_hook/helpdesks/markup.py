"""A reply in each vendor's markup: HTML (Intercom, Help Scout, Freshdesk, Zendesk with score
links), Markdown (Chatwoot's web widget and e-mail channels) or plain text (chat channels that
show text as it is: WhatsApp, Telegram, SMS...).

The rendered reply carries names (an agent's, a customer's) and URLs with ``&`` in their
query. Sent as-is into an HTML body, a name could inject markup and a URL could be mangled by
entity parsing, so text is escaped and links made real anchors; in Markdown, a name's ``*``
or ``[`` is escaped so it cannot make a link or emphasis.

An internal note (an alert) is plain text holding the customer's comment: where the vendor
renders notes as HTML it goes through :func:`text_to_html`, where it renders them as Markdown
(Chatwoot) through :func:`text_to_markdown`, so the comment shows as written, never as a
link, an image or formatting.
"""

from __future__ import annotations

import html
import re

from csat_hook.helpdesks.records import Reply
from csat_hook.links import Body
from csat_hook.links import plain_text
from csat_hook.links.body import has_scale

# A score link styled as a button where the mail client keeps inline styles (most do).
_BUTTON = (
    "display:inline-block;min-width:1.6em;padding:6px 10px;margin:2px;border:1px solid #c6cbd1;"
    "border-radius:6px;text-align:center;text-decoration:none"
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>~|])")
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
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        quote = QUOTE_MARKER if line.startswith(QUOTE_MARKER) else ""
        rest = line[len(quote) :]
        blanks = _LEADING_BLANKS.match(rest)
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
    """``body`` as Markdown: text escaped, the link bare (auto-linked), the scale
    ``[label](url)`` links, one line."""
    out: list[str] = []
    for segment in body:
        if segment.choices:
            links = " · ".join(f"[{_md(c.label)}]({_md_url(c.href)})" for c in segment.choices)
            lead = "\n\n" if out and not out[-1].endswith("\n") else ""
            out.append(lead + links)
        elif segment.href is not None:
            out.append(segment.href)
        else:
            out.append(_md(segment.text))
    return "".join(out)


def _md(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _md_url(url: str) -> str:
    # Our URLs are base + base64url reference + digits; parentheses and spaces cannot occur,
    # but a configured base could hold them: percent-encode what would end the link.
    return url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")


def reply_html(reply: Reply) -> str:
    """The reply as HTML: with the scale when it has one, else the text with its link."""
    if has_scale(reply.body):
        return body_to_html(reply.body)
    return text_to_html(reply.text, reply.link)


def reply_markdown(reply: Reply) -> str:
    """The reply as Markdown when it shows the scale; else its plain text (as before)."""
    return body_to_markdown(reply.body) if has_scale(reply.body) else reply.text


def reply_for_channel(reply: Reply) -> str:
    """Markdown for a chat channel that renders it (Chatwoot's web widget and e-mail), else
    plain text (what WhatsApp, Telegram or SMS show as it is)."""
    if reply.channel.strip().casefold() in MARKDOWN_CHANNELS:
        return reply_markdown(reply)
    return plain_text(reply.body) if reply.body else reply.text
