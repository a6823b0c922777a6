"""Reply texts: the templates per language and their rendering.

``{link}`` in a template is where the survey link goes: the link itself, or, in the score
style (``survey.links.style: scores``), the scale of score links. :func:`reply_body` renders
a template into :class:`~csat_hook.links.body.Segment` pieces, so that each adapter writes
them in its vendor's markup (plain text, Markdown, HTML); :func:`reply_text` is the plain
text.
"""

from __future__ import annotations

import re
import string

from pydantic import Field
from pydantic import field_validator

from csat_hook.bidi import contained
from csat_hook.links.body import Body
from csat_hook.links.body import Segment
from csat_hook.links.body import plain_text
from csat_hook.settings import StrictModel
from csat_hook.settings import check_template

REPLY_PLACEHOLDERS = frozenset(
    {"agent_name", "agent_first_name", "customer_name", "ticket", "link", "helpdesk", "team"}
)
AGENT_PLACEHOLDERS = frozenset({"agent_name", "agent_first_name"})
# A template for a reply whose agent has no known name cannot name the agent.
NAMELESS_PLACEHOLDERS = REPLY_PLACEHOLDERS - AGENT_PLACEHOLDERS
MAX_AGENT_LABEL = 100
# Stands for {link} while the template is formatted; names are stored without NUL
# (intake/storable.py), so no value can contain it.
_LINK_MARK = "\x00link\x00"


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

    def glued_to_link(self) -> list[tuple[str, str]]:
        """``(key, character)`` for each template whose ``{link}`` is followed by a character
        other than a space or a line break (``"Rate us: {link}."``, ``"({link})"``): a chat
        app's linkifier may take it into the link (``survey.templates.en``, say)."""
        found = []
        for section, templates in (
            ("templates", self.templates),
            ("templates_without_agent", self.templates_without_agent),
        ):
            for lang, text in templates.items():
                parts = list(string.Formatter().parse(text))
                for (_, name, _, _), (literal, then, _, _) in zip(
                    parts, [*parts[1:], ("", None, None, None)], strict=True
                ):
                    # What follows {link}: the next text, else the next placeholder's value.
                    after = literal[:1] if literal else (f"{{{then}}}" if then is not None else "")
                    if name == "link" and after and not after.isspace():
                        found.append((f"survey.reply.{section}.{lang}", after))
        return found

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


def reply_body(
    reply: ReplyConfig,
    language: str | None,
    *,
    link: Segment,
    agent_name: str,
    customer_name: str,
    ticket: str,
    helpdesk: str,
    team: str,
) -> Body:
    """Render the reply in the customer's language, falling back to the default one, with
    ``link`` (the link, or the scale of score links) where the template says ``{link}``.

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
    values = {
        "agent_name": agent_name,
        "agent_first_name": first_name,
        "customer_name": customer_name,
        "ticket": ticket,
        "helpdesk": helpdesk,
        "team": team,
    }
    # NUL cannot come from a value (stored text is cleaned of it), so the mark is only ours;
    # what a value opens (a RIGHT-TO-LEFT OVERRIDE in a name) is closed within it.
    values = {k: contained(v.replace("\x00", "")) for k, v in values.items()}
    rendered = template.format_map({**values, "link": _LINK_MARK})
    segments: list[Segment] = []
    for i, piece in enumerate(rendered.split(_LINK_MARK)):
        if i:
            if link.choices and segments and not segments[-1].href:
                # The scale starts on its own line: no space left dangling before it.
                segments[-1] = Segment(segments[-1].text.rstrip(" \t"))
            segments.append(link)
        if piece:
            segments.append(Segment(piece))
    return tuple(segments)


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
    """:func:`reply_body` as plain text, with ``link`` where the template says ``{link}``."""
    return plain_text(
        reply_body(
            reply,
            language,
            link=Segment(link, href=link),
            agent_name=agent_name,
            customer_name=customer_name,
            ticket=ticket,
            helpdesk=helpdesk,
            team=team,
        )
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
