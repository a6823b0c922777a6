"""The command line: outbox inspection and retry, worker --once, verify-token, init-db."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from csat_hook.app import create_app
from csat_hook.cli import main
from tests.helpers import generic_close


def invoke(tmp_path, *args, **env):
    db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    return CliRunner().invoke(
        main, list(args), env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": db, **env}
    )


def queue_one(tmp_path, dialog_id="42", agent_name="Anna Petrova", database_url=None):
    from csat_hook.config import load_config
    from csat_hook.services import build_services

    config = load_config(
        None,
        env={"DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'cli.sqlite3'}"},
        overrides={"helpdesks": {"dryrun": {"output": str(tmp_path / "d.jsonl")}}},
    )
    services = build_services(config)
    client = create_app(services=services).test_client()
    response = client.post(
        "/webhooks/dryrun",
        json=generic_close(dialog_id, agent_name=agent_name),
        headers={"X-Webhook-Token": "dev-insecure-dryrun-token"},
    )
    services.close()
    assert response.json["status"] == "queued"


def test_init_db_creates_the_schema(tmp_path):
    result = invoke(tmp_path, "init-db")
    assert result.exit_code == 0 and "database schema: empty →" in result.output
    assert (tmp_path / "cli.sqlite3").exists()


@pytest.mark.usefixtures("cli_database")
def test_outbox_lists_and_worker_once_delivers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    queue_one(tmp_path)
    listed = invoke(tmp_path, "outbox")
    assert listed.exit_code == 0 and "pending=1" in listed.output
    assert "dryrun/42 agent=Anna Petrova" in listed.output

    ran = invoke(tmp_path, "worker", "--once")
    assert ran.exit_code == 0 and "processed 1 replies" in ran.output

    data = json.loads(invoke(tmp_path, "outbox", "--json").output)
    assert data["counts"]["sent"] == 1 and data["replies"][0]["status"] == "sent"


@pytest.mark.usefixtures("cli_database")
@pytest.mark.parametrize(("given", "threads"), [([], 4), (["--threads", "2"], 2)])
def test_worker_once_delivers_on_the_threads_asked_for(tmp_path, monkeypatch, given, threads):
    # --threads was taken, shown in --help, and ignored by --once: one reply at a time.
    from csat_hook.outbox.worker import DeliveryWorker

    monkeypatch.chdir(tmp_path)
    queue_one(tmp_path)
    asked: list[int] = []
    real = DeliveryWorker.run_once

    def run_once(
        self: DeliveryWorker, limit: int = 100, threads: int = 1, stop: object = None
    ) -> int:
        asked.append(threads)
        return real(self, limit, threads, stop)  # type: ignore[arg-type]

    monkeypatch.setattr(DeliveryWorker, "run_once", run_once)
    ran = invoke(tmp_path, "worker", "--once", *given)
    assert ran.exit_code == 0 and "processed 1 replies" in ran.output
    assert asked == [threads]  # none given: delivery.concurrency (4), as --help says


@pytest.mark.parametrize("threads", ["1", "2"])
def test_worker_once_stopped_by_ctrl_c_finishes_what_it_sends_and_claims_no_more(
    tmp_path, monkeypatch, threads
):
    # Ctrl-C (SIGINT) during `worker --once`: with one thread, the KeyboardInterrupt broke
    # off the reply being sent (left "sending", its outcome unrecorded until its lease ran
    # out); with several, the threads went on claiming every due reply, then "Aborted!".
    import signal

    import sqlalchemy as sa

    from csat_hook.db.schema import outbox
    from csat_hook.helpdesks.dryrun import DryRunHelpdesk

    monkeypatch.chdir(tmp_path)
    for dialog in ("41", "42", "43", "44", "45"):
        queue_one(tmp_path, dialog_id=dialog)
    real = DryRunHelpdesk.send_reply

    def send_reply(self, reply):
        os.kill(os.getpid(), signal.SIGINT)  # the operator's Ctrl-C, while a reply goes out
        return real(self, reply)

    monkeypatch.setattr(DryRunHelpdesk, "send_reply", send_reply)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ran = invoke(tmp_path, "worker", "--once", "--threads", threads)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(outbox.c.status)).scalars().all()
    engine.dispose()
    sent = statuses.count("sent")
    assert ran.exit_code == 0, ran.output
    assert 1 <= sent <= int(threads)
    assert statuses.count("pending") == 5 - sent  # the rest stay queued for the next run
    assert f"processed {sent} replies" in ran.stdout
    assert "stopped" in ran.stderr


def test_outbox_retry_requires_ids_or_all(tmp_path):
    result = invoke(tmp_path, "outbox", "retry")
    assert result.exit_code == 2 and "--all-failed" in result.output


def test_outbox_retry_with_ids_and_all_failed_is_refused_and_requeues_nothing(
    tmp_path, migrated_url, disposed
):
    # Both given, --all-failed was dropped without a word: "requeued 0 replies" while
    # failed ones stayed failed.
    failed, pending = failed_and_pending(tmp_path, migrated_url)

    result = invoke(
        tmp_path, "outbox", "retry", str(pending), "--all-failed", DATABASE_URL=migrated_url
    )

    assert result.exit_code == 2, result.output
    assert "give reply ids or --all-failed, not both" in result.output
    assert statuses(migrated_url) == {failed: "failed", pending: "pending"}


@pytest.mark.usefixtures("cli_database")
def test_outbox_retry_requeues_failed_replies(tmp_path):
    queue_one(tmp_path)
    import sqlalchemy as sa

    from csat_hook.db.schema import outbox

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(sa.update(outbox).values(status="failed", last_error="HTTP 400"))
    engine.dispose()
    result = invoke(tmp_path, "outbox", "retry", "--all-failed")
    assert result.exit_code == 0 and "requeued 1 reply" in result.output
    assert "pending=1" in invoke(tmp_path, "outbox").output


@pytest.mark.usefixtures("cli_database")
def test_outbox_retry_says_what_it_requeued_alert_deliveries_included(tmp_path):
    # An alert delivery requeued was said to be a reply ("requeued 2 replies").
    import sqlalchemy as sa

    from csat_hook.db.schema import outbox

    for dialog_id in ("41", "42", "43"):
        queue_one(tmp_path, dialog_id=dialog_id)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    with engine.begin() as conn:
        _reply, *alerts = conn.execute(sa.select(outbox.c.id).order_by(outbox.c.id)).scalars()
        conn.execute(sa.update(outbox).values(status="failed"))
        as_alerts = sa.update(outbox).where(outbox.c.id.in_(alerts))
        conn.execute(as_alerts.values(kind="alert", survey_id=None, destination="team-slack"))
    engine.dispose()

    one = invoke(tmp_path, "outbox", "retry", str(alerts[0]))
    assert one.output == "requeued 1 alert delivery\n"
    rest = invoke(tmp_path, "outbox", "retry", "--all-failed")
    assert rest.output == "requeued 1 reply and 1 alert delivery\n"


@pytest.fixture
def disposed(monkeypatch):
    """The engines the commands build, disposed after the test: a command leaves its pool to
    the process's exit, and here a later test would see the PostgreSQL connections garbage
    collected open (a ResourceWarning)."""
    from csat_hook import services as module

    built = []
    real = module.build_services

    def build(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(module, "build_services", build)
    yield
    for services in built:
        services.close()


def failed_and_pending(tmp_path, database_url):
    """Two queued replies, the first one failed: their ids."""
    import sqlalchemy as sa

    from csat_hook.db.schema import outbox

    queue_one(tmp_path, dialog_id="42", database_url=database_url)
    queue_one(tmp_path, dialog_id="43", database_url=database_url)
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        failed, pending = conn.execute(sa.select(outbox.c.id).order_by(outbox.c.id)).scalars()
        conn.execute(sa.update(outbox).where(outbox.c.id == failed).values(status="failed"))
    engine.dispose()
    return failed, pending


def statuses(database_url):
    import sqlalchemy as sa

    from csat_hook.db.schema import outbox

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.id, outbox.c.status)).all()
    engine.dispose()
    return dict(rows)


def test_outbox_retry_names_the_ids_it_did_not_requeue_and_why(tmp_path, migrated_url, disposed):
    failed, pending = failed_and_pending(tmp_path, migrated_url)

    result = invoke(
        tmp_path,
        *("outbox", "retry", str(failed), str(pending), "999", "999"),
        DATABASE_URL=migrated_url,
    )

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "requeued 1 reply",
        f"skipped 2: #{pending} pending, not failed; #999 not found",
    ]
    assert statuses(migrated_url) == {failed: "pending", pending: "pending"}
    everything = invoke(tmp_path, "outbox", "retry", "--all-failed", DATABASE_URL=migrated_url)
    assert everything.output == "requeued nothing\n"  # nothing named, nothing skipped
    # None of the ids named requeued: refused with the reason, as `alerts handle 999` is (it
    # said "requeued nothing" and exited 0, so a script went on as if it had worked).
    only_skipped = invoke(tmp_path, "outbox", "retry", "999", DATABASE_URL=migrated_url)
    assert only_skipped.exit_code == 2, only_skipped.output
    assert "Error: nothing requeued: #999 not found" in only_skipped.output
    assert "requeued nothing" not in only_skipped.output
    not_failed = invoke(tmp_path, "outbox", "retry", str(pending), "998", DATABASE_URL=migrated_url)
    assert not_failed.exit_code == 2, not_failed.output
    assert (
        f"Error: nothing requeued: #{pending} pending, not failed; #998 not found"
        in not_failed.output
    )


def test_outbox_retry_all_failed_requeues_more_replies_than_a_statement_takes_parameters(
    tmp_path, migrated_url, disposed
):
    # After a long outage every reply may have failed: their surveys were requeued in one
    # IN list, past the 65,535 parameters PostgreSQL takes in a statement (SQLite takes
    # 250,000). PostgreSQL refused it and nothing was requeued; SQLite requeued them all.
    from datetime import UTC
    from datetime import datetime

    import sqlalchemy as sa

    from csat_hook.db.schema import outbox
    from csat_hook.db.schema import surveys

    count = 65_600
    at = datetime(2026, 11, 20, tzinfo=UTC)
    # The rows are made by the database (INSERT ... SELECT over 1..count), not sent one by
    # one from here: 65,600 rows twice through executemany took most of the test's time.
    numbers = sa.select(sa.literal(1).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(sa.select(numbers.c.n + 1).where(numbers.c.n < count))
    n = numbers.c.n
    dialog = sa.literal("D-") + sa.cast(n, sa.String)
    moment = sa.literal(at, surveys.c.created_at.type)
    timestamps = ("next_attempt_at", "created_at", "updated_at")
    engine = sa.create_engine(migrated_url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(surveys).from_select(
                ["id", "helpdesk", "dialog_id", "status", "created_at"],
                sa.select(n, sa.literal("dryrun"), dialog, sa.literal("failed"), moment),
            )
        )
        conn.execute(
            sa.insert(outbox).from_select(
                [*("survey_id", "helpdesk", "dialog_id", "context", "status"), *timestamps],
                sa.select(
                    n,
                    sa.literal("dryrun"),
                    dialog,
                    sa.literal({}, outbox.c.context.type),
                    sa.literal("failed"),
                    moment,
                    moment,
                    moment,
                ),
            )
        )
        failed = sa.select(sa.func.count()).where(outbox.c.status == "failed")
        assert conn.execute(failed).scalar_one() == count  # more than a statement takes
    result = invoke(tmp_path, "outbox", "retry", "--all-failed", DATABASE_URL=migrated_url)
    assert (result.exit_code, result.output) == (0, f"requeued {count} replies\n")
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).select_from(surveys).where(surveys.c.status != "queued")
        ).scalar_one()
    engine.dispose()
    assert left == 0


def test_outbox_retry_reports_the_statuses_it_acted_on_while_rows_change(
    tmp_path, migrated_url, disposed
):
    # A named row that moved between the requeue and a later read of the skipped ids' statuses
    # was reported as "#2 failed, not failed". Now one locked read decides and reports: another
    # transaction changing a named row waits for the retry to end (here: gives up at once).
    import sqlalchemy as sa

    from csat_hook.db.schema import outbox

    if not migrated_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: no other transaction writes during the retry")
    failed, pending = failed_and_pending(tmp_path, migrated_url)
    other = sa.create_engine(migrated_url)
    interfered: list[str] = []

    def fail_the_pending_one(_conn, _cursor, statement, *_args):
        if interfered or not statement.startswith("UPDATE outbox"):
            return
        interfered.append("tried")
        try:
            with other.begin() as conn:
                conn.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
                conn.execute(
                    sa.update(outbox).where(outbox.c.id == pending).values(status="failed")
                )
            interfered.append("committed")
        except sa.exc.DBAPIError:
            interfered.append("waited for the retry")

    sa.event.listen(sa.engine.Engine, "after_cursor_execute", fail_the_pending_one)
    try:
        result = invoke(
            tmp_path, "outbox", "retry", str(failed), str(pending), DATABASE_URL=migrated_url
        )
    finally:
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", fail_the_pending_one)
        other.dispose()

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "requeued 1 reply",
        f"skipped 1: #{pending} pending, not failed",
    ]
    assert interfered == ["tried", "waited for the retry"]
    assert statuses(migrated_url) == {failed: "pending", pending: "pending"}


def test_verify_token_reports_valid_and_forged(tmp_path):
    link = invoke(tmp_path, "link", "--agent", "Anna", "--agent-id", "7", "--ticket", "9").output
    token = link.strip().rsplit("entry.1000004=", 1)[1]
    good = invoke(tmp_path, "verify-token", token)
    assert good.exit_code == 0 and json.loads(good.output)["dialog_id"] == "9"
    forged = invoke(tmp_path, "verify-token", token[:-2] + "AA")
    assert forged.exit_code == 1 and "invalid" in forged.output


@pytest.mark.usefixtures("cli_database")
def test_outbox_shows_an_unknown_outcome_and_how_it_was_settled(tmp_path, monkeypatch):
    import sqlalchemy as sa

    from csat_hook.clock import utcnow
    from csat_hook.db.schema import outbox
    from csat_hook.db.schema import surveys

    monkeypatch.chdir(tmp_path)
    queue_one(tmp_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    with engine.begin() as conn:  # an earlier attempt wrote the reply, then its worker died
        conn.execute(sa.update(outbox).values(uncertain_since=sa.func.current_timestamp()))
        token = conn.execute(sa.select(surveys.c.token)).scalar_one()
    engine.dispose()
    output = tmp_path / "var" / "dry-run-replies.jsonl"  # the embedded default's
    output.parent.mkdir()
    line = {"helpdesk": "dryrun", "dialog_id": "42", "text": f"Rate us: https://f/?t={token}"}
    line |= {"idempotency_key": "csat-hook-1", "at": utcnow().isoformat()}
    output.write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert "attempts=0 outcome-unknown" in invoke(tmp_path, "outbox").output

    assert "processed 1 replies" in invoke(tmp_path, "worker", "--once").output

    listed = invoke(tmp_path, "outbox").output
    assert "sent=1" in listed and "outcome-unknown" not in listed
    # The dry run reads its output back: the reply was found there, not written again.
    assert "last error: found in the dialog after an unknown outcome" in listed
    assert len(output.read_text(encoding="utf-8").splitlines()) == 1
    data = json.loads(invoke(tmp_path, "outbox", "--json").output)
    assert data["replies"][0]["uncertain_since"] is not None


def test_a_database_that_cannot_be_reached_is_a_message_not_a_traceback(tmp_path):
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://csat:Pa55-w0rd@127.0.0.1:{port}/csat"
    for command in (["outbox"], ["sync"], ["db", "current"], ["worker", "--once"]):
        result = invoke(tmp_path, *command, DATABASE_URL=url)

        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit), result.exception
        assert (
            "cannot connect to the database: connection failed: connection to server at "
            f'"127.0.0.1", port {port} failed: Connection refused' in result.output
        )
        assert "Pa55-w0rd" not in result.output


def test_a_sqlite_file_that_cannot_be_created_names_the_key(tmp_path):
    (tmp_path / "a-file").write_text("")
    url = f"sqlite:///{tmp_path / 'a-file' / 'csat.sqlite3'}"
    for command in (["outbox"], ["sync"], ["db", "upgrade"]):
        result = invoke(tmp_path, *command, DATABASE_URL=url)

        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit), result.exception
        assert "database.url: cannot create the SQLite file" in result.output
        assert "(Not a directory)" in result.output


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["serve"], {"PORT": "abc"}, "PORT"),  # a Procfile platform's port, set wrong
        (["serve"], {"PORT": "70000"}, "PORT"),
        # int() reads other scripts' digits and underscores: these bound port 8090.
        (["serve"], {"PORT": "٨٠٩٠"}, "PORT"),
        (["serve"], {"PORT": "8_090"}, "PORT"),
        (["check-config"], {"CSAT_HOOK_CONFIG": "."}, "CSAT_HOOK_CONFIG"),  # a folder
    ],
)
def test_a_bad_value_from_the_environment_names_the_variable(tmp_path, args, env, named):
    # It was said as '--port' (or '--config'), which the operator never typed.
    result = invoke(tmp_path, *args, **env)

    assert result.exit_code == 2, result.output
    assert f"Invalid value for {named} (environment variable" in result.output
    assert "'--port'" not in result.output and "'--config'" not in result.output


@pytest.mark.parametrize("value", ["", "  "])
def test_a_port_variable_set_but_empty_is_refused_naming_it(tmp_path, monkeypatch, value):
    # PORT= (a platform's template left blank) ran on server.port without a word, where
    # DATABASE_URL= and CSAT_HOOK_CONFIG= are refused.
    from csat_hook.cli import run

    started: list[object] = []
    monkeypatch.setattr(run, "run_server", lambda *a, **k: started.append(a))
    result = invoke(tmp_path, "serve", PORT=value)
    assert result.exit_code == 2, result.output
    assert "PORT (environment variable, for --port) is set but empty" in result.output
    assert started == []
    assert invoke(tmp_path, "serve", "--port", "0", PORT=value).exit_code == 0  # typed: wins
    assert invoke(tmp_path, "serve", PORT=" 0 ").exit_code == 0


@pytest.mark.parametrize("host", ["", "0.0.0.0:9000"])
def test_serve_refuses_a_host_option_that_is_no_interface(tmp_path, host):
    result = invoke(tmp_path, "serve", "--host", host)

    assert result.exit_code == 2, result.output
    assert "Invalid value for '--host'" in result.output


def test_a_bad_option_typed_is_still_named_as_typed(tmp_path):
    result = invoke(tmp_path, "serve", "--port", "abc", PORT="8000")

    assert result.exit_code == 2, result.output
    assert "Invalid value for '--port'" in result.output and "PORT (" not in result.output


def test_a_file_that_is_not_a_sqlite_database_is_refused_and_left_as_it_was(tmp_path):
    # database.url named a file of something else (a config, a dump): it was chmod 0600 and
    # then the open failed ("file is not a database", exit 1): its owner's file, changed.
    other = tmp_path / "notes.txt"
    other.write_text("not a database\n")
    other.chmod(0o644)
    for command in (["outbox"], ["sync"], ["db", "upgrade"]):
        result = invoke(tmp_path, *command, DATABASE_URL=f"sqlite:///{other}")

        assert result.exit_code == 2, result.output
        assert isinstance(result.exception, SystemExit), result.exception
        assert f"database.url: {other} is not a SQLite database" in result.output
        assert stat.S_IMODE(other.stat().st_mode) == 0o644
        assert other.read_text() == "not a database\n"
        assert not Path(f"{other}-wal").exists() and not Path(f"{other}-journal").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["outbox", "--limit", "-1"],  # SQLite: no limit at all; PostgreSQL: a traceback
        ["outbox", "--limit", str(10**20)],
        ["alerts", "--limit", "0"],
        ["outbox", "retry", str(2**63)],  # more than a row id holds: a traceback
        ["serve", "--port", "70000"],  # OverflowError from bind()
    ],
)
def test_a_number_out_of_range_is_a_usage_error(tmp_path, args):
    result = invoke(tmp_path, *args)

    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"Invalid value for '{args[-2] if args[-2].startswith('--') else '[IDS]...'}'" in (
        result.output
    )


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        # Each ran on, doing nothing useful: no delivery thread; a web process count of 0
        # read as "the default"; a sync every second.
        ("worker", "threads", "0"),
        ("serve", "workers", "0"),
        ("sync", "interval", "nan"),
        ("sync", "interval", "-5"),
    ],
)
def test_a_long_running_command_refuses_a_count_or_interval_that_makes_no_sense(
    command, option, value
):
    ctx = click.Context(main)
    found = main.get_command(ctx, command)
    assert found is not None
    param = next(p for p in found.params if p.name == option)
    with pytest.raises(click.BadParameter):
        param.type.convert(value, param, ctx)


@pytest.mark.usefixtures("cli_database")
def test_the_outbox_listing_prints_control_characters_escaped(tmp_path, monkeypatch):
    # An agent's display name and a dialog id come from the helpdesk: a line break forged a
    # second listing line, an ESC drove the operator's terminal (OSC 0 sets its title).
    monkeypatch.chdir(tmp_path)
    queue_one(
        tmp_path,
        dialog_id="D-7\n#99 sent      dryrun/1 agent=x",
        agent_name="Anna\x1b]0;pwned\x07\rBob",
    )

    listed = invoke(tmp_path, "outbox").output

    lines = listed.splitlines()
    assert len(lines) == 2, listed
    assert lines[1].startswith(
        r"#1 pending   dryrun/D-7\u000a#99 sent      dryrun/1 agent=x "
        r"agent=Anna\u001b]0;pwned\u0007\u000dBob "
    ), listed
    assert "\x1b" not in listed and "\r" not in listed


# Line breaks Python and JavaScript see (U+2028, NEL), a C1 CSI (drives a terminal), a
# bidirectional override and isolate, DEL: json.dumps(ensure_ascii=False) left them raw.
UNPRINTABLE = "\u2028\x85\x9b2J\u202e\u2066\x7f"


@pytest.mark.usefixtures("cli_database")
def test_json_outputs_escape_every_unprintable_character(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    queue_one(tmp_path, dialog_id=f"D-{UNPRINTABLE}", agent_name=f"Анна {UNPRINTABLE}")
    link = invoke(tmp_path, "link", "--agent", f"Анна {UNPRINTABLE}", "--ticket", "9").output
    token = link.strip().rsplit("entry.1000004=", 1)[1]

    for output in (
        invoke(tmp_path, "outbox", "--json").output,
        invoke(tmp_path, "verify-token", token).output,
    ):
        assert output.endswith("\n") and output[:-1].isprintable(), ascii(output)
        assert "Анна" in output  # printable text stays readable
        assert "\\u2028" in output and "\\u009b" in output and "\\u202e" in output

    listed = json.loads(invoke(tmp_path, "outbox", "--json").output)["replies"][0]
    assert listed["dialog_id"] == f"D-{UNPRINTABLE}"
    assert json.loads(invoke(tmp_path, "verify-token", token).output)["agent"] == (
        f"Анна {UNPRINTABLE}"
    )


@pytest.mark.parametrize("ticket", ["", "   ", "\t"])
def test_link_refuses_a_blank_ticket_naming_it(tmp_path, ticket):
    # A webhook's blank dialog id is refused; `link` signed a reference to the dialog "",
    # whose answers were credited to no conversation.
    result = invoke(tmp_path, "link", "--agent", "Anna", "--ticket", ticket)
    assert result.exit_code == 2 and "--ticket" in result.output and "entry." not in result.output


@pytest.mark.parametrize("helpdesk", ["", "  "])
def test_link_refuses_a_blank_helpdesk_rather_than_taking_the_first(tmp_path, helpdesk):
    # `--helpdesk "$HD"` with HD unset signed a reference to the first configured helpdesk,
    # another one than meant, without a word.
    result = invoke(tmp_path, "link", "--agent", "A", "--ticket", "1", "--helpdesk", helpdesk)
    assert result.exit_code == 2 and "--helpdesk" in result.output and "entry." not in result.output


def test_link_binds_the_ticket_and_agent_id_as_a_webhook_would_trimmed(tmp_path):
    # A webhook's " 9 " is dialog "9" (ids are trimmed): the reference named dialog " 9 ",
    # another conversation, which a note or a lookup could not reach.
    link = invoke(tmp_path, "link", "--agent", "Anna", "--agent-id", " 7 ", "--ticket", " 9 ")
    token = link.output.strip().rsplit("entry.1000004=", 1)[1]
    bound = json.loads(invoke(tmp_path, "verify-token", token).output)
    assert (bound["dialog_id"], bound["agent"]) == ("9", "7")


def test_serve_forks_its_web_processes_with_no_database_connection_open(tmp_path, monkeypatch):
    # A connection open in the parent when gunicorn forks lets a child's SQLite believe it
    # holds locks it never took; the parent closing it later deleted the WAL under the child,
    # and every close committed since was lost. What ``serve`` built to check the database
    # must be closed before the server starts.
    import gc
    import os

    from csat_hook.cli import run

    db = tmp_path / "cli.sqlite3"
    seen: list[list[str]] = []

    def open_files() -> list[str]:
        fds = os.listdir("/proc/self/fd")
        paths = (os.path.realpath(f"/proc/self/fd/{fd}") for fd in fds)
        return sorted(p for p in paths if p.startswith(str(db)))

    monkeypatch.setattr(run, "run_server", lambda *a, **k: seen.append(open_files()))
    gc.disable()  # no collection may close a leaked connection before the server starts
    try:
        result = invoke(tmp_path, "serve", "--port", "0")  # whatever listens on 8000
    finally:
        gc.enable()

    assert result.exit_code == 0, result.output
    assert db.exists()
    assert seen == [[]]


def test_serve_on_a_port_in_use_says_so_at_once_without_starting_gunicorn(tmp_path, monkeypatch):
    # gunicorn retried for about 5 s, then said "Connection in use" in its own words.
    from csat_hook.cli import run

    started: list[object] = []
    monkeypatch.setattr(run, "run_server", lambda *a, **k: started.append(a))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(port))

    assert result.exit_code == 2, result.output
    assert f"127.0.0.1:{port}" in result.output and "in use" in result.output
    assert started == []


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine cannot bind ::1 (no IPv6)")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_serve_on_an_ipv6_address_starts_and_says_a_taken_port_is_in_use(
    tmp_path, monkeypatch, host
):
    # server.host and --host give the address bracketed ("[::1]", as gunicorn binds it), and
    # the check before gunicorn asked getaddrinfo for "[::1]": "cannot serve: [[::1]]:8093:
    # the host cannot be resolved", exit 2, on every IPv6 address.
    from csat_hook.cli import run

    started: list[tuple[object, ...]] = []
    monkeypatch.setattr(run, "run_server", lambda *a, **k: started.append((k["host"], k["port"])))
    with socket.socket(socket.AF_INET6) as free:
        free.bind(("::1", 0))
        port = free.getsockname()[1]
    result = invoke(tmp_path, "serve", "--host", host, "--port", str(port))
    assert result.exit_code == 0, result.output
    assert started == [("[::1]", port)]

    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(tmp_path, "serve", "--host", host, "--port", str(port))
    assert result.exit_code == 2, result.output
    assert f"cannot serve: [::1]:{port} is in use" in result.output, result.output
    assert len(started) == 1


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("--access-logfile '-", " cannot be split as a shell splits words (No closing quotation)"),
        ("--log-level", ": argument --log-level: expected one argument"),
        ("--log-level nonsense", ": --log-level 'nonsense' is none of gunicorn's levels"),
        ("--workers many", ": argument -w/--workers: invalid int value: 'many'"),
    ],
)
def test_serve_with_gunicorn_args_it_cannot_read_says_so_without_starting_gunicorn(
    tmp_path, monkeypatch, given, said
):
    # An unclosed quote ended gunicorn's start in a traceback; an option without its value
    # printed gunicorn's usage twice while the server ran without it; "--log-level nonsense"
    # was read as info without a word.
    from csat_hook.cli import run

    started: list[object] = []
    monkeypatch.setattr(run, "run_server", lambda *a, **k: started.append(a))
    result = invoke(tmp_path, "serve", "--port", "0", GUNICORN_CMD_ARGS=given)
    assert result.exit_code == 2, result.output
    assert f"Error: cannot serve: GUNICORN_CMD_ARGS{said}" in result.output, result.output
    assert "Traceback" not in result.output and started == []

    ok = invoke(tmp_path, "serve", "--port", "0", GUNICORN_CMD_ARGS="--log-level DEBUG")
    assert ok.exit_code == 0, ok.output
    assert len(started) == 1


def test_serve_on_a_host_that_does_not_resolve_says_so_without_starting_gunicorn(
    tmp_path, monkeypatch
):
    from csat_hook import server
    from csat_hook.cli import run

    def unresolvable(*_args: object, **_kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    started: list[object] = []
    monkeypatch.setattr(run, "run_server", lambda *a, **k: started.append(a))
    monkeypatch.setattr(server.socket, "getaddrinfo", unresolvable)
    result = invoke(tmp_path, "serve", "--host", "web.example.invalid", "--port", "8123")

    assert result.exit_code == 2, result.output
    assert "web.example.invalid:8123" in result.output and "cannot be resolved" in result.output
    assert started == []


@pytest.mark.parametrize("header", ["X-Webhook-Token=S3CRET-TOKEN", ": S3CRET-TOKEN"])
def test_inspect_payload_refuses_a_header_without_its_name_and_colon(tmp_path, header):
    # `-H X-Webhook-Token=...` was taken as a header of that whole name with no value:
    # --verify then said the token was missing, the one the operator had just given.
    payload = tmp_path / "p.json"
    payload.write_text('{"event": "dialog.closed", "dialog": {"id": "1"}}')
    result = invoke(
        tmp_path, "inspect-payload", "--helpdesk", "dryrun", "--verify", "-H", header, str(payload)
    )

    assert result.exit_code == 2, result.output
    assert "header 1: write it 'Name: value'" in result.output
    assert "S3CRET" not in result.output


@pytest.mark.parametrize(
    "url",
    [
        "https://[2001:db8::1/webhooks/dryrun?token=S3CRET-TOKEN",
        "https://desk.example.com]/webhooks/dryrun?token=S3CRET-TOKEN",
    ],
)
def test_inspect_payload_refuses_a_url_it_cannot_read_naming_the_option(tmp_path, url):
    # A --url copied with a bracket missing or left over ended in urllib's ValueError
    # traceback.
    payload = tmp_path / "p.json"
    payload.write_text('{"event": "dialog.closed", "dialog": {"id": "1"}}')
    result = invoke(tmp_path, "inspect-payload", "--helpdesk", "dryrun", "--url", url, str(payload))

    assert result.exit_code == 2, result.output
    assert "--url" in result.output and "is not a URL" in result.output


@pytest.mark.parametrize(
    "url", ["not a url", "csat.example.com/webhooks/dryrun?token=S3CRET", "webhooks/dryrun"]
)
def test_inspect_payload_refuses_a_url_that_is_no_url_nor_path(tmp_path, url):
    # Taken as the request's path: the check said the token was missing, or an HMAC over
    # {path} did not match, about a path no request has.
    payload = tmp_path / "p.json"
    payload.write_text('{"event": "dialog.closed", "dialog": {"id": "1"}}')
    result = invoke(
        tmp_path, "inspect-payload", "--helpdesk", "dryrun", "--verify", "--url", url, str(payload)
    )

    assert result.exit_code == 2, result.output
    assert "--url" in result.output and "is neither a URL nor a path" in result.output
    assert "/webhooks/dryrun?…" in result.output
    assert "S3CRET" not in result.output
    assert "S3CRET" not in result.output


def test_sync_interval_without_periodic_is_bad_usage_not_one_run(tmp_path):
    # `csat-hook sync --interval 60` ran once and exited 0: a clock process that said
    # nothing of never running again.
    result = invoke(tmp_path, "sync", "--interval", "60")

    assert result.exit_code == 2, result.output
    assert "--interval" in result.output and "--periodic" in result.output
    assert not (tmp_path / "cli.sqlite3").exists()


def test_a_sqlite_file_refused_names_database_url_as_the_variable_that_gave_it(tmp_path):
    # With $DATABASE_URL set (it wins over the file), "database.url: cannot create the SQLite
    # file …" sent the operator to a config file whose database.url was fine.
    folder = tmp_path / "a-folder"
    folder.mkdir()
    other = tmp_path / "notes.txt"
    other.write_text("not a database\n")
    for url, said in [
        (folder, f"database.url: cannot create the SQLite file {folder} "),
        (other, f"database.url: {other} is not a SQLite database"),
    ]:
        result = invoke(tmp_path, "db", "upgrade", DATABASE_URL=f"sqlite:///{url}")

        assert result.exit_code == 2, result.output
        assert said in result.output
        assert "(the URL given by $DATABASE_URL, which wins over the file)" in result.output
    assert "point $DATABASE_URL at" in result.output
    (tmp_path / "c.yaml").write_text(f"database:\n  url: sqlite:///{other}\n")
    from_file = invoke(tmp_path, "-c", str(tmp_path / "c.yaml"), "db", "upgrade", DATABASE_URL=None)
    assert from_file.exit_code == 2, from_file.output
    assert "$DATABASE_URL" not in from_file.output and "point database.url at" in from_file.output


def test_a_config_file_that_cannot_be_read_names_the_variable_that_gave_its_path(tmp_path):
    # CSAT_HOOK_CONFIG=/etc/csat-hook.yml (a typo) said "cannot read config file
    # /etc/csat-hook.yml", naming no variable: the operator looked for a --config never typed.
    missing = tmp_path / "csat-hook.yml"
    result = invoke(tmp_path, "check-config", CSAT_HOOK_CONFIG=str(missing))

    assert result.exit_code == 2, result.output
    assert f"cannot read config file {missing}: No such file or directory" in result.output
    assert "(the path given by $CSAT_HOOK_CONFIG, the environment variable)" in result.output
    typed = invoke(tmp_path, "-c", str(missing), "check-config")
    assert typed.exit_code == 2 and "CSAT_HOOK_CONFIG" not in typed.output, typed.output


def test_a_command_it_tells_to_run_carries_the_config_it_was_given(tmp_path):
    # `csat-hook -c prod.yaml db current` said "run `csat-hook db upgrade`": run as told, that
    # read the built-in defaults (another database). So did erase's dry run and dev demo.
    database = tmp_path / "prod db.sqlite3"
    config = tmp_path / "prod conf.yaml"
    config.write_text(f"database:\n  url: sqlite:///{database}\n")
    told = f"`csat-hook -c '{config}' db upgrade`"
    current = invoke(tmp_path, "-c", str(config), "db", "current", DATABASE_URL=None)
    assert current.exit_code == 0 and told in current.output, current.output
    dry = invoke(tmp_path, "-c", str(config), "erase", "--email", "a@b.example", DATABASE_URL=None)
    assert dry.exit_code == 2 and told in dry.output, dry.output
    from_env = invoke(tmp_path, "db", "current", DATABASE_URL=None, CSAT_HOOK_CONFIG=str(config))
    assert "`csat-hook db upgrade`" in from_env.output, from_env.output  # still set then


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["outbox", "--limit", "x"], "'x' is not a whole number"),
        (["outbox", "retry", "abc"], "'abc' is not a whole number"),
        (["alerts", "--limit", "x"], "'x' is not a whole number"),
        (["worker", "--threads", "x"], "'x' is not a whole number"),
        (["serve", "--workers", "x"], "'x' is not a whole number"),
        (["dev", "fake-helpdesk", "--port", "x"], "'x' is not a whole number"),
        (["dev", "demo", "--seed", "x"], "'x' is not a whole number"),
        (["sync", "--periodic", "--interval", "x"], "'x' is not a number of seconds"),
    ],
)
def test_a_number_option_given_a_word_says_what_it_wants(tmp_path, args, said):
    # click's own words were "'x' is not a valid integer range." and "'x' is not a valid
    # seconds.": the type's name, not what to type (--port already said "a whole number").
    result = invoke(tmp_path, *args)

    assert result.exit_code == 2, result.output
    assert said in result.output and "not a valid" not in result.output, result.output


def test_verify_token_reads_a_link_and_names_punctuation_glued_to_the_reference(tmp_path):
    # The operator pastes what the customer has: a link, or an unverified answer's reference
    # ending with the "." or ")" a chat app took in from "Rate us: {link}.". Both were
    # "malformed survey reference", saying nothing of why.
    link = invoke(tmp_path, "link", "--agent", "Anna", "--agent-id", "7", "--ticket", "9").output
    token = link.strip().rsplit("entry.1000004=", 1)[1]
    for given in (link.strip(), f"https://csat.example.com/csat/s/{token}/5"):
        valid = invoke(tmp_path, "verify-token", given)
        assert valid.exit_code == 0, valid.output
        assert json.loads(valid.output)["dialog_id"] == "9"
    for glued, tail in ((token + ").", "').'"), (link.strip() + ".", "'.'")):
        said = invoke(tmp_path, "verify-token", glued)
        assert said.exit_code == 1
        assert f"invalid: malformed survey reference; without the {tail} after it" in said.output
        assert "it is valid" in said.output
    edited = invoke(tmp_path, "verify-token", token[:-2] + "AA.")
    assert edited.exit_code == 1 and "it is valid" not in edited.output
    none = invoke(tmp_path, "verify-token", "https://example.com/x")
    assert none.exit_code == 1 and "no survey reference in that link" in none.output
