"""What an alert says, in words every destination shares (each escapes for its own format).

Everything here is plain text: a headline, facts, the quoted comment, a digest's items and
the footer with the alert's reference, and the clipping they share (on a character boundary,
an ellipsis marking the cut). Telegram takes the pieces and escapes them, Slack puts them in
``plain_text`` objects; the e-mail and the helpdesk note use :func:`plain_text` (and the
e-mail :func:`html_text`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime

from csat_hook.bidi import closers
from csat_hook.bidi import contained
from csat_hook.db.text import boundary
from csat_hook.notify.records import AGENT_BELOW_TARGET
from csat_hook.notify.records import COMMENT
from csat_hook.notify.records import DIGEST
from csat_hook.notify.records import LOW_RATING
from csat_hook.notify.records import NPS_DETRACTOR
from csat_hook.notify.records import OVERFLOW
from csat_hook.notify.records import REF_PREFIX
from csat_hook.notify.records import AgentFigures
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.records import DigestItem

# Customer text is clipped: a chat message has limits (Slack ~3000 characters a block,
# Telegram 4096), and an alert is a pointer to the conversation, not its copy.
MAX_COMMENT = 1500
MAX_ITEM_COMMENT = 200
REF_LABEL = "Alert ref:"
# REF_PREFIX with a non-breaking hyphen (U+2011) for its first one: it reads the same.
_DEFUSED_PREFIX = REF_PREFIX.replace("-", "\u2011", 1)


def _cut(text: str, at: int, limit: int, size: Callable[[str], int]) -> str:
    """``text`` cut on a :func:`boundary` at or before ``at``, what it leaves open closed,
    then an ellipsis: within ``limit`` as ``size`` counts."""
    at = boundary(text, at)
    while True:
        kept = text[:at].rstrip()
        kept += closers(kept)
        if size(kept) + 1 <= limit or at == 0:
            return kept + "…"
        at = boundary(text, at - 1)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters on a :func:`boundary`, an ellipsis marking the
    cut (after closing what the kept part leaves open: the ellipsis is ours)."""
    if len(text) <= limit:
        return text
    return _cut(text, limit - 1, limit, len)


def units(text: str) -> int:
    """``text``'s length in UTF-16 code units (a character outside the BMP, as most emoji
    are, is two): how Telegram counts, and the stricter reading of Slack's "characters"."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def fitting(text: str, limit: int) -> int:
    """How many of ``text``'s first characters fit in ``limit`` UTF-16 code units."""
    used = at = 0
    for char in text:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            break
        at += 1
    return at


def clip_units(text: str, limit: int) -> str:
    """:func:`clip` with ``limit`` counted in UTF-16 code units."""
    if units(text) <= limit:
        return text
    return _cut(text, fitting(text, limit - 1), limit, units)


def one_line(text: str) -> str:
    """Line breaks and tabs as spaces (for headers, list items), and the bidirectional
    controls it opens closed (:func:`contained`): a value on a line of ours."""
    return contained(" ".join(text.split()))


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:z.1f}%"  # z: never "-0.0%"


def agent_of(message: AlertMessage) -> str:
    return one_line(message.agent_name or message.agent_key or "an unknown agent")


def score(message: AlertMessage, rating: int | None) -> str:
    return f"{rating}/{message.scale_max}" if rating is not None else "?"


def headline(message: AlertMessage, *, include_rating: bool = True) -> str:
    """One line saying what happened (no customer text)."""
    event = message.event
    ticket = f" on ticket {one_line(message.dialog_id)}" if message.dialog_id else ""
    agent = agent_of(message)
    if event in (LOW_RATING, COMMENT, NPS_DETRACTOR) and not include_rating:
        return f"Customer feedback for {agent}{ticket} (rule {message.rule})"
    if event == LOW_RATING:
        was = (
            f" (was {score(message, message.previous_rating)})"
            if message.previous_rating is not None
            else ""
        )
        return f"Low rating {score(message, message.rating)}{was} for {agent}{ticket}"
    if event == COMMENT:
        return f"New comment with rating {score(message, message.rating)} for {agent}{ticket}"
    if event == NPS_DETRACTOR:
        return f"NPS detractor: {message.nps}/10 for {agent}{ticket}"
    if event == AGENT_BELOW_TARGET:
        figures = message.figures
        csat = pct(figures.csat) if figures else "–"
        return (
            f"{agent}: CSAT {csat} over the last {message.window_days} days is significantly "
            f"below the {pct(message.target)} target"
        )
    if event == DIGEST:
        overall = message.figures
        answers = overall.answers if overall else 0
        csat = pct(overall.csat) if overall else "–"
        return f"CSAT digest ({message.rule}) for {message.period}: {answers} answers, CSAT {csat}"
    if event == OVERFLOW:
        return (
            f"Alert cap reached for {message.destination}: further alerts to it are held "
            f"until {when(message.held_until or '')}; they are listed in the Alerts tab"
        )
    return f"Alert {message.rule}"


