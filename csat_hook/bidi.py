"""Bidirectional controls in text someone else typed, kept inside it.

An explicit embedding, override or isolate (U+202A-U+202E, U+2066-U+2068) left open in a
value reorders whatever follows it up to the end of the paragraph: an agent's display name
ending in a RIGHT-TO-LEFT OVERRIDE showed an alert's "on ticket 4512" as "2154 tekcit no",
and the rest of a survey reply's sentence backwards. :func:`contained` closes what a value
opens at the end of each of its lines, so the value shows as typed and our text after it as
written.
"""

from __future__ import annotations

# Explicit bidirectional embeddings and overrides (LRE, RLE, LRO, RLO), closed by a PDF, and
# isolates (LRI, RLI, FSI), closed by a PDI; a paragraph (a line here) ends them all.
_PDF, _PDI = "\u202c", "\u2069"
_CLOSER = dict.fromkeys("\u202a\u202b\u202d\u202e", _PDF)
_CLOSER |= dict.fromkeys("\u2066\u2067\u2068", _PDI)
_PARAGRAPH_ENDS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_PARAGRAPH = frozenset(_PARAGRAPH_ENDS)


def closers(text: str) -> str:
    """What closes the embeddings, overrides and isolates ``text``'s last line leaves open,
    innermost first."""
    stack: list[str] = []
    for char in text:
        if char in _PARAGRAPH:
            stack.clear()
        elif char in _CLOSER:
            stack.append(_CLOSER[char])
        elif char == _PDF and stack and stack[-1] == _PDF:
            stack.pop()
        elif char == _PDI and _PDI in stack:
            while stack.pop() != _PDI:  # an isolate's end ends what it holds
                pass
    return "".join(reversed(stack))


def contained(text: str) -> str:
    """``text`` (typed by a customer or a helpdesk's user) with every bidirectional
    embedding, override or isolate it opens closed at the end of its line: an open
    RIGHT-TO-LEFT OVERRIDE in an agent's name reversed the rest of the alert's line ("on
    ticket 4512" shown as "2154 tekcit no"). The value itself shows as typed."""
    if not any(char in _CLOSER for char in text):
        return text
    lines = text.splitlines(keepends=True)
    out = []
    for line in lines:
        body = line.rstrip(_PARAGRAPH_ENDS)
        out.append(body + closers(body) + line[len(body) :])
    return "".join(out)
