"""A Google Form's ``viewform`` page on loopback, pre-filled the way Forms does it.

Google renders a pre-filled link server-side: ``entry.<N>=<value>`` in the query makes the
linear-scale question's radio with that ``data-value`` ``aria-checked="true"`` (and its
hidden ``entry.<N>`` input carry the value), and fills the short-answer questions' inputs
(the visible ``input.whsOnd`` and the hidden ``entry.<N>`` one). This copy keeps that
structure (``form#mG61Hd`` posting to ``formResponse``, ``div[role=radiogroup]`` of
``div[role=radio]``, hidden inputs, the ``Submit`` button) so a browser test can check what a
customer would see: the score selected, the agent, ticket and reference filled.
"""

from __future__ import annotations

import html
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

from csat_hook.devtools.loopback import LoopbackServer

FORM_PATH = "/forms/d/e/1FAIpQLSfakeFormForBrowserTest/viewform"
RATING, AGENT, AGENT_ID, TICKET, TOKEN = (
    "entry.555",
    "entry.111",
    "entry.222",
    "entry.333",
    "entry.444",
)
TEXT_QUESTIONS = ((AGENT, "Agent"), (AGENT_ID, "Agent id"), (TICKET, "Ticket"), (TOKEN, "Ref"))


def _page(query: dict[str, str]) -> str:
    chosen = query.get(RATING, "")
    radios = "".join(
        f'<div class="Od2TWd hYsg7c" role="radio" data-value="{n}" '
        f'aria-checked="{"true" if str(n) == chosen else "false"}" aria-label="{n}" '
        f'tabindex="0" jsname="ploDTc"><div class="vd3tt">{n}</div></div>'
        for n in range(1, 6)
    )
    texts = "".join(
        f'<div class="Qr7Oae" role="listitem"><div class="z12JJ">{label}</div>'
        f'<input type="text" class="whsOnd zHQkBf" jsname="YPqjbf" autocomplete="off" '
        f'aria-label="{label}" data-entry="{entry}" '
        f'value="{html.escape(query.get(entry, ""), quote=True)}">'
        f'<input type="hidden" name="{entry}" '
        f'value="{html.escape(query.get(entry, ""), quote=True)}"></div>'
        for entry, label in TEXT_QUESTIONS
    )
    action = FORM_PATH.replace("/viewform", "/formResponse")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>How did we do?</title></head><body>"
        f'<form action="{action}" method="POST" id="mG61Hd" target="_self">'
        '<div class="Qr7Oae" role="listitem"><div class="z12JJ">How satisfied are you?</div>'
        f'<div class="lLfZXe" role="radiogroup" aria-label="How satisfied are you?">{radios}'
        f'</div><input type="hidden" name="{RATING}" value="{html.escape(chosen, quote=True)}">'
        f"</div>{texts}"
        '<div role="button" class="uArJ5e" jsname="M2UYVd"><span class="NPEfkd">Submit</span>'
        "</div></form></body></html>"
    )


class FakeForm(LoopbackServer):
    """Serves the form; ``requests`` lists the (path, query) of each request it got."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        form = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                with form.lock:
                    form.requests.append((parts.path, query))
                if parts.path != FORM_PATH:
                    self.send_error(404)
                    return
                body = _page(query).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{FORM_PATH}"
