"""Setting up: the configuration, the schema, survey links and references.

``check-config``, ``db upgrade`` / ``db current`` (``init-db``, hidden, is ``db upgrade``),
``link`` (a survey link to try the form), ``form-fields`` (config from a pre-filled link),
``verify-token`` (what a survey reference binds).
"""

from __future__ import annotations

import sys
import urllib.parse
from datetime import UTC
from datetime import datetime
from pathlib import Path

import click
import yaml

from csat_hook import tokens
from csat_hook.cli.base import State
from csat_hook.cli.base import command_line
from csat_hook.cli.base import pass_state
from csat_hook.cli.base import shown
from csat_hook.cli.base import unknown_helpdesk
from csat_hook.config import config_warnings
from csat_hook.config import masked_dump
from csat_hook.db.engine import make_engine
from csat_hook.db.engine import sqlite_file
from csat_hook.db.migrate import current_revision
from csat_hook.db.migrate import head_revision
from csat_hook.db.migrate import known_revisions
from csat_hook.db.migrate import upgrade
from csat_hook.db.text import is_storable
from csat_hook.errors import BadPayloadError
from csat_hook.errors import ConfigError
from csat_hook.errors import TokenError
from csat_hook.intake.storable import storable_dialog_id
from csat_hook.links import LinkValues
from csat_hook.links import build_link
from csat_hook.links import parse_prefilled_link
from csat_hook.links.prefilled import ROLES as PREFILL_ROLES
from csat_hook.links.short import PATH
from csat_hook.links.short import TRAILING
from csat_hook.logs import printable_json


@click.command("check-config")
@pass_state
def check_config(state: State) -> None:
    """Validate the configuration and print it with secrets masked."""
    config = state.config
    click.echo(f"# effective configuration from {config.source}")
    click.echo(yaml.safe_dump(masked_dump(config), sort_keys=False, allow_unicode=True))
    for warning in config_warnings(config):
        click.echo(f"warning: {warning}", err=True)
    click.echo("configuration OK", err=True)


@click.group()
def db() -> None:
    """Database schema (migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Create or migrate the schema (Procfile `release:`; also done on every start)."""
    known = known_revisions()
    if revision != "head" and revision not in known:
        # Bad usage (exit 2), not the database's state: said before anything is opened.
        raise click.BadParameter(
            shown(
                f"no schema revision {revision[:64]!r}; this release's are "
                f"head, {known[0]} … {known[-1]}"
            ),
            param_hint="'--revision'",
        )
    config = state.config
    engine = make_engine(config.database.url, pool_size=1)
    try:
        before, after = upgrade(engine, revision)
    finally:
        engine.dispose()
    click.echo(f"database schema: {before or 'empty'} → {after}")


@db.command("current")
@pass_state
def db_current(state: State) -> None:
    """Print the schema revision of the database and the latest one (a SQLite file that
    does not exist is said so, not made: this command changes nothing)."""
    head = head_revision()
    file = sqlite_file(state.config.database.url)
    if file is not None and not Path(file).exists():
        click.echo(
            f"current: none (no database at {shown(file)} yet: "
            f"{command_line(state, 'db upgrade')} or any start makes it)  latest: {head}"
        )
        return
    engine = make_engine(state.config.database.url, pool_size=1)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    if current == head:
        hint = ""
    elif current is None or current in known_revisions():
        hint = f"  (run {command_line(state, 'db upgrade')})"
    else:  # a newer release upgraded it: `db upgrade` here would refuse
        hint = "  (newer than this release: run the release that upgraded it)"
    click.echo(f"current: {shown(current or 'none')}  latest: {head}{hint}")


@click.command("init-db", hidden=True)
@click.pass_context
def init_db(ctx: click.Context) -> None:
    """Same as `db upgrade`."""
    ctx.invoke(db_upgrade)


@click.command()
@click.option("--agent", "agent_name", required=True, help="Agent name shown in the form.")
@click.option("--agent-id", default="", help="Agent id (bound into the token).")
@click.option("--agent-email", default="")
@click.option("--ticket", required=True, help="Ticket / dialog id.")
@click.option("--helpdesk", default=None, help="Helpdesk instance [default: the first one].")
@click.option("--team", default="")
@pass_state
def link(
    state: State,
    agent_name: str,
    agent_id: str,
    agent_email: str,
    ticket: str,
    helpdesk: str | None,
    team: str,
) -> None:
    """Print a survey link, to try a form before going live."""
    config = state.config
    # Bound as a webhook's would be: ids trimmed, a blank dialog id refused (as_id).
    ticket, agent_id = ticket.strip(), agent_id.strip()
    if not ticket:
        raise click.BadParameter("blank: give the ticket / dialog id", param_hint="--ticket")
    name = next(iter(config.helpdesks)) if helpdesk is None else helpdesk.strip()
    if name not in config.helpdesks:
        raise unknown_helpdesk(name, config.helpdesks)
    _check_link_values(
        {
            "--agent": agent_name,
            "--agent-id": agent_id,
            "--agent-email": agent_email,
            "--ticket": ticket,
            "--team": team,
        }
    )
    agent_key = agent_id or agent_email.lower() or agent_name
    token = tokens.sign(
        config.token.secret.get_secret_value(),
        tokens.SurveyRef(name, ticket, agent_key, datetime.now(UTC)),
    )
    if len(token) > tokens.MAX_TOKEN_LENGTH:
        raise click.UsageError(
            f"the survey reference would be {len(token)} characters, over the "
            f"{tokens.MAX_TOKEN_LENGTH} a reference may have to verify: shorten --ticket or "
            "--agent-id (--agent-email, --agent without them)"
        )
    click.echo(
        build_link(
            config.survey.form,
            LinkValues(
                agent_name=agent_name,
                agent_id=agent_id,
                agent_email=agent_email,
                ticket=ticket,
                helpdesk=name,
                team=team,
                token=token,
            ),
        )
    )


