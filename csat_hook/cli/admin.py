"""Operating commands: configuration, schema, survey links, payloads, the outbox."""

from __future__ import annotations

import json
import sys
import urllib.parse
from datetime import UTC
from datetime import datetime
from typing import Any

import click
import yaml

from csat_hook import tokens
from csat_hook.cli.base import State
from csat_hook.cli.base import pass_state
from csat_hook.clock import utcnow
from csat_hook.config import config_warnings
from csat_hook.config import masked_dump
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import current_revision
from csat_hook.db.migrate import head_revision
from csat_hook.db.migrate import upgrade
from csat_hook.errors import ConfigError
from csat_hook.errors import CsatHookError
from csat_hook.errors import TokenError
from csat_hook.helpdesks import build_helpdesks
from csat_hook.helpdesks.explain import describe_payload
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.links import LinkValues
from csat_hook.links import build_link
from csat_hook.links import parse_prefilled_link
from csat_hook.outbox import listing
from csat_hook.outbox import wake


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
    """Create or migrate the schema (Procfile ``release:``; also done on every start)."""
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
    """Print the schema revision of the database and the latest one."""
    engine = make_engine(state.config.database.url, pool_size=1)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    click.echo(
        f"current: {current or 'none'}  latest: {head}"
        + ("" if current == head else "  (run `csat-hook db upgrade`)")
    )


