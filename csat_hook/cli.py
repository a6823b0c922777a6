"""The ``csat-hook`` command.

Exit codes: 0 success; 1 the command ran and failed (a sync error, failed replies found by
``outbox --check``...); 2 bad usage or an invalid configuration (the message names the key);
3 ``sync`` only: another sync holds the lock, nothing was done (safe to ignore under cron).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml

from csat_hook import __version__
from csat_hook.config import Config
from csat_hook.config import insecure_settings
from csat_hook.config import load_config
from csat_hook.config import masked_dump
from csat_hook.errors import ConfigError
from csat_hook.errors import CsatHookError
from csat_hook.logs import setup_logging


class ConfigProblem(click.ClickException):
    exit_code = 2


class State:
    """Lazily loaded configuration shared by the subcommands."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.path)
            except ConfigError as exc:
                raise ConfigProblem(exc.message) from None
            setup_logging(self._config.logging.level, self._config.logging.format)
        return self._config

    def services(self) -> Any:
        from csat_hook.services import build_services

        try:
            return build_services(self.config)
        except CsatHookError as exc:
            raise ConfigProblem(exc.message) from None


pass_state = click.make_pass_decorator(State)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", envvar="CSAT_HOOK_CONFIG",
              type=click.Path(dir_okay=False), help="YAML config file [env: CSAT_HOOK_CONFIG]; "
              "without it the built-in defaults run (SQLite, dry-run helpdesk).")
@click.version_option(__version__, prog_name="csat-hook")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Survey customers when a helpdesk dialog closes; per-agent CSAT in Google Sheets."""
    ctx.obj = State(config_path)


# --- running ---------------------------------------------------------------------------------


@main.command()
@click.option("--host", help="Interface to bind [default: server.host].")
@click.option("--port", type=int, envvar="PORT", help="Port [env: PORT; default: server.port].")
@click.option("--workers", type=int, help="Web processes [default: server.workers].")
@pass_state
def serve(state: State, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the web app and the delivery worker together (the embedded default)."""
    from csat_hook.serve import run_server

    config = state.config
    state.services()  # fail fast on a bad database URL, create the schema once
    _warn_insecure(config)
    run_server(config, host=host or config.server.host, port=port or config.server.port,
               workers=workers or config.server.workers, with_delivery=True,
               sync_command=_sync_child_command(state) if config.sync.run_in_serve else None)


def _sync_child_command(state: State) -> list[str]:
    """The periodic sync that ``serve`` runs beside the web processes."""
    command = [sys.executable, "-m", "csat_hook"]
    if state.path:
        command += ["--config", str(Path(state.path).resolve())]
    return [*command, "sync", "--periodic", "--keep-waiting"]


@main.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (for cron).")
@click.option("--threads", type=int, help="Delivery threads [default: delivery.concurrency].")
@pass_state
def worker(state: State, once: bool, threads: int | None) -> None:
    """Run the delivery worker alone (Procfile ``worker:``)."""
    from csat_hook.wake import PostgresListener
    from csat_hook.worker import DeliveryWorker

    services = state.services()
    delivery = DeliveryWorker(services)
    if once:
        count = delivery.run_once(limit=10_000)
        click.echo(f"processed {count} replies")
        return
    listener = None
    if services.engine.dialect.name == "postgresql":
        listener = PostgresListener(services.config.database.url, services.waker)
        listener.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    delivery.start(threads)
    stop.wait()
    click.echo("stopping: finishing replies in flight", err=True)
    delivery.stop()
    if listener:
        listener.stop()


# --- configuration and schema ----------------------------------------------------------------


@main.command("check-config")
@pass_state
def check_config(state: State) -> None:
    """Validate the configuration and print it with secrets masked."""
    config = state.config
    click.echo(f"# effective configuration from {config.source}")
    click.echo(yaml.safe_dump(masked_dump(config), sort_keys=False, allow_unicode=True))
    for key in insecure_settings(config):
        click.echo(f"warning: {key} still holds the shipped development secret", err=True)
    click.echo("configuration OK", err=True)


@main.group()
def db() -> None:
    """Database schema (migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Create or migrate the schema (Procfile ``release:``; also done on every start)."""
    from csat_hook.db import make_engine
    from csat_hook.migrate import upgrade

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
    from csat_hook.db import make_engine
    from csat_hook.migrate import current_revision
    from csat_hook.migrate import head_revision

    engine = make_engine(state.config.database.url, pool_size=1)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    click.echo(f"current: {current or 'none'}  latest: {head}"
               + ("" if current == head else "  (run `csat-hook db upgrade`)"))


@main.command("init-db", hidden=True)
@click.pass_context
def init_db(ctx: click.Context) -> None:
    """Same as ``db upgrade``."""
    ctx.invoke(db_upgrade)


