"""A reply in a Chatwoot conversation that renders Markdown (web widget, e-mail) names the
agent and the customer from the close's payload: whatever those names hold, the customer sees
them as written, and the only links are the survey's own (no auto-linked ``evil.com``, no
``[click](http://x)``, no ``<http://x>``, no image, no HTML).

The message is rendered as Chatwoot's widget renders it (see ``tests/helpdesks/markdown.py``:
markdown-it with linkify, a stand-in more eager than linkify-it)."""

from __future__ import annotations

import json

import pytest
import responses

from csat_hook.config import load_config
from csat_hook.helpdesks.chatwoot import ChatwootHelpdesk
from csat_hook.helpdesks.markup import body_to_markdown
from csat_hook.helpdesks.markup import reply_markdown
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.links import Body
from csat_hook.links import LinksConfig
from csat_hook.links import ReplyConfig
from csat_hook.links import Segment
from csat_hook.links import plain_text
from csat_hook.links import reply_body
from csat_hook.links import survey_segment
from tests.conftest import FakeClock
from tests.helpdesks.markdown import links_and_text

BASE = "https://chat.example.com"
POST = BASE + "/api/v1/accounts/1/conversations/10/messages"
PUBLIC = "https://csat.example.test"
TOKEN = "AbC-12_xYz.Sig-_9"
FORM = (
    f"https://docs.google.com/forms/d/e/F/viewform?usp=pp_url&entry.111=A+%26+B&entry.444={TOKEN}"
)

HOSTILE = [
    "evil.com",
    "sub.evil.co.uk",
    "www.evil.com",
    "Ann evil.com/login?next=1&x=2",
    "http://evil.example/login",
    "https://evil.example",
    "ftp://evil.example/x",
    "//evil.com/x",
    "mailto:a@evil.com",
    "javascript:alert(1)",
    "a@evil.com",
    "[click](http://x)",
    "[click][r]\n\n[r]: http://evil.example",
    "![img](http://x/i.png)",
    "<http://x>",
    "<a@evil.com>",
    '<b>Ann</b> <img src=x onerror="alert(1)"> <a href="http://x">y</a>',
    "`code` ``x`` ```",
    "*em* _em_ **strong** __s__ ~~del~~",
    "Ann\\.evil\\.com http\\://evil.com",
    'O\'Brien "Ann" (c) (tm) -- ... +-',
    "&lt;b&gt; &amp; &#60;x&#62; &copy;",
    "# Ann",
    "1. Ann",
    "- Ann",
    "> Ann",
    "    Ann (code block?)",
    "Ann | Bob\n---|---\n1 | 2",
    "Анна evil.рф",
    "C:\\path\\to\\Ann",
    "Ann\\nBob \\t \\\\ \\u00e9 \\",
]
# The default template (the name mid-line, the link last) and one with the names starting lines
# and the link inside punctuation.
TEMPLATES = {
    "default": ReplyConfig().templates["en"],
    "line starts": "{agent_name}\n{customer_name}, rate us ({ticket}): ({link}).\n\n{agent_name}",
}


def _body(template: str, segment: Segment, agent: str, customer: str) -> Body:
    return reply_body(
        ReplyConfig(templates={"en": template}),
        "en",
        link=segment,
        agent_name=agent,
        customer_name=customer,
        ticket="10",
        helpdesk="chatwoot",
        team="",
    )


def _link(style: str) -> Segment:
    if style == "form":
        return Segment(FORM, href=FORM)
    links = LinksConfig(public_base_url=PUBLIC, style=style, labelled=True)  # type: ignore[arg-type]
    return survey_segment(links, TOKEN, "en")


def _reply(body: Body, channel: str = "Channel::WebWidget") -> Reply:
    link = next(s.href for s in body if s.href)
    return Reply(
        helpdesk="chatwoot",
        dialog_id="10",
        text=plain_text(body),
        link=link,
        agent=Person("1", "agent", None),
        customer=Person("2", "customer", None),
        context={"account_id": "1"},
        idempotency_key="k",
        marker=TOKEN,
        body=body,
        channel=channel,
    )


