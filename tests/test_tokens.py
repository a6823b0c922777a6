"""Signed survey references."""

from __future__ import annotations

import base64
import string
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


def test_a_fresh_token_ends_with_a_letter_or_digit():
    # A reply's link ends with the reference (the short link /s/<reference>, and the long
    # link's last field), and autolinkers leave trailing punctuation out of a link: GitHub-
    # flavoured Markdown drops a final "_" ("Trailing punctuation (specifically, ?, !, ., ,,
    # :, *, _, and ~) will not be considered part of the autolink"). One reference in 64 ended
    # with "_": its short link opened the 404 page, its form answer carried a reference that
    # does not verify. A fresh nonce is drawn until the tag ends with a letter or a digit.
    alphanumeric = set(string.ascii_letters + string.digits)
    for n in range(3000):
        token = tokens.sign(SECRET, ref(dialog_id=f"D-{n}"))
        assert token[-1] in alphanumeric, token
        assert tokens.verify(token, [SECRET]).dialog_id == f"D-{n}"
    # A nonce the caller gives is kept as it is (the same survey under two secrets).
    fixed = ref(nonce="abcd")
    assert tokens.verify(tokens.sign(SECRET, fixed), [SECRET]).nonce == "abcd"


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


def test_only_the_exact_spelling_verifies_callers_strip_what_was_pasted_around_it():
    token = tokens.sign(SECRET, ref())
    for pasted in (" " + token, token + "\n", "\t" + token + " "):
        with pytest.raises(TokenError):
            tokens.verify(pasted, [SECRET])
        assert tokens.verify(pasted.strip(), [SECRET]).dialog_id == "12345"


# --- one survey, one spelling ------------------------------------------------------------------

ALPHABET = string.ascii_letters + string.digits + "-_"
OUTSIDE = "+/=. \t\n%\u0410\u043e\uff10\u039f\u200b\u00a0"


def payload_of_length_mod_4(remainder: int) -> str:
    """A real token whose base64 payload length is ``remainder`` mod 4."""
    for size in range(1, 12):
        token = tokens.sign(SECRET, ref(dialog_id="D" * size, nonce="n0n3"))
        if len(token.split(".")[0]) % 4 == remainder:
            return token
    raise AssertionError(remainder)


@pytest.mark.parametrize("remainder", [2, 3])
def test_a_reference_with_its_last_payload_character_changed_does_not_verify(remainder):
    # The unused low bits of the last character: 16 spellings (2 mod 4) or 4 (3 mod 4) of the
    # same bytes, which the decoder alone accepts.
    token = payload_of_length_mod_4(remainder)
    payload, tag = token.split(".")
    same_bytes = [
        f"{payload[:-1]}{c}.{tag}"
        for c in ALPHABET
        if c != payload[-1]
        and base64.urlsafe_b64decode(payload[:-1] + c + "=" * (-len(payload) % 4))
        == base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    ]
    assert len(same_bytes) == {2: 15, 3: 3}[remainder]
    for spelling in same_bytes:
        with pytest.raises(TokenError) as info:
            tokens.verify(spelling, [SECRET])
        assert info.value.code == "token_malformed"
    assert tokens.verify(token, [SECRET]).dialog_id.startswith("D")


@pytest.mark.parametrize(
    "respell",
    [
        lambda p, t: f"{p}=.{t}",
        lambda p, t: f"{p}==.{t}",
        lambda p, t: f"{p}.{t}=",
        lambda p, t: f"{p.replace('-', '+').replace('_', '/')}.{t.replace('-', '+')}",
        lambda p, t: f"{p[:8]} {p[8:]}.{t}",
        lambda p, t: f"{p}.{t[:5]}\n{t[5:]}",
        lambda p, t: p + "." + t.replace("A", "\u0410").replace("a", "\u0430"),
    ],
    ids=["pad1", "pad2", "tag-pad", "std-alphabet", "inner-space", "inner-newline", "lookalike"],
)
def test_other_spellings_of_the_same_bytes_do_not_verify(respell):
    references = [tokens.sign(SECRET, ref(dialog_id="?>" * n, nonce="n0n3")) for n in range(40)]
    spellings = {respell(*token.split(".")) for token in references} - set(references)
    assert len(spellings) >= 10
    for spelling in spellings:
        with pytest.raises(TokenError):
            tokens.verify(spelling, [SECRET])