def _warn_insecure(config: Config) -> None:
    keys = insecure_settings(config)
    if keys:
        click.echo("warning: development secrets in use (fine locally, never in production): "
                   + ", ".join(keys), err=True)


# --- survey links ----------------------------------------------------------------------------


@main.command()
@click.option("--agent", "agent_name", required=True, help="Agent name shown in the form.")
@click.option("--agent-id", default="", help="Agent id (bound into the token).")
@click.option("--agent-email", default="")
@click.option("--ticket", required=True, help="Ticket / dialog id.")
@click.option("--helpdesk", default=None, help="Helpdesk instance [default: the first one].")
@click.option("--team", default="")
@pass_state
def link(state: State, agent_name: str, agent_id: str, agent_email: str, ticket: str,
         helpdesk: str | None, team: str) -> None:
    """Print a survey link, to try a form before going live."""
    from csat_hook import tokens
    from csat_hook.links import LinkValues
    from csat_hook.links import build_link

    config = state.config
    name = helpdesk or next(iter(config.helpdesks))
    if name not in config.helpdesks:
        raise click.BadParameter(f"no helpdesk named {name!r} in the configuration",
                                 param_hint="--helpdesk")
    agent_key = agent_id or agent_email.lower() or agent_name
    token = tokens.sign(config.token.secret.get_secret_value(),
                        tokens.SurveyRef(name, ticket, agent_key, datetime.now(UTC)))
    click.echo(build_link(config.survey.form, LinkValues(
        agent_name=agent_name, agent_id=agent_id, agent_email=agent_email, ticket=ticket,
        helpdesk=name, team=team, token=token)))


@main.command("form-fields")
@click.argument("prefilled_link")
def form_fields(prefilled_link: str) -> None:
    """Turn a link from the form's "Get pre-filled link" into config (survey.form).

    Type each field's role as its value before getting the link: agent_name, agent_id,
    agent_email, ticket, team, token.
    """
    from csat_hook.errors import ConfigError as LinkError
    from csat_hook.links import parse_prefilled_link

    try:
        parsed = parse_prefilled_link(prefilled_link)
    except LinkError as exc:
        raise click.BadParameter(exc.message, param_hint="PREFILLED_LINK") from None
    snippet = {"survey": {"form": {"kind": "google_forms", "url": parsed.url,
                                   "fields": parsed.roles}}}
    click.echo(yaml.safe_dump(snippet, sort_keys=False, allow_unicode=True), nl=False)
    for entry, value in parsed.unmatched.items():
        click.echo(f"# {entry}: sample value {value!r} matched no role "
                   "(agent_name, agent_id, agent_email, ticket, team, token)")
    if "token" not in parsed.roles:
        click.echo("# warning: no token field found; answers cannot be credited without it",
                   err=True)


@main.command("verify-token")
@click.argument("token")
@pass_state
def verify_token(state: State, token: str) -> None:
    """Check a survey reference and print what it binds (exit 1 when invalid)."""
    from csat_hook import tokens
    from csat_hook.errors import TokenError

    try:
        ref = tokens.verify(token, state.config.token.all_secrets())
    except TokenError as exc:
        click.echo(f"invalid: {exc.message}", err=True)
        sys.exit(1)
    click.echo(json.dumps({"helpdesk": ref.helpdesk, "dialog_id": ref.dialog_id,
                           "agent": ref.agent, "issued_at": ref.issued_at.isoformat()},
                          ensure_ascii=False))


# --- operator tools --------------------------------------------------------------------------


@main.command("inspect-payload")
@click.option("--helpdesk", "name", required=True, help="Configured helpdesk instance.")
@click.option("-H", "--header", "headers", multiple=True, help="'Name: value' (repeatable).")
@click.option("--verify", is_flag=True, help="Also check the signature/token with the headers.")
@click.argument("payload", type=click.File("rb"))
@pass_state
def inspect_payload(state: State, name: str, headers: tuple[str, ...], verify: bool,
                    payload: Any) -> None:
    """Show what a saved webhook payload contains and what the mapping takes from it."""
    from csat_hook.helpdesks import build_helpdesks
    from csat_hook.http import HttpClient
    from csat_hook.http import utcnow
    from csat_hook.inspect import describe_payload
    from csat_hook.records import WebhookRequest

    config = state.config
    adapters = build_helpdesks(config.helpdesks, http=HttpClient(), clock=utcnow)
    if name not in adapters:
        raise click.BadParameter(f"no helpdesk named {name!r}; configured: "
                                 f"{', '.join(adapters)}", param_hint="--helpdesk")
    header_map = {}
    for item in headers:
        key, _, value = item.partition(":")
        header_map[key.strip().lower()] = value.strip()
    request = WebhookRequest(body=payload.read(), headers=header_map, query={},
                             received_at=utcnow(),
                             content_type=header_map.get("content-type", "application/json"))
    try:
        click.echo(describe_payload(adapters[name], request, verify=verify))
    except CsatHookError as exc:
        click.echo(f"error ({exc.code}): {exc.message}", err=True)
        sys.exit(1)


