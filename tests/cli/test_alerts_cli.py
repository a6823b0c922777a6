"""``csat-hook alerts`` (list, handle, test), the outbox listing of alert deliveries, secrets
masked by check-config, and secrets and customer text kept out of the logs."""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.config import load_config
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.devtools.fake_notify import Script
from csat_hook.logs import setup_logging
from csat_hook.services import build_services
from tests.alerts.conftest import changed
from tests.alerts.conftest import raise_now
from tests.notify.smtp_server import PASSWORD
from tests.notify.smtp_server import USER
from tests.notify.smtp_server import Mailbox
from tests.notify.smtp_server import start_server
from tests.outbox.test_worker import drain

SLACK_PATH = "/services/T0CSAT/B0ALERTS/Xk3y5ecretPathPart"
BOT_TOKEN = "123456789:AAH0secretBotTokenForTests_abcdefgh"
SMTP_PASSWORD = "smtp-password-never-shown"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"webhook-secret-never-shown-32by").decode()
COMMENT = "Customer secret comment: my card is 4111 1111 1111 1111"

# The configuration's database (write_config) at the current schema before each command:
# what these tests check is not the first start's migrations.
pytestmark = pytest.mark.usefixtures("cli_database")


@pytest.fixture
def fake() -> Any:
    server = FakeNotify().start()
    yield server
    server.stop()


