"""The generic adapter against a hostile sender (who controls the payload) and a plausible
but wrong configuration: nothing a sender writes may choose the server or the path called,
and a configuration that cannot work is refused naming its key."""

from __future__ import annotations

import pytest
import responses

from csat_hook.errors import ConfigError
from csat_hook.errors import DeliveryError
from tests.conftest import FakeClock
from tests.helpdesks.generic.test_generic import adapter
from tests.helpdesks.generic.test_generic import load_generic
from tests.helpdesks.generic.test_generic import reply

# --- the URL: the payload never chooses the server, nor drops a path segment -----------------


@pytest.mark.parametrize(
    "url",
    [
        "https://{account}.desk.example.com/api/d/{dialog_id}",
        "https://desk.example.com{account}/api/d/{dialog_id}",
        "https://desk.example.com:{account}/api/d/{dialog_id}",
        "https://bot:{account}@desk.example.com/api/d/{dialog_id}",
    ],
)
def test_a_placeholder_in_the_scheme_or_host_is_refused_at_load(url):
    # A context value is the payload's: "evil.com" made "evil.com.desk.example.com", "ä" a
    # host of percent escapes, a long one a DNS label no resolver takes (retried as a
    # connection failure until the attempts ran out).
    with pytest.raises(ConfigError) as info:
        load_generic(mapping={"context": {"account": "account"}}, reply={"url": url})
    assert "helpdesks.g.reply.url" in str(info.value), str(info.value)
    assert "{account}" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://{{account}}.desk.example.com/api/d/{dialog_id}",
        "https://desk}}.example.com/api/d/{dialog_id}",
    ],
)
def test_a_literal_brace_in_the_host_is_refused_at_load(url):
    # "{{account}}" is the literal text "{account}": taken, then every reply went to the
    # host "{account}.desk.example.com", which no resolver knows (retried until it failed).
    with pytest.raises(ConfigError) as info:
        load_generic(reply={"url": url})
    assert "helpdesks.g.reply.url" in str(info.value) and "brace" in str(info.value), str(
        info.value
    )


@pytest.mark.parametrize(
    ("request_options", "where", "name"),
    [
        (
            {"url": "https://d.example/api/d/{{dialog_id}}/m", "body": {"d": "{dialog_id}"}},
            "reply.url",
            "dialog_id",
        ),
        (
            {"url": "https://d.example/r/{dialog_id}", "body": {"text": "{{ text }}"}},
            "reply.body.text",
            "text",
        ),
        (
            {"url": "https://d.example/r", "query": {"d": "{{dialog_id}}"}, "body": "{text}"},
            "reply.query.d",
            "dialog_id",
        ),
    ],
)
def test_a_doubled_brace_around_a_placeholder_is_refused_at_load(request_options, where, name):
    # Zendesk's and Freshdesk's own placeholders are written {{ticket.id}}: written so here it
    # is a literal brace, and every reply went to ".../d/{dialog_id}/m" (or said "{text}").
    with pytest.raises(ConfigError) as info:
        load_generic(reply=request_options)
    message = str(info.value)
    assert where in message and f"{{{name}}}" in message and "literal" in message, message


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("reply", '{"content": "{text}", "dialog": "{dialog_id}"}'),
        ("reply", '{{"content": "{text}", "dialog": "{dialog_id}"}}'),
        ("reply", '[{{"text": "{text}", "dialog": "{dialog_id}"}}]'),
        ("lookup", '{{"dialog": "{dialog_id}"}}'),
    ],
)
def test_a_json_body_written_as_a_text_is_refused_at_load(key, body):
    # With encoding json the body is sent as JSON: a text is one JSON string ("{\"content\":
    # ..."), never the object it spells, and every reply was refused by the helpdesk (or
    # broke on a quote in the text).
    request = {"url": "https://d.example/r/{dialog_id}", "method": "POST", "body": body}
    if key == "lookup":
        request.update(messages="messages", text="text", ours="true")
    with pytest.raises(ConfigError) as info:
        load_generic(**{key: request})
    message = str(info.value)
    assert f"helpdesks.g.{key}: body: " in message and "mapping" in message, message


