"""Survey links and reply texts.

Two link kinds: a Google Forms pre-filled link (``viewform?usp=pp_url&entry.<N>=<value>``)
and a URL template for any other form tool (Typeform hidden fields, Tally, SurveyMonkey...).
Both are pure functions of the survey values and the configuration.
"""

from __future__ import annotations

import re
import string
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.errors import ConfigError
from csat_hook.settings import StrictModel
from csat_hook.settings import check_template

LINK_ROLES = ("agent_name", "agent_id", "agent_email", "ticket", "helpdesk", "team", "token")
REPLY_PLACEHOLDERS = frozenset(
    {"agent_name", "agent_first_name", "customer_name", "ticket", "link", "helpdesk", "team"}
)


class FormConfig(StrictModel):
    kind: Literal["google_forms", "template"] = "google_forms"
    url: str = "https://docs.google.com/forms/d/e/YOUR_FORM_ID/viewform"
    fields: dict[str, str] = Field(
        default_factory=lambda: {
            "agent_name": "entry.1000001",
            "agent_id": "entry.1000002",
            "ticket": "entry.1000003",
            "token": "entry.1000004",
        }
    )
    extra_params: dict[str, str] = Field(default_factory=dict)
    url_template: str | None = None

    @field_validator("fields")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        for role, entry in value.items():
            if role not in LINK_ROLES:
                raise ValueError(f"unknown field {role!r}; known: {', '.join(LINK_ROLES)}")
            if not re.fullmatch(r"entry\.\d+", entry):
                raise ValueError(f"{role}: {entry!r} is not a Google Forms entry id (entry.<N>)")
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> FormConfig:
        if self.kind == "template":
            if not self.url_template:
                raise ValueError("url_template is required when kind is template")
            check_template(self.url_template, frozenset(LINK_ROLES), where="url_template")
            if "{token}" not in self.url_template:
                raise ValueError("url_template must contain {token}: answers are credited by it")
        elif "token" not in self.fields:
            raise ValueError("fields.token is required: answers are credited by the signed token")
        return self


class ReplyConfig(StrictModel):
    default_language: str = "en"
    templates: dict[str, str] = Field(
        default_factory=lambda: {
            "en": "Thanks for contacting us! How did {agent_name} do? "
            "Rate this conversation (it takes 10 seconds): {link}",
            "ru": "Спасибо за обращение! Оцените, пожалуйста, как с вами поработал(а) "
            "{agent_name}: {link}",
        }
    )

    @field_validator("templates")
    @classmethod
    def _valid_templates(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one template is required")
        for lang, text in value.items():
            check_template(text, REPLY_PLACEHOLDERS, where=lang)
            if "{link}" not in text:
                raise ValueError(f"{lang}: the template must contain {{link}}")
        return value


class SurveyConfig(StrictModel):
    form: FormConfig = Field(default_factory=FormConfig)
    reply: ReplyConfig = Field(default_factory=ReplyConfig)


@dataclass(frozen=True)
class LinkValues:
    """The values a survey link may carry. ``ticket`` is the dialog id."""

    agent_name: str
    agent_id: str
    agent_email: str
    ticket: str
    helpdesk: str
    team: str
    token: str

    def as_dict(self) -> dict[str, str]:
        return {
            "agent_name": self.agent_name,
            "agent_id": self.agent_id,
            "agent_email": self.agent_email,
            "ticket": self.ticket,
            "helpdesk": self.helpdesk,
            "team": self.team,
            "token": self.token,
        }


def build_link(form: FormConfig, values: LinkValues) -> str:
    """The survey link for these values."""
    if form.kind == "template":
        if not form.url_template:
            raise ConfigError("survey.form.url_template is required when kind is template")
        quoted = {k: urllib.parse.quote(v, safe="") for k, v in values.as_dict().items()}
        return string.Formatter().vformat(form.url_template, (), quoted)
    params: list[tuple[str, str]] = [("usp", "pp_url")]
    params.extend(form.extra_params.items())
    data = values.as_dict()
    for role, entry in form.fields.items():
        if data.get(role):
            params.append((entry, data[role]))
    base = form.url.split("?", 1)[0]
    return f"{base}?{urllib.parse.urlencode(params)}"


def reply_text(
    reply: ReplyConfig,
    language: str | None,
    *,
    link: str,
    agent_name: str,
    customer_name: str,
    ticket: str,
    helpdesk: str,
    team: str,
) -> str:
    """Render the reply in the customer's language, falling back to the default one."""
    template = pick_template(reply, language)
    first_name = agent_name.split()[0] if agent_name.split() else agent_name
    return template.format_map(
        {
            "link": link,
            "agent_name": agent_name,
            "agent_first_name": first_name,
            "customer_name": customer_name,
            "ticket": ticket,
            "helpdesk": helpdesk,
            "team": team,
        }
    )


def pick_template(reply: ReplyConfig, language: str | None) -> str:
    """Exact language (``pt-BR``), then its base (``pt``), then the default, then any."""
    templates = {k.lower(): v for k, v in reply.templates.items()}
    for candidate in _language_candidates(language) + _language_candidates(reply.default_language):
        if candidate in templates:
            return templates[candidate]
    return next(iter(reply.templates.values()))


def _language_candidates(language: str | None) -> list[str]:
    if not language:
        return []
    tag = language.strip().lower().replace("_", "-")
    return [tag, tag.split("-")[0]]


# --- reading a link copied from the Forms "Get pre-filled link" screen ---------------------

_ROLE_ALIASES = {
    "agent_name": ("agent_name", "agent", "agentname", "name", "оператор", "агент"),
    "agent_id": ("agent_id", "agentid"),
    "agent_email": ("agent_email", "agentemail", "email"),
    "ticket": ("ticket", "ticket_id", "dialog", "dialog_id", "conversation", "обращение"),
    "helpdesk": ("helpdesk",),
    "team": ("team", "group"),
    "token": ("token", "ref", "reference", "signature"),
}


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
    before pressing "Get link", and every entry maps itself.
    """
    parsed = urllib.parse.urlsplit(link.strip())
    if not parsed.scheme.startswith("http") or "/forms/" not in parsed.path:
        raise ConfigError("that does not look like a Google Forms link (…/forms/d/e/…/viewform)")
    entries: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        if re.fullmatch(r"entry\.\d+", key):
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
    return PrefilledLink(url=base, entries=entries, roles=roles, unmatched=unmatched)


def _guess_role(value: str) -> str | None:
    normalized = re.sub(r"[\s\-]+", "_", value.strip().lower()).strip("{}<>[]")
    for role, aliases in _ROLE_ALIASES.items():
        if normalized in aliases:
            return role
    return None


def decode_link(link: str, form: FormConfig) -> dict[str, str]:
    """Map a Google Forms pre-filled link back to roles (the inverse of :func:`build_link`)."""
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    return {role: query[entry] for role, entry in form.fields.items() if entry in query}
