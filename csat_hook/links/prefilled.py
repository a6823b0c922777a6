"""Reading a link copied from the Forms "Get pre-filled link" screen (``csat-hook form-fields``)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from csat_hook.errors import ConfigError
from csat_hook.links.form import FormConfig
from csat_hook.links.form import google_short_link
from csat_hook.links.form import non_ascii_problem

_ROLE_ALIASES = {
    "agent_name": ("agent_name", "agent", "agentname", "name", "оператор", "агент"),
    "agent_id": ("agent_id", "agentid"),
    "agent_email": ("agent_email", "agentemail", "email"),
    "ticket": ("ticket", "ticket_id", "dialog", "dialog_id", "conversation", "обращение"),
    "helpdesk": ("helpdesk",),
    "team": ("team", "group"),
    "token": ("token", "ref", "reference", "signature"),
    "rating": ("rating", "score"),
}
# Every role an entry can have, for a message naming them.
ROLES = (*_ROLE_ALIASES,)


@dataclass(frozen=True)
class PrefilledLink:
    """What a pre-filled link contains: the form's base URL and entry id → sample value."""

    url: str
    entries: dict[str, str]
    roles: dict[str, str]
    unmatched: dict[str, str]


def parse_prefilled_link(link: str) -> PrefilledLink:
    """Split a pre-filled link into entry ids and guess each one's role from its sample value.

    Fill the form's fields with their role names (``agent_name``, ``ticket``, ``token``...)
    before pressing "Get link", and every entry maps itself; a score picked (0 to 10) marks the
    rating question.
    """
    try:
        parsed = urllib.parse.urlsplit(link.strip())
    except ValueError:  # "Invalid IPv6 URL": an unclosed [ in the host
        parsed = urllib.parse.SplitResult("", "", "", "", "")
    if google_short_link(parsed) is not None:
        # The form's "Send" link: what a new user has at hand, but it pre-fills nothing.
        raise ConfigError(
            "that is a short link to the form (forms.gle/…), which pre-fills nothing: in the "
            "form's editor use ⋮ → Get pre-filled link, type each field's role as its value "
            "(agent_name, ticket, token…), and give the link it copies"
        )
    if not parsed.scheme.startswith("http") or "/forms/" not in parsed.path:
        raise ConfigError("that does not look like a Google Forms link (…/forms/d/e/…/viewform)")
    entries: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        if re.fullmatch(r"entry\.\d+", key):
            if key in entries:  # which value the form would take is the form's to say
                raise ConfigError(f"{key} is given twice in the link; get the link again")
            entries[key] = value
    if not entries:
        raise ConfigError("the link has no entry.<N> parameters; use 'Get pre-filled link'")
    roles: dict[str, str] = {}
    unmatched: dict[str, str] = {}
    for entry, value in entries.items():
        role = _guess_role(value)
        if role and role not in roles:
            roles[role] = entry
        else:
            unmatched[entry] = value
    base = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path, "", ""))
    if not base.endswith("/viewform"):
        base = re.sub(r"/(formResponse|edit|prefill)$", "/viewform", base)
    if not base.isascii():  # the survey.form.url check-config would refuse, said now
        raise ConfigError(non_ascii_problem(base))
    return PrefilledLink(url=base, entries=entries, roles=roles, unmatched=unmatched)


# The score picked on the rating question (docs/links.md: "pick any score"): a linear scale's
# number, 0 to 10.
_SCORE = re.compile(r"10|[0-9]")


def _guess_role(value: str) -> str | None:
    if _SCORE.fullmatch(value.strip()):
        return "rating"
    normalized = re.sub(r"[\s\-]+", "_", value.strip().lower()).strip("{}<>[]")
    for role, aliases in _ROLE_ALIASES.items():
        if normalized in aliases:
            return role
    return None


def decode_link(link: str, form: FormConfig) -> dict[str, str]:
    """Map a Google Forms pre-filled link back to roles (the inverse of :func:`build_link`)."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    return {role: query[entry] for role, entry in form.fields.items() if entry in query}
