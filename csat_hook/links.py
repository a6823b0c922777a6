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
AGENT_PLACEHOLDERS = frozenset({"agent_name", "agent_first_name"})
# A template for a reply whose agent has no known name cannot name the agent.
NAMELESS_PLACEHOLDERS = REPLY_PLACEHOLDERS - AGENT_PLACEHOLDERS
MAX_AGENT_LABEL = 100


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
    """The reply text per language.

    ``templates`` name the agent; when the agent's name is unknown (the close named nobody,
    only an id or an e-mail is known, the look-up failed), the same language's
    ``templates_without_agent`` is used instead: a whole sentence, since a name slotted into
    a sentence does not agree with a stand-in like "our team" in every language (Russian
    "поработал(а) наша команда" is ungrammatical). An id or an e-mail is never shown as a name.
    ``agent_label_without_name`` is what the pre-filled form's agent field shows then.
    """

    default_language: str = "en"
    templates: dict[str, str] = Field(
        default_factory=lambda: {
            "en": "Thanks for contacting us! How did {agent_name} do? "
            "Rate this conversation (it takes 10 seconds): {link}",
            "ru": "Спасибо за обращение! Оцените, пожалуйста, как с вами поработал(а) "
            "{agent_name}: {link}",
        }
    )
    templates_without_agent: dict[str, str] = Field(
        default_factory=lambda: {
            "en": "Thanks for contacting us! How did we do? "
            "Rate this conversation (it takes 10 seconds): {link}",
            "ru": "Спасибо за обращение! Оцените, пожалуйста, как мы с вами поработали: {link}",
        }
    )
    agent_label_without_name: dict[str, str] = Field(
        default_factory=lambda: {"en": "Support team", "ru": "Служба поддержки"}
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

    @field_validator("templates_without_agent")
    @classmethod
    def _valid_nameless(cls, value: dict[str, str]) -> dict[str, str]:
        for lang, text in value.items():
            check_template(text, NAMELESS_PLACEHOLDERS, where=lang)
            if "{link}" not in text:
                raise ValueError(f"{lang}: the template must contain {{link}}")
        return value

    @field_validator("agent_label_without_name")
    @classmethod
    def _valid_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for lang, text in value.items():
            if not text.strip() or len(text) > MAX_AGENT_LABEL or "{" in text or "@" in text:
                raise ValueError(
                    f"{lang}: a label of 1 to {MAX_AGENT_LABEL} characters, without braces "
                    "or an e-mail address (e.g. Support team)"
                )
        return value

    def languages_without_nameless_template(self) -> list[str]:
        """Languages whose template names the agent but that have no template without one.

        Not an error (configurations written before ``templates_without_agent`` existed keep
        starting): such a reply names the agent by ``agent_label_without_name`` instead, and
        ``check-config`` and ``serve`` warn.
        """
        nameless = {k.lower() for k in self.templates_without_agent}
        return [
            lang
            for lang, text in self.templates.items()
            if _names_agent(text) and lang.lower() not in nameless
        ]


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


def readable_agent_name(
    name: str | None, *, agent_id: str | None = None, email: str | None = None
) -> str | None:
    """``name`` when it reads as a person's name; None for nothing, the agent's id or e-mail,
    an e-mail address, or text without a letter (helpdesks fill a missing name with these)."""
    text = (name or "").strip()
    if not text or text in (agent_id, email) or _EMAIL_LIKE.search(text):
        return None
    if not any(c.isalpha() for c in text):
        return None
    return text


_EMAIL_LIKE = re.compile(r"[^\s@]+@[^\s@]+")


def agent_label(reply: ReplyConfig, language: str | None, name: str | None) -> str:
    """What the pre-filled form's agent field shows: the readable name, else the language's
    ``agent_label_without_name`` (the default language's, else empty: the field is left out)."""
    if name:
        return name
    labels = {k.lower(): v for k, v in reply.agent_label_without_name.items()}
    for candidate in _language_candidates(language) + _language_candidates(reply.default_language):
        if candidate in labels:
            return labels[candidate]
    return ""


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
    """Render the reply in the customer's language, falling back to the default one.

    ``agent_name`` is the agent's readable name (:func:`readable_agent_name`) or empty; empty
    picks the language's template without an agent (see :class:`ReplyConfig`).
    """
    agent_name = agent_name.strip()
    template = pick_template(reply, language)
    if not agent_name and _names_agent(template):
        nameless = {k.lower(): v for k, v in reply.templates_without_agent.items()}
        chosen = pick_language(reply, language).lower()
        if chosen in nameless:
            template = nameless[chosen]
        else:  # an older configuration: the stand-in label reads as the name
            agent_name = agent_label(reply, chosen, None)
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
    return reply.templates[pick_language(reply, language)]


def pick_language(reply: ReplyConfig, language: str | None) -> str:
    """The key of ``reply.templates`` a reply in ``language`` uses (see :func:`pick_template`)."""
    keys = {k.lower(): k for k in reply.templates}
    for candidate in _language_candidates(language) + _language_candidates(reply.default_language):
        if candidate in keys:
            return keys[candidate]
    return next(iter(reply.templates))


def _names_agent(template: str) -> bool:
    return any(
        name in AGENT_PLACEHOLDERS for _, name, _, _ in string.Formatter().parse(template) if name
    )


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
