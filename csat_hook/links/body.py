"""A reply as pieces an adapter can write in its vendor's markup.

A reply is text with one place for the survey: a link, or a scale of score links (one short
link per score). Kept as :class:`Segment` pieces rather than a finished string, so that a
helpdesk whose messages are HTML makes real anchors, a chat that renders Markdown gets
``[label](url)`` and a channel that shows plain text (WhatsApp, Telegram, SMS) gets each
score on its own line with its URL (see ``helpdesks/markup.py`` for the other two).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    """One score of the scale: what it says ("5", "5 – Very satisfied") and its link."""

    score: int
    label: str
    href: str


@dataclass(frozen=True)
class Segment:
    """Text (``href`` None, no choices), a link (``text`` shown, ``href`` opened) or the
    scale (``choices``)."""

    text: str
    href: str | None = None
    choices: tuple[Choice, ...] = ()


Body = tuple[Segment, ...]


def plain_text(body: Body) -> str:
    """The reply as plain text: a link as its URL, the scale one score a line."""
    out: list[str] = []
    for segment in body:
        if segment.choices:
            lines = [f"{c.label}: {c.href}" for c in segment.choices]
            out.append(("\n" if out and not out[-1].endswith("\n") else "") + "\n".join(lines))
        elif segment.href is not None:
            out.append(segment.href)
        else:
            out.append(segment.text)
    return "".join(out)


def has_scale(body: Body) -> bool:
    return any(segment.choices for segment in body)