@pytest.mark.parametrize("body", ["{text}", "Rate us: {link}", "{{ not json }}"])
def test_a_text_body_that_is_no_json_document_is_taken(body):
    load_generic(reply={"url": "https://d.example/r/{dialog_id}", "body": body})


@pytest.mark.parametrize(
    ("expression", "hint"),
    [
        ("data.ticket-id", 'data."ticket-id"'),
        ("ticket.custom_fields.0.value", "ticket.custom_fields[0].value"),
        ("$.ticket.id", "ticket.id"),
        ("$ticket.id", "ticket.id"),
    ],
)
def test_a_path_written_in_another_syntax_is_refused_with_its_jmespath_spelling(expression, hint):
    # JSONPath's "$.", a hyphenated key and a dotted index are how paths are written
    # elsewhere; JMESPath's own message ("Unknown token '-'") did not say what to write.
    with pytest.raises(ConfigError) as info:
        load_generic(mapping={"dialog_id": expression})
    message = str(info.value)
    assert "mapping: dialog_id:" in message and f"write {hint}" in message, message


def test_literal_braces_around_a_placeholder_are_taken():
    load_generic(
        reply={
            "url": "https://d.example/r/{dialog_id}?q={{{dialog_id}}}",
            "body": {"text": "{{{text}}}", "raw": "{{not_a_placeholder}}", "j": '{{"a": 1}}'},
        }
    )


def test_a_url_with_credentials_beside_an_authorization_header_is_refused_at_load():
    # requests put the URL's user:password over the header as Basic auth: the header's token
    # never left, and every reply was refused (401).
    url = "https://proxy:S3CRET@desk.example.com/api/d/{dialog_id}"
    with pytest.raises(ConfigError, match=r"helpdesks\.g\.reply.*user:password@") as info:
        load_generic(reply={"url": url, "headers": {"authorization": "Bearer t"}})
    assert "S3CRET" not in str(info.value)
    load_generic(reply={"url": url, "headers": {"X-Api-Key": "t"}})  # one of them: taken


def test_a_url_without_a_host_is_refused_at_load():
    with pytest.raises(ConfigError, match=r"helpdesks\.g\.reply\.url.*no host"):
        load_generic(reply={"url": "https:///api/d/{dialog_id}"})


@pytest.mark.parametrize("key", ["lookup", "note"])
def test_every_request_url_is_checked(key):
    request = {"url": "https://{dialog_id}.desk.example.com/m"}
    if key == "lookup":
        request.update(method="GET", messages="messages", text="text", ours="true")
    with pytest.raises(ConfigError, match=rf"helpdesks\.g\.{key}\.url"):
        load_generic(**{key: request})


def test_a_placeholder_after_a_literal_in_the_path_or_query_is_taken():
    load_generic(
        mapping={"context": {"account": "account"}},
        reply={"url": "https://desk.example.com/a-{account}/d/{dialog_id}?acct={account}#x"},
    )


@responses.activate
def test_an_empty_value_that_would_drop_a_path_segment_is_not_sent():
    # "/api/{account}/d/7" with no account was "/api//d/7": another path at most servers.
    desk = adapter(
        FakeClock(),
        mapping={"context": {"account": "account"}},
        reply={"url": "https://desk.example.com/api/{account}/d/{dialog_id}?a={account}"},
    )
    with pytest.raises(DeliveryError) as info:
        desk.send_reply(reply(context={"account": ""}))
    assert not info.value.retryable and "{account}" in info.value.message
    assert "not sent" in info.value.message
    assert len(responses.calls) == 0
    # Empty in the query it is just an empty parameter; in a segment beside a literal, fine.
    responses.post("https://desk.example.com/api/x/d/D%209?a=x", json={"id": 1})
    desk.send_reply(reply(context={"account": "x"}))
    desk = adapter(
        FakeClock(),
        mapping={"context": {"account": "account"}},
        reply={"url": "https://desk.example.com/api/d/{dialog_id}?a={account}"},
    )
    responses.post("https://desk.example.com/api/d/D%209?a=", json={"id": 1})
    desk.send_reply(reply(context={"account": ""}))


