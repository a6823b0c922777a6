"""What the reply look-up tests share: a real survey reply (signed token, pre-filled Forms link,
the default template) and the questions every vendor's ``find_reply`` must answer the same way.

The ``list_messages.json`` fixtures hold replies built by :func:`survey_reply` (the research
fixtures of /work/research/vendors, with our reply as the adapter renders it): one our reply,
one internal note carrying the token, one customer e-mail quoting it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any

import responses

from csat_hook import tokens
from csat_hook.app import create_app
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.links import FormConfig
from csat_hook.links import LinkValues
from csat_hook.links import ReplyConfig
from csat_hook.links import build_link
from csat_hook.links import reply_text
from tests.helpdesks.kits import load_kits
from tests.outbox.test_worker import outbox_rows

TOKEN_SECRET = "lookup-tests-token-secret"
ISSUED = datetime(2025, 3, 14, 10, 5, tzinfo=UTC)
# The fixtures' reply is posted at 10:05:12; the outbox started the attempt at 10:05:00.
SINCE = datetime(2025, 3, 14, 10, 5, tzinfo=UTC)
QUOTE_PREFIX = "On Fri, 14 Mar 2025 at 10:05, Acme Support wrote:"
FORM = FormConfig(url="https://docs.google.com/forms/d/e/1FAIpQLSd_EXAMPLE/viewform")
CUSTOMER = Person(id="12", name="Jane Doe", email="jane@acme.inc")


def survey_token(helpdesk: str, dialog_id: str, agent_id: str) -> str:
    ref = tokens.SurveyRef(helpdesk, dialog_id, agent_id, ISSUED, nonce="k3f9")
    return tokens.sign(TOKEN_SECRET, ref)


def survey_reply(helpdesk: str, dialog_id: str, agent_id: str) -> tuple[str, str, str]:
    """(text, link, token) of the survey reply csat-hook posts for this dialog."""
    token = survey_token(helpdesk, dialog_id, agent_id)
    link = build_link(
        FORM,
        LinkValues(
            agent_name="Anna",
            agent_id=agent_id,
            agent_email="",
            ticket=dialog_id,
            helpdesk=helpdesk,
            team="",
            token=token,
        ),
    )
    text = reply_text(
        ReplyConfig(),
        "en",
        link=link,
        agent_name="Anna",
        customer_name="Jane",
        ticket=dialog_id,
        helpdesk=helpdesk,
        team="",
    )
    return text, link, token


def lookup_reply(
    helpdesk: str, dialog_id: str, agent_id: str, *, context: dict[str, str] | None = None
) -> Reply:
    """The Reply the outbox hands ``find_reply`` for the fixtures' survey."""
    text, link, token = survey_reply(helpdesk, dialog_id, agent_id)
    return Reply(
        helpdesk=helpdesk,
        dialog_id=dialog_id,
        text=text,
        link=link,
        agent=Person(id=agent_id, name="Anna"),
        customer=CUSTOMER,
        context=context or {},
        idempotency_key="csat-hook-7",
        marker=token,
    )


def assert_real_token(token: str, helpdesk: str, dialog_id: str) -> None:
    """The fixture carries a token our signer made for this dialog (not a made-up string)."""
    ref = tokens.verify(token, [TOKEN_SECRET])
    assert (ref.helpdesk, ref.dialog_id) == (helpdesk, dialog_id)


# --- through the outbox: an unreadable listing after an unknown outcome ----------------------

HTML = "<html>Service temporarily unavailable</html>"
Answer = tuple[int, dict[str, str], str]
# What may answer a reply's POST in the vendor's place: a 500 (the API failed, perhaps after
# storing it), a proxy's or a captive portal's 2xx page, an empty 2xx from something in
# between. None is the API's answer to a created message (which always carries its id), so
# none proves the reply was posted, nor that it was not.
NOT_THE_APIS_ANSWER: list[Answer] = [
    (500, {}, '{"error": "boom"}'),
    (200, {"Content-Type": "text/html"}, "<html><body>Sign in to the network</body></html>"),
    (200, {}, ""),
    (201, {"Content-Type": "application/json"}, "{}"),
]


def outbox_posts_once(
    services: Any,
    kind: str,
    clock: Any,
    *,
    post_url: str,
    listing_url: str,
    posted_text: Callable[[Any], str],
    landed: Callable[[str, datetime], Any],
    unreadable: Sequence[str],
    before_post: Any = None,
    post_method: str = "POST",
    empty_lists: Sequence[str] = (),
    post_answer: Answer = (500, {}, '{"error": "boom"}'),
    dialog_reads: Mapping[str, Any] | None = None,
) -> None:
    """A close of ``kind``'s kit is queued; its reply (``post_method``) answers
    ``post_answer`` (a 500 by default, or a proxy's 2xx page: :data:`NOT_THE_APIS_ANSWER`),
    outcome unknown; the listing then answers each of ``unreadable`` (raw 200 bodies) and,
    after them, ``landed`` (the answer holding the posted text). One reply; the row stays
    pending while the listing is unreadable, and is marked sent with the landed message's id
    ("777").
    ``empty_lists``: URLs a GET of which answers ``[]`` (a vendor's agent directory).
    ``dialog_reads``: URL → the JSON a GET of it answers (the dialog's status, read before
    each reply: still closed)."""
    body, headers, query = load_kits()[kind].closed(clock.now)
    client = create_app(services=services).test_client()
    queued = client.post(f"/webhooks/{kind}", data=body, headers=headers, query_string=query)
    assert queued.json["status"] == "queued"
    posted: list[str] = []
    answers = iter(unreadable)

    def post(request: Any) -> Answer:
        posted.append(posted_text(json.loads(request.body)))
        return post_answer

    def listing(request: Any) -> Answer:
        if not posted:  # a read before the reply (a state check): nothing landed yet
            return 200, {"Content-Type": "application/json"}, json.dumps(before_post)
        raw = next(answers, None)
        if raw is not None:
            return 200, {"Content-Type": "text/html"}, raw
        return 200, {"Content-Type": "application/json"}, json.dumps(landed(posted[0], clock.now))

    worker = services.delivery_worker()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        fake.add_callback(post_method, post_url, callback=post)
        fake.add_callback(responses.GET, listing_url, callback=listing)
        for url in empty_lists:
            fake.get(url, json=[])
        for url, answer in (dialog_reads or {}).items():
            fake.get(url, json=answer)
        # Agents, admins, users: unknown (a catch-all would share the listing's URL and take turns).
        fake.add(responses.GET, re.compile(r".*/(agents|admins|users)/[^/]*$"), status=404, json={})
        fake.add(
            responses.POST,
            re.compile(".*/oauth2/token"),
            json={"access_token": "t", "expires_in": 7200},
        )
        worker.run_once()  # HTTP 500, or a 2xx without the message's id: outcome unknown
        [item] = outbox_rows(services)
        assert item.status == "pending" and item.uncertain_since is not None, item.last_error
        assert len(posted) == 1
        for _ in unreadable:  # asked again later, nothing posted
            clock.advance(3600)
            worker.run_once()
            [item] = outbox_rows(services)
            assert item.status == "pending" and len(posted) == 1, item.last_error
            assert "look-up answer" in item.last_error
        clock.advance(3600)
        worker.run_once()  # a readable listing holding the reply: sent, not posted again
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.external_id == "777", item.last_error
    assert len(posted) == 1
