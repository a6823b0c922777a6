"""The scanner rules, the limits and the pages, one by one."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from pydantic import ValidationError

from csat_hook.clicks import pages
from csat_hook.clicks.limits import RateLimiter
from csat_hook.clicks.scanners import StoredClick
from csat_hook.clicks.scanners import burst_ids
from csat_hook.clicks.scanners import classify
from csat_hook.links import LinksConfig

CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def verdict(agent: str = CHROME, method: str = "GET", since: float | None = 600.0):
    return classify(
        method=method, user_agent=agent, seconds_since_send=since, min_seconds_after_send=10
    )


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        ("Mozilla/5.0 (compatible; Microsoft Defender SafeLinks)", "safelinks"),
        ("Microsoft Office Existence Discovery", "office_discovery"),
        ("Proofpoint URL Defense/2.0", "proofpoint"),
        ("Mimecast-Targeted-Threat-Protection", "mimecast"),
        ("Barracuda Sentinel (EE)", "barracuda"),
        ("Google-Safety", "google_safety"),
        ("facebookexternalhit/1.1", "facebook"),
        ("WhatsApp/2.24.1.6 A", "whatsapp"),
        ("TelegramBot (like TwitterBot)", "telegram"),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "slack"),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0 Safari/537.36", "headless"),
        ("python-requests/2.32.3", "http_library"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "bot"),
        # Scripts' HTTP clients besides the few above: no person's browser says these.
        ("python-httpx/0.27.0", "http_library"),
        ("Python/3.12 aiohttp/3.9.5", "http_library"),
        ("axios/1.6.8", "http_library"),
        ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "http_library"),
        ("undici", "http_library"),
        ("Apache-HttpClient/4.5.14 (Java/17.0.2)", "http_library"),
        ("Java-http-client/17.0.2", "http_library"),
        ("libwww-perl/6.72", "http_library"),
        ("GuzzleHttp/7", "http_library"),
        ("PostmanRuntime/7.36.0", "http_library"),
        ("HTTPie/3.2.2", "http_library"),
        ("Scrapy/2.11.0 (+https://scrapy.org)", "http_library"),
        ("Dart/3.3 (dart:io)", "http_library"),
        ("Faraday v2.9.0", "http_library"),
        ("Ruby", "http_library"),
        # Preview services and crawlers that do not call themselves bots; a contact address
        # ("+https://...") is a robot's signature no browser carries.
        ("Iframely/1.3.1 (+https://iframely.com/docs/about)", "bot"),
        ("Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)", "bot"),
        ("vkShare; +http://vk.com/dev/Share", "bot"),
        ("Pinterest/0.2 (+https://www.pinterest.com/bot.html)", "bot"),
        (
            "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
            "bot",
        ),
        ("Mozilla/5.0 (compatible; Google-InspectionTool/1.0)", "bot"),
        ("Mediapartners-Google", "bot"),
        ("ia_archiver", "bot"),
        ("MetaInspector/5.15.0 (+https://github.com/jaimeiniesta/metainspector)", "bot"),
    ],
)
def test_scanner_agents(agent, name):
    assert verdict(agent) == (True, "scanner_agent", name)


def test_people_and_the_other_rules():
    assert verdict() == (False, None, None)
    # A phone whose model name ends in "bot" is a person.
    assert not verdict("Mozilla/5.0 (Linux; Android 9; CUBOT P30) Chrome/120.0 Mobile").automated
    for model in ("CUBOT_P30", "CUBOT_X30 Build/QP1A.190711.020", "CUBOT"):
        agent = f"Mozilla/5.0 (Linux; Android 10; {model}) AppleWebKit/537.36 Chrome/120.0 Mobile"
        assert not verdict(agent).automated, model
    # Apps' in-app browsers and mail apps are people (they name the app, not a robot).
    for person in (
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36 "
        "Instagram 350.0.0.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0]",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/25.0 Chrome/121.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 YaBrowser/24.12.0.0 Safari/537.36",
    ):
        assert not verdict(person).automated, person
    assert verdict(method="HEAD") == (True, "head", None)
    assert verdict("") == (True, "no_agent", None)
    assert verdict(since=3.0) == (True, "too_soon", None)
    assert verdict(since=None) == (False, None, None)  # send time unknown: not judged
    configured = classify(
        method="GET",
        user_agent=CHROME + " AcmeGateway",
        seconds_since_send=600,
        min_seconds_after_send=10,
        extra_agents=["acmegateway"],
    )
    assert configured == (True, "scanner_agent", "configured")


def test_bursts_need_two_different_links_of_one_survey_within_the_window():
    def at(i, survey, score, seconds):
        return StoredClick(i, survey, score, T0 + timedelta(seconds=seconds))

    clicks = [
        at(1, "a", 1, 0.0),
        at(2, "a", 2, 0.4),  # a burst with 1
        at(3, "a", 3, 0.9),  # and with 2
        at(4, "a", 4, 30),  # alone: a person
        at(5, "b", 5, 0.1),  # another survey at the same moment
        at(6, "c", 5, 0.0),
        at(7, "c", 5, 0.5),  # the same link twice (a double tap): not a burst
        at(8, "d", None, 0.0),
        at(9, "d", 2, 1.0),  # the plain link and a score 1 s apart: a burst at 1 s
    ]
    assert burst_ids(clicks, 1.0) == {1, 2, 3, 8, 9}
    assert burst_ids(clicks, 0.4) == {1, 2}


def test_rate_limiter_is_per_key_per_minute_and_bounded():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0], max_keys=3)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")
    assert 1 <= limiter.retry_after("a") <= 61
    now[0] = 60.0
    assert limiter.allow("a")  # a new window
    for key in "cdef":
        limiter.allow(key)
    assert len(limiter._counts) == 3  # the oldest keys are dropped


def test_page_language_and_escaping():
    assert pages.language_for(None, "de-DE,ru;q=0.8,en;q=0.5") == "ru"
    assert pages.language_for("ru", "en") == "ru"
    assert pages.language_for(None, "fr, de;q=0") == "en"
    assert pages.language_for(None, "x" * 5000 + ",ru") == "en"  # bounded reading
    page = pages.page(404, "ru")
    assert '<html lang="ru">' in page and "<script" not in page


@pytest.mark.parametrize(
    ("purpose", "kind"),
    [
        ("prefetch", "prefetch"),
        ("prefetch;prerender", "prerender"),
        ("Prefetch", "prefetch"),
        (" preview", "preview"),
        ("", None),
        ("navigate", None),
        ("prefetching", None),
    ],
)
def test_a_prefetch_is_automated_whatever_its_agent(purpose, kind):
    got = classify(
        method="GET",
        user_agent=CHROME,
        seconds_since_send=600.0,
        min_seconds_after_send=10,
        purpose=purpose,
    )
    assert got == ((True, "prefetch", kind) if kind else (False, None, None))


@pytest.mark.parametrize("entry", ["Chrome/", "mozilla", " ", "Safari", "5.0", "x"])
def test_a_scanner_entry_found_in_peoples_browsers_is_refused(entry):
    # "Chrome/" meant for HeadlessChrome made every Chrome user's click automated: the
    # funnel's "opened" fell to nothing, and nothing said why.
    with pytest.raises(ValidationError) as refused:
        LinksConfig(scanner_user_agents=["AcmeGateway", entry])
    assert "[1]" in str(refused.value)


def test_a_scanner_entry_no_browser_has_is_kept():
    kept = LinksConfig(scanner_user_agents=["AcmeGateway", ""]).scanner_user_agents
    assert kept == ["AcmeGateway", ""]  # an empty one is ignored, as ever