# --- form bodies: the payload's text never adds or replaces a field ---------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("dialog={dialog_id}&text={text}", "body"),
        ({"message": {"text": "{text}"}}, "body.message"),
        ({"parts": ["{text}", "{link}"]}, "body.parts"),
        (["{text}"], "body"),
    ],
)
def test_a_form_body_must_be_flat_fields(body, where):
    # A text body was sent as written: a reply text holding "&dialog=9" added a field; a
    # nested object was sent as its keys ("message=text"), the reply's text lost.
    with pytest.raises(ConfigError) as info:
        load_generic(reply={"url": "https://d.example/r", "encoding": "form", "body": body})
    assert f"helpdesks.g.reply: {where}:" in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("value", "said"),
    [(False, "false"), (True, "true"), (None, "null")],
)
def test_a_form_field_of_yes_no_or_nothing_is_refused_naming_it(value, said):
    # requests wrote a boolean as Python spells it, "private=False" (a non-empty text, true to
    # PHP and most form readers: the survey posted as a private note), YAML's yes/no/on/off
    # too, and left a null field out, unsaid.
    with pytest.raises(ConfigError) as info:
        load_generic(
            reply={
                "url": "https://d.example/r/{dialog_id}",
                "encoding": "form",
                "body": {"text": "{text}", "private": value},
            }
        )
    message = str(info.value)
    assert "helpdesks.g.reply: body.private:" in message and said in message, message


@responses.activate
def test_a_form_field_carries_the_senders_text_as_one_value():
    from responses import matchers

    desk = adapter(
        FakeClock(),
        reply={
            "url": "https://d.example/r",
            "encoding": "form",
            "body": {"dialog": "{dialog_id}", "text": "{text}", "n": 1},
        },
    )
    text = "Rate us&dialog=9&text=x%26y =+\r\nä"
    responses.post(
        "https://d.example/r",
        json={},
        match=[
            matchers.urlencoded_params_matcher({"dialog": "D 9", "text": text, "n": "1"}),
            matchers.header_matcher({"Content-Type": "application/x-www-form-urlencoded"}),
        ],
    )
    desk.send_reply(reply(text=text))


# --- the replay window and the events that mean a close ---------------------------------------

SIGNED = {
    "mode": "hmac",
    "secret": "a-long-enough-signing-secret",
    "timestamp_header": "X-Ts",
    "signed_payload": "{timestamp}.{body}",
}


@pytest.mark.parametrize("tolerance", [float("inf"), 1e300, 10 * 86400])
def test_a_replay_window_without_end_is_refused(tolerance):
    # .inf was taken: every timestamp was fresh, a captured request replayed for ever.
    with pytest.raises(ConfigError, match=r"helpdesks\.g\.auth\.tolerance_seconds"):
        load_generic(auth={**SIGNED, "tolerance_seconds": tolerance})
    load_generic(auth={**SIGNED, "tolerance_seconds": 3600})


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"close_events": []}, "mapping: close_events"),
        ({"event": None, "status": "state", "closed_values": []}, "mapping: closed_values"),
        (
            {"close_events": ["conversation.closed"], "reopen_events": ["Conversation.Closed"]},
            "'conversation.closed'",
        ),
        (
            {"status": "state", "closed_values": ["done"], "reopened_values": ["DONE", "open"]},
            "'done'",
        ),
    ],
)
def test_events_that_can_never_mean_a_close_are_refused(mapping, message):
    # Taken, every webhook was answered 200 "ignored" (or a close read as a reopen): the
    # sender saw success and no survey ever went out.
    with pytest.raises(ConfigError) as info:
        load_generic(mapping=mapping)
    assert message in str(info.value), str(info.value)


# --- check-config warnings ----------------------------------------------------------------------