def _check_link_values(values: dict[str, str]) -> None:
    """BadParameter naming the option whose value no survey could carry: text with a NUL or
    with bytes the terminal's encoding does not decode (Python reads them as lone
    surrogates, which no link can encode: a traceback), or a ticket a webhook's dialog id
    could not be (longer than its column, as intake refuses it)."""
    for option, value in values.items():
        if not is_storable(value):
            raise click.BadParameter(
                "is not text (a NUL, or bytes the terminal's encoding does not decode)",
                param_hint=option,
            )
    try:
        storable_dialog_id(values["--ticket"])
    except BadPayloadError as exc:
        raise click.BadParameter(exc.message, param_hint="--ticket") from None


@click.command("form-fields")
@click.argument("prefilled_link")
def form_fields(prefilled_link: str) -> None:
    """Turn a link from the form's "Get pre-filled link" into config (survey.form).

    Type each field's role as its value before getting the link: agent_name, agent_id,
    agent_email, ticket, helpdesk, team, token; pick any score on the rating question (the
    one score links pre-select: fields.rating).
    """
    try:
        parsed = parse_prefilled_link(prefilled_link)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="PREFILLED_LINK") from None
    if "token" not in parsed.roles:
        # The block printed was one check-config refuses (survey.form: fields.token is
        # required), with exit 0 and a warning: said now instead, as a link check-config
        # would refuse is.
        unmatched = ", ".join(f"{e}={v!r}" for e, v in parsed.unmatched.items())
        raise click.BadParameter(
            "no field holds the value 'token': type token as the reference question's "
            "value before getting the link (answers are credited by it; "
            "survey.form.fields.token is required)"
            + (f"; matched no role: {unmatched}" if unmatched else ""),
            param_hint="PREFILLED_LINK",
        )
    snippet = {
        "survey": {"form": {"kind": "google_forms", "url": parsed.url, "fields": parsed.roles}}
    }
    click.echo(yaml.safe_dump(snippet, sort_keys=False, allow_unicode=True), nl=False)
    for entry, value in parsed.unmatched.items():
        click.echo(
            f"# {entry}: sample value {value!r} matched no role "
            f"({', '.join(PREFILL_ROLES)}; a score 0-10 for rating)"
        )


def _reference_in(text: str, state: State) -> str | None:
    """The reference ``text`` is or holds: a short link's (``…/s/<reference>[/<score>]``), the
    form link's ``survey.form.fields.token`` value, ``text`` itself when it is no link; None
    for a link holding none."""
    if not text.lower().startswith(("http://", "https://")):
        return text
    parts = urllib.parse.urlsplit(text)
    if PATH in parts.path:
        return parts.path.rsplit(PATH, 1)[1].split("/", 1)[0]
    entry = state.config.survey.form.fields.get("token")
    values = urllib.parse.parse_qs(parts.query).get(entry or "", [])
    return values[-1] if values else None


@click.command("verify-token")
@click.argument("token")
@pass_state
def verify_token(state: State, token: str) -> None:
    """Check a survey reference and print what it binds (exit 1 when invalid).

    TOKEN is the reference, or a link holding it as a customer has it: a short link
    (…/s/<reference>, a score link too) or the pre-filled form link."""
    secrets = state.config.token.all_secrets()
    reference = _reference_in(token.strip(), state)
    if reference is None:
        click.echo(
            "invalid: no survey reference in that link (a short link, …/s/<reference>, or "
            "the form link with survey.form.fields.token's entry)",
            err=True,
        )
        sys.exit(1)
    try:
        ref = tokens.verify(reference, secrets)
    except TokenError as exc:
        bare = reference.rstrip(TRAILING)
        hint = (
            f"; without the {reference[len(bare) :]!r} after it, which no reference ends with, "
            "it is valid (a chat app likely took the reply's punctuation into the link: "
            "check-config names a reply template with punctuation right after {link})"
            if bare != reference and tokens.verifies(bare, secrets)
            else ""
        )
        click.echo(f"invalid: {exc.message}{hint}", err=True)
        sys.exit(1)
    click.echo(
        printable_json(
            {
                "helpdesk": ref.helpdesk,
                "dialog_id": ref.dialog_id,
                "agent": ref.agent,
                "issued_at": ref.issued_at.isoformat(),
            },
        )
    )