def one_character_edits(token: str) -> set[str]:
    edits = set()
    for i, original in enumerate(token):
        edits.add(token[:i] + token[i + 1 :])
        edits.add(token[:i] + original + token[i:])
        edits.update(token[:i] + c + token[i + 1 :] for c in ALPHABET + OUTSIDE)
    for i in range(len(token) + 1):
        edits.update(token[:i] + c + token[i:] for c in ALPHABET + OUTSIDE)
    edits.discard(token)
    return edits


def test_no_one_character_edit_of_a_real_reference_verifies():
    # Every payload length class and many field lengths; every substitution, deletion,
    # insertion and doubling, with characters inside and outside the alphabet.
    references = [
        tokens.sign(
            secret,
            ref(helpdesk=h, dialog_id="7" * d, agent="a@b" * a, nonce=f"{d}{a}x"),
        )
        for secret in (SECRET, "previous-secret-0123456789")
        for h in ("x", "zen", "chatwoot")
        for d in range(1, 5)
        for a in range(1, 4)
    ]
    assert {len(t.split(".")[0]) % 4 for t in references} == {0, 2, 3}
    tried = verified = 0
    for token in references:
        assert tokens.verify(token, [SECRET, "previous-secret-0123456789"])
        for edit in one_character_edits(token):
            tried += 1
            try:
                tokens.verify(edit, [SECRET, "previous-secret-0123456789"])
            except TokenError:
                continue
            verified += 1
    assert tried > 500_000 and verified == 0


def test_sign_writes_the_canonical_spelling_and_the_survey_key_is_its_payload():
    for size in range(0, 40):
        token = tokens.sign(SECRET, ref(dialog_id="Ж" * size, agent="|%" * (size % 5)))
        payload, _ = token.split(".")
        for part in token.split("."):
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == part
        assert tokens.verify(token, [SECRET]).dialog_id == "Ж" * size
        assert tokens.survey_key(token) == payload
    # The same survey signed under two secrets (a rotation) is one survey.
    fixed = ref(nonce="abcd")
    old, new = tokens.sign("old-secret-0123456789abc", fixed), tokens.sign(SECRET, fixed)
    assert old != new and tokens.survey_key(old) == tokens.survey_key(new)


# --- the stored-token fast path (verify_stored) and the precomputed HMAC ----------------------


@pytest.mark.parametrize(
    "secret", ["k" * 16, SECRET, "ключ-секрет-0123456789", "x" * 64, "y" * 65, "z" * 200]
)
def test_the_keyed_hmac_copy_gives_the_hmac_tag(secret):
    for payload in (b"", b"1|chatwoot|12345|7|t5k3x0|0001", bytes(range(256)) * 3):
        assert tokens._tag_of(secret, payload) == tokens._tag(secret.encode("utf-8"), payload)
        assert tokens._tag_of(secret, payload) == tokens._tag_of(secret, payload)  # no drift


def outcome(call):
    try:
        return call()
    except TokenError as exc:
        return exc.code


@pytest.mark.parametrize("value", ["a|b", "100%", "Иван Петров", "x.y", "", "|%7C|"])
def test_a_stored_token_verifies_to_the_same_reference(value):
    token = tokens.sign(SECRET, ref(agent=value, dialog_id=value))
    assert tokens.verify_stored(token, token, [SECRET]) == tokens.verify(token, [SECRET])


def test_a_stored_token_is_still_checked_against_the_configured_secrets():
    old = tokens.sign("old-secret-0123456789abc", ref())
    assert tokens.verify_stored(old, old, [SECRET, "old-secret-0123456789abc"]) == (
        tokens.verify(old, [SECRET, "old-secret-0123456789abc"])
    )
    # Its secret since removed from the configuration: forged, as verify says.
    with pytest.raises(TokenError) as info:
        tokens.verify_stored(old, old, [SECRET])
    assert info.value.code == "token_forged"


def test_a_stored_token_over_the_length_limit_is_malformed_as_verify_says():
    long = tokens.sign(SECRET, ref(dialog_id="D" * 1000))
    assert len(long) > tokens.MAX_TOKEN_LENGTH
    assert outcome(lambda: tokens.verify_stored(long, long, [SECRET])) == "token_malformed"


def test_any_edit_of_a_stored_token_gets_exactly_what_verify_gives():
    # The existing edits (every substitution, deletion, insertion, doubling), plus padding and
    # whitespace, of references in every payload length class.
    for dialog in ("7", "77", "777"):
        token = tokens.sign(SECRET, ref(dialog_id=dialog))
        edits = one_character_edits(token) | {token + "=", token + "==", f" {token}", f"{token}\n"}
        assert_stored_edits_as_verify(token, edits)