def write_config(tmp_path: Path, fake: FakeNotify) -> Path:
    fake.slack_hook(SLACK_PATH)
    fake.telegram_bot(BOT_TOKEN, "-1001234567890")
    config = {
        "database": {"url": f"sqlite:///{tmp_path / 'cli.sqlite3'}"},
        "helpdesks": {"dryrun": {"output": str(tmp_path / "d.jsonl")}},
        "alerts": {
            "destinations": {
                "slack": {"kind": "slack", "webhook_url": "${SLACK_ALERTS_URL}"},
                "telegram": {
                    "kind": "telegram",
                    "bot_token": "${TELEGRAM_BOT_TOKEN}",
                    "chat_id": "-1001234567890",
                    "base_url": fake.url,
                },
                "managers": {
                    "kind": "email",
                    "host": "smtp.example.org",
                    "username": "alerts@example.org",
                    "password": "${SMTP_PASSWORD}",
                    "sender": "alerts@example.org",
                    "to": ["lead@example.org"],
                },
                "crm": {
                    "kind": "webhook",
                    "url": "https://crm.example/hooks",
                    "secret": "${ALERTS_WEBHOOK_SECRET}",
                },
                "note": {"kind": "helpdesk_note"},
            },
            "rules": [
                {"name": "low", "kind": "low_rating", "destinations": ["slack", "telegram", "note"]}
            ],
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def environment(fake: FakeNotify) -> dict[str, str]:
    return {
        "SLACK_ALERTS_URL": fake.url + SLACK_PATH,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "ALERTS_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }


def invoke(path: Path, fake: FakeNotify, *args: str) -> Any:
    env = {"CSAT_HOOK_CONFIG": str(path), **environment(fake), "DATABASE_URL": None}
    return CliRunner().invoke(main, list(args), env=env)


SECRETS = ("Xk3y5ecretPathPart", BOT_TOKEN, "AAH0secret", SMTP_PASSWORD, WEBHOOK_SECRET)


def test_check_config_masks_every_alert_secret(tmp_path, fake):
    result = invoke(write_config(tmp_path, fake), fake, "check-config")
    assert result.exit_code == 0, result.output
    assert "alerts:" in result.output and "managers:" in result.output
    assert not [s for s in SECRETS if s in result.output]


def test_alerts_test_sends_a_sample_and_says_what_was_answered(tmp_path, fake):
    path = write_config(tmp_path, fake)
    result = invoke(path, fake, "alerts", "test", "slack")
    assert result.exit_code == 0 and "slack: sent" in result.output
    assert "test alert" in json.dumps(fake.delivered("slack")[0].json())

    fake.script("slack", Script(status=404, body=b"no_service"))
    failed = invoke(path, fake, "alerts", "test", "slack")
    assert failed.exit_code == 1 and "no_service" in failed.output
    assert not [s for s in SECRETS if s in failed.output]

    unknown = invoke(path, fake, "alerts", "test", "pager")
    assert unknown.exit_code == 2 and "crm, managers, note, slack, telegram" in unknown.output

    noteless = invoke(path, fake, "alerts", "test", "note")
    assert noteless.exit_code == 2 and "--helpdesk and --ticket" in noteless.output
    noted = invoke(path, fake, "alerts", "test", "note", "--helpdesk", "dryrun", "--ticket", "T-9")
    assert noted.exit_code == 0 and "note: sent" in noted.output
    assert '"type": "note"' in (tmp_path / "d.jsonl").read_text(encoding="utf-8")


def test_alerts_test_of_a_note_names_a_helpdesk_it_cannot_go_to(tmp_path, fake):
    """A --helpdesk that is not configured, that the destination leaves out or that takes
    no notes is bad usage (exit 2) naming the option and what it can be; it was "not sent:
    helpdesk 'dryrun-x' is not configured any more" (exit 1), or sent where alerts never go."""
    path = write_config(tmp_path, fake)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["helpdesks"]["plain"] = {
        "kind": "generic",
        "auth": {"mode": "none"},
        "reply": {"url": "https://desk.example/{dialog_id}"},
    }
    config["alerts"]["destinations"]["dry-notes"] = {
        "kind": "helpdesk_note",
        "helpdesks": ["dryrun"],
    }
    path.write_text(yaml.safe_dump(config))

    unknown = invoke(
        path, fake, "alerts", "test", "note", "--helpdesk", "dryrun-x", "--ticket", "1"
    )
    assert unknown.exit_code == 2, unknown.output
    assert "--helpdesk" in unknown.output and "'dryrun-x'" in unknown.output
    assert "dryrun" in unknown.output and "any more" not in unknown.output

    noteless = invoke(path, fake, "alerts", "test", "note", "--helpdesk", "plain", "--ticket", "1")
    assert noteless.exit_code == 2, noteless.output
    assert "'plain'" in noteless.output and "cannot take internal notes" in noteless.output

    left_out = invoke(
        path, fake, "alerts", "test", "dry-notes", "--helpdesk", "plain", "--ticket", "1"
    )
    assert left_out.exit_code == 2, left_out.output
    assert "alerts.destinations.dry-notes.helpdesks" in left_out.output
    assert not (tmp_path / "d.jsonl").exists()

    noted = invoke(
        path, fake, "alerts", "test", "dry-notes", "--helpdesk", "dryrun", "--ticket", "T-9"
    )
    assert noted.exit_code == 0 and "dry-notes: sent" in noted.output, noted.output


def config_with_an_alert(
    tmp_path: Path, fake: FakeNotify, clock: Any, *, deliver: bool, **close: Any
) -> Path:
    """The config written, and one alert raised (2026-11-20 12:00) on a low rating of a
    dryrun dialog with COMMENT (and ``close``'s fields); with ``deliver``, its deliveries
    made. The config's path."""
    path = write_config(tmp_path, fake)
    clock.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    services = build_services(load_config(path, env=environment(fake)), clock=clock)
    try:
        raise_now(services, [changed(helpdesk="dryrun", comment=COMMENT, **close)])
        if deliver:
            drain(services.delivery_worker(), clock)
    finally:
        services.close()
    return path


def test_list_handle_and_the_outbox_listing(tmp_path, fake, clock):
    path = config_with_an_alert(tmp_path, fake, clock, deliver=True)

    listed = invoke(path, fake, "alerts")
    assert listed.exit_code == 0
    assert (
        "#1 " in listed.output
        and "low: Low rating 1/5 for Anna Petrova on ticket D-1001" in listed.output
    )
    assert "slack: sent" in listed.output and "note: sent" in listed.output
    as_json = json.loads(invoke(path, fake, "alerts", "--json").output)
    assert [d["destination"] for d in as_json[0]["deliveries"]] == ["slack", "telegram", "note"]

    assert (
        invoke(path, fake, "alerts", "handle", "1", "--by", "Anna").output.strip()
        == "marked 1 alert"
    )
    assert "handled: Anna" in invoke(path, fake, "alerts").output
    ref = as_json[0]["ref"]
    assert (
        invoke(path, fake, "alerts", "handle", ref, "--undo").output.strip() == "unmarked 1 alert"
    )
    assert "handled:" not in invoke(path, fake, "alerts").output
    assert invoke(path, fake, "alerts", "handle", "99").exit_code == 2

    outbox = invoke(path, fake, "outbox", "--kind", "alert")
    assert "alert #1 -> slack" in outbox.output and "alert #1 -> note" in outbox.output


def test_an_alert_withdrawn_before_it_went_out_is_listed_with_its_reason(tmp_path, fake, clock):
    path = config_with_an_alert(tmp_path, fake, clock, deliver=False)
    services = build_services(load_config(path, env=environment(fake)), clock=clock)
    try:
        raise_now(services, [changed(helpdesk="dryrun", rating=5, previous_rating=1)])
    finally:
        services.close()

    listed = invoke(path, fake, "alerts").output
    assert "Anna Petrova on ticket D-1001  cancelled: answer_improved" in listed
    assert "slack: cancelled (answer improved)" in listed
    [alert] = json.loads(invoke(path, fake, "alerts", "--json").output)
    assert alert["cancelled"] == "answer_improved"
    assert {d["status"] for d in alert["deliveries"]} == {"cancelled"}


def test_handle_refuses_what_it_cannot_store_or_find_with_a_message(tmp_path, fake, clock):
    path = config_with_an_alert(tmp_path, fake, clock, deliver=False)
    assert invoke(path, fake, "alerts", "handle", "1", "--by", "Anna").exit_code == 0

    # A blank --by (or one of only what the database cannot hold) marked nothing, cleared
    # Anna's mark, and said "marked 1 alerts".
    for blank in ("", "   ", "\x00"):
        refused = invoke(path, fake, "alerts", "handle", "1", "--by", blank)
        assert refused.exit_code == 2 and "--by" in refused.output
    assert "handled: Anna" in invoke(path, fake, "alerts").output

    # A reference with bytes that are not UTF-8 (a lone surrogate in argv) reached the
    # database, which cannot hold it: a traceback instead of "no alert".
    unknown = invoke(path, fake, "alerts", "handle", "csat-alert-\udcff")
    assert unknown.exit_code == 2 and "no alert" in unknown.output
    assert unknown.exception is None or isinstance(unknown.exception, SystemExit)


def test_no_secret_and_no_customer_text_in_the_logs(tmp_path, fake, clock):
    stream = io.StringIO()
    setup_logging("DEBUG", "text", stream=stream)
    fake.script(
        "slack",
        Script(status=500, body=b"rollup_error"),
        Script(status=404, body=b"no_service"),
    )
    fake.script(
        "telegram",
        Script(
            status=400,
            body={"ok": False, "error_code": 400, "description": f"Bad Request: {COMMENT}"},
        ),
    )
    try:
        config_with_an_alert(tmp_path, fake, clock, deliver=True, agent_name="Anna Secretname")
    finally:
        setup_logging("INFO", "text")
    logs = stream.getvalue()
    assert "delivery.failed" in logs and "destination=slack" in logs
    assert not [s for s in (*SECRETS, COMMENT, "4111", "Secretname") if s in logs]


def test_the_alerts_listing_prints_control_characters_escaped(tmp_path, fake, clock):
    # "Handled" is written by the team in the sheet's Alerts tab (or --by): an ESC in it
    # reached the operator's terminal as is (a clear-screen here).
    path = config_with_an_alert(tmp_path, fake, clock, deliver=False)
    invoke(path, fake, "alerts", "handle", "1", "--by", "Anna\x1b[2J\n#2 forged")

    listed = invoke(path, fake, "alerts").output

    assert r"handled: Anna\u001b[2J #2 forged" in listed  # the line break was stored as a space
    assert "\x1b" not in listed


def test_alerts_test_names_the_recipients_an_smtp_server_refused(tmp_path, fake):
    box = Mailbox(refuse_for_now={"team@example.org"})
    controller, ca_file = start_server(tmp_path / "smtp", box)
    path = write_config(tmp_path, fake)
    config = yaml.safe_load(path.read_text())
    config["alerts"]["destinations"]["managers"].update(
        host="localhost",
        port=controller.port,
        username=USER,
        ca_file=str(ca_file),
        to=["lead@example.org", "team@example.org"],
    )
    path.write_text(yaml.safe_dump(config))
    env = {
        "CSAT_HOOK_CONFIG": str(path),
        **environment(fake),
        "SMTP_PASSWORD": PASSWORD,
        "DATABASE_URL": None,
    }
    try:
        result = CliRunner().invoke(main, ["alerts", "test", "managers"], env=env)
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert "managers: sent (<csat-alert-" in result.output
    assert "team@example.org (450, for now)" in result.output
    # Not through the queue: nothing is sent again.
    assert "a test is not sent again to those refused for now" in result.output
    assert [recipients for _, recipients, _ in box.messages] == [["lead@example.org"]]


def test_the_alerts_json_escapes_every_unprintable_character(tmp_path, fake, clock):
    # The agent's name comes from the helpdesk; json.dumps(ensure_ascii=False) left a U+2028,
    # a C1 CSI and a bidirectional override in it raw.
    name = "Анна \u2028\x9b2J\u202e"
    path = config_with_an_alert(tmp_path, fake, clock, deliver=False, agent_name=name)

    output = invoke(path, fake, "alerts", "--json").output

    assert output.endswith("\n") and output[:-1].isprintable(), ascii(output)
    assert "Анна" in output
    # The override the name opens is closed inside it (PDF), before the summary's own words.
    assert "Анна \x9b2J\u202e\u202c on ticket" in json.loads(output)[0]["summary"]


def test_the_outbox_counts_are_of_the_kind_listed(tmp_path, fake, clock):
    # `outbox --kind alert` listed the alert deliveries under the counts of every row (the
    # replies' too), so the summary line disagreed with what it listed.
    path = config_with_an_alert(tmp_path, fake, clock, deliver=True)

    alerts = json.loads(invoke(path, fake, "outbox", "--kind", "alert", "--json").output)
    replies = json.loads(invoke(path, fake, "outbox", "--kind", "reply", "--json").output)
    both = json.loads(invoke(path, fake, "outbox", "--json").output)

    listed = Counter(row["status"] for row in alerts["replies"])
    assert len(alerts["replies"]) == 3
    assert {k: v for k, v in alerts["counts"].items() if v} == dict(listed)
    assert replies["replies"] == [] and not any(replies["counts"].values())
    assert both["counts"] == alerts["counts"]
    line = invoke(path, fake, "outbox", "--kind", "reply").output.splitlines()[0]
    assert line == "pending=0  sending=0  sent=0  failed=0  cancelled=0"


def test_an_empty_alerts_listing_says_so_and_whether_alerts_are_on(tmp_path, fake):
    # It printed nothing at all: a new operator could not tell "no bad rating yet" from
    # "alerts are not configured" or a command that did nothing.
    on = invoke(write_config(tmp_path, fake), fake, "alerts")
    assert on.exit_code == 0 and on.stdout.strip() == "no alerts yet", on.output

    off = CliRunner().invoke(
        main,
        ["alerts"],
        env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": f"sqlite:///{tmp_path / 'off.sqlite3'}"},
    )
    assert off.exit_code == 0, off.output
    assert off.stdout.strip() == (
        "no alerts yet: none will be raised, the configuration has no alerts.rules or "
        "alerts.digests (docs/alerts.md)"
    )
    assert json.loads(invoke(write_config(tmp_path, fake), fake, "alerts", "--json").stdout) == []


def test_an_empty_listing_with_digests_alone_does_not_say_none_will_be_raised(tmp_path, fake):
    # A digest is an alert the listing shows (--kind digest): with digests and no rules it
    # said "none will be raised, the configuration has no alerts.rules", and the first digest
    # came the next morning.
    path = write_config(tmp_path, fake)
    config = yaml.safe_load(path.read_text())
    config["alerts"]["rules"] = []
    config["alerts"]["digests"] = [{"name": "daily", "destinations": ["slack"]}]
    path.write_text(yaml.safe_dump(config))

    listed = invoke(path, fake, "alerts")

    assert listed.exit_code == 0 and listed.stdout.strip() == "no alerts yet", listed.output


def test_alerts_test_whose_answer_never_came_does_not_say_not_sent(tmp_path, fake):
    # The request went out and the connection dropped before Slack's answer: it printed
    # "slack: not sent: ... (outcome unknown)", and the operator sent another to see.
    path = write_config(tmp_path, fake)
    fake.script("slack", Script(drop=True))

    result = invoke(path, fake, "alerts", "test", "slack")

    assert result.exit_code == 1 and len(fake.requests("slack")) == 1
    assert "not sent" not in result.output
    assert "slack: may have been sent (its answer was lost)" in result.output, result.output
