"""``csat-hook dev``: local fakes of a helpdesk API and of Google, for trying things."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from csat_hook.cli.base import ConfigProblem
from csat_hook.cli.base import Digits
from csat_hook.cli.base import State
from csat_hook.cli.base import command_line
from csat_hook.cli.base import pass_state
from csat_hook.cli.base import unknown_helpdesk
from csat_hook.cli.sync import SYNC_EXIT_CODES
from csat_hook.cli.sync import print_sync
from csat_hook.db.engine import ENV_DATABASE_URL
from csat_hook.devtools import demo as demo_data
from csat_hook.devtools.discovery import DiscoveryMissingError
from csat_hook.devtools.fake_google import FakeGoogle
from csat_hook.devtools.fake_google import SeedError
from csat_hook.devtools.fake_google import seed_from_csv
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.errors import CsatHookError
from csat_hook.files import private_dir
from csat_hook.files import replace_private
from csat_hook.sync.runner import SyncRunner
from csat_hook.sync.runner import make_sync_engine

# A port to listen on (0: any free one); beyond it bind() raised OverflowError, a traceback.
PORT = Digits(0, 65535)


@click.group()
def dev() -> None:
    """Tools for trying csat-hook locally."""


@contextlib.contextmanager
def _starting(what: str, host: str, port: int) -> Iterator[None]:
    """A fake that cannot start says why in one line (exit 1), not in a traceback: a port in
    use, or the Google fakes without google-api-python-client (the ``test`` extra)."""
    try:
        yield
    except DiscoveryMissingError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(
            f"{what} cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(choose another --port; 0 takes any free one)"
        ) from None


@dev.command("fake-helpdesk")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8099, show_default=True, type=PORT)
@click.option(
    "--fail-first",
    default=0,
    show_default=True,
    help="Answer the first N API calls with --fail-status.",
)
@click.option("--fail-status", default=503, show_default=True)
@click.option(
    "--fail-ratio",
    default=0.0,
    show_default=True,
    help="Fail this share of API calls at random with --fail-status.",
)
@click.option("--idempotent", is_flag=True, help="Honour Idempotency-Key like a vendor that does.")
@click.option(
    "--slow-ratio",
    default=0.0,
    show_default=True,
    help="Answer this share of replies only after --slow-seconds (the reply is still stored).",
)
@click.option("--slow-seconds", default=20.0, show_default=True)
@click.option(
    "--store-late",
    is_flag=True,
    help="Store a slow reply at the end of its delay rather than on arrival.",
)
@click.option(
    "--drop-ratio",
    default=0.0,
    show_default=True,
    help="Store this share of replies, then close the connection without answering.",
)
@click.option("--log-file", type=click.Path(dir_okay=False), help="Append requests as JSON lines.")
def fake_helpdesk(
    host: str,
    port: int,
    fail_first: int,
    fail_status: int,
    fail_ratio: float,
    idempotent: bool,
    slow_ratio: float,
    slow_seconds: float,
    store_late: bool,
    drop_ratio: float,
    log_file: str | None,
) -> None:
    """A local fake helpdesk API that prints every reply it receives.

    GET on a path ending in /messages lists the replies stored there (the generic adapter's
    `lookup` can read it: messages, text, id, created_at).
    """
    if log_file:
        _check_appendable(log_file)
    with _starting("the fake helpdesk", host, port):
        fake = FakeHelpdesk(
            host=host,
            port=port,
            log_file=Path(log_file) if log_file else None,
            echo=True,
            fail_ratio=fail_ratio,
            fail_status=fail_status,
            idempotent=idempotent,
            slow_ratio=slow_ratio,
            slow_seconds=slow_seconds,
            store_late=store_late,
            drop_ratio=drop_ratio,
        )
    if fail_first:
        fake.fail_next(fail_first, fail_status)
    click.echo(
        f"fake helpdesk on http://{host}:{fake.port}  (GET /_fake/requests lists calls)", err=True
    )
    fake.serve_forever()


def _check_appendable(path: str) -> None:
    """Refuse (bad usage) a --log-file that cannot be appended to: it was found at the first
    request, each one then failing in the fake's thread while it went on serving."""
    try:
        with Path(path).open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise click.BadParameter(
            f"cannot append to {path}: {exc.strerror or exc}", param_hint="--log-file"
        ) from None