@main.group(invoke_without_command=True)
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["pending", "sending", "sent", "failed", "cancelled"]),
              help="Only these statuses (repeatable).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def outbox(ctx: click.Context, statuses: tuple[str, ...], limit: int, as_json: bool) -> None:
    """List queued, sent and failed replies (newest first) with their last error."""
    if ctx.invoked_subcommand is not None:
        return
    from csat_hook import store

    services = ctx.find_object(State).services()  # type: ignore[union-attr]
    with services.engine.connect() as conn:
        rows = store.list_outbox(conn, statuses=statuses or None, limit=limit)
        counts = store.outbox_counts(conn)
    if as_json:
        click.echo(json.dumps({"counts": counts, "replies": [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
            for r in rows]}, ensure_ascii=False))
        return
    click.echo("  ".join(f"{k}={v}" for k, v in counts.items()))
    for row in rows:
        when = (row.sent_at or row.next_attempt_at).strftime("%Y-%m-%d %H:%M:%S")
        error = f"  last error: {row.last_error}" if row.last_error else ""
        click.echo(f"#{row.id} {row.status:<9} {row.helpdesk}/{row.dialog_id} "
                   f"agent={row.agent_name or row.agent_id or '-'} attempts={row.attempts} "
                   f"{when}{error}")


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Requeue every failed reply.")
@pass_state
def outbox_retry(state: State, ids: tuple[int, ...], all_failed: bool) -> None:
    """Requeue failed replies (by id, or all of them) with a fresh attempt budget."""
    from csat_hook import store

    if not ids and not all_failed:
        raise click.UsageError("give reply ids, or --all-failed")
    services = state.services()
    with services.engine.begin() as conn:
        count = store.requeue(conn, services.clock(), ids=list(ids) or None)
        store.notify_workers(conn)
    click.echo(f"requeued {count} replies")


# --- the sync --------------------------------------------------------------------------------

SYNC_EXIT_CODES = {"ok": 0, "failed": 1, "config_error": 2, "locked": 3}


@main.command()
@click.option("--dry-run", is_flag=True,
              help="Read and compute, but store nothing and write no output.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--full", is_flag=True,
              help="Forms API: ignore the watermark and read every response again.")
@click.option("--periodic", is_flag=True,
              help="Run every sync.interval_seconds until stopped (Procfile clock: process).")
@click.option("--interval", type=float, help="Seconds between periodic runs "
              "[default: sync.interval_seconds].")
@click.option("--keep-waiting", is_flag=True, hidden=True,
              help="Periodic: keep running when the results source is not there yet (serve).")
@pass_state
def sync(state: State, dry_run: bool, as_json: bool, full: bool, periodic: bool,
         interval: float | None, keep_waiting: bool) -> None:
    """Ingest form answers, compute per-agent CSAT and write the reports.

    Exit codes: 0 ok; 1 failed (source, Google or database error); 2 invalid configuration
    (or the results file is missing); 3 another sync holds the lock.
    """
    from csat_hook.sync.runner import SyncRunner
    from csat_hook.sync.runner import make_sync_engine

    config = state.config
    try:
        engine = make_sync_engine(config)
    except CsatHookError as exc:
        raise ConfigProblem(exc.message) from None
    runner = SyncRunner(config, engine)
    try:
        code = _sync_loop(runner, config, dry_run=dry_run, full=full, as_json=as_json,
                          periodic=periodic, interval=interval, keep_waiting=keep_waiting)
    finally:
        engine.dispose()
    sys.exit(code)


def _sync_loop(runner: Any, config: Config, *, dry_run: bool, full: bool, as_json: bool,
               periodic: bool, interval: float | None, keep_waiting: bool = False) -> int:
    """One run (its exit code), or runs every interval until SIGTERM/SIGINT (then 0)."""
    if not periodic:
        summary = runner.run(dry_run=dry_run, full=full)
        _print_sync(summary, as_json)
        return SYNC_EXIT_CODES.get(summary.status, 1)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    every = interval or config.sync.interval_seconds
    while not stop.is_set():
        started = datetime.now(UTC)
        summary = runner.run(dry_run=dry_run, full=full)
        _print_sync(summary, as_json)
        if summary.status == "config_error" and not keep_waiting:
            return 2  # retrying cannot fix the configuration
        elapsed = (datetime.now(UTC) - started).total_seconds()
        stop.wait(max(1.0, every - elapsed))
    return 0


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "-"


