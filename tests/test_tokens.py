"""Signed survey references."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from csat_hook import tokens
from csat_hook.errors import TokenError

SECRET = "secret-for-tokens-0123456789"
WHEN = datetime(2026, 11, 20, 12, 30, 15, tzinfo=UTC)


def ref(**kw):
    values = {"helpdesk": "chatwoot", "dialog_id": "12345", "agent": "7", "issued_at": WHEN}
    values.update(kw)
    return tokens.SurveyRef(**values)


def test_round_trip_binds_helpdesk_dialog_agent_and_time():
    token = tokens.sign(SECRET, ref())
    back = tokens.verify(token, [SECRET])
    assert (back.helpdesk, back.dialog_id, back.agent, back.issued_at) == (
        "chatwoot",
        "12345",
        "7",
        WHEN,
    )


def test_tokens_are_short_enough_for_a_chat_message():
    assert len(tokens.sign(SECRET, ref())) <= 60


def test_each_token_is_unique():
    assert tokens.sign(SECRET, ref()) != tokens.sign(SECRET, ref())


@pytest.mark.parametrize("value", ["a|b", "100%", "Иван Петров", "x.y", "", "|%7C|"])
def test_awkward_field_values_survive(value):
    back = tokens.verify(tokens.sign(SECRET, ref(agent=value, dialog_id=value)), [SECRET])
    assert back.agent == value and back.dialog_id == value


def test_wrong_secret_is_forged():
    with pytest.raises(TokenError) as info:
        tokens.verify(tokens.sign("another-secret-0123456789", ref()), [SECRET])
    assert info.value.code == "token_forged"


def test_editing_the_payload_breaks_the_signature():
    _payload, tag = tokens.sign(SECRET, ref()).split(".")
    forged = tokens.sign("attacker-secret-0123456789", ref(agent="99")).split(".")[0]
    with pytest.raises(TokenError, match="does not match"):
        tokens.verify(f"{forged}.{tag}", [SECRET])


@pytest.mark.parametrize("junk", ["", "abc", "a.b.c", "!!!.###", "x" * 2000, "Zm9v.YmFy"])
def test_malformed_tokens_are_rejected(junk):
    with pytest.raises(TokenError):
        tokens.verify(junk, [SECRET])


def test_previous_secrets_still_verify_after_rotation():
    old = tokens.sign("old-secret-0123456789abc", ref())
    assert tokens.verify(old, [SECRET, "old-secret-0123456789abc"]).dialog_id == "12345"


def test_whitespace_around_a_pasted_token_is_ignored():
    assert tokens.verify("  " + tokens.sign(SECRET, ref()) + "\n", [SECRET])