@dev.command("fake-google")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=PORT)
@click.option(
    "--service-account-out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Write a service-account JSON (fresh key, token_uri = this fake) here.",
)
@click.option(
    "--responses-csv",
    type=click.Path(exists=True, dir_okay=False),
    help="Seed a responses tab from a Forms CSV export.",
)
@click.option("--spreadsheet-id", default="fake-responses", show_default=True)
@click.option("--tab", "tab_title", default="Form Responses 1", show_default=True)
@click.option("--gid", default=0, show_default=True)
@click.option("--locale", default="en_US", show_default=True)
@click.option(
    "--time-zone",
    default="Europe/Moscow",
    show_default=True,
    help="The spreadsheet's time zone; --responses-csv timestamps without a zone are in it.",
)
def fake_google(
    host: str,
    port: int,
    service_account_out: str,
    responses_csv: str | None,
    spreadsheet_id: str,
    tab_title: str,
    gid: int,
    locale: str,
    time_zone: str,
) -> None:
    """A local fake of the Sheets, Forms and OAuth token APIs, to try the sync."""
    with _starting("the fake Google API", host, port):
        fake = FakeGoogle(host=host, port=port)
    try:
        # A private key, if a throwaway one: owner-only, as any secret file (it was 0644).
        private_dir(Path(service_account_out).parent)
        info = json.dumps(fake.service_account_info(), indent=2)
        replace_private(service_account_out, info.encode("utf-8"))
    except OSError as exc:  # a folder that is a file, no permission, a read-only disk
        fake.server.server_close()
        raise click.ClickException(
            f"--service-account-out: cannot write {service_account_out}: {exc.strerror or exc}"
        ) from None
    fake.add_spreadsheet(spreadsheet_id, locale=locale, time_zone=time_zone)
    if responses_csv:
        try:
            rows = seed_from_csv(fake, spreadsheet_id, tab_title, gid, Path(responses_csv))
        except SeedError as exc:
            fake.server.server_close()
            raise click.ClickException(str(exc)) from None
        click.echo(f"seeded {rows} responses into {tab_title!r} (gid {gid})", err=True)
    click.echo(
        f"fake Google on {fake.url}: set google.sheets_base_url and forms_base_url to it, "
        f"google.service_account_file to {service_account_out}; spreadsheet "
        f"{spreadsheet_id!r}. GET {fake.url}/_fake/requests lists calls.",
        err=True,
    )
    fake.serve_forever()


