"""Who an answer is credited to: the signed reference, never the editable fields.

Each submission's token is verified against the current and previous secrets. A valid one
binds helpdesk, dialog and agent as they were when the survey was sent; the pre-filled agent
and ticket fields (which the respondent can edit) are only compared with it, to report
edits. Missing, malformed and forged tokens make the answer *unverified*: kept apart with the
reason, never credited. Pure functions; :mod:`csat_hook.sync.ingest` stores the outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csat_hook import tokens
from csat_hook.db.text import spreadsheet_rendering
from csat_hook.errors import TokenError
from csat_hook.sync.records import Submission
from csat_hook.sync.records import position
from csat_hook.sync.values import normalize

# The one reason a change of settings can undo: signed with no secret configured.
FORGED = "forged"
# TokenError.code → the reason an answer is unverified.
UNVERIFIED_REASONS = {
    "token_malformed": "malformed",
    "token_forged": FORGED,
    "token_version": "unsupported",
}


@dataclass(frozen=True, slots=True)  # one per answer read: 100,000 in a first sync
class Credited:
    """A submission whose reference verified. ``key`` is the survey it identifies
    (:func:`csat_hook.tokens.survey_key`): one credited answer per key."""

    submission: Submission
    ref: tokens.SurveyRef
    token: str
    key: str


@dataclass(frozen=True, slots=True)
class Unverified:
    submission: Submission
    reason: str


def check_reference(
    submission: Submission, secrets: Sequence[str], surveys: Mapping[str, Any] | None = None
) -> Credited | Unverified:
    """Verify the submission's token; the reason is missing, malformed, forged or unsupported.

    Whitespace around the reference (a pasted link, a cell) is not part of it; anything else
    that is not the exact spelling the service wrote is malformed. ``surveys`` (survey key →
    survey row, with its ``token``) only makes the check cheaper: a token exactly as stored on
    its survey skips the spelling checks (:func:`csat_hook.tokens.verify_stored`); the outcome
    is the same with or without it.
    """
    token = submission.token.strip()
    if not token:
        return Unverified(submission, "missing")
    key = token.partition(".")[0]  # tokens.survey_key
    survey = surveys.get(key) if surveys else None
    try:
        ref = tokens.verify_stored(token, getattr(survey, "token", None), secrets)
    except TokenError as exc:
        return Unverified(submission, UNVERIFIED_REASONS.get(exc.code, "malformed"))
    return Credited(submission, ref, token, key)


def agent_aliases(
    ref: tokens.SurveyRef, survey: Any | None, static: Mapping[str, Any] | None
) -> set[str]:
    """Every way the credited agent may legitimately appear in the agent field (the key
    alone when neither a survey row nor the static map knows more)."""
    names = {ref.agent}
    if survey is not None:
        names.update(v for v in (survey.agent_id, survey.agent_name, survey.agent_email) if v)
    info = (static or {}).get(ref.agent)
    if info is not None:
        names.update(v for v in (getattr(info, "name", None), getattr(info, "email", None)) if v)
    return {normalize(n) for n in names}


def fields_edited(credited: Credited, survey: Any | None, static: Mapping[str, Any] | None) -> bool:
    """True when the pre-filled agent or ticket field disagrees with the signed reference."""
    sub = credited.submission
    ticket = sub.field_ticket
    if (
        ticket
        and ticket != credited.ref.dialog_id
        and normalize(ticket) != normalize(credited.ref.dialog_id)
        and spreadsheet_rendering(ticket, credited.ref.dialog_id) is None
    ):
        return True
    if not sub.field_agent or (survey is not None and sub.field_agent == survey.agent_name):
        return False  # the common case, without normalizing anything
    aliases = agent_aliases(credited.ref, survey, static)
    if not _name_known(credited.ref, survey, static) and not _looks_like_key(sub.field_agent):
        # No name is known (only "7" or an e-mail): the field showed a stand-in such as
        # "Support team" (survey.reply.agent_label_without_name), or a name nothing to compare.
        return False
    return bool(sub.field_agent) and normalize(sub.field_agent) not in aliases


def _name_known(
    ref: tokens.SurveyRef, survey: Any | None, static: Mapping[str, Any] | None
) -> bool:
    info = (static or {}).get(ref.agent)
    return bool((survey is not None and survey.agent_name) or getattr(info, "name", None))


def _looks_like_key(value: str) -> bool:
    return value.strip().isdigit() or "@" in value


def precedence(submitted_at: datetime, ref: str) -> tuple[datetime, tuple[int, str]]:
    """Which of two submissions of one survey is credited: the greater. The later submission;
    in the same instant, the one further down the sheet (``records.position``): the order a
    fresh read of the whole source would give, whatever order the rows arrived in."""
    return submitted_at, position(ref)


def latest_per_survey(credited: Iterable[Credited]) -> dict[str, Credited]:
    """One submission per survey (by key): the one of highest :func:`precedence`."""
    latest: dict[str, Credited] = {}
    for item in credited:
        current = latest.get(item.key)
        if current is None or precedence(
            item.submission.submitted_at, item.submission.ref
        ) >= precedence(current.submission.submitted_at, current.submission.ref):
            latest[item.key] = item
    return latest