def _warnings(**options) -> list[str]:
    from csat_hook.config import config_warnings

    return [w for w in config_warnings(load_generic(**options)) if w.startswith("helpdesks.g")]


def test_plain_http_to_another_host_is_warned_about_naming_each_request():
    # The API token in the headers and the customer's reply crossed the network unencrypted,
    # and check-config said nothing.
    said = _warnings(
        reply={
            "url": "http://desk.example.com/api/d/{dialog_id}",
            "headers": {"Authorization": "Bearer S3cret-api-token"},
        },
        agent_lookup={
            "by_id": {"url": "http://desk.example.com/agents/{agent_id}", "agent": "@"},
        },
    )
    assert any(w.startswith("helpdesks.g.reply.url: plain http://") for w in said), said
    assert any(w.startswith("helpdesks.g.agent_lookup.by_id.url: plain http://") for w in said)
    assert not any("S3cret" in w for w in said)
    for url in ("https://desk.example.com/d/{dialog_id}", "http://127.0.0.1:8099/d/{dialog_id}"):
        assert not [w for w in _warnings(reply={"url": url}) if "http://" in w]


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ({"mode": "hmac", "secret": "abc123"}, "helpdesks.g.auth.secret"),
        ({"mode": "token", "token": "letmein"}, "helpdesks.g.auth.token"),
    ],
)
def test_a_short_sender_secret_is_warned_about_without_showing_it(auth, key):
    said = _warnings(auth=auth)
    assert any(w.startswith(f"{key}: ") and "characters" in w for w in said), said
    secret = auth.get("secret") or auth["token"]
    assert not any(secret in w for w in said)
    assert not [w for w in _warnings(auth={**auth, key.rsplit(".")[-1]: "x" * 32}) if key in w]


# --- headers: the payload's values never add a header nor send a control character ------------


@responses.activate
@pytest.mark.parametrize("name", ["Anna\x00", "An\x7fna", "Anna\x1b[2J", "Anna\x0bX-Evil: 1"])
def test_a_control_character_in_a_header_value_is_not_sent(name):
    # NUL, DEL, ESC and the like went out in the header (RFC 9110 allows none of them): a
    # server or proxy in front of the API may cut the value there or read it otherwise.
    from csat_hook.helpdesks.records import Person

    desk = adapter(
        FakeClock(),
        reply={"url": "https://d.example/r/{dialog_id}", "headers": {"X-Agent": "{agent_name}"}},
    )
    with pytest.raises(DeliveryError) as info:
        desk.send_reply(reply(agent=Person("7", name, None)))
    assert not info.value.retryable and "not sent" in info.value.message
    assert "X-Agent" in info.value.message and "Anna" not in info.value.message
    assert len(responses.calls) == 0


@responses.activate
def test_a_header_value_outside_ascii_or_with_a_tab_is_sent():
    from responses import matchers

    from csat_hook.helpdesks.records import Person

    desk = adapter(
        FakeClock(),
        reply={"url": "https://d.example/r/{dialog_id}", "headers": {"X-Agent": "{agent_name}"}},
    )
    responses.post(
        "https://d.example/r/D%209",
        json={},
        match=[matchers.header_matcher({"X-Agent": "Анна\tП".encode().decode("latin-1")})],
    )
    desk.send_reply(reply(agent=Person("7", "Анна\tП", None)))


def test_a_control_character_written_in_a_header_is_refused_at_load():
    with pytest.raises(ConfigError) as info:
        load_generic(
            reply={"url": "https://d.example/r", "headers": {"Authorization": "Bearer S3\x01x"}}
        )
    assert "helpdesks.g: reply.headers.Authorization: a line break or NUL" in str(info.value)
    assert "nor any control character" in str(info.value)
    assert "S3" not in str(info.value)


def test_a_webhook_taken_from_anyone_is_warned_about():
    # auth.mode none checks nothing: whoever finds the URL makes csat-hook post into any
    # dialog it names, and check-config said nothing.
    said = _warnings(auth={"mode": "none"})
    assert any(w.startswith("helpdesks.g.auth.mode: none") for w in said), said
    assert not [w for w in _warnings(auth=SIGNED) if "auth.mode" in w]