def assert_stored_edits_as_verify(token, edits):
    assert len(edits) > 1000
    for edited in edits:
        expected = outcome(lambda e=edited: tokens.verify(e, [SECRET]))
        assert outcome(lambda e=edited: tokens.verify_stored(e, token, [SECRET])) == expected
        assert not isinstance(expected, tokens.SurveyRef), edited  # none verifies


def test_the_fast_path_needs_the_exact_stored_spelling():
    token = tokens.sign(SECRET, ref())
    payload, tag = token.split(".")
    # Another spelling of the same bytes (stray low bits in the tag's last character): the
    # lenient decoder would accept it; compared with the stored token, it goes through verify.
    last = tokens._b64decode(tag)
    for c in string.ascii_letters + string.digits + "-_":
        other = f"{payload}.{tag[:-1]}{c}"
        if other != token and base64.urlsafe_b64decode(tag[:-1] + c + "=" * (-len(tag) % 4)) == (
            last
        ):
            assert outcome(lambda o=other: tokens.verify_stored(o, token, [SECRET])) == (
                "token_malformed"
            )
    # A stored value that is not a token sign could write: verify decides.
    assert outcome(lambda: tokens.verify_stored("x.y.z", "x.y.z", [SECRET])) == "token_malformed"
    assert outcome(lambda: tokens.verify_stored("é.é", "é.é", [SECRET])) == "token_malformed"


def signed(payload: bytes) -> str:
    return (
        f"{tokens._b64encode(payload)}.{tokens._b64encode(tokens._tag(SECRET.encode(), payload))}"
    )


@pytest.mark.parametrize("seconds", [0, -5, 1_800_000_000, -62_135_596_800, 253_402_300_799])
def test_issue_times_read_as_fromtimestamp_reads_them(seconds):
    issued = ("-" if seconds < 0 else "") + base36(abs(seconds))
    token = signed(f"1|chatwoot|12345|7|{issued}|0001".encode())
    for back in (tokens.verify(token, [SECRET]), tokens.verify_stored(token, token, [SECRET])):
        assert back.issued_at == datetime.fromtimestamp(seconds, tz=UTC)
        assert back.issued_at.tzinfo is UTC


def base36(number: int) -> str:
    return tokens._base36(number)


@pytest.mark.parametrize("issued", ["zzzzzzzzzz", "-zzzzzzzzzz", "z" * 40, "", "1.5"])
def test_a_signed_issue_time_out_of_range_is_malformed(issued):
    payload = f"1|chatwoot|12345|7|{issued}|0001".encode()
    token = (
        f"{tokens._b64encode(payload)}.{tokens._b64encode(tokens._tag(SECRET.encode(), payload))}"
    )
    for check in (
        lambda: tokens.verify(token, [SECRET]),
        lambda: tokens.verify_stored(token, token, [SECRET]),
    ):
        with pytest.raises(TokenError) as info:
            check()
        assert info.value.code == "token_malformed"


def test_claimed_reads_what_a_reference_names_without_its_signature():
    """An erasure finds an unverified answer by the dialog its reference names: a forged
    reference (the spelling verify accepts, an unknown signature) is read; anything verify
    calls malformed, or of another version, names nothing."""
    forged = tokens.sign("another-secret-0123456789", ref(dialog_id="D|9%"))
    with pytest.raises(TokenError):
        tokens.verify(forged, [SECRET])
    named = tokens.claimed(forged)
    assert named is not None and (named.helpdesk, named.dialog_id) == ("chatwoot", "D|9%")
    good = tokens.sign(SECRET, ref())
    assert tokens.claimed(good) == tokens.verify(good, [SECRET])
    payload, tag = good.split(".")
    version_2 = base64.urlsafe_b64encode(b"2|chatwoot|12345|7|1|ab").rstrip(b"=").decode()
    for spelling in (
        "",
        payload,
        f" {good}",
        f"{payload}==.{tag}",
        f"{payload.replace('x', '+')}.{tag}",
        f"{payload}.{tag}.x",
        f"{payload}.{tag}!",
        f"{payload[:-1]}\u0391.{tag}",
        f"{version_2}.{tag}",
        "x" * (tokens.MAX_TOKEN_LENGTH + 1) + ".a",
    ):
        assert tokens.claimed(spelling) is None, spelling
