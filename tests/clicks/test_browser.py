"""A score link followed by a real headless Chromium (issue 14): csat-hook's 302 leads to the
form with that score selected and the agent, ticket and reference filled.

Needs the Debian ``chromium`` and ``chromium-driver`` packages (``scripts/install-browser.sh``,
which ``.ci/run`` calls before the tests) and selenium (the ``test`` extra); without them the
test skips and says why.
"""

from __future__ import annotations

import html
import json
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from csat_hook.devtools.loopback import LoopbackServer
from tests.clicks.conftest import BASE
from tests.clicks.fake_form import AGENT
from tests.clicks.fake_form import RATING
from tests.clicks.fake_form import TICKET
from tests.clicks.fake_form import TOKEN
from tests.clicks.fake_form import FakeForm

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not shutil.which(path):
            return f"{path} not found: run scripts/install-browser.sh (Debian package {package})"
    return None


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-agent={PHONE}",  # a person's phone: the click is counted as human
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def fake_form() -> Iterator[FakeForm]:
    form = FakeForm().start()
    yield form
    form.stop()


@pytest.mark.parametrize("score", [4, 1])
def test_score_link_lands_on_the_form_with_the_score_selected(
    browser, fake_form, make_served, clock, fake_helpdesk, score
):
    served = make_served(form_url=fake_form.url)
    survey = served.send_survey("D-42", agent_name="Anna Petrova")
    clock.advance(120)
    # The score link as the customer got it, on the loopback address instead of the public one.
    [reply] = [r for r in fake_helpdesk.api_requests() if r["method"] == "POST"]
    text = reply["body"]["text"]
    link = next(w for w in text.split() if w.endswith(f"/s/{survey.token}/{score}"))
    assert link.startswith(BASE)

    browser.get(served.url + link[len(BASE) :])

    from selenium.webdriver.common.by import By

    landed = urllib.parse.urlsplit(browser.current_url)
    assert landed._replace(query="").geturl() == fake_form.url
    query = dict(urllib.parse.parse_qsl(landed.query))
    assert query[RATING] == str(score)
    checked = browser.find_elements(By.CSS_SELECTOR, '[role="radio"][aria-checked="true"]')
    assert [e.get_attribute("data-value") for e in checked] == [str(score)]

    def hidden(entry: str) -> str | None:
        element = browser.find_element(By.CSS_SELECTOR, f'input[type="hidden"][name="{entry}"]')
        return element.get_attribute("value")

    assert hidden(RATING) == str(score)
    assert (hidden(AGENT), hidden(TICKET), hidden(TOKEN)) == ("Anna Petrova", "D-42", survey.token)
    visible = browser.find_element(By.CSS_SELECTOR, f'input.whsOnd[data-entry="{TOKEN}"]')
    assert visible.get_attribute("value") == survey.token
    # The browser went through csat-hook (one human click stored) and reached the form once.
    [click] = served.clicks()
    assert (click.score, click.automated) == (score, False)
    assert [path for path, _ in fake_form.requests if path.endswith("/viewform")] == [
        urllib.parse.urlsplit(fake_form.url).path
    ]


def test_forged_score_link_never_reaches_the_form(browser, fake_form, make_served, clock):
    served = make_served(form_url=fake_form.url)
    survey = served.send_survey("D-43")
    clock.advance(120)
    payload, tag = survey.token.split(".")
    edited = f"{payload}.{tag[:-1]}{'B' if tag[-1] != 'B' else 'C'}"

    browser.get(f"{served.url}/s/{edited}/5")

    from selenium.webdriver.common.by import By

    assert browser.current_url.startswith(served.url)
    assert "does not work" in browser.find_element(By.TAG_NAME, "h1").text
    assert fake_form.requests == [] and served.clicks() == []


class _Mail(LoopbackServer):
    """A web mail's message page on loopback: the score link, and the browser told to
    prefetch it (as a mail or chat page may, before anyone clicks)."""

    def __init__(self, link: str, *, speculation: str | None = None, host: str = "127.0.0.1"):
        # ``speculation``: a speculation rule's action ("prefetch", "prerender") for the link
        # instead of <link rel=prefetch>.
        hint = f'<link rel="prefetch" href="{html.escape(link, quote=True)}">'
        if speculation is not None:
            rules = {speculation: [{"source": "list", "urls": [link], "eagerness": "immediate"}]}
            hint = f'<script type="speculationrules">{json.dumps(rules)}</script>'
        self.host = host
        page = (
            f'<!doctype html><html><head><meta charset="utf-8">{hint}</head><body>'
            f'<p>How did we do? <a id="score" href="{html.escape(link, quote=True)}">5</a></p>'
            "</body></html>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}/message"


def test_a_prefetch_is_automated_and_the_customers_click_is_theirs(
    browser, fake_form, make_served, clock
):
    # Chromium prefetches the score link the page names (Sec-Purpose: prefetch, with its own
    # User-Agent: a person's phone): not the customer opening the survey. Their click on the
    # link afterwards goes to csat-hook again (the 302 is no-store: never served from the
    # prefetch) and is a person's.
    served = make_served(form_url=fake_form.url)
    survey = served.send_survey("D-44")
    clock.advance(120)
    mail = _Mail(f"{served.url}/s/{survey.token}/5").start()
    try:
        browser.get(mail.url)
        deadline = time.monotonic() + 10
        while not served.clicks() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [(c.score, c.automated, c.reason) for c in served.clicks()] == [
            (5, True, "prefetch")
        ]
        clock.advance(60)

        from selenium.webdriver.common.by import By

        browser.find_element(By.ID, "score").click()
        deadline = time.monotonic() + 10
        while not browser.current_url.startswith(fake_form.url) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        mail.stop()

    assert browser.current_url.startswith(fake_form.url + "?")
    assert [(c.score, c.automated, c.reason) for c in served.clicks()] == [
        (5, True, "prefetch"),
        (5, False, None),
    ]


@pytest.mark.parametrize("speculation", ["prefetch", "prerender"])
def test_a_speculation_rules_prefetch_leaves_the_customers_click_to_them(
    browser, fake_form, make_served, clock, speculation
):
    # A web mail on another site (localhost, csat-hook on 127.0.0.1) with a speculation rule
    # for the score link. Chromium keeps such a prefetch's 302 whatever its Cache-Control and,
    # when the customer clicks, goes straight to the form: their click never reached
    # csat-hook. The prefetch is refused instead, and the click is theirs.
    served = make_served(form_url=fake_form.url)
    survey = served.send_survey("D-45")
    clock.advance(120)
    mail = _Mail(
        f"{served.url}/s/{survey.token}/5", speculation=speculation, host="localhost"
    ).start()
    try:
        browser.get(mail.url)
        deadline = time.monotonic() + 10
        while not served.clicks() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [(c.score, c.automated, c.reason) for c in served.clicks()] == [
            (5, True, "prefetch")
        ]
        assert fake_form.requests == []  # the prefetch went no further
        clock.advance(60)

        from selenium.webdriver.common.by import By

        browser.find_element(By.ID, "score").click()
        deadline = time.monotonic() + 10
        while not browser.current_url.startswith(fake_form.url) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        mail.stop()

    assert browser.current_url.startswith(fake_form.url + "?")
    assert [(c.score, c.automated, c.reason) for c in served.clicks()] == [
        (5, True, "prefetch"),
        (5, False, None),
    ]
