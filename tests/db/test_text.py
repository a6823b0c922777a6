"""Clipping a name to its column: at most so many code points, never half of what a reader sees
as one character (an emoji sequence, a flag, a letter and its accent), the same every time."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csat_hook.db.schema import surveys
from csat_hook.db.text import as_seen
from csat_hook.db.text import clipped
from csat_hook.db.text import fitted
from csat_hook.db.text import is_storable
from csat_hook.db.text import shows_something
from csat_hook.db.text import storable

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points
FLAG_US = "\U0001f1fa\U0001f1f8"
FLAG_FR = "\U0001f1eb\U0001f1f7"
THUMB_TONED = "\U0001f44d\U0001f3fd"
HEART = "\u2764\ufe0f"
E_ACUTE = "e\u0301"
KEYCAP_ONE = "1\ufe0f\u20e3"
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"
# Clusters of one code point and of several, as a reader sees them.
CLUSTERS = [
    "a",
    "Я",
    "\u4e2d",
    " ",
    FAMILY,
    FLAG_US,
    FLAG_FR,
    THUMB_TONED,
    HEART,
    E_ACUTE,
    KEYCAP_ONE,
    ENGLAND,
    RAINBOW_FLAG,
    "\U0001f600",
]


def test_a_name_of_family_emoji_is_clipped_to_whole_families():
    name = FAMILY * 43  # 301 code points
    kept = clipped(name, 255)
    assert kept == FAMILY * 36 and len(kept) == 252
    assert fitted(surveys.c.agent_name, name) == kept
    assert name[:255].endswith("\u200d\U0001f469")  # what the plain cut left: half a family


@pytest.mark.parametrize(
    ("text", "limit", "kept"),
    [
        (FLAG_US + FLAG_FR, 3, FLAG_US),  # never one letter of a flag
        ("x" + FLAG_US + FLAG_FR, 4, "x" + FLAG_US),
        # Letters pair from the start of their run: the third is the lone one.
        ("\U0001f1fa" + FLAG_US + "x", 2, "\U0001f1fa\U0001f1fa"),
        ("ab" + THUMB_TONED, 3, "ab"),  # never a thumb without its tone
        ("ab" + HEART, 3, "ab"),  # nor a heart without its variation selector
        ("caf" + E_ACUTE + "s", 4, "caf"),  # nor a letter without its accent
        ("caf" + E_ACUTE + "s", 5, "caf" + E_ACUTE),
        ("x" + KEYCAP_ONE, 3, "x"),
        ("x" + ENGLAND, 7, "x"),  # a tag sequence
        ("x" + RAINBOW_FLAG, 3, "x"),  # cut right after the ZWJ's left side
        ("x" + RAINBOW_FLAG, 4, "x"),  # cut right after the ZWJ
        ("Anna Petrova", 4, "Anna"),
        ("Anna", 4, "Anna"),
    ],
)
def test_a_clip_never_ends_inside_what_a_reader_sees_as_one_character(text, limit, kept):
    assert clipped(text, limit) == kept


def test_a_first_character_longer_than_the_column_is_cut_rather_than_lost():
    zalgo = "Z" + "\u0336" * 300
    assert clipped(zalgo, 255) == zalgo[:255]
    assert clipped(FAMILY, 2) == "\U0001f468"  # without the ZWJ that joined nothing


@given(st.lists(st.sampled_from(CLUSTERS), max_size=120), st.integers(1, 300))
def test_the_clip_is_the_longest_run_of_whole_characters_and_idempotent(parts, limit):
    text = "".join(parts)
    kept = clipped(text, limit)
    assert len(kept) <= limit and text.startswith(kept)
    assert clipped(kept, limit) == kept
    if len(text) <= limit:
        assert kept == text
        return
    whole, size = "", 0
    for part in parts:
        if size + len(part) > limit:
            break
        whole, size = whole + part, size + len(part)
    if whole:
        assert kept == whole


@pytest.mark.parametrize(
    ("text", "shows"),
    [
        ("12345", True),
        ("D-1", True),
        (" a ", True),
        ("Анна", True),
        ("a\u200b", True),
        ("\x01a", True),
        ("", False),
        (" ", False),
        ("\t\n", False),
        ("\u200b", False),
        ("\ufeff", False),
        ("\xa0", False),
        ("\u3000", False),
        ("\x00", False),
        ("\x7f", False),
        ("\u200b\u2060\u00ad", False),
    ],
)
def test_shows_something_is_as_seen_not_empty(text: str, shows: bool) -> None:
    assert shows_something(text) is shows
    assert shows_something(text) is bool(as_seen(text))


@given(st.text(alphabet=st.characters(max_codepoint=0x3100), max_size=6))
def test_shows_something_agrees_with_as_seen_everywhere(text: str) -> None:
    # The ASCII shortcut answers as the normalisation would.
    assert shows_something(text) is bool(as_seen(text))


_UNSTORABLE_AS_BEFORE = re.compile("[\x00\ud800-\udfff\U0010f800-\U0010ffff]")


def _storable_as_before(text: str) -> str:
    """storable as it was written until the thirty-eighth round (one regular expression for
    every text): what its ASCII shortcut must give."""
    if _UNSTORABLE_AS_BEFORE.search(text) is None:
        return text
    return _UNSTORABLE_AS_BEFORE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


# ASCII with NULs (the shortcut's own case), lone surrogates, their stand-ins and other text.
_TEXTS = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x7F)),
    st.text(alphabet=st.sampled_from(["a", " ", "\x00", "\x7f", "\x80", "\ud800", "\udfff"])),
    st.text(
        alphabet=st.sampled_from(["a", "\x00", "\u044f", "\U0010f800", "\U0010ffff", "\U0010f7ff"])
    ),
    st.text(),
)


@given(_TEXTS)
def test_storable_text_is_what_it_was_before_the_ascii_shortcut(text):
    expected = _storable_as_before(text)
    assert storable(text) == expected
    assert is_storable(text) is (expected == text)
    assert storable(expected) == expected  # what is stored stays as it is


@pytest.mark.parametrize("value", [None, b"abc", 5])
def test_storable_refuses_what_is_not_text_as_before(value):
    with pytest.raises(TypeError):
        storable(value)
    with pytest.raises(TypeError):
        is_storable(value)