def facts(message: AlertMessage, *, include_rating: bool = True) -> list[tuple[str | None, str]]:
    """The facts below the headline (no customer text) as ``(label, value)``: the label ours
    (None for a line that has none), the value possibly typed by a helpdesk's user (an
    agent's or a team's name)."""
    pairs: list[tuple[str | None, str]] = []
    if message.about_answer:
        if include_rating:
            rating = score(message, message.rating)
            if message.previous_rating is not None:
                rating += f" (was {score(message, message.previous_rating)})"
            pairs.append(("Rating", rating))
            if message.nps is not None:
                pairs.append(("NPS", f"{message.nps}/10"))
        pairs.append(("Agent", agent_of(message)))
        if message.team:
            pairs.append(("Team", one_line(message.team)))
        if message.submitted_at:
            pairs.append(("Submitted", when(message.submitted_at)))
    elif message.event == AGENT_BELOW_TARGET and message.figures is not None:
        pairs.append((None, figures_line(message.figures)))
        if message.figures.p_value is not None:
            pairs.append(
                (
                    None,
                    f"Target {pct(message.target)}; one-sided exact binomial test: "
                    f"p = {message.figures.p_value:.2g}",
                )
            )
    elif message.event == DIGEST:
        if message.figures is not None:
            pairs.append(("All agents", figures_line(message.figures)))
        pairs.extend((None, f"{one_line(a.agent_name)}: {figures_line(a)}") for a in message.agents)
    return pairs


def fact_lines(message: AlertMessage, *, include_rating: bool = True) -> list[str]:
    """The :func:`facts` as lines, ``Label: value``."""
    return [
        f"{label}: {value}" if label else value
        for label, value in facts(message, include_rating=include_rating)
    ]


def figures_line(figures: AgentFigures) -> str:
    text = f"{figures.answers} answers, {figures.satisfied} satisfied (CSAT {pct(figures.csat)}"
    if figures.interval is not None:
        low, high = figures.interval
        text += f", 95% interval {pct(low)}–{pct(high)}"
    return text + ")"


def when(iso: str | datetime) -> str:
    """An ISO time (or a datetime) as ``YYYY-MM-DD HH:MM UTC``, converted to UTC first: one
    in another zone was shown as its own wall clock, labelled UTC. A time without a zone is
    taken as UTC, as every time stored is; text that is no ISO time is shown as it is."""
    if isinstance(iso, datetime):
        moment = iso
    else:
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError:
            return iso
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def defused(text: str) -> str:
    """Customer text (or a name a helpdesk's user typed) that spells no alert reference.

    A note whose outcome was unknown is looked for by its reference anywhere in a note's text
    (:func:`csat_hook.helpdesks.calls.carries_marker`), and a reference is a digest of what a
    customer can know (the rule, the survey key in their own link, the rating): a comment
    quoting one in another alert's note would pass for that alert's note, recorded delivered
    and never posted. The prefix is spelt with a non-breaking hyphen instead.
    """
    return text.replace(REF_PREFIX, _DEFUSED_PREFIX) if REF_PREFIX in text else text


def comment_of(message: AlertMessage, *, include_comment: bool) -> str | None:
    """The customer's comment, clipped and :func:`defused`; None when there is none or it is
    left out."""
    if not include_comment or not message.comment or not message.comment.strip():
        return None
    return clip(contained(defused(message.comment.strip())), MAX_COMMENT)


def item_line(item: DigestItem, message: AlertMessage, *, include_comment: bool) -> str:
    """A digest item as one line (its comment clipped, when included): the agent's name and
    the ticket's id are typed in a helpdesk, and a line break in either made lines of its own."""
    agent, ticket = one_line(item.agent_name), one_line(item.dialog_id)
    text = f"{item.rating}/{message.scale_max} {agent}, ticket {ticket}"
    if include_comment and item.comment and item.comment.strip():
        text += f": {clip(defused(one_line(item.comment)), MAX_ITEM_COMMENT)}"
    return text


def footer(message: AlertMessage) -> str:
    return f"csat-hook · rule {message.rule} · {REF_LABEL} {message.ref}"


def plain_text(message: AlertMessage, *, include_comment: bool, include_rating: bool = True) -> str:
    """The whole alert as plain text, ending with the "Alert ref:" line. The headline and the
    facts are :func:`defused` too: they hold what a helpdesk's users type (the agent's name,
    the team's, the ticket's id)."""
    lines = [defused(headline(message, include_rating=include_rating)), ""]
    lines += [defused(line) for line in fact_lines(message, include_rating=include_rating)]
    comment = comment_of(message, include_comment=include_comment)
    if comment:
        lines += ["", "Comment:", *(f"> {line}" for line in comment.splitlines())]
    if message.items:
        lines += ["", "Lowest-rated answers:"]
        lines += [
            "- " + item_line(item, message, include_comment=include_comment)
            for item in message.items
        ]
    if message.ticket_url:
        lines += ["", f"Ticket: {message.ticket_url}"]
    lines += ["", footer(message)]
    return "\n".join(lines)


def html_text(message: AlertMessage, *, include_comment: bool) -> str:
    """The alert as a small HTML document (every value escaped)."""
    e = html.escape
    parts = [f"<p><b>{e(headline(message))}</b></p>"]
    facts = fact_lines(message)
    if facts:
        parts.append("<p>" + "<br>".join(e(line) for line in facts) + "</p>")
    comment = comment_of(message, include_comment=include_comment)
    if comment:
        # Every line break the plain part splits at (CR alone, VT, NEL, U+2028...), not LF
        # alone: the others ran the customer's lines together.
        lines = "<br>".join(e(line) for line in comment.splitlines())
        parts.append("<blockquote>" + lines + "</blockquote>")
    if message.items:
        parts.append(
            "<p>Lowest-rated answers:</p><ul>"
            + "".join(
                f"<li>{e(item_line(item, message, include_comment=include_comment))}</li>"
                for item in message.items
            )
            + "</ul>"
        )
    if message.ticket_url:
        url = e(message.ticket_url, quote=True)
        ticket = e(one_line(message.dialog_id or ""))
        parts.append(f'<p><a href="{url}">Open ticket {ticket}</a></p>')
    parts.append(f"<p><small>{e(footer(message))}</small></p>")
    return "".join(parts)


def lines_block(lines: Sequence[str]) -> str:
    return "\n".join(lines)