@click.command("init-db", hidden=True)
@click.pass_context
def init_db(ctx: click.Context) -> None:
    """Same as ``db upgrade``."""
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
    name = helpdesk or next(iter(config.helpdesks))
    if name not in config.helpdesks:
        raise click.BadParameter(
            f"no helpdesk named {name!r} in the configuration", param_hint="--helpdesk"
        )
    agent_key = agent_id or agent_email.lower() or agent_name
    token = tokens.sign(
        config.token.secret.get_secret_value(),
        tokens.SurveyRef(name, ticket, agent_key, datetime.now(UTC)),
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


@click.command("form-fields")
@click.argument("prefilled_link")
def form_fields(prefilled_link: str) -> None:
    """Turn a link from the form's "Get pre-filled link" into config (survey.form).

    Type each field's role as its value before getting the link: agent_name, agent_id,
    agent_email, ticket, team, token.
    """
    try:
        parsed = parse_prefilled_link(prefilled_link)
    except ConfigError as exc:
        raise click.BadParameter(exc.message, param_hint="PREFILLED_LINK") from None
    snippet = {
        "survey": {"form": {"kind": "google_forms", "url": parsed.url, "fields": parsed.roles}}
    }
    click.echo(yaml.safe_dump(snippet, sort_keys=False, allow_unicode=True), nl=False)
    for entry, value in parsed.unmatched.items():
        click.echo(
            f"# {entry}: sample value {value!r} matched no role "
            "(agent_name, agent_id, agent_email, ticket, team, token)"
        )
    if "token" not in parsed.roles:
        click.echo(
            "# warning: no token field found; answers cannot be credited without it", err=True
        )


@click.command("verify-token")
@click.argument("token")
@pass_state
def verify_token(state: State, token: str) -> None:
    """Check a survey reference and print what it binds (exit 1 when invalid)."""
    try:
        ref = tokens.verify(token.strip(), state.config.token.all_secrets())
    except TokenError as exc:
        click.echo(f"invalid: {exc.message}", err=True)
        sys.exit(1)
    click.echo(
        json.dumps(
            {
                "helpdesk": ref.helpdesk,
                "dialog_id": ref.dialog_id,
                "agent": ref.agent,
                "issued_at": ref.issued_at.isoformat(),
            },
            ensure_ascii=False,
        )
    )


# --- operator tools --------------------------------------------------------------------------


@click.command("inspect-payload")
@click.option("--helpdesk", "name", required=True, help="Configured helpdesk instance.")
@click.option("-H", "--header", "headers", multiple=True, help="'Name: value' (repeatable).")
@click.option(
    "-q",
    "--query",
    "queries",
    multiple=True,
    help="The webhook URL's query string, e.g. 'token=...' (repeatable).",
)
@click.option(
    "--url",
    help="The webhook URL the sender called: its path and query string are used "
    "(default path: /webhooks/<helpdesk>).",
)
@click.option(
    "-X", "--method", default="POST", show_default=True, help="The request method (signed by some)."
)
@click.option("--verify", is_flag=True, help="Also check the signature/token (headers, query).")
@click.argument("payload", type=click.File("rb"))
@pass_state
def inspect_payload(
    state: State,
    name: str,
    headers: tuple[str, ...],
    queries: tuple[str, ...],
    url: str | None,
    method: str,
    verify: bool,
    payload: Any,
) -> None:
    """Show what a saved webhook payload contains and what the mapping takes from it."""
    config = state.config
    adapters = build_helpdesks(config.helpdesks, http=HttpClient(), clock=utcnow)
    if name not in adapters:
        raise click.BadParameter(
            f"no helpdesk named {name!r}; configured: {', '.join(adapters)}",
            param_hint="--helpdesk",
        )
    header_map = {}
    for item in headers:
        key, _, value = item.partition(":")
        header_map[key.strip().lower()] = value.strip()
    parts = urllib.parse.urlsplit(url or "")
    query: dict[str, str] = {}
    for text in (parts.query, *queries):
        for key, value in urllib.parse.parse_qsl(text.lstrip("?"), keep_blank_values=True):
            query.setdefault(key, value)  # the first value, as the web app reads it
    request = WebhookRequest(
        body=payload.read(),
        headers=header_map,
        query=query,
        received_at=utcnow(),
        content_type=header_map.get("content-type", "application/json"),
        method=method.upper(),
        path=parts.path or f"/webhooks/{name}",
    )
    try:
        click.echo(describe_payload(adapters[name], request, verify=verify))
    except CsatHookError as exc:
        click.echo(f"error ({exc.code}): {exc.message}", err=True)
        sys.exit(1)


@click.group(invoke_without_command=True)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["pending", "sending", "sent", "failed", "cancelled"]),
    help="Only these statuses (repeatable).",
)
@click.option("--limit", default=50, show_default=True)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["reply", "alert"]),
    help="Only replies or only alert deliveries.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def outbox(
    ctx: click.Context, statuses: tuple[str, ...], limit: int, kinds: tuple[str, ...], as_json: bool
) -> None:
    """List queued, sent and failed replies and alert deliveries (newest first) with their
    last error."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(State)
    assert state is not None
    services = state.services()
    with services.engine.connect() as conn:
        rows = listing.list_outbox(
            conn, statuses=statuses or None, limit=limit, kinds=kinds or None
        )
        counts = listing.outbox_counts(conn)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "counts": counts,
                    "replies": [
                        {
                            k: (v.isoformat() if isinstance(v, datetime) else v)
                            for k, v in r._mapping.items()
                        }
                        for r in rows
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    click.echo("  ".join(f"{k}={v}" for k, v in counts.items()))
    for row in rows:
        when = (row.sent_at or row.next_attempt_at).strftime("%Y-%m-%d %H:%M:%S")
        error = f"  last error: {row.last_error}" if row.last_error else ""
        # An earlier attempt may have landed: the next one looks it up before sending.
        unknown = " outcome-unknown" if row.uncertain_since and row.status != "sent" else ""
        if row.kind == "alert":
            what = f"alert #{row.alert_id} -> {row.destination}"
        else:
            what = f"{row.helpdesk}/{row.dialog_id} agent={row.agent_name or row.agent_id or '-'}"
        click.echo(
            f"#{row.id} {row.status:<9} {what} attempts={row.attempts}{unknown} {when}{error}"
        )


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Requeue every failed reply and alert.")
@pass_state
def outbox_retry(state: State, ids: tuple[int, ...], all_failed: bool) -> None:
    """Requeue failed replies and alert deliveries (by id, or all of them) with a fresh
    attempt budget."""
    if not ids and not all_failed:
        raise click.UsageError("give reply ids, or --all-failed")
    services = state.services()
    with services.engine.begin() as conn:
        count = listing.requeue(conn, services.clock(), ids=list(ids) or None)
        wake.notify_workers(conn)
    click.echo(f"requeued {count} replies")
