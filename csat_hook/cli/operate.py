"""Operating: what a saved webhook payload holds, and the outbox of replies and alerts.

``inspect-payload`` (verify and parse a payload as the web app would, and show what the
mapping takes from it), ``outbox`` (list queued, sent and failed deliveries) and
``outbox retry`` (requeue failed ones).
"""

from __future__ import annotations

import sys
import urllib.parse
from datetime import datetime
from typing import Any

import click

from csat_hook.cli.base import LIMIT
from csat_hook.cli.base import ROW_ID
from csat_hook.cli.base import State
from csat_hook.cli.base import pass_state
from csat_hook.cli.base import shown
from csat_hook.cli.base import unknown_helpdesk
from csat_hook.clock import utcnow
from csat_hook.errors import CsatHookError
from csat_hook.errors import PayloadTooLargeError
from csat_hook.helpdesks import build_helpdesks
from csat_hook.helpdesks.explain import describe_payload
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.logs import printable_json
from csat_hook.outbox import listing
from csat_hook.outbox import wake
from csat_hook.outbox.store import follow_up_generation


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
        raise unknown_helpdesk(name, adapters)
    header_map = {}
    for number, item in enumerate(headers, 1):
        key, colon, value = item.partition(":")
        if not colon or not key.strip():
            # Taken as a header of that whole name, valueless: `-H X-Webhook-Token=...`
            # then failed --verify as a token never sent. Not quoted: it may hold the token.
            raise click.BadParameter(
                f"header {number}: write it 'Name: value' (a name, a colon, the value)",
                param_hint="-H / --header",
            )
        header_map[key.strip().lower()] = value.strip()
    try:
        parts = urllib.parse.urlsplit(url or "")
    except ValueError:  # a bracket missing or left over ("Invalid IPv6 URL")
        # Not quoted: its query may hold the webhook's token.
        raise click.BadParameter(
            "is not a URL (a [ or ] around the host unmatched?): give the URL the sender "
            "called, or its path and query string",
            param_hint="--url",
        ) from None
    if parts.path and not parts.path.startswith("/"):
        # "webhooks/x", a host without its scheme, a word: read as the path, the sender's
        # signature over {path} was said not to match, or the token missing, about a path
        # no request has. Not quoted, as above.
        raise click.BadParameter(
            "is neither a URL nor a path: give the URL the sender called "
            f"(https://<host>/webhooks/{name}?…), or its path and query string "
            f"(/webhooks/{name}?…)",
            param_hint="--url",
        )
    query: dict[str, str] = {}
    for text in (parts.query, *queries):
        for key, value in urllib.parse.parse_qsl(text.lstrip("?"), keep_blank_values=True):
            query.setdefault(key, value)  # the first value, as the web app reads it
    # Read as the web app reads a body: no more than server.max_body_bytes (a log file or
    # /dev/zero named by mistake is not read whole); a larger one is its 413.
    limit = config.server.max_body_bytes
    body = payload.read(limit + 1)
    request = WebhookRequest(
        body=body,
        headers=header_map,
        query=query,
        received_at=utcnow(),
        content_type=header_map.get("content-type", "application/json"),
        method=method.upper(),
        path=parts.path or f"/webhooks/{name}",
    )
    try:
        if len(body) > limit:
            raise PayloadTooLargeError(
                f"the file is over the {limit}-byte limit of server.max_body_bytes: the web "
                "app would answer it 413 and take nothing from it"
            )
        report = describe_payload(adapters[name], request, verify=verify)
        # The payload's text is the sender's: nothing in it may drive the terminal (DEL and
        # C1 controls survive JSON's escaping).
        click.echo("\n".join(shown(line) for line in report.split("\n")))
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
@click.option("--limit", default=50, show_default=True, type=LIMIT)
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
        counts = listing.outbox_counts(conn, kinds=kinds or None)
    if as_json:
        click.echo(
            printable_json(
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
            generation = follow_up_generation(row.delivery_key)
            if generation:  # to the recipients that refused it for now
                what += f" (again, {generation})"
        else:
            what = f"{row.helpdesk}/{row.dialog_id} agent={row.agent_name or row.agent_id or '-'}"
        # Ids, names and errors come from webhooks and vendors' answers.
        line = f"#{row.id} {row.status:<9} {what} attempts={row.attempts}{unknown} {when}{error}"
        click.echo(shown(line))


def _requeued(replies: int, alerts: int) -> str:
    """What was requeued, by kind: "1 reply", "2 alert deliveries", "1 reply and 1 alert
    delivery", "nothing" (a count of replies alone read as if alerts were not looked at)."""
    said = [f"{replies} {'reply' if replies == 1 else 'replies'}"] if replies else []
    if alerts:
        said.append(f"{alerts} alert {'delivery' if alerts == 1 else 'deliveries'}")
    return " and ".join(said) or "nothing"


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=ROW_ID)
@click.option("--all-failed", is_flag=True, help="Requeue every failed reply and alert.")
@pass_state
def outbox_retry(state: State, ids: tuple[int, ...], all_failed: bool) -> None:
    """Requeue failed replies and alert deliveries (by id, or all of them) with a fresh
    attempt budget."""
    if not ids and not all_failed:
        raise click.UsageError("give reply ids, or --all-failed")
    if ids and all_failed:  # which was meant is the operator's to say: neither is dropped
        raise click.UsageError("give reply ids or --all-failed, not both")
    services = state.services()
    with services.engine.begin() as conn:
        if ids:  # what is requeued and what is said of the rest: one locked read of the rows
            requeued, statuses = listing.requeue_named(conn, services.clock(), ids)
        else:
            requeued, statuses = listing.requeue(conn, services.clock()), {}
        alerts = listing.alerts_among(conn, requeued)
        wake.notify_workers(conn)
    left = [i for i in dict.fromkeys(ids) if i not in requeued]
    # Only a failed delivery is requeued: a queued or sent one would go out twice.
    why = "; ".join(
        f"#{i} {statuses[i]}, not failed" if i in statuses else f"#{i} not found" for i in left
    )
    if left and not requeued:
        # None of the ids named could be requeued: a refusal, as `alerts handle 999` is
        # (exit 2); it said "requeued nothing" and exited 0, and a script went on.
        raise click.UsageError(shown(f"nothing requeued: {why}"))
    click.echo(f"requeued {_requeued(len(requeued) - alerts, alerts)}")
    if left:
        click.echo(shown(f"skipped {len(left)}: {why}"))