# --- the vendor's 2xx answer: read, never raised out of a reply that was posted ---------------


@responses.activate
@pytest.mark.parametrize(
    ("options", "answer"),
    [
        ({"message_id": "join('-', ids)"}, {"ids": [101, 102]}),
        ({"message_id": "id", "error_path": "length(error)"}, {"id": 7, "error": 0}),
        # floor() of the infinity to_number reads "inf" as: OverflowError, no JMESPath error.
        ({"message_id": "to_string(floor(to_number(id)))"}, {"id": "inf"}),
        ({"message_id": "id", "error_path": "ceil(to_number(error))"}, {"id": 7, "error": "NaN"}),
    ],
)
def test_an_answer_the_expressions_cannot_read_leaves_the_reply_sent(options, answer):
    # The POST was answered 2xx, then a JMESPath function refused the answer's types:
    # JMESPathTypeError escaped send_reply, which delivery took for an unknown outcome, and
    # without a look-up the reply was posted again, on every attempt.
    desk = adapter(FakeClock(), reply={"url": "https://d.example/r", **options})
    responses.post("https://d.example/r", json=answer)
    result = desk.send_reply(reply())
    assert result.external_id == ("7" if "error_path" in options else None)
    assert len(responses.calls) == 1


# --- expressions that fail on every payload are the configuration's fault ---------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"mapping": {"agent_name": "data.agent.fullname()"}},
            "helpdesks.g.mapping: agent_name: unknown JMESPath function fullname()",
        ),
        (
            {"mapping": {"context": {"tags": "join(data.tags)"}}},
            "helpdesks.g.mapping: context.tags: join() takes 2 arguments, not 1",
        ),
        (
            {"mapping": {"dialog_id": "not_null()"}},
            "helpdesks.g.mapping: dialog_id: not_null() takes at least 1 argument, not 0",
        ),
        (
            {"reply": {"url": "https://d.example/r", "message_id": "lenght(items)"}},
            "helpdesks.g.reply.message_id: unknown JMESPath function lenght()",
        ),
    ],
)
def test_an_unknown_function_or_a_wrong_argument_count_is_refused_at_load(options, message):
    # Both compile: every close was then a 400 bad_field, blaming the sender (who retried
    # and in the end disabled the webhook), or the answer's id was silently never read.
    with pytest.raises(ConfigError) as info:
        load_generic(**options)
    assert message in str(info.value), str(info.value)


def test_functions_with_their_arguments_are_taken():
    load_generic(
        mapping={
            "dialog_id": "not_null(data.id, data.ticket_id)",
            "context": {
                "tags": "join(',', data.tags[?length(@) > `0`])",
                "m": "length(merge(a, b))",
            },
        }
    )


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"event": "events[*].name"}, "mapping: event"),
        ({"event": None, "status": "data.states[?current].name"}, "mapping: status"),
        ({"dialog_id": "dialog.ids[]"}, "mapping: dialog_id"),
        ({"agent_name": "agents.*.name"}, "mapping: agent_name"),
        ({"context": {"account": "[account.id, account.slug]"}}, "mapping: context.account"),
        ({"customer_email": "data.contacts[0:1].email"}, "mapping: customer_email"),
        ({"team": "sort(teams)"}, "mapping: team"),
    ],
)
def test_a_mapping_that_always_gives_a_list_is_refused_at_load(mapping, key):
    # A projection is a list whatever the payload: an event that was one was read as none,
    # and every close was answered 200 "ignored" (a name or a context value was empty).
    with pytest.raises(ConfigError) as info:
        load_generic(mapping=mapping)
    assert f"helpdesks.g.{key}: " in str(info.value) and "list" in str(info.value), str(info.value)


def test_one_item_of_a_projection_is_taken():
    load_generic(
        mapping={
            "event": "events[*].name | [0]",
            "dialog_id": "dialog.id || dialog.ids[0]",
            "agent_name": "length(agents[*])",
            "context": {"first": "tags[?x] | [0].name", "either": "a || b[*]"},
        }
    )