@dev.command("demo")
@click.option(
    "--helpdesk", help="The configured helpdesk the surveys belong to [default: the first]."
)
@click.option(
    "--seed",
    type=Digits(min=0),
    default=12,
    show_default=True,
    help="Another seed, other agents' luck.",
)
@pass_state
def demo(state: State, helpdesk: str | None, seed: int) -> None:
    """Seed the configured database with 60 days of surveys by eight named agents, write the
    matching Forms export at results.csv.path, then run the sync: a realistic report in one
    minute (e.g. csat-hook -c examples/demo.yaml dev demo). A database that already holds
    other surveys is refused: give the demo its own (examples/demo.yaml's var/demo/)."""
    config = state.config
    if config.results.source != "csv":
        raise ConfigProblem("results.source: the demo writes a CSV export; set it to csv")
    name = next(iter(config.helpdesks), None) if helpdesk is None else helpdesk.strip()
    if helpdesk is not None and name not in config.helpdesks:
        raise unknown_helpdesk(helpdesk, config.helpdesks)
    if name is None:
        raise ConfigProblem("helpdesks: the demo needs a configured helpdesk (e.g. dryrun)")
    try:
        engine = make_sync_engine(config)
    except CsatHookError as exc:
        raise ConfigProblem(exc.message) from None
    try:
        with engine.begin() as conn:
            if demo_data.seeded(conn, name):
                # With this configuration: a bare `csat-hook sync`, run as told, read the
                # built-in defaults (another database, no export: exit 2).
                raise ConfigProblem(
                    "database.url already holds the demo's surveys; run "
                    f"{command_line(state, 'sync')} to write the report again, or remove the "
                    "database to start over"
                )
            if demo_data.others(conn, name):
                # $DATABASE_URL (a platform's shell sets it) or a production config: its
                # made-up surveys and answers would join the service's own figures.
                raise ConfigProblem(
                    "database.url already holds surveys the demo did not make: the demo seeds "
                    "a database of its own (examples/demo.yaml: var/demo/csat.sqlite3), never "
                    "one in use"
                    + (
                        "; $DATABASE_URL is set and wins over the file's database.url: "
                        "unset it for the demo"
                        if os.environ.get(ENV_DATABASE_URL)
                        else ""
                    )
                )
            nps_titles = [t for t in config.results.columns.nps if t.strip()]
            made = demo_data.build(
                now=datetime.now(UTC),
                helpdesk=name,
                secret=config.token.all_secrets()[0],
                tz=ZoneInfo(config.metrics.timezone),
                with_nps=bool(nps_titles),
                seed=seed,
            )
            stored = demo_data.store_surveys(conn, made)
        export = Path(config.results.csv.path)
        demo_data.write_export(export, made, nps_titles[0] if nps_titles else None)
        click.echo(
            f"demo: {stored} surveys by {len(demo_data.AGENTS)} agents in {config.database.url}; "
            f"{made.answered} answers in {export} (and what real exports hold: a customer who "
            "changed their mind, a forged and a missing reference)",
            err=True,
        )
        summary = SyncRunner(config, engine).run()
        print_sync(summary, as_json=False)
    finally:
        engine.dispose()
    sys.exit(SYNC_EXIT_CODES.get(summary.status, 1))


@dev.command("fake-notify")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8098, show_default=True, type=PORT)
# The development values examples/alerts.yaml falls back to ("insecure": check-config says
# they are no real secrets, and never takes them for secrets written in the file).
@click.option(
    "--slack-path", default="/services/T0CSAT/B0ALERTS/devinsecurehook", show_default=True
)
@click.option(
    "--telegram-token", default="123456789:dev-insecure-bot-token-for-trying", show_default=True
)
@click.option("--telegram-chat", default="-1001234567890", show_default=True)
@click.option("--webhook-name", default="team", show_default=True)
@click.option(
    "--webhook-secret",
    default="whsec_" + "devinsecurewebhooksecretForTryingAlertsLocal",
    show_default=True,
)
def fake_notify(
    host: str,
    port: int,
    slack_path: str,
    telegram_token: str,
    telegram_chat: str,
    webhook_name: str,
    webhook_secret: str,
) -> None:
    """Local fakes of a Slack incoming webhook, the Telegram Bot API and a signed-webhook
    receiver, printing every message they take: point an `alerts.destinations` block at
    the URLs printed on start to try alerts without accounts.
    """
    with _starting("the fake Slack, Telegram and webhook receivers", host, port):
        fake = FakeNotify(host=host, port=port)
    slack = fake.slack_hook(slack_path)
    telegram = fake.telegram_bot(telegram_token, telegram_chat)
    hook = fake.webhook(webhook_name, webhook_secret)
    click.echo(
        f"fake Slack webhook:    {slack}\n"
        f"fake Telegram API:     {telegram}  (bot token {telegram_token}, chat {telegram_chat})\n"
        f"fake webhook receiver: {hook}  (secret {webhook_secret})",
        err=True,
    )
    fake.start()
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            received = fake.requests()
            for record in received[seen:]:
                if record.answered == 0:
                    break  # still being answered: printed on the next round
                seen += 1
                outcome = "taken" if record.accepted else f"refused ({record.answered})"
                if record.duplicate:
                    outcome = "duplicate webhook-id, ignored"
                click.echo(f"--- {record.service} {record.path}: {outcome}")
                click.echo(record.body.decode("utf-8", "replace"))
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
