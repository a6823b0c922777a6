"""``csat-hook alerts``: the latest alerts and where they went, marking them handled, and a
test message to one destination."""

from __future__ import annotations

import secrets
import sys
from datetime import datetime
from typing import Any

import click

from csat_hook.alerts import store
from csat_hook.alerts.records import AGENT
from csat_hook.alerts.records import ANSWER
from csat_hook.alerts.records import DIGEST_KIND
from csat_hook.alerts.records import OVERFLOW_KIND
from csat_hook.alerts.report import delivery_text
from csat_hook.cli.base import LIMIT
from csat_hook.cli.base import State
from csat_hook.cli.base import pass_state
from csat_hook.cli.base import shown
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks import takes_notes
from csat_hook.logs import printable_json
from csat_hook.notify.records import LOW_RATING
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import headline
from csat_hook.outbox.store import follow_up_generation

KINDS = (ANSWER, AGENT, DIGEST_KIND, OVERFLOW_KIND)


@click.group(invoke_without_command=True)
@click.option("--limit", default=30, show_default=True, type=LIMIT)
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Only these (repeatable)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def alerts(ctx: click.Context, limit: int, kinds: tuple[str, ...], as_json: bool) -> None:
    """List the latest alerts (newest first), each with its deliveries and "handled" mark.

    Alerts are raised by the sync; their deliveries are outbox rows (`csat-hook outbox`
    shows them too, and `outbox retry` requeues failed ones)."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(State)
    assert state is not None
    services = state.services()
    with services.engine.connect() as conn:
        rows = store.listed_alerts(conn, kinds or KINDS, limit)
        deliveries = store.deliveries_of(conn, [r.id for r in rows])
    if as_json:
        click.echo(
            printable_json(
                [
                    {
                        "id": row.id,
                        "ref": row.ref,
                        "kind": row.kind,
                        "rule": row.rule,
                        "summary": headline(AlertMessage.from_payload(row.payload)),
                        "created_at": row.created_at.isoformat(),
                        "handled": row.handled,
                        # answer_improved, comment_removed, rule_changed, rule_removed:
                        # withdrawn before it went out
                        "cancelled": row.cancel_reason,
                        "deliveries": [
                            {
                                "outbox_id": d.id,
                                "destination": d.destination,
                                # 0, or which follow-up to recipients that refused for now
                                "again": follow_up_generation(d.delivery_key),
                                "status": d.status,
                                "attempts": d.attempts,
                                "last_error": d.last_error,
                                "sent_at": d.sent_at.isoformat() if d.sent_at else None,
                            }
                            for d in deliveries.get(row.id, [])
                        ],
                    }
                    for row in rows
                ],
            )
        )
        return
    if not rows:
        # Nothing printed at all left "no bad rating yet" and "alerts are off" alike. A
        # digest is an alert too: with digests alone, some will be raised.
        off = (
            ""
            if services.config.alerts.active
            else (
                ": none will be raised, the configuration has no alerts.rules or "
                "alerts.digests (docs/alerts.md)"
            )
        )
        click.echo(f"no alerts yet{off}")
        return
    for row in rows:
        summary = headline(AlertMessage.from_payload(row.payload))
        handled = f"  handled: {row.handled}" if row.handled else ""
        cancelled = f"  cancelled: {row.cancel_reason}" if row.cancel_reason else ""
        # Agent names and ticket ids come from webhooks, "handled" from the sheet.
        line = (
            f"#{row.id} {row.created_at:%Y-%m-%d %H:%M} {row.rule}: {summary}{cancelled}{handled}"
        )
        click.echo(shown(line))
        for delivery in deliveries.get(row.id, []):
            click.echo(shown(f"    #{delivery.id} {delivery_text(delivery)}"))


@alerts.command("handle")
@click.argument("idents", nargs=-1, required=True)
@click.option("--by", "by", default="yes", show_default=True, help="Who handled it, or how.")
@click.option("--undo", is_flag=True, help="Mark them not handled.")
@pass_state
def handle(state: State, idents: tuple[str, ...], by: str, undo: bool) -> None:
    """Mark alerts (by number or reference) handled; the Alerts tab shows it at the next sync.

    The same "Handled" column can be filled in the Alerts tab of the spreadsheet."""
    if not undo and store.clean_handled(by) is None:
        # Stored as "not handled": it would clear a mark and say "marked".
        raise click.BadParameter(
            "blank: give who handled it, or how (or use --undo)", param_hint="--by"
        )
    services = state.services()
    with services.engine.begin() as conn:
        ids = []
        for ident in idents:
            row = store.alert_by_ref_or_id(conn, ident)
            if row is None:
                raise click.UsageError(f"no alert {ident!r}")
            ids.append(row.id)
        count = store.set_handled(conn, ids, None if undo else by, services.clock())
    click.echo(f"{'unmarked' if undo else 'marked'} {count} alert{'' if count == 1 else 's'}")


@alerts.command("test")
@click.argument("destination")
@click.option("--helpdesk", help="For a helpdesk note: the configured helpdesk.")
@click.option("--ticket", help="For a helpdesk note: the conversation to note.")
@pass_state
def test(state: State, destination: str, helpdesk: str | None, ticket: str | None) -> None:
    """Send a sample alert to one destination now (not through the queue) and say what it
    answered: a way to check a webhook URL, a bot token or SMTP settings."""
    services = state.services()
    target = services.destinations.get(destination)
    if target is None:
        known = ", ".join(sorted(services.destinations)) or "none configured"
        raise click.UsageError(f"no destination {destination!r} (alerts.destinations: {known})")
    if target.kind == "helpdesk_note":
        if not (helpdesk and ticket):
            raise click.UsageError("a note goes into a conversation: give --helpdesk and --ticket")
        _check_note_helpdesk(services, destination, target, helpdesk)
    now = services.clock()
    message = sample_message(now, helpdesk=helpdesk, ticket=ticket)
    try:
        result = target.send(message)
    except DeliveryError as exc:
        # A request whose answer never came may have been posted: "not sent" had the operator
        # send another to see (Slack and Telegram cannot drop the copy).
        said = "may have been sent (its answer was lost)" if exc.outcome_unknown else "not sent"
        click.echo(f"{destination}: {said}: {exc.message}", err=True)
        sys.exit(1)
    click.echo(
        f"{destination}: sent"
        + (f" ({result.external_id})" if result.external_id else "")
        + (f"; {result.note}" if result.note else "")
        # Only the queue sends again to those refused for now; a test is sent once.
        + ("; a test is not sent again to those refused for now" if result.retry_to else "")
    )


def _check_note_helpdesk(services: Any, name: str, target: Any, helpdesk: str) -> None:
    """Refuse (bad usage) a --helpdesk the note destination ``name`` would never post to:
    not configured, left out of its ``helpdesks``, or one that takes no notes."""
    configured = services.config.helpdesks
    allowed = list(target.options.helpdesks) or sorted(configured)
    can = [h for h in allowed if h in configured and takes_notes(configured[h])]
    said = ", ".join(can) or "none"
    if helpdesk not in configured:
        raise click.BadParameter(
            f"no helpdesk {helpdesk!r}; {name} can go to: {said}", param_hint="--helpdesk"
        )
    if helpdesk not in allowed:
        raise click.BadParameter(
            f"{helpdesk!r} is not in alerts.destinations.{name}.helpdesks; it can go to: {said}",
            param_hint="--helpdesk",
        )
    if not takes_notes(configured[helpdesk]):
        raise click.BadParameter(
            f"{helpdesk!r} cannot take internal notes (for the generic adapter, configure its "
            f"note request); {name} can go to: {said}",
            param_hint="--helpdesk",
        )


def sample_message(now: datetime, *, helpdesk: str | None, ticket: str | None) -> AlertMessage:
    """A recognisable test alert (a low rating with a comment)."""
    details: dict[str, Any] = {}
    if helpdesk and ticket:
        details = {"helpdesk": helpdesk, "dialog_id": ticket}
    return AlertMessage(
        ref=f"csat-alert-test-{secrets.token_hex(6)}",
        event=LOW_RATING,
        rule="test",
        created_at=now.isoformat(),
        agent_name="Test Agent",
        rating=1,
        comment="This is a test alert sent by `csat-hook alerts test`.",
        submitted_at=now.isoformat(),
        dialog_id=details.get("dialog_id", "TEST-1"),
        helpdesk=details.get("helpdesk"),
    )
