"""What ``check-config`` shows: the effective configuration with every secret masked (inside
URLs too), and warnings about settings that are unsafe or inconsistent, which long-running
processes also log once as they start (:func:`log_config_warnings`)."""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from csat_hook.config.model import INSECURE_MARKER
from csat_hook.config.model import Config
from csat_hook.db.config import keepalives_off_over_tcp
from csat_hook.db.engine import TCP_USER_TIMEOUT_SECONDS
from csat_hook.helpdesks import takes_notes
from csat_hook.helpdesks.generic.mapping import MappingOptions
from csat_hook.helpdesks.http_session import socks_proxies_without_pysocks
from csat_hook.links.short import TRAILING
from csat_hook.notify.options import ip_of
from csat_hook.notify.options import is_loopback

logger = logging.getLogger(__name__)

# The event of each warning logged at start-up (:func:`log_config_warnings`).
CONFIG_WARNING = "config.warning"
MASK = "**********"  # what pydantic prints for a SecretStr
# Query parameters whose value is a credential (compared lower-case, "-" read as "_").
SECRET_PARAMETERS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "api_token",
        "auth_token",
        "refresh_token",
        "key",
        "api_key",
        "apikey",
        "signature",
        "sig",
        "sslpassword",
        "code",  # Azure Functions' function key, Supabase's and others' ?code=
        "auth",
    }
)
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def masked_dump(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced by a mask.

    Secrets are the ``SecretStr`` fields, credentials inside any URL (the password of
    ``user:password@host``: ``database.url``, also when it came from ``$DATABASE_URL``; query
    parameters such as ``?token=``, ``?password=`` or ``?code=``), and the value of every
    environment variable with a secret's name (:data:`SECRET_VARIABLE`) wherever the file put
    it: a generic helpdesk's ``body``, a query parameter of another name.
    """
    data = config.model_dump(mode="json")
    data["database"]["url"] = _without_password(config.database.url)
    data["helpdesks"] = {
        name: options.model_dump(mode="json") for name, options in config.helpdesks.items()
    }
    masked: dict[str, Any] = _mask_urls(data)
    hidden = sorted(config.secrets_from_env, key=len, reverse=True)  # a longer one first
    return mask_values(masked, hidden) if hidden else masked


# An environment variable whose name says it holds a secret (FN_KEY, BODY_KEY, API_TOKEN,
# SMTP_PASSWORD, SIGNING_SECRET, BASIC_AUTH, PRIVATE_KEY_PEM, GOOGLE_CREDENTIALS...).
SECRET_VARIABLE = re.compile(
    r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PWD|AUTH|CREDENTIAL|SIGNATURE|PRIVATE|COOKIE|SESSION",
    re.IGNORECASE,
)
# Shorter values are not masked where they appear: a "1" would mask every digit of the dump.
_SHORTEST_MASKED = 4


def secrets_taken(taken: Mapping[str, Sequence[str]], env: Mapping[str, str]) -> list[str]:
    """The values of the variables with a secret's name (:data:`SECRET_VARIABLE`) among those
    the configuration took (``taken``: each key's variables), as masked_dump masks them."""
    names = {name for used in taken.values() for name in used if SECRET_VARIABLE.search(name)}
    values = {env.get(name, "").strip() for name in names}
    return sorted(v for v in values if len(v) >= _SHORTEST_MASKED)


def mask_values(value: Any, hidden: Sequence[str]) -> Any:
    """``value`` (a text, or data holding texts) with each of ``hidden`` in it replaced by the
    mask; ``hidden`` longest first, so that a secret holding another is masked whole."""
    if isinstance(value, str):
        for secret in hidden:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {key: mask_values(item, hidden) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_values(item, hidden) for item in value]
    return value


def _without_password(url: str) -> str:
    """The database URL with its password masked as the driver reads it: from the user's
    ``:`` to the first ``@``, whatever it holds (a quote, a space, ``#``, ``/``), where
    finding URLs in text (:func:`_mask_urls`) stops at a quote or a space and ``urlsplit``
    at ``#`` or ``/``. The query's credentials are masked after, with every URL's."""
    try:
        has_password = make_url(url).password is not None
    except (ArgumentError, ValueError):
        return MASK  # not a URL the driver reads: nothing of it is shown
    if not has_password:
        return url
    scheme, _, rest = url.partition("://")
    user = rest.partition(":")[0]
    return f"{scheme}://{user}:{MASK}@{rest.partition('@')[2]}"


def _mask_urls(value: Any) -> Any:
    if isinstance(value, str):
        return _URL.sub(lambda m: mask_url(m.group()), value) if "://" in value else value
    if isinstance(value, dict):
        return {key: _mask_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_urls(item) for item in value]
    return value


def mask_url(url: str) -> str:
    """``url`` with the password of its user info and the values of credential-like query
    parameters (:data:`SECRET_PARAMETERS`) replaced by the mask; the mask alone for a URL
    urllib cannot read (a ``[`` or ``]`` around its host unmatched or holding no IP address)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        # Found in a text (a reply template's "https://[our-site]/faq"), which loaded: where
        # its credentials are cannot be told, so none of it is shown (the database URL's rule).
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else netloc
    query = "&".join(_mask_parameter(item) for item in parts.query.split("&"))
    if netloc == parts.netloc and query == parts.query:
        return url
    masked = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    return masked + (f"#{parts.fragment}" if parts.fragment else "")


def _mask_parameter(item: str) -> str:
    name, equals, _value = item.partition("=")
    normalised = urllib.parse.unquote_plus(name).lower().replace("-", "_")
    if equals and normalised in SECRET_PARAMETERS:
        return f"{name}={MASK}"
    return item


def exchanges_past_the_lease(config: Config) -> list[str]:
    """What to say of each e-mail destination whose SMTP exchange may outlast a delivery
    claim's lease (``deadline_seconds``, by default 3 × ``timeout_seconds``, not under
    ``delivery.lease_seconds``). A running worker renews its claims and allows for the whole
    exchange at a takeover, but ``worker --once`` (no heartbeat) starts a send only while
    the lease outlasts it: it never sends these, and refuses to start
    (:mod:`csat_hook.cli.run`)."""
    lease = config.delivery.lease_seconds
    said = []
    for name, options in config.alerts.destinations.items():
        deadline = getattr(options, "deadline", None)
        if isinstance(deadline, int | float) and deadline >= lease:
            said.append(
                f"alerts.destinations.{name}: its SMTP exchange may last {deadline:g} s "
                "(deadline_seconds, by default 3 × timeout_seconds), not less than "
                f"delivery.lease_seconds ({lease:g}): `worker --once` cannot send it (a claim "
                "must outlast one send when no heartbeat renews it); raise lease_seconds or "
                "lower the deadline"
            )
    return said


def log_config_warnings(config: Config, *, said: set[str] | None = None) -> None:
    """Log each of :func:`config_warnings` as one WARNING line, event
    :data:`CONFIG_WARNING`, the warning in its ``warning`` field: what a long-running
    process says when it starts, for an operator who never runs ``check-config``.

    Called once per start, by the process that starts the others, never by those it
    forks: ``serve`` and the Procfile's gunicorn master (not their web processes),
    ``worker``, ``sync --periodic`` (not serve's own sync child). The warnings name keys,
    hosts and lengths, never a secret's value; any URL a warning might quote is masked
    as ``check-config`` masks it (:func:`mask_url`).

    ``said``: the warnings this process logged already (a gunicorn master reloading its
    configuration): those are not logged again, and each one logged is added to it."""
    for warning in config_warnings(config):
        if said is not None:
            if warning in said:
                continue
            said.add(warning)
        logger.warning(CONFIG_WARNING, extra={"warning": _mask_urls(warning)})


def config_warnings(config: Config) -> list[str]:
    """Settings that work but deserve the operator's attention: printed by
    ``check-config``, logged when a long-running process starts
    (:func:`log_config_warnings`)."""
    warnings = [
        f"{key} still holds the shipped development secret" for key in insecure_settings(config)
    ]
    if config.secrets_in_file:
        warnings.append(
            "secrets written in the configuration file (give each as ${VAR}, from the "
            "environment, so the file holds none): " + ", ".join(config.secrets_in_file)
        )
    if keepalives_off_over_tcp(config.database.url):
        # Taken, not refused: turning keepalives off is the operator's choice to make; what
        # it costs is said. The URL is never quoted (it holds the password).
        warnings.append(
            "database.url: keepalives=0: libpq then sends no keepalive probe and ignores "
            f"tcp_user_timeout (the service's {TCP_USER_TIMEOUT_SECONDS:g} s default too): a "
            "PostgreSQL server that goes silent mid-statement (a host powered off, a network "
            "dropping every packet) is never detected, the statement waits for ever; leave "
            "keepalives out (or 1) to have it detected"
        )
    warnings.extend(google_without_credentials(config))
    warnings.extend(exchanges_past_the_lease(config))
    warnings.extend(request_warnings(config))
    warnings.extend(previous_secret_warnings(config))
    warnings.extend(public_link_warnings(config))
    warnings.extend(
        f"{name} is a SOCKS proxy, but PySocks is not installed: every HTTP request through "
        "it fails, not sent, and is retried only up to delivery.max_attempts (install "
        "requests[socks], a dependency, and restart)"
        for name in socks_proxies_without_pysocks()
    )
    for name, options in config.alerts.destinations.items():
        if options.kind == "helpdesk_note" and not any(
            takes_notes(h) for h in config.helpdesks.values()
        ):
            warnings.append(
                f"alerts.destinations.{name}: no configured helpdesk can take internal notes "
                "(the generic adapter needs its note request): nothing will be noted"
            )
    if not config.results.nps_configured:
        for rule in config.alerts.rules:
            if rule.kind == "nps_detractor":
                where = (
                    "results.forms_api.question_ids.nps"
                    if config.results.source == "forms_api"
                    else "results.columns.nps"
                )
                warnings.append(
                    f"alerts.rules.{rule.name}: nps_detractor never alerts: no answer has an "
                    f"NPS score without the form's 0-10 question ({where})"
                )
    if config.alerts.active and config.results.source == "csv" and not config.sync.run_in_serve:
        warnings.append(
            "alerts: answers are read only when a sync runs; with results.source csv they "
            "reach the team when the export is refreshed"
        )
    warnings.extend(glued_to_link_warnings(config))
    for lang in config.survey.reply.languages_without_nameless_template():
        warnings.append(
            f"survey.reply.templates_without_agent has no {lang!r} template: a {lang} reply "
            "whose agent has no known name reads agent_label_without_name in its place"
        )
    return warnings


def glued_to_link_warnings(config: Config) -> list[str]:
    """A reply template with a character glued to ``{link}`` ("Rate us: {link}.",
    "({link})"): many chat apps and mail clients take it into the link. A short link drops
    the punctuation no reference ends with (``survey.links.TRAILING``); the form's pre-filled
    link cannot: the character lands in its last value, usually the reference, and the
    customer's answer comes in unverified, never credited."""
    short = config.survey.links.enabled
    found = []
    for key, after in config.survey.reply.glued_to_link():
        if short and after in TRAILING:
            continue
        harm = (
            "give the customer a link that does not work"
            if short
            else "add it to the form link's last pre-filled value, often the reference "
            "(survey.form.fields.token): that answer then comes in unverified, never credited"
        )
        remedy = "" if short else ", or use short links (survey.links.public_base_url)"
        found.append(
            f"{key}: {after!r} right after {{link}}: chat apps that take it into the link "
            f"{harm}; put a space or a line break after {{link}}{remedy}"
        )
    return found


def google_without_credentials(config: Config) -> list[str]:
    """A sync that must call Google (a Sheets or Forms API source, or the Sheets report) with
    no service-account key: check-config said "configuration OK" and serve started, then
    every sync failed with a config_error (``${GOOGLE_SERVICE_ACCOUNT_JSON:-}``, the
    example's, is empty while the variable is unset)."""
    if config.google.has_credentials:
        return []
    calls = []
    if config.results.source in ("gsheets", "forms_api"):
        calls.append(f"results.source {config.results.source}")
    if config.output.gsheets.enabled:
        calls.append("output.gsheets.enabled")
    if not calls:
        return []
    return [
        f"{' and '.join(calls)} call Google, but neither google.service_account_file nor "
        "google.service_account_json is set: every sync fails (exit 2) until one is "
        "(service_account_json: ${GOOGLE_SERVICE_ACCOUNT_JSON} reads the key's JSON from "
        "the environment)"
    ]


def _plain_http_host(url: object) -> str | None:
    """The host of ``url`` when it is plain http:// to a host that is not local
    (:func:`_is_local`: what crosses the network readable); None for anything else, https or
    not a text."""
    if not isinstance(url, str) or not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or _is_local(parts.hostname or ""):
        return None
    return parts.hostname or ""


def _is_local(host: str) -> bool:
    """Whether ``host`` names this machine: a loopback name or address (127.0.0.0/8, ::1)
    or a ``*.localhost`` name (RFC 6761 reserves them for loopback)."""
    name = host.lower().strip("[]").rstrip(".")
    if is_loopback(name) or name == "localhost" or name.endswith(".localhost"):
        return True
    address = ip_of(name)
    return address is not None and address.is_loopback


def public_link_warnings(config: Config) -> list[str]:
    """The links customers open (``survey.links.public_base_url``, the short and score links;
    ``survey.form.url``, the pre-filled form) in plain http:// to a host that is not
    loopback: each carries its survey's signed reference (a score link its score too), which
    anyone on the way can then read, and change before it reaches us or the form."""
    found = []
    links = [
        ("survey.links.public_base_url", config.survey.links.public_base_url),
        ("survey.form.url", config.survey.form.url),
    ]
    for key, url in links:
        if (host := _plain_http_host(url)) is not None:
            found.append(
                f"{key}: plain http:// to {host}: the links customers open (their survey's "
                "signed reference, a score link's score) cross the network readable and "
                "alterable; use https://"
            )
    return found


# A sender's secret shorter than this can be guessed: an HMAC key offline from one signed
# webhook, a token by trying.
MIN_SECRET_CHARS = 16


def request_warnings(config: Config) -> list[str]:
    """For the ``generic`` adapter's requests (and any adapter with such options), and a
    vendor adapter's ``base_url``: a URL in plain http:// to a host that is not loopback (the
    API token in its headers and the reply cross the network readable), a sender not checked
    at all (``auth.mode: none``), a sender's token or signing secret too short to be one
    (never shown), and a status mapping still filtered by the default event (``event`` /
    ``dialog.closed``)."""
    found = []
    for name, options in config.helpdesks.items():
        # A vendor's API (Chatwoot, Intercom...).
        if (host := _plain_http_host(getattr(options, "base_url", None))) is not None:
            found.append(
                f"helpdesks.{name}.base_url: plain http:// to {host}: every request's headers "
                "(the API token) and the replies cross the network unencrypted; use https://"
            )
        requests: list[tuple[str, Any]] = [
            (key, getattr(options, key, None)) for key in ("reply", "lookup", "note", "note_lookup")
        ]
        agents = getattr(options, "agent_lookup", None)
        for key in ("by_dialog", "by_id"):
            requests.append((f"agent_lookup.{key}", getattr(agents, key, None)))
        for key, request in requests:
            if (host := _plain_http_host(getattr(request, "url", None))) is not None:
                found.append(
                    f"helpdesks.{name}.{key}.url: plain http:// to {host}: its headers (the "
                    "API token) and the reply cross the network unencrypted; use https://"
                )
        mapping = getattr(options, "mapping", None)
        if (
            isinstance(mapping, MappingOptions)
            and mapping.status
            and not mapping.model_fields_set & {"event", "close_events"}
        ):
            events = " or ".join(mapping.close_events + mapping.reopen_events)
            found.append(
                f"helpdesks.{name}.mapping.event: left at its default while status is set: a "
                f"webhook is a close only when its 'event' field also says {events}; set "
                "event: null to decide by the status alone"
            )
        auth = getattr(options, "auth", None)
        mode = getattr(auth, "mode", None)
        if mode == "none":
            found.append(
                f"helpdesks.{name}.auth.mode: none: every webhook is taken from anyone who "
                "reaches its URL, and a reply posted into whatever dialog it names; use token "
                "or hmac"
            )
        held = {"hmac": "secret", "token": "token"}.get(str(mode))
        keyed: list[tuple[str, object]] = []
        if held:
            keyed.append((held, getattr(auth, held, None)))
            # A rotation's previous ones too: one as short lets in whoever guesses it as well.
            previous = getattr(auth, f"previous_{held}s", None) or []
            keyed.extend((f"previous_{held}s.{i}", old) for i, old in enumerate(previous))
        for key, secret in keyed:
            if isinstance(secret, SecretStr) and len(secret.get_secret_value()) < MIN_SECRET_CHARS:
                found.append(
                    f"helpdesks.{name}.auth.{key}: {len(secret.get_secret_value())} characters: "
                    f"one this short can be guessed; use at least {MIN_SECRET_CHARS} random "
                    "characters (32 is usual)"
                )
    return found


def previous_secret_warnings(config: Config) -> list[str]:
    """A helpdesk still accepting a rotation's previous webhook secrets or tokens
    (``previous_webhook_secrets``, ``auth.previous_tokens``...): fine while the helpdesk is
    switched to the new one, each a second key to the webhook while it stays. Names the key
    and how many, never a value."""
    found = []
    for name, options in config.helpdesks.items():
        for key, count in options.previous_secret_counts().items():
            held = "secret is" if count == 1 else f"{count} secrets are"
            current = options.rotated_secrets[key]
            found.append(
                f"helpdesks.{name}.{key}: {held} still accepted beside {current}: remove "
                "them once the helpdesk sends with the new one (no webhook.previous-secret "
                "line logged for it for a while)"
            )
    return found


def insecure_settings(config: Config) -> list[str]:
    """Dotted keys still holding a shipped development secret (fine locally, not in production)."""
    return [key for key, value in _secrets(config) if INSECURE_MARKER in value]


def secrets_written(config: Config, written: set[str]) -> list[str]:
    """The secrets among ``written`` (dotted paths of texts that took nothing from the
    environment): a ``SecretStr`` set in the file, and ``database.url`` with a password.
    The shipped development secrets are left out: said apart (:func:`insecure_settings`)."""
    found = []
    if "database.url" in written:
        try:
            if make_url(config.database.url).password:
                found.append("database.url (its password)")
        except (ArgumentError, ValueError):
            pass
    for key, value in _secrets(config):
        if key in written and value and INSECURE_MARKER not in value:
            found.append(key)
    return found


def _secrets(config: Config) -> list[tuple[str, str]]:
    """Each ``SecretStr`` of the configuration: (its dotted key, its value)."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, SecretStr):
            found.append((path, value.get_secret_value()))
        elif isinstance(value, BaseModel):
            for key in type(value).model_fields:
                walk(getattr(value, key), f"{path}.{key}" if path else key)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(config, "")

    return found