@pytest.mark.parametrize(
    ("request_options", "message"),
    [
        (
            {"url": "https://d.example/r", "body": {"message": {"{dialog_id}": "{text}"}}},
            "helpdesks.g: reply.body.message: {dialog_id} in a key is not filled",
        ),
        (
            {"url": "https://d.example/r/{dialog_id}#{agent_id}"},
            "helpdesks.g.reply.url: a placeholder ({agent_id}) after '#'",
        ),
    ],
)
def test_a_placeholder_that_would_never_be_filled_or_sent_is_refused(request_options, message):
    # A key was sent as written ("{dialog_id}"), and a fragment never leaves the client.
    with pytest.raises(ConfigError) as info:
        load_generic(reply=request_options)
    assert message in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("key", "request_options", "where"),
    [
        ("reply", {"url": "https://d.example/d/{dialog_id!r}"}, "reply.url"),
        (
            "reply",
            {"url": "https://d.example/d/{dialog_id}", "body": {"t": "{text:>999999999}"}},
            "reply.body.t",
        ),
        (
            "reply",
            {"url": "https://d.example/d/{dialog_id}", "query": {"q": "{customer_id!a}"}},
            "reply.query.q",
        ),
        (
            "lookup",
            {"url": "https://d.example/d/{dialog_id}", "headers": {"X-D": "{dialog_id:d}"}},
            "lookup.headers.X-D",
        ),
    ],
)
def test_a_format_spec_or_conversion_in_a_request_is_refused_at_load(key, request_options, where):
    # str.format's own syntax was taken as a placeholder: {dialog_id!r} put quotes in every
    # URL, {dialog_id:d} raised at every send, {text:>999999999} built a gigabyte per reply.
    with pytest.raises(ConfigError) as info:
        load_generic(**{key: request_options})
    message = str(info.value)
    assert f"helpdesks.g: {where}: " in message, message
    assert "no format spec or conversion" in message, message
    # Named by the placeholder alone: a header or query value is a secret, never quoted.
    assert "!a" not in message and ":d}" not in message and ">999" not in message, message


@pytest.mark.parametrize("name", ["account.id", "accounts[0]", "0", ""])
def test_a_context_name_no_placeholder_can_carry_is_refused_at_load(name):
    # str.format reads {account.id} as the attribute id of {account}, {accounts[0]} as an
    # item, {0} as a positional argument: the placeholder passed the check and every reply
    # failed at its send ("internal error (KeyError)").
    with pytest.raises(ConfigError) as info:
        load_generic(
            mapping={"context": {name: "account.id"}},
            reply={"url": "https://d.example/d/{dialog_id}", "body": {"a": "{" + name + "}"}},
        )
    message = str(info.value)
    assert f"helpdesks.g.mapping: context: {name!r} cannot be a placeholder" in message, message


def test_a_context_name_with_a_hyphen_or_beyond_ascii_is_taken():
    load_generic(
        mapping={"context": {"account-id": "account.id", "счёт": "account.id"}},
        reply={"url": "https://d.example/d/{dialog_id}/{account-id}", "body": {"a": "{счёт}"}},
    )


@pytest.mark.parametrize("key", ["reply", "lookup", "note"])
@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Authorization", ""),
        ("Authorization", "  "),
        ("Authorization", "Bearer "),
        ("Authorization", "bearer"),
        ("Authorization", "Basic  "),
        ("Proxy-Authorization", "Token "),
        ("X-Api-Key", ""),
    ],
)
def test_an_empty_request_credential_is_refused_at_load(key, header, value):
    # "Bearer ${TOKEN:-}" with TOKEN unset: the configuration loaded and every reply was
    # refused (401) and failed for good, as the vendors' blank API credentials were.
    request = {"url": "https://d.example/d/{dialog_id}", "headers": {header: value}}
    with pytest.raises(ConfigError) as info:
        load_generic(**{key: request})
    message = str(info.value)
    assert f"helpdesks.g: {key}.headers.{header}: empty" in message, message


