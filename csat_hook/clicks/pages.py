"""The small pages a short link answers when it does not redirect, in the customer's language.

No survey data on them (the reference may be forged), nothing from the request echoed back,
no script, no external resource: text and a few lines of inline style, and a
Content-Security-Policy (:data:`POLICY`) that allows nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import html

NOT_FOUND, NOT_ALLOWED, GONE, TOO_MANY, UNAVAILABLE = 404, 405, 410, 429, 503
# A browser's prefetch of a link (web.py): refused, so that the click itself comes here.
PREFETCHED = 403

TEXTS: dict[str, dict[int, tuple[str, str]]] = {
    "en": {
        NOT_FOUND: (
            "This survey link does not work",
            "The link may have been cut or changed on its way to you. Please use the link "
            "exactly as it came in our message.",
        ),
        NOT_ALLOWED: (
            "This link opens in a browser",
            "Please open the link from our message in your web browser.",
        ),
        PREFETCHED: (
            "Open the link to see the survey",
            "The survey opens when you open the link from our message yourself.",
        ),
        GONE: (
            "This survey has closed",
            "Thank you for wanting to tell us how we did. This survey is no longer open.",
        ),
        TOO_MANY: (
            "One moment, please",
            "This link was opened many times in a short while. Please try again in a minute.",
        ),
        UNAVAILABLE: (
            "The survey is briefly unavailable",
            "Please try again in a few minutes.",
        ),
    },
    "ru": {
        NOT_FOUND: (
            "Ссылка на опрос не работает",
            "Возможно, ссылка обрезалась или изменилась по дороге. Откройте, пожалуйста, "
            "ссылку точно в том виде, в каком она пришла в нашем сообщении.",
        ),
        NOT_ALLOWED: (
            "Эта ссылка открывается в браузере",
            "Откройте, пожалуйста, ссылку из нашего сообщения в браузере.",
        ),
        PREFETCHED: (
            "Откройте ссылку, чтобы увидеть опрос",
            "Опрос откроется, когда вы сами откроете ссылку из нашего сообщения.",
        ),
        GONE: (
            "Опрос завершён",
            "Спасибо, что хотели оценить нашу работу. Этот опрос уже закрыт.",
        ),
        TOO_MANY: (
            "Минуту, пожалуйста",
            "Эту ссылку открыли много раз за короткое время. Попробуйте ещё раз через минуту.",
        ),
        UNAVAILABLE: (
            "Опрос временно недоступен",
            "Попробуйте, пожалуйста, ещё раз через несколько минут.",
        ),
    },
}
DEFAULT = "en"

_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
    "background:#f6f7f9;color:#222}main{max-width:32rem;margin:15vh auto;padding:2rem;"
    "background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08)}"
    "h1{font-size:1.3rem;margin:0 0 1rem}p{line-height:1.5;margin:0}"
)


# The pages run nothing, load nothing, post nothing and are shown in no frame: only their own
# inline style is allowed (by its hash), so even a mistake in a page could not run a script.
POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def language_for(known: str | None, accept_language: str) -> str:
    """The survey's language when known, else the best of ``Accept-Language`` we have."""
    for candidate in [known or "", *_accepted(accept_language)]:
        base = candidate.strip().lower().replace("_", "-").split("-")[0]
        if base in TEXTS:
            return base
    return DEFAULT


def _accepted(header: str) -> list[str]:
    """Languages of an ``Accept-Language`` header, best first (bounded: 20 entries)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:512].split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def page(status: int, language: str) -> str:
    """The whole page for ``status`` in ``language`` (one of :data:`TEXTS`)."""
    title, text = TEXTS.get(language, TEXTS[DEFAULT])[status]
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></main></body></html>"
    )
