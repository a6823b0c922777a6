"""Short links and score links (``survey.links``).

With ``public_base_url`` set, a reply carries ``<base>/s/<reference>`` instead of the long
pre-filled form link: csat-hook answers it with a 302 to the form (``clicks/web.py``). Chat
channels (WhatsApp, Telegram, web widgets) cut or mangle a 300-character URL; this one is
about 80 characters and holds nothing but the signed reference.

``style: scores`` shows the scale in the message instead: one short link per score,
``<base>/s/<reference>/<score>``, each opening the form with that score pre-selected. A click
is intent, never a rating: the form's Submit stays the only rating.
"""

from __future__ import annotations

import urllib.parse
from typing import Literal

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.links.body import Choice
from csat_hook.links.body import Segment
from csat_hook.links.form import check_link
from csat_hook.settings import StrictModel

MAX_LABEL = 60
# People's browsers, whose clicks no ``scanner_user_agents`` entry may match.
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
)
PATH = "/s/"
# What a template's punctuation glued to {link} ("Rate us: {link}.", "({link})", «{link}»)
# adds to a link when a chat app's linkifier takes it in: characters a reference (base64url,
# its one "." inside, ending with a letter or a digit) or a score never ends with, which the
# short links' endpoint drops (``clicks/web.py``).
TRAILING = ".,;:!)]}'\"*>»…”’›）。、，！？：；」』】"


def _default_labels() -> dict[str, dict[int, str]]:
    return {
        "en": {
            1: "Very dissatisfied",
            2: "Dissatisfied",
            3: "Neutral",
            4: "Satisfied",
            5: "Very satisfied",
        },
        "ru": {
            1: "Очень плохо",
            2: "Плохо",
            3: "Нормально",
            4: "Хорошо",
            5: "Отлично",
        },
    }


