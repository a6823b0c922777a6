"""Reply text as HTML, for helpdesks whose message bodies are HTML (Intercom, Help Scout).

The rendered reply is plain text that carries names (an agent's, a customer's) and a URL with
``&`` in its query. Sent as-is into an HTML body, a name could inject markup and the URL could
be mangled by entity parsing, so the text is escaped and the survey link made a real anchor.
"""

from __future__ import annotations

import html


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
