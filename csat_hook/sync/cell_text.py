"""The invisible edges of a cell's text.

A value copied from a chat, an e-mail or a web page brings invisible characters with it:
spaces, and Unicode format characters (category Cf: the zero-width space and joiners, the
word joiner, a byte order mark, the bidi marks). Around a rating, an NPS answer, a reference,
a ticket or a timestamp they are read as the spaces around it are; one within a value is kept
(it is no longer the value it looks like: "4\u200b5" is no 45, "15:\u200b00" no time).
"""

from __future__ import annotations

import unicodedata


def _is_edge(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cf"


def strip_format(text: str) -> str:
    """``text`` without the spaces and Unicode format characters at its ends (see the module
    docstring); those within are kept.

    ASCII text (nearly every cell) holds no format character, and its spaces are what
    :meth:`str.strip` strips: done in C (30 ns against 330 for the character tests, called
    several times a row)."""
    if text.isascii():
        return text.strip()
    if not (_is_edge(text[0]) or _is_edge(text[-1])):
        return text
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end]