def _print_sync(summary: Any, as_json: bool) -> None:
    data = summary.as_dict()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, sort_keys=False))
        return
    if summary.status != "ok":
        click.echo(f"sync {summary.status}: {summary.error}", err=True)
        return
    click.echo(f"sync ok{' (dry run: nothing stored or written)' if summary.dry_run else ''}: "
               f"source {summary.source}, {summary.rows_read} rows read "
               f"({summary.blank_rows} blank, {summary.unchanged} unchanged), "
               f"{summary.new} new, {summary.updated} updated, "
               f"{data['unverified_total']} unverified ({_reasons(summary.unverified)}), "
               f"{data['skipped_total']} skipped ({_reasons(summary.skipped)})")
    for row in summary.skipped_rows:
        click.echo(f"  skipped {row['row']}: {row['reason']} ({row['detail']})")
    for row in summary.unverified_rows:
        click.echo(f"  unverified {row['row']}: {row['reason']} reference")
    for warning in summary.warnings:
        click.echo(f"  warning: {warning}")
    click.echo("requests: " + " ".join(f"{k}={v}" for k, v in summary.requests.items()))
    for output in summary.outputs:
        click.echo("output: " + ", ".join(f"{k}={v}" for k, v in output.items()))


@main.group()
def dev() -> None:
    """Tools for trying csat-hook locally."""


@dev.command("fake-helpdesk")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8099, show_default=True)
@click.option("--fail-first", default=0, show_default=True,
              help="Answer the first N API calls with --fail-status.")
@click.option("--fail-status", default=503, show_default=True)
@click.option("--fail-ratio", default=0.0, show_default=True,
              help="Fail this share of API calls at random with --fail-status.")
@click.option("--idempotent", is_flag=True, help="Honour Idempotency-Key like a vendor that does.")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Append requests as JSON lines.")
def fake_helpdesk(host: str, port: int, fail_first: int, fail_status: int, fail_ratio: float,
                  idempotent: bool, log_file: str | None) -> None:
    """A local fake helpdesk API that prints every reply it receives."""
    from csat_hook.devtools.fake_helpdesk import FakeHelpdesk

    fake = FakeHelpdesk(host=host, port=port, log_file=Path(log_file) if log_file else None,
                        echo=True, fail_ratio=fail_ratio, fail_status=fail_status,
                        idempotent=idempotent)
    if fail_first:
        fake.fail_next(fail_first, fail_status)
    click.echo(f"fake helpdesk on http://{host}:{fake.port}  (GET /_fake/requests lists calls)",
               err=True)
    fake.serve_forever()


@dev.command("fake-google")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@click.option("--service-account-out", type=click.Path(dir_okay=False), required=True,
              help="Write a service-account JSON (fresh key, token_uri = this fake) here.")
@click.option("--responses-csv", type=click.Path(exists=True, dir_okay=False),
              help="Seed a responses tab from a Forms CSV export.")
@click.option("--spreadsheet-id", default="fake-responses", show_default=True)
@click.option("--tab", "tab_title", default="Form Responses 1", show_default=True)
@click.option("--gid", default=0, show_default=True)
@click.option("--locale", default="en_US", show_default=True)
@click.option("--time-zone", default="Europe/Moscow", show_default=True)
def fake_google(host: str, port: int, service_account_out: str, responses_csv: str | None,
                spreadsheet_id: str, tab_title: str, gid: int, locale: str,
                time_zone: str) -> None:
    """A local fake of the Sheets, Forms and OAuth token APIs, to try the sync."""
    from csat_hook.devtools.fake_google import FakeGoogle
    from csat_hook.devtools.fake_google import seed_from_csv

    fake = FakeGoogle(host=host, port=port)
    Path(service_account_out).parent.mkdir(parents=True, exist_ok=True)
    Path(service_account_out).write_text(json.dumps(fake.service_account_info(), indent=2),
                                         encoding="utf-8")
    fake.add_spreadsheet(spreadsheet_id, locale=locale, time_zone=time_zone)
    if responses_csv:
        rows = seed_from_csv(fake, spreadsheet_id, tab_title, gid, Path(responses_csv))
        click.echo(f"seeded {rows} responses into {tab_title!r} (gid {gid})", err=True)
    click.echo(f"fake Google on {fake.url}: set google.sheets_base_url and forms_base_url to it, "
               f"google.service_account_file to {service_account_out}; spreadsheet "
               f"{spreadsheet_id!r}. GET {fake.url}/_fake/requests lists calls.", err=True)
    fake.serve_forever()
