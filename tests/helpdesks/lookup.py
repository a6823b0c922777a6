"""What the reply look-up tests share: a real survey reply (signed token, pre-filled Forms link,
the default template) and the questions every vendor's ``find_reply`` must answer the same way.

The ``list_messages.json`` fixtures hold replies built by :func:`survey_reply` (the research
fixtures of /work/research/vendors, with our reply as the adapter renders it): one our reply,
one internal note carrying the token, one customer e-mail quoting it.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from csat_hook import tokens
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.links import FormConfig
from csat_hook.links import LinkValues
from csat_hook.links import ReplyConfig
from csat_hook.links import build_link
from csat_hook.links import reply_text

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
