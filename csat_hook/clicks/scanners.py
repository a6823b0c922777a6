"""Which clicks look automated.

Link scanners of mail security gateways (Microsoft Defender Safe Links, Proofpoint, Mimecast,
Barracuda, Google's safety checks) and the preview fetchers of chat apps (Slack, Telegram,
WhatsApp, Facebook, Discord...) open every link of a message, often every score link of it
within a second, and often within seconds of its arrival. None of them may count as the
customer opening the survey. A click is automated when (docs/links.md):

* it is a ``HEAD`` request (browsers follow links with GET; scanners probe with HEAD);
* it is a browser's prefetch, prerender or preview, which says so in a header
  (``Sec-Purpose``, ``Purpose``, ``X-Purpose``, ``X-Moz``: :func:`prefetch_kind`), whatever
  its User-Agent: fetched before anyone clicked;
* its User-Agent is missing, or names a scanner, a bot or a preview fetcher (:data:`SCANNERS`
  and ``survey.links.scanner_user_agents``);
* it came sooner than ``survey.links.min_seconds_after_send`` after the reply went out;
* two different links of one survey (two scores, or a score and the plain link) were opened
  within ``survey.links.burst_seconds`` of each other: all clicks of that burst are automated.
  A prefetch opened no link (``clicks/web.py`` refuses it) and is in no burst.

The first three are decided per click (:func:`classify`); the burst needs the survey's other
clicks, so it is applied when clicks are stored and again, over every stored click, when the
funnel is counted (:func:`burst_ids`): a burst split across two web processes is still found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

HEAD, PREFETCH, SCANNER_AGENT, NO_AGENT, TOO_SOON, BURST = (
    "head",
    "prefetch",
    "scanner_agent",
    "no_agent",
    "too_soon",
    "burst",
)

# (name stored in ``detail``, pattern searched case-insensitively in the User-Agent).
SCANNERS: tuple[tuple[str, str], ...] = (
    ("safelinks", r"safelinks|safe links|microsoft defender|\bmsdefender|o365|exchange online"),
    ("office_discovery", r"existence discovery|\bms-office\b|microsoft office/"),
    ("proofpoint", r"proofpoint|\bppe-"),
    ("mimecast", r"mimecast"),
    ("barracuda", r"barracuda"),
    ("google_safety", r"google-safety|googleimageproxy|google-read-aloud|feedfetcher"),
    ("bing_preview", r"bingpreview"),
    ("facebook", r"facebookexternalhit|facebookcatalog|meta-externalagent"),
    ("whatsapp", r"whatsapp"),
    ("telegram", r"telegrambot"),
    ("slack", r"slackbot|slack-imgproxy"),
    ("skype", r"skypeuripreview"),
    ("headless", r"headlesschrome|phantomjs|puppeteer|playwright|selenium"),
    # A script's HTTP client, by the name it starts with.
    (
        "http_library",
        r"^(?:curl|wget|python-requests|python-urllib|python-httpx|python/|go-http-client|okhttp"
        r"|java/|java-http-client|apache-httpclient|axios/|node-fetch|undici|libwww-perl"
        r"|guzzlehttp|postmanruntime|httpie|scrapy|dart/|faraday|ruby$)",
    ),
    (
        "bot",
        # Not the phone maker Cubot, whose models an Android browser names ("CUBOT_P30",
        # "CUBOT)"): their owners are people.
        r"(?<!cu)bot(?:[/\-;)(_]| \(|$)|crawler|spider|preview|scanner|\bscan\b|checker"
        # A contact address ("+https://...") signs a robot, never a browser; and the preview
        # services and crawlers that do not call themselves bots.
        r"|\+https?://|slurp|ia_archiver|mediapartners-google|inspectiontool|iframely|embedly"
        r"|vkshare|metainspector",
    ),
)
_SCANNERS = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in SCANNERS]
MAX_USER_AGENT = 1024  # longer ones are read only this far (a header is bounded anyway)
# The request headers in which a browser says a fetch is not a navigation someone started.
PURPOSE_HEADERS = ("Sec-Purpose", "Purpose", "X-Purpose", "X-Moz")


class Verdict(NamedTuple):
    """``automated`` with its reason and detail (a scanner's name), or a human click."""

    automated: bool
    reason: str | None = None
    detail: str | None = None


HUMAN = Verdict(False)


def classify(
    *,
    method: str,
    user_agent: str,
    seconds_since_send: float | None,
    min_seconds_after_send: float,
    extra_agents: Sequence[str] = (),
    purpose: str = "",
) -> Verdict:
    """The per-click rules (the burst is :func:`burst_ids`). ``seconds_since_send`` is None
    when the survey's send time is unknown (never judged too soon then). ``purpose``: the
    request's :data:`PURPOSE_HEADERS`, joined."""
    if method.upper() == "HEAD":
        return Verdict(True, HEAD)
    kind = prefetch_kind(purpose)
    if kind is not None:
        return Verdict(True, PREFETCH, kind)
    agent = user_agent.strip()[:MAX_USER_AGENT]
    if not agent:
        return Verdict(True, NO_AGENT)
    folded = agent.casefold()
    for extra in extra_agents:
        if extra and extra.casefold() in folded:
            return Verdict(True, SCANNER_AGENT, "configured")
    for name, pattern in _SCANNERS:
        if pattern.search(agent):
            return Verdict(True, SCANNER_AGENT, name)
    if seconds_since_send is not None and seconds_since_send < min_seconds_after_send:
        return Verdict(True, TOO_SOON)
    return HUMAN


def prefetch_kind(purpose: str) -> str | None:
    """``prefetch``, ``prerender`` or ``preview`` when ``purpose`` (the values of
    :data:`PURPOSE_HEADERS`: ``Sec-Purpose: prefetch;prerender``, ``Purpose: prefetch``,
    ``X-Moz: prefetch``, ``X-Purpose: preview``) names one, the most specific first; else
    None."""
    words = set(re.split(r"[\s,;=]+", purpose[:MAX_USER_AGENT].casefold()))
    for kind in ("prerender", "preview", "prefetch"):
        if kind in words:
            return kind
    return None


class StoredClick(NamedTuple):
    id: int
    survey: object  # the survey's id or key: clicks are grouped by it
    score: int | None
    clicked_at: datetime


def burst_ids(clicks: Iterable[StoredClick], burst_seconds: float) -> set[int]:
    """Ids of the clicks that belong to a burst: two different links (scores) of one survey
    opened within ``burst_seconds`` of each other. Every click of the burst is in it."""
    by_survey: dict[object, list[StoredClick]] = {}
    for click in clicks:
        by_survey.setdefault(click.survey, []).append(click)
    found: set[int] = set()
    for group in by_survey.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda c: (c.clicked_at, c.id))
        start = 0
        for end, click in enumerate(group):
            while (click.clicked_at - group[start].clicked_at).total_seconds() > burst_seconds:
                start += 1
            window = group[start : end + 1]
            if len({c.score for c in window}) > 1:
                found.update(c.id for c in window)
    return found