@pytest.mark.parametrize("value", ["Token abc", "abc123", "Bearer {customer_id}", "Basic dTpw"])
def test_a_request_credential_written_out_is_taken(value):
    load_generic(
        reply={"url": "https://d.example/d/{dialog_id}", "headers": {"Authorization": value}}
    )


def test_a_status_mapping_still_filtered_by_the_default_event_is_warned_about():
    # Copied from config.example.yaml with only status set: the default event filter
    # (event == dialog.closed / dialog.reopened) still applied, and a helpdesk whose
    # payloads say "ticket.updated" had every close answered 200 "ignored".
    said = _warnings(mapping={"status": "ticket.state"})
    assert any(w.startswith("helpdesks.g.mapping.event: ") for w in said), said
    for mapping in (
        {"status": "ticket.state", "event": None},
        {"status": "ticket.state", "event": "type", "close_events": ["ticket.updated"]},
        {"status": "ticket.state", "event": "event"},
        {},
    ):
        assert not [w for w in _warnings(mapping=mapping) if "mapping.event" in w], mapping


@pytest.mark.parametrize(
    ("mapping", "key"),
    [
        ({"event": ""}, "mapping.event"),
        ({"event": None, "status": ""}, "mapping.status"),
        ({"status": "state", "event": ""}, "mapping.event"),
        ({"dialog_id": ""}, "mapping.dialog_id"),
        ({"agent_name": ""}, "mapping.agent_name"),
        ({"close_time": " "}, "mapping.close_time"),
        ({"context": {"account": ""}}, "mapping.context.account"),
    ],
)
def test_an_empty_mapping_expression_is_refused_naming_its_key(mapping, key):
    # What ${VAR:-} gives with VAR unset. Taken as "no expression", an empty event (or
    # status) read as no value: every webhook answered 200 "ignored", no survey ever; an
    # empty dialog_id refused every close (400), the vendor retrying, then disabling it.
    options = {"reply": {"url": "https://d.example/d/{dialog_id}/{account}"}}
    with pytest.raises(ConfigError) as info:
        load_generic(mapping=mapping, **options if "context" in mapping else {})
    message = str(info.value)
    assert f"helpdesks.g.{key}: empty" in message, message


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"close_events": ["dialog.closed "]}, "mapping: close_events: 'dialog.closed '"),
        ({"reopen_events": [""]}, "mapping: reopen_events: ''"),
        ({"status": "s", "closed_values": [" solved"]}, "mapping: closed_values: ' solved'"),
        ({"status": "s", "reopened_values": ["open\n"]}, "mapping: reopened_values: 'open\\n'"),
    ],
)
def test_an_event_or_status_value_that_can_never_match_is_refused(mapping, message):
    # The payload's value is read trimmed: one written with a space around it (or empty)
    # never matched, and those webhooks were answered 200 "ignored".
    with pytest.raises(ConfigError) as info:
        load_generic(mapping=mapping)
    assert message in str(info.value), str(info.value)


@pytest.mark.parametrize("key", ["reply", "note"])
def test_a_request_that_names_no_dialog_is_refused(key):
    # The body's default names {dialog_id}; written without it (a body of {text} only and
    # a fixed URL), every reply went to the same place, never into its dialog.
    request = {"url": "https://d.example/messages", "body": {"text": "{text}"}}
    with pytest.raises(ConfigError) as info:
        load_generic(**{key: request})
    assert f"helpdesks.g: {key}: names no dialog" in str(info.value), str(info.value)


def test_a_request_naming_its_dialog_by_a_context_value_or_the_customer_is_taken():
    load_generic(
        mapping={"context": {"thread": "thread.id"}},
        reply={"url": "https://d.example/threads/{thread}/messages", "body": {"t": "{text}"}},
        note={"url": "https://d.example/notes", "body": {"to": "{dialog_id}", "t": "{text}"}},
    )
    load_generic(reply={"url": "https://mail.example/send", "body": {"to": "{customer_email}"}})