class LinksConfig(StrictModel):
    """``survey.links``: short links, score links, what counts as a human click, limits."""

    # The address customers reach csat-hook at (https://csat.example.com); unset: replies
    # carry the long pre-filled link as before, and there is no funnel.
    public_base_url: str | None = None
    style: Literal["link", "scores"] = "link"
    scale_min: int = Field(default=1, ge=0, le=10)
    scale_max: int = Field(default=5, ge=1, le=10)
    labelled: bool = False  # "5 – Very satisfied" rather than "5"
    descending: bool = False  # best score first
    labels: dict[str, dict[int, str]] = Field(default_factory=_default_labels)
    default_language: str = "en"
    # A reference older than this gets 410 and a friendly page (the survey is over).
    expire_days: int = Field(default=90, ge=1, le=3650)
    # Clicks that look automated (docs/links.md): sooner than this after the reply went out...
    min_seconds_after_send: float = Field(default=10.0, ge=0, le=3600)
    # ...or two different scores of one survey within this many seconds.
    burst_seconds: float = Field(default=1.0, ge=0, le=60)
    # Substrings (case-insensitive) of User-Agents to treat as scanners, besides the built-in ones.
    scanner_user_agents: list[str] = Field(default_factory=list)
    # Requests per minute answered per reference and per client address, in each web process.
    rate_per_reference: int = Field(default=20, ge=1, le=10000)
    rate_per_client: int = Field(default=60, ge=1, le=100000)
    # Clicks older than this are deleted (by the delivery worker's heartbeat, and as new ones
    # arrive), oldest first in bounded batches.
    retention_days: int = Field(default=400, ge=1, le=3650)

    @field_validator("public_base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            parts = check_link(value)
        except ValueError as exc:
            raise ValueError(f"an http(s) address, e.g. https://csat.example.com: {exc}") from exc
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ValueError("no query, fragment or credentials: e.g. https://csat.example.com")
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")).rstrip("/")

    @field_validator("scanner_user_agents")
    @classmethod
    def _not_every_browser(cls, value: list[str]) -> list[str]:
        # An entry found in people's browsers ("Chrome/" for HeadlessChrome, "Mozilla", " ")
        # made every click automated: no survey ever opened, silently.
        for index, entry in enumerate(value):
            if not entry:  # ignored, as ever (an unset ${VAR:-})
                continue
            folded = entry.casefold()
            browser = next((b for b in BROWSERS if folded in b.casefold()), None)
            if not entry.strip() or browser is not None:
                raise ValueError(
                    f"[{index}] {entry!r}: a part of the scanner's User-Agent that no browser's "
                    "has" + (f"; this one is in a browser's: {browser}" if entry.strip() else "")
                )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, dict[int, str]]) -> dict[str, dict[int, str]]:
        for lang, labels in value.items():
            for score, label in labels.items():
                if not label.strip() or len(label) > MAX_LABEL or "\n" in label:
                    raise ValueError(f"{lang}.{score}: one line of 1 to {MAX_LABEL} characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LinksConfig:
        if self.scale_min >= self.scale_max:
            raise ValueError("scale_min must be below scale_max")
        if self.style == "scores" and self.public_base_url is None:
            raise ValueError("style: scores needs public_base_url (score links are short links)")
        self._fit_labels()
        return self

    def _fit_labels(self) -> None:
        """The built-in labels are the 1–5 scale's: on another scale (0–10, 1–7) a language's
        labels as built in (or as config.example.yaml writes them) label its two ends, as a
        Forms linear scale does, the scores between shown as numbers; "5 – Very satisfied" in
        the middle of a 0–10 scale misread it. A scale shown labelled (``style: scores``,
        ``labelled: true``) with labels of the operator's that leave an end unlabelled or
        name a score off it is refused, naming the keys."""
        ends = (self.scale_min, self.scale_max)
        built_in = _default_labels()
        if ends != (1, 5):
            for lang, labels in self.labels.items():
                if labels == built_in.get(lang.lower()):
                    self.labels[lang] = {ends[0]: labels[1], ends[1]: labels[5]}
        if not (self.labelled and self.style == "scores"):
            return
        scale = f"{ends[0]}–{ends[1]}"
        for lang, labels in self.labels.items():
            off = sorted(score for score in labels if score not in self.scores())
            if off:
                raise ValueError(
                    f"labels.{lang}.{off[0]}: {off[0]} is off the scale {scale} the score "
                    "links show (scale_min–scale_max): label only its scores"
                )
            missing = [f"labels.{lang}.{end}" for end in ends if end not in labels]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)} missing: labelled: true shows the scale {scale}, "
                    "whose ends need a label (the scores between may have one or not); or "
                    "leave labels as built in, which label the ends of any scale"
                )

    @property
    def enabled(self) -> bool:
        return self.public_base_url is not None

    def scores(self) -> range:
        return range(self.scale_min, self.scale_max + 1)

    def label(self, score: int, language: str | None) -> str:
        """The score as the scale shows it: the number, with its label when ``labelled``."""
        if not self.labelled:
            return str(score)
        text = self._labels_for(language).get(score)
        return f"{score} – {text}" if text else str(score)

    def _labels_for(self, language: str | None) -> dict[int, str]:
        keys = {k.lower(): k for k in self.labels}
        for candidate in _candidates(language) + _candidates(self.default_language):
            if candidate in keys:
                return self.labels[keys[candidate]]
        return {}


def _candidates(language: str | None) -> list[str]:
    if not language:
        return []
    tag = language.strip().lower().replace("_", "-")
    return [tag, tag.split("-")[0]]


def short_url(links: LinksConfig, token: str, score: int | None = None) -> str:
    """``<base>/s/<reference>`` (``/<score>``). The reference is URL-safe as signed."""
    if links.public_base_url is None:
        raise ValueError("short links need survey.links.public_base_url")
    tail = f"/{score}" if score is not None else ""
    return f"{links.public_base_url}{PATH}{token}{tail}"


def survey_segment(links: LinksConfig, token: str, language: str | None) -> Segment:
    """What the reply shows where its template says ``{link}``: the short link, or the scale."""
    url = short_url(links, token)
    if links.style != "scores":
        return Segment(url, href=url)
    order = reversed(links.scores()) if links.descending else links.scores()
    choices = tuple(
        Choice(score, links.label(score, language), short_url(links, token, score))
        for score in order
    )
    return Segment(url, href=url, choices=choices)