def _as_read(body: Body) -> tuple[list[str], str]:
    """The survey's own links and the text a customer should read: the names as written,
    the link as its URL, the scale as its labels."""
    hrefs: list[str] = []
    text: list[str] = []
    for segment in body:
        if segment.choices:
            hrefs += [c.href for c in segment.choices]
            text.append("\n" + " · ".join(c.label for c in segment.choices))  # a new paragraph
        else:
            hrefs += [segment.href] if segment.href else []
            text.append(segment.text)
    return hrefs, " ".join("".join(text).split())


def _posted(reply: Reply) -> str:
    config = load_config(
        None,
        env={},
        overrides={
            "helpdesks": {
                "chatwoot": {
                    "kind": "chatwoot",
                    "base_url": BASE,
                    "api_access_token": "tok",
                    "webhook_secret": "sec",
                }
            }
        },
    )
    adapter = ChatwootHelpdesk(
        "chatwoot",
        config.helpdesks["chatwoot"],
        http=HttpClient(sleep=lambda s: None),
        clock=FakeClock(),
    )
    with responses.RequestsMock() as rsps:
        rsps.post(POST, json={"id": 5})
        adapter.send_reply(reply)
        [call] = rsps.calls
    content = json.loads(call.request.body)["content"]
    assert isinstance(content, str)
    return content


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("style", ["link", "scores", "form"])
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_a_hostile_agent_name_reads_as_written_and_links_nothing(name, style, template):
    body = _body(TEMPLATES[template], _link(style), agent=name, customer="Ivan")
    content = _posted(_reply(body))

    hrefs, text = links_and_text(content)
    expected_hrefs, expected_text = _as_read(body)
    assert hrefs == expected_hrefs, content
    assert text == expected_text, content
    assert TOKEN in content  # the marker a look-up after a timeout finds


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_customer_name_reads_as_written_and_links_nothing(name):
    body = _body(TEMPLATES["line starts"], _link("link"), agent="Ann", customer=name)
    hrefs, text = links_and_text(_posted(_reply(body, channel="Channel::Email")))
    assert (hrefs, text) == _as_read(body)


def test_the_survey_link_stays_the_exact_link_beside_any_punctuation():
    for template in ("Rate: ({link}).", "Rate:{link}", '"{link}"', "[{link}]", "*{link}*"):
        body = _body(template, _link("link"), agent="Ann", customer="")
        hrefs, text = links_and_text(body_to_markdown(body))
        assert hrefs == [f"{PUBLIC}/s/{TOKEN}"], template
        assert text == plain_text(body), template


def test_a_reply_without_pieces_is_escaped_around_its_link():
    """A Reply built with text and link only (no body) is still Markdown-escaped."""
    link = f"{PUBLIC}/s/{TOKEN}"
    reply = Reply(
        helpdesk="generic",
        dialog_id="10",
        text=f"How did [click](http://x) evil.com do? {link}",
        link=link,
        agent=Person(),
        customer=Person(),
        context={},
        idempotency_key="k",
    )
    hrefs, text = links_and_text(reply_markdown(reply))
    assert hrefs == [link]
    assert text == reply.text


def test_a_channel_without_markdown_gets_the_plain_text():
    body = _body(TEMPLATES["default"], _link("link"), agent="[click](http://x)", customer="")
    assert _posted(_reply(body, channel="Channel::Whatsapp")) == plain_text(body)


def test_a_link_an_autolink_cannot_hold_is_written_as_a_markdown_link():
    """A configured base with a space or ">" (no autolink can hold it): ``[url](url)``, its
    destination percent-encoded, its text shown as the URL."""
    for link in (f"https://x.example/a b/s/{TOKEN}", f"https://x.example/a>(b)/s/{TOKEN}"):
        body = _body("Rate: {link}", Segment(link, href=link), agent="Ann", customer="")
        hrefs, text = links_and_text(body_to_markdown(body))
        assert hrefs == [
            link.replace(" ", "%20").replace(">", "%3E").replace("(", "%28").replace(")", "%29")
        ]
        assert text == f"Rate: {link}"
