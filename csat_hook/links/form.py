"""The form a survey link opens, and the link itself.

Two link kinds: a Google Forms pre-filled link (``viewform?usp=pp_url&entry.<N>=<value>``)
and a URL template for any other form tool (Typeform hidden fields, Tally, SurveyMonkey...).
Both are pure functions of the survey values, an optional score and the configuration.

A score link (:mod:`csat_hook.links.short`) opens the same form with the rating question
already answered: Google Forms pre-fills a linear-scale or multiple-choice question through
its ``entry.<N>`` (``fields.rating``) with the option's value, the number itself for a linear
scale, the option's text for a multiple choice (``rating_values``). Only the form's Submit
records a rating.
"""

from __future__ import annotations

import re
import string
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic import ValidationInfo
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.db.text import clipped
from csat_hook.errors import ConfigError
from csat_hook.settings import StrictModel
from csat_hook.settings import check_template

LINK_ROLES = ("agent_name", "agent_id", "agent_email", "ticket", "helpdesk", "team", "token")
# ``rating`` is a field of the form (the question a score link pre-selects), not a survey value.
FIELD_ROLES = (*LINK_ROLES, "rating")
MAX_RATING_VALUE = 200
# The longest link a survey goes out with or a short link redirects to: Google Forms does not
# open a pre-filled link much longer (nor do some chat apps and mail gateways carry one). A
# survey's values can make it far longer (a 255-character Cyrillic or emoji name is 1,500 to
# 3,000 characters percent-encoded): the longest of them are cut (:func:`_fitted`).
MAX_LINK_LENGTH = 2000
# The values a link may carry cut; never the reference (answers are credited by it), nor the
# score, nor the operator's extra_params.
CUTTABLE = frozenset(LINK_ROLES) - {"token"}


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
    # What a score link puts in the rating question, per score: the option's text of a
    # multiple-choice question ("5 - Very satisfied"); a linear scale takes the number itself,
    # the default for every score not listed.
    rating_values: dict[int, str] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        for role, entry in value.items():
            if role not in FIELD_ROLES:
                raise ValueError(f"unknown field {role!r}; known: {', '.join(FIELD_ROLES)}")
            if not re.fullmatch(r"entry\.\d+", entry):
                raise ValueError(f"{role}: {entry!r} is not a Google Forms entry id (entry.<N>)")
        # An entry copied for two roles went out twice (entry.4=<ticket>&entry.4=<reference>),
        # the form reading one of them where answers are credited by the reference; a score
        # link, which replaces the rating's entry, dropped the reference shared with it.
        first: dict[str, str] = {}
        for role, entry in value.items():
            if entry in first:
                raise ValueError(
                    f"fields.{first[entry]} and fields.{role} both name {entry}: each field "
                    "is its own question of the form (csat-hook form-fields reads them from "
                    "a pre-filled link)"
                )
            first[entry] = role
        return value

    @field_validator("url")
    @classmethod
    def _public_link(cls, value: str) -> str:
        # Replies carry this link and short links redirect to it: a relative one sends the
        # customer back to csat-hook, a fragment holds every pre-filled value (the reference
        # too: the answer could not be credited).
        try:
            parts = check_link(value)
        except ValueError as exc:
            raise ValueError(
                "the form's public link, https://docs.google.com/forms/d/e/…/viewform "
                f"(csat-hook form-fields prints it): {exc}"
            ) from exc
        if (short := google_short_link(parts)) is not None:
            raise ValueError(short)
        if parts.fragment or value.strip().endswith("#"):
            raise ValueError("the form's public link (…/viewform), with no #fragment")
        page = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if page in _NOT_THE_PUBLIC_PAGE:
            raise ValueError(f"{_NOT_THE_PUBLIC_PAGE[page]}; use the public link, …/viewform")
        return value.strip()

    @field_validator("rating_values")
    @classmethod
    def _short_values(cls, value: dict[int, str]) -> dict[int, str]:
        for score, text in value.items():
            if not text.strip() or len(text) > MAX_RATING_VALUE:
                raise ValueError(f"{score}: the option's text, 1 to {MAX_RATING_VALUE} characters")
        return value

    @field_validator("url_template")
    @classmethod
    def _template_link(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The link's own shape, checked here so that errors name survey.form.url_template;
        # what it needs beside (its placeholders, {token}) is checked with the kind below.
        if not value or info.data.get("kind") != "template":
            return value
        # The values are a webhook's (a dialog id, a name): none may choose the host a
        # short link redirects to.
        head = urllib.parse.urlsplit(value.strip())
        if (
            head.scheme not in ("http", "https")
            or not head.hostname
            or any(c in head.netloc for c in "{}@")
        ):
            raise ValueError(
                "an https:// link whose scheme and host are written out "
                "(placeholders only after the host)"
            )
        # Replies carry the filled link as it is (a chat ends it at a space, HTML at a
        # quote), as they carry form.url: the same check, the placeholders standing for a
        # value (each is percent-encoded when filled).
        check_link(_PLACEHOLDER.sub("1", value))
        if (short := google_short_link(head)) is not None:
            raise ValueError(short)
        if head.path.rstrip("/").endswith("/formResponse"):
            raise ValueError(_NOT_THE_PUBLIC_PAGE["formResponse"])
        return value

    @model_validator(mode="after")
    def _own_extra_params(self) -> FormConfig:
        # A fixed parameter named as an entry the link fills (or usp) gave it a second value,
        # written first: entry.<token's>=campaign&…&entry.<token's>=<reference>, the form
        # reading the operator's value where answers are credited by the reference.
        taken = {"usp": "usp=pp_url (the pre-filled mark)"}
        taken.update({entry: f"fields.{role}" for role, entry in self.fields.items()})
        for key in self.extra_params:
            if key in taken:
                raise ValueError(
                    f"extra_params.{key}: the link already fills {key} ({taken[key]}); "
                    "a second value would go out with it"
                )
        return self

    @model_validator(mode="after")
    def _kind_needs(self) -> FormConfig:
        if self.kind == "template":
            if not self.url_template:
                raise ValueError("url_template is required when kind is template")
            check_template(self.url_template, frozenset(FIELD_ROLES), where="url_template")
            if "{token}" not in self.url_template:
                raise ValueError("url_template must contain {token}: answers are credited by it")
        elif "token" not in self.fields:
            raise ValueError("fields.token is required: answers are credited by the signed token")
        return self

    @property
    def prefills_rating(self) -> bool:
        """Whether a score link can pre-select the score (a rating field or ``{rating}``)."""
        if self.kind == "template":
            return "{rating}" in (self.url_template or "")
        return "rating" in self.fields

    def rating_value(self, score: int) -> str:
        return self.rating_values.get(score, str(score))


# Google Forms addresses that are not the form's public page, by their last path segment.
_NOT_THE_PUBLIC_PAGE = {
    # A GET of it with the pre-filled values submits them: a mail scanner following a score
    # link would answer the survey, that score, for the customer.
    "formResponse": "…/formResponse is the form's submit address: opening it submits the "
    "pre-filled values (a link scanner would answer for the customer)",
    "edit": "…/edit is the form's editor, which customers cannot open",
    "prefill": "…/prefill is the pre-fill editor, not the form",
}
# Google's short links to a form: forms.gle/<id>, and the older goo.gl/forms/<id>.
_SHORT_LINK_HOSTS = frozenset({"forms.gle", "www.forms.gle"})
_GOO_GL_HOSTS = frozenset({"goo.gl", "www.goo.gl"})


def google_short_link(parts: urllib.parse.SplitResult) -> str | None:
    """Why a Google Forms short link (``forms.gle/…``, ``goo.gl/forms/…``) cannot be the
    form's link, and what to write instead; None for any other link.

    The short link is a redirect Google answers: nothing Google documents says it passes a
    query on to the form (its "Get pre-filled link" gives the long address), so the
    ``entry.<N>`` values a survey link adds, the signed reference among them, may be lost on
    the way, and every answer then comes in unverified, never credited; goo.gl links no
    longer resolve at all. Refused rather than found out from the answers."""
    host = (parts.hostname or "").rstrip(".")
    path = parts.path.lower()
    if host in _SHORT_LINK_HOSTS:
        shown = f"{parts.scheme}://{host}/…"
    elif host in _GOO_GL_HOSTS and (path == "/forms" or path.startswith("/forms/")):
        shown = f"{parts.scheme}://{host}/forms/…"
    else:
        return None
    return (
        f"{shown} is a short link, a redirect not known to keep the pre-filled values (the "
        "signed reference answers are credited by): every answer could come in unverified; "
        "give the form's own address: open the short link in a browser and copy the "
        "https://docs.google.com/forms/d/e/…/viewform address it lands on, or use the "
        'form\'s "Get pre-filled link" (csat-hook form-fields reads that link)'
    )


# A placeholder of a template ({token}, {agent_name}…; check_template knows which).
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
# What a link cannot hold as it is: a chat ends the link at a space, HTML at a quote.
_NOT_IN_A_LINK = re.compile(r'[\s"<>\\^`{|}]')


def check_link(value: str) -> urllib.parse.SplitResult:
    """``value`` (stripped) as an absolute http(s) link that replies can carry as it is: a
    host, a readable port, no credentials, no space or other character a link cannot hold,
    ASCII only (:func:`non_ascii_problem`). ValueError says what is wrong."""
    text = value.strip()
    if _NOT_IN_A_LINK.search(text):
        raise ValueError("no spaces, quotes or <>\\^`{|} in a link (%20 for a space)")
    if not text.isascii():
        raise ValueError(non_ascii_problem(text))
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an absolute http(s) link")
    if "@" in parts.netloc:
        raise ValueError("no credentials (user:password@) in a link")
    try:
        parts.port  # noqa: B018  (reading it checks it)
    except ValueError as exc:
        raise ValueError("the port must be a number up to 65535") from exc
    return parts


def check_base_url(value: str) -> str:
    """``value`` (stripped) as an API's base address, which paths are appended to: an http(s)
    address checked as a link is (:func:`check_link`: a host, a readable port, no space;
    a ``user:password@`` is let through), a path kept, no query or fragment (the paths would
    go after it). ValueError says what is wrong, quoting nothing of it (a pasted token may
    be in it)."""
    text = value.strip()
    if not text.lower().startswith(("https://", "http://")):
        raise ValueError("must start with https:// (e.g. https://desk.example.com)")
    scheme, _, rest = text.partition("://")
    address, slash, path = rest.partition("/")
    address = address.rpartition("@")[2]  # credentials: the operator's to give, masked
    try:
        parts = check_link(f"{scheme}://{address}{slash}{path}")
    except ValueError as exc:
        raise ValueError(f"{exc}: e.g. https://desk.example.com") from None
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(
            "no query or fragment (?... #...): the API's paths are appended to it; "
            "give the address alone, e.g. https://desk.example.com"
        )
    return text


def non_ascii_problem(link: str) -> str:
    """Why ``link`` (holding a character beyond ASCII) is refused, and how to write it.

    A link is written in ASCII, as browsers send it: a host in its IDNA form (``xn--…``), the
    rest percent-encoded (UTF-8), as a pasted pre-filled link is. Not converted silently: a
    letter in a host typed by hand that only looks Latin (Cyrillic ``е`` in ``typеform.com``)
    is another host, which every reply would send customers to; and a raw character breaks
    the short link's redirect (a ``Location`` header is Latin-1). The message names the
    character, where it is and the host's IDNA form, never the path or query (a query may
    hold a key)."""
    parts = urllib.parse.urlsplit(link)
    index, char = next((i, c) for i, c in enumerate(link) if not c.isascii())
    what = f"only ASCII in a link: U+{ord(char):04X} {unicodedata.name(char, 'unnamed')}"
    host = parts.hostname or ""
    if not host.isascii():
        label = next(label for label in host.split(".") if not label.isascii())
        # Latin letters beside a letter of another script that may look like one.
        mixed = any(c.isascii() and c.isalpha() for c in label) and any(
            not c.isascii() and not unicodedata.name(c, "").startswith("LATIN") for c in label
        )
        idna = _idna(host)
        return (
            f"{what} in the host"
            + (", among Latin letters (a look-alike?)" if mixed else "")
            + (f"; an internationalized host is written in its IDNA form: {idna}" if idna else "")
        )
    start = len(parts.scheme) + 3 + len(parts.netloc)
    place = "address" if index < start else "path"  # a user name or port, refused anyway
    if parts.query and index > link.find("?", start):
        place = "query"
    if parts.fragment and index > link.find("#", start):
        place = "fragment"
    encoded = urllib.parse.quote(char, safe="")
    return f"{what} in the {place}: percent-encode it (UTF-8): {encoded}"


def _idna(host: str) -> str | None:
    """``host`` in its IDNA (xn--) form; None when it has none, or when IDNA 2003 (Python's
    codec) would map it to another name (``ß`` to ``ss``): no wrong advice."""
    try:
        ascii_host = host.encode("idna").decode("ascii")
        same = ascii_host.encode("ascii").decode("idna") == host.lower()
    except UnicodeError:
        return None
    return ascii_host if same else None


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


def build_link(form: FormConfig, values: LinkValues, *, rating: int | None = None) -> str:
    """The survey link for these values; with ``rating``, the rating question pre-selected.
    At most :data:`MAX_LINK_LENGTH` characters when the reference, the score and the form's
    own address allow it (:func:`_fitted`)."""
    data = values.as_dict()
    if form.kind == "template":
        template = form.url_template
        if not template:
            raise ConfigError("survey.form.url_template is required when kind is template")
        data["rating"] = form.rating_value(rating) if rating is not None else ""

        def filled(data: dict[str, str]) -> str:
            quoted = {k: urllib.parse.quote(v, safe="") for k, v in data.items()}
            return string.Formatter().vformat(template, (), quoted)

        return _fitted(filled, data)
    base = form.url.split("?", 1)[0]

    def prefilled(data: dict[str, str]) -> str:
        params: list[tuple[str, str]] = [("usp", "pp_url")]
        params.extend(form.extra_params.items())
        for role, entry in form.fields.items():
            if role == "rating":
                if rating is not None:
                    params.append((entry, form.rating_value(rating)))
                continue
            if data.get(role):
                params.append((entry, data[role]))
        return f"{base}?{urllib.parse.urlencode(params)}"

    return _fitted(prefilled, data)


def with_rating(form: FormConfig, link: str, rating: int) -> str:
    """A Google Forms ``link`` (as :func:`build_link` wrote it) with the rating pre-selected.

    The link is what the survey went out with (stored on the survey), so the score link
    opens exactly that form with exactly those hidden fields, plus the score. Any earlier
    value of the rating entry is replaced. Values are cut as :func:`build_link` cuts them
    when the score makes the link too long.
    """
    entry = form.fields.get("rating")
    if form.kind != "google_forms" or entry is None:
        return link
    parts = urllib.parse.urlsplit(link)
    params = [
        (k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != entry
    ]
    params.append((entry, form.rating_value(rating)))
    roles = {e: role for role, e in form.fields.items() if role in CUTTABLE}
    data = {roles[k]: v for k, v in params if k in roles}

    def rated(data: dict[str, str]) -> str:
        kept = [
            (k, data[roles[k]] if k in roles else v)
            for k, v in params
            if k not in roles or data[roles[k]]
        ]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(kept)))

    return _fitted(rated, data)


def _fitted(render: Callable[[dict[str, str]], str], data: dict[str, str]) -> str:
    """``render(data)``, at most :data:`MAX_LINK_LENGTH` characters if cutting the values of
    :data:`CUTTABLE` can make it so: each is cut to the same largest number of characters
    that fits, so the longest ones (a long name) are cut and the short ones (a ticket number)
    kept whole; a value cut to nothing is left out."""
    link = render(data)
    if len(link) <= MAX_LINK_LENGTH:
        return link

    def cut(limit: int) -> dict[str, str]:
        # On a character boundary (db.text.clipped): never half an emoji sequence or a
        # letter without its accent, which a form would show as a broken name.
        return {k: clipped(v, limit) if k in CUTTABLE else v for k, v in data.items()}

    # The largest limit that fits: ``fits`` does (or is 0), ``too_long`` does not.
    fits, too_long = 0, max((len(v) for k, v in data.items() if k in CUTTABLE), default=0)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if len(render(cut(middle))) <= MAX_LINK_LENGTH:
            fits = middle
        else:
            too_long = middle
    return render(cut(fits))
