"""The vendor's reason on a refusal: kept short, and never with customer text (issue #10)."""

from __future__ import annotations

import pytest
import requests
import responses

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import json_or_none
from csat_hook.helpdesks.calls import response_json
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import compose_reason
from csat_hook.helpdesks.reasons import private_names
from csat_hook.helpdesks.reasons import private_values
from csat_hook.helpdesks.transport import HttpClient
from tests.helpdesks.lookup import lookup_reply

REPLY = lookup_reply("zendesk", "35436", "8447388090494")
PRIVATE = private_values(REPLY)
NAMES = private_names(REPLY)


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ("is too long (maximum is 65535 characters)", "is too long (maximum is 65535 characters)"),
        ("No such email[jane@acme.inc]", "No such email…"),
        ("Requester jane@acme.inc is suspended", "Requester … is suspended"),
        ("Value 'Thanks for contacting us!' is invalid", "Value … is invalid"),
        ("Value «Спасибо» is invalid", "Value … is invalid"),
        ("see https://docs.google.com/forms/d/e/x?entry.1=Anna", "see …"),
        # Our message quoted in the markup it went out in, or JSON-escaped: read as text,
        # the echo is cut out however its quotes pair.
        ("Content 'Thanks for contacting us\\! How did Anna' is too long", "Content … is too long"),
        ("Body '<p>Thanks for contacting us! How did Anna do?</p>' too long", "Body … too long"),
        ("Body &#x27;Thanks for contacting us!&#x27; is invalid", "Body … is invalid"),
        ("Text 'Thanks for contacting us\\u0021 How did Anna do\\u003f' is bad", "Text … is bad"),
        # Names escaped, or spelled another way, are still the names.
        ("Requester Jane\\u0020Doe is suspended", None),
        ("Requester Ｊａｎｅ Ｄｏｅ is suspended", None),  # NFKC: fullwidth letters
        ("Requester Jane&#32;Doe is suspended", None),
        # A word of a name, as an unpaired quote leaves it.
        ("Value 'x' or 'Jane O'Doe' is invalid", None),
        ("Doe's address cannot receive replies", None),
        # The vendor's own prose stays as it is.
        (
            "Terms & Conditions: R&D only, must be <= 100",
            "Terms & Conditions: R&D only, must be <= 100",
        ),
        ("must match ^[a-z]+\\d$", "must match ^…+\\d$"),
        # JSON's surrogate pairs joined; a lone one (no text can hold it) replaced.
        ("emoji \\ud83d\\ude00 here", "emoji \U0001f600 here"),
        ("bad \\ud800 char", "bad \ufffd char"),
        # Escaped deeper than any echo of ours: not read.
        ("Body &amp;amp;amp;#39; is bad", None),
        ("Call +7 912 345-67-89 back", "Call … back"),
        ("Jane Doe cannot receive replies", None),  # the customer's name: dropped whole
        ("Anna is away", None),  # the agent's name too
        (f"Body {REPLY.text[30:70]} rejected", "Body … rejected"),  # a run of the reply text
        (f"token {REPLY.marker} reused", "token … reused"),
        (f"token {REPLY.marker[:20]}", "token …"),
        ("\x1b[31mred\x00 alert\u202e", "[31mred alert"),
        ("12345", None),  # nothing left to read
        (["not", "a", "string"], None),
    ],
)
def test_messages_are_cleaned_of_customer_text(message, kept):
    assert compose_reason([ErrorItem(message=message)], PRIVATE, NAMES) == kept


# A note's text holds the customer's comment, quotes and all.
NOTE_TEXT = 'Low rating 1/5\n\nComment:\n> Ignored 3x & said "no refund"!! Awful, "really"'


@pytest.mark.parametrize(
    "message",
    [
        'Text "Ignored 3x & said \\"no refund\\"!! Awful" is invalid',  # JSON in a quote
        "Text 'Ignored 3x & said \"no refund\"!! Awful' is invalid",
        'Text Ignored 3x \\& said \\"no refund\\"\\!\\! Awful is invalid',  # Markdown
        "Text &gt; Ignored 3x &amp; said &quot;no refund&quot;!! Awful is invalid",  # HTML
        "Text <p>&gt; Ignored 3x &amp;amp; said &quot;no refund&quot;!!<br>Awful</p> is invalid",
    ],
)
def test_an_echoed_comment_is_cut_out_however_it_is_escaped_or_quoted(message):
    assert compose_reason([ErrorItem(message=message)], (NOTE_TEXT,)) == "Text … is invalid"


def test_codes_and_fields_must_look_like_identifiers():
    items = [
        ErrorItem(code="RecordInvalid", field="comment.body"),
        ErrorItem(code="Jane Doe <jane@acme.inc>", field="hi there"),
        ErrorItem(code="x" * 65),
        ErrorItem(code={"nested": "object"}),
    ]
    assert compose_reason(items, PRIVATE) == "RecordInvalid comment.body"


def test_the_reason_is_bounded():
    items = [ErrorItem(code=f"code_{i}", message="word " * 60) for i in range(20)]
    reason = compose_reason(items, PRIVATE)
    assert reason is not None and len(reason) <= 200 and reason.endswith("…")
    assert reason.count("code_") <= 5


@responses.activate
def test_the_http_client_appends_the_reason_and_keeps_it():
    responses.post("https://api.example/x", status=400, json={"why": "bad_input"})
    with pytest.raises(DeliveryError) as caught:
        HttpClient().request("POST", "https://api.example/x", explain=lambda r: r.json()["why"])
    assert caught.value.message == "POST api.example: HTTP 400 Bad Request: bad_input"
    assert caught.value.vendor_reason == "bad_input" and not caught.value.retryable


@responses.activate
def test_a_failing_explain_loses_only_the_reason():
    responses.post("https://api.example/x", status=503, body=b"<html>down</html>")

    def broken(_response: object) -> str:
        raise ValueError("not JSON")

    with pytest.raises(DeliveryError) as caught:
        HttpClient(sleep=lambda _s: None).request("POST", "https://api.example/x", explain=broken)
    assert caught.value.message == "POST api.example: HTTP 503 Service Unavailable"
    assert caught.value.vendor_reason is None and caught.value.retryable


@responses.activate
def test_without_explain_the_body_never_reaches_the_message():
    responses.post("https://api.example/x", status=422, json={"error": "Jane Doe is blocked"})
    with pytest.raises(DeliveryError) as caught:
        HttpClient().request("POST", "https://api.example/x")
    assert "Jane" not in caught.value.message and caught.value.vendor_reason is None


def test_answers_nested_too_deeply_to_parse_read_as_no_json():
    deep = b"[" * 200_000 + b"]" * 200_000
    response = requests.Response()
    response.status_code = 200
    response._content = deep

    assert response_json(response) is None
    assert json_or_none(deep) is None
