"""``csat-hook erase``: one customer's data erased everywhere csat-hook stored it, the metrics
unchanged, and the next syncs neither store the erased comments again nor keep them in the
reports; a dry run changes nothing, and nothing customer-specific is printed or logged."""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from openpyxl import load_workbook
from pydantic import SecretStr

import csat_hook.clock
from csat_hook import tokens
from csat_hook.cli import main
from csat_hook.clock import utcnow
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import REPLY
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import SENT
from csat_hook.db.schema import alerts
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import early_reopens
from csat_hook.db.schema import erased_dialogs
from csat_hook.db.schema import erasures
from csat_hook.db.schema import metadata
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.schema import sync_locks
from csat_hook.db.schema import unverified_answers
from csat_hook.db.text import ticket_form
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.intake.store import remember_reopen
from csat_hook.notify.records import DIGEST
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.records import DigestItem
from csat_hook.outbox import listing
from tests.helpers import HostAhead
from tests.sync.conftest import HELPDESK
from tests.sync.conftest import SECRET
from tests.sync.conftest import SHEET_ID

HEADER = "Timestamp,Rating,Comment,Agent,Ticket,Reference"
MARIA = {
    "customer_id": "CUST-MARIA-77",
    "customer_email": "Maria.Lopez@Example.COM",
    "customer_name": "Maria Lopez",
}
BOB = {"customer_id": "CUST-BOB-9", "customer_email": "bob@example.org", "customer_name": "Bob"}
# Every text of Maria's holds "maria" (any case): none may be left anywhere after the erasure.
MARK = "maria"


@pytest.fixture
def receivers(kit: Any) -> Iterator[FakeNotify]:
    fake = FakeNotify(now=lambda: kit.now.timestamp()).start()
    yield fake
    fake.stop()


class Shop:
    """Maria's two surveys (D-1 answered twice, D-2 once) and Bob's (D-3), their replies as
    sent, a forged answer to D-1 and one without a reference naming D-2, all synced from a
    CSV export into local reports, with a low-rating alert about D-1."""

    def __init__(self, kit: Any, receivers: FakeNotify, tmp_path: Path) -> None:
        self.kit = kit
        self.tmp_path = tmp_path
        self.export = tmp_path / "export.csv"
        self.report = tmp_path / "report"
        self.config_path = tmp_path / "erase.yaml"
        self.config_path.write_text(
            yaml.safe_dump(
                {
                    "database": {"url": kit.database_url},
                    "token": {"secret": SECRET},
                    "helpdesks": {HELPDESK: {"output": str(tmp_path / "dry.jsonl")}},
                }
            ),
            encoding="utf-8",
        )
        self.config = kit.config(
            results={"source": "csv", "csv": {"path": str(self.export)}},
            output={
                "gsheets": {"enabled": False},
                "local": {"enabled": True, "dir": str(self.report), "xlsx": True, "csv": True},
            },
            alerts={
                "destinations": {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}},
                "rules": [
                    {
                        "name": "low",
                        "kind": "low_rating",
                        "max_rating": 2,
                        "destinations": ["slack"],
                    }
                ],
            },
        )
        self.t1 = self.survey("D-1", MARIA)
        self.t2 = self.survey("D-2", MARIA)
        self.t3 = self.survey("D-3", BOB)
        ref = tokens.verify(self.t1, [SECRET])
        self.forged = tokens.sign("a-secret-nobody-configured-here", ref)
        assert tokens.survey_key(self.forged) == tokens.survey_key(self.t1)
        self.lines = {
            "d1-earlier": f"2026/11/20 1:00:00 PM GMT+3,3,Maria: slow at first,Anna,D-1,{self.t1}",
            "d1-latest": f"2026/11/20 2:50:00 PM GMT+3,2,Maria again: rude,Anna,D-1,{self.t1}",
            "d2": f"2026/11/20 1:30:00 PM GMT+3,5,Thanks from MARIA,Anna,D-2,{self.t2}",
            "d3": f"2026/11/20 1:40:00 PM GMT+3,4,Bob says fine,Anna,D-3,{self.t3}",
            "forged": f"2026/11/20 1:10:00 PM GMT+3,1,maria forged,Anna,D-1,{self.forged}",
            "no-ref": "2026/11/20 1:20:00 PM GMT+3,1,maria without a reference,Anna,D-2,",
        }
        self.write()

    def survey(self, dialog_id: str, customer: dict[str, str]) -> str:
        token = self.kit.survey(dialog_id, "7", "Anna Petrova")
        now = self.kit.now
        with self.kit.engine.begin() as conn:
            conn.execute(sa.update(surveys).where(surveys.c.token == token).values(**customer))
            survey_id = conn.execute(
                sa.select(surveys.c.id).where(surveys.c.token == token)
            ).scalar_one()
            conn.execute(
                sa.insert(outbox).values(
                    survey_id=survey_id,
                    helpdesk=HELPDESK,
                    dialog_id=dialog_id,
                    context={"customer_id": customer["customer_id"]},
                    status=SENT,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                    sent_at=now,
                    body=f"Hi {customer['customer_name']}, how did we do?",
                    kind=REPLY,
                )
            )
        return token

    def write(self) -> None:
        rows = [HEADER, *self.lines.values()]
        self.export.write_bytes(("\r\n".join(rows) + "\r\n").encode())

    def sync(self) -> Any:
        summary = self.kit.run(self.config)
        assert summary.status in ("ok", "data_error"), summary.error
        return summary

    def erase(self, *args: str) -> Any:
        return CliRunner().invoke(main, ["-c", str(self.config_path), "erase", *args])

    def dump(self) -> dict[str, list[Any]]:
        """Every table as stored (but the sync lock, which an erasure takes)."""
        with self.kit.engine.connect() as conn:
            return {
                table.name: [tuple(row) for row in conn.execute(sa.select(table))]
                for table in metadata.sorted_tables
                if table is not sync_locks
            }

    def figures(self) -> Any:
        """What the metrics are made of, and the report's figures (every file but the comments
        it lists)."""
        with self.kit.engine.connect() as conn:
            credited = conn.execute(
                sa.select(
                    answers.c.survey_key,
                    answers.c.helpdesk,
                    answers.c.dialog_id,
                    answers.c.agent_key,
                    answers.c.issued_at,
                    answers.c.rating,
                    answers.c.nps,
                    answers.c.submitted_at,
                ).order_by(answers.c.survey_key)
            ).all()
            earlier = conn.execute(
                sa.select(
                    answer_history.c.survey_key,
                    answer_history.c.rating,
                    answer_history.c.submitted_at,
                ).order_by(answer_history.c.submitted_at)
            ).all()
            sent = conn.execute(
                sa.select(
                    surveys.c.token,
                    surveys.c.agent_id,
                    surveys.c.agent_name,
                    surveys.c.status,
                    surveys.c.created_at,
                    surveys.c.sent_at,
                ).order_by(surveys.c.id)
            ).all()
        return credited, earlier, sent, self.summary_file()

    def summary_file(self) -> list[list[str]]:
        (path,) = [p for p in self.report.glob("*.csv") if "summary" in p.name.lower()]
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.reader(handle))

    def report_text(self) -> str:
        """Everything the local reports hold, as text."""
        parts = [p.read_text(encoding="utf-8-sig") for p in sorted(self.report.glob("*.csv"))]
        for path in self.report.glob("*.xlsx"):
            book = load_workbook(path, read_only=True)
            for sheet in book.worksheets:
                for row in sheet.iter_rows(values_only=True):
                    parts.extend(str(v) for v in row if v is not None)
        return "\n".join(parts)


@pytest.fixture
def shop(kit: Any, receivers: FakeNotify, tmp_path: Path) -> Shop:
    built = Shop(kit, receivers, tmp_path)
    built.sync()
    return built


def held(dump: dict[str, list[Any]], mark: str = MARK) -> dict[str, int]:
    """Per table, the rows that hold Maria's text (or ``mark``, any case) somewhere, as a word:
    a signed reference is random base64 (a stored one found "zoe" in about one in 500 CI
    runs of a test, on a row that holds none of Zoe's text)."""
    word = re.compile(rf"(?<![0-9a-z_]){re.escape(mark)}(?![0-9a-z_])")
    found = {}
    for name, rows in dump.items():
        count = sum(1 for row in rows if word.search(json.dumps(row, default=str).lower()))
        if count:
            found[name] = count
    return found


def test_the_customer_text_is_everywhere_before(shop: Shop):
    assert held(shop.dump()) == {
        "surveys": 2,
        "outbox": 2,
        "answers": 2,
        "answer_history": 1,
        "unverified_answers": 2,
        "alerts": 1,
    }
    assert MARK in shop.report_text().lower()


def test_a_dry_run_counts_and_changes_nothing(shop: Shop):
    before = shop.dump()
    result = shop.erase("--email", "maria.lopez@example.com")
    assert result.exit_code == 0, result.output
    assert shop.dump() == before
    assert "Dry run, nothing changed" in result.output
    assert "  surveys: 2 " in result.output
    assert "  survey replies sent: 2 " in result.output
    assert "  answers: 2 " in result.output
    assert "  earlier submissions (answer history): 1 " in result.output
    # The forged answer names D-1's survey; the one without a reference was typed "D-2".
    assert "  unverified answers naming one of these surveys: 1 " in result.output
    assert "  unverified answers matched by typed ticket only: 1 " in result.output
    assert "typed ticket only: the form's ticket field" in result.output
    assert "--helpdesk" not in result.output  # not given: nothing to say about it
    assert "  alerts: 1 " in result.output
    assert "  erasure records: 2 " in result.output
    assert "--yes" in result.output


def test_erasing_by_email_erases_every_place_and_keeps_the_metrics(shop: Shop, caplog):
    figures = shop.figures()
    before = shop.dump()
    with caplog.at_level(logging.DEBUG):
        result = shop.erase("--email", "MARIA.LOPEZ@example.com", "--yes")
    assert result.exit_code == 0, result.output
    after = shop.dump()
    assert held(after) == {}
    # Bob's rows are as they were.
    for name in ("surveys", "outbox", "answers"):
        bob_before = [r for r in before[name] if "bob" in json.dumps(r, default=str).lower()]
        bob_after = [r for r in after[name] if "bob" in json.dumps(r, default=str).lower()]
        assert bob_before == bob_after and bob_before, name
    with shop.kit.engine.connect() as conn:
        maria = conn.execute(
            sa.select(surveys).where(surveys.c.dialog_id.in_(["D-1", "D-2"]))
        ).all()
        assert {(r.customer_id, r.customer_email, r.customer_name) for r in maria} == {
            (None, None, None)
        }
        replies = conn.execute(
            sa.select(outbox.c.body, outbox.c.context, outbox.c.status).where(
                outbox.c.dialog_id.in_(["D-1", "D-2"]), outbox.c.kind == REPLY
            )
        ).all()
        assert set(map(tuple, [(r.body, json.dumps(r.context), r.status) for r in replies])) == {
            (None, "{}", SENT)
        }
        keys = set(conn.execute(sa.select(erasures.c.survey_key)).scalars())
        assert keys == {tokens.survey_key(shop.t1), tokens.survey_key(shop.t2)}
        (alert,) = conn.execute(sa.select(alerts.c.payload, alerts.c.rating)).all()
        assert alert.payload["comment"] is None and alert.rating == 2
    # The metrics' inputs are untouched (the report is rewritten by the next sync).
    assert shop.figures() == figures
    # Counts and the reach note, never the customer's data; the log has counts only.
    assert "Erased:" in result.output and "  answers: 2 " in result.output
    assert result.output.count("Not reachable from here") == 1
    for text in (result.output, caplog.text):
        lowered = text.lower()
        assert MARK not in lowered and "cust-maria" not in lowered and "lopez" not in lowered
    assert "erasure.applied" in caplog.text

    # Run again: nothing left to erase (the e-mail is gone with the rest).
    again = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert again.exit_code == 0 and "Nothing to erase" in again.output
    assert shop.dump() == after


def test_the_next_sync_rewrites_the_reports_without_the_comments_and_never_stores_them_again(
    shop: Shop,
):
    figures = shop.figures()
    assert shop.erase("--email", "maria.lopez@example.com", "--yes").exit_code == 0
    shop.kit.now += timedelta(minutes=5)
    summary = shop.sync()
    assert summary.report != "unchanged"
    assert MARK not in shop.report_text().lower()
    assert shop.figures() == figures  # the same figures in the rewritten report
    assert held(shop.dump()) == {}

    # The answers are still in the export; the rating of D-1's latest is edited there (a new
    # row identity): it is credited, its comment is not stored again.
    shop.lines["d1-latest"] = shop.lines["d1-latest"].replace(",2,Maria", ",1,Maria")
    shop.lines["forged"] = shop.lines["forged"].replace(",1,maria", ",2,maria")
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    edited = shop.sync()
    assert edited.updated == 1, edited
    assert held(shop.dump()) == {}
    assert MARK not in shop.report_text().lower()
    with shop.kit.engine.connect() as conn:
        latest = conn.execute(
            sa.select(answers.c.rating, answers.c.comment).where(answers.c.dialog_id == "D-1")
        ).one()
    assert latest.rating == 1 and not latest.comment


def test_an_erased_comment_leaves_the_alerts_tab_and_alerts_csv_once_alert_rules_are_off(
    kit: Any, receivers: FakeNotify, tmp_path: Path
):
    """Alert rules turned off after the alert about Maria's answer: the Alerts tab and
    ``alerts.csv`` still list it (the team's "Handled" column kept), and after her erasure
    neither shows her comment any more, as every other output does not."""
    kit.responses([["Timestamp"]])  # the spreadsheet the report is written to
    shop = Shop(kit, receivers, tmp_path)
    shop.config.output.gsheets.enabled = True
    shop.sync()
    header = kit.sheet("Alerts")[0]
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, header.index("Handled"), "called back")
    shop.config.alerts.rules = []
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert MARK in spreadsheet_text(kit).lower() and MARK in shop.report_text().lower()

    assert shop.erase("--email", "maria.lopez@example.com", "--yes").exit_code == 0
    shop.kit.now += timedelta(minutes=5)
    shop.sync()

    assert MARK not in spreadsheet_text(kit).lower()
    assert MARK not in shop.report_text().lower()
    alerts_tab = kit.sheet("Alerts")
    assert alerts_tab[1][header.index("Handled")] == "called back"
    assert alerts_tab[1][header.index("Rating")] == 2  # the alert itself is still listed


@pytest.mark.parametrize("turned_off", ["alerts.csv", "unverified.csv"])
def test_a_csv_file_of_a_tab_turned_off_goes_with_it(shop: Shop, turned_off: str):
    """``alerts.tab`` emptied, or ``output.gsheets.unverified: false``: the workbook has no
    such sheet any more and its CSV file is no longer written; left in the report's folder,
    it looked current and kept the comment of a customer erased since."""
    assert (shop.report / turned_off).exists()
    if turned_off == "alerts.csv":
        shop.config.alerts.tab = None
    else:
        shop.config.output.gsheets.unverified = False
    assert shop.erase("--email", "maria.lopez@example.com", "--yes").exit_code == 0
    shop.kit.now += timedelta(minutes=5)
    shop.sync()

    assert not (shop.report / turned_off).exists()
    assert MARK not in shop.report_text().lower()


def test_the_erasure_names_the_report_places_no_sync_rewrites_any_more(shop: Shop, tmp_path: Path):
    """The report moved to another folder, or its CSV files turned off: the next sync
    rewrites the new place only, and the files left where it wrote before keep the erased
    comments. The erasure says where they are (paths and spreadsheet ids, never the data),
    so they can be deleted by hand."""
    old = shop.report.resolve()
    shop.report = tmp_path / "moved"
    shop.config.output.local.dir = str(shop.report)
    shop.config.output.local.csv = False
    shop.sync()
    settings = yaml.safe_load(shop.config_path.read_text(encoding="utf-8"))
    settings["output"] = {"local": {"dir": str(shop.report), "csv": False}}
    shop.config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    (shop.report / "answers.csv").write_text("left by hand", encoding="utf-8")

    for args in ((), ("--yes",)):
        result = shop.erase("--email", "maria.lopez@example.com", *args)
        assert result.exit_code == 0, result.output
        assert str(old) in result.output
        assert str(shop.report.resolve() / "answers.csv") in result.output
        assert str(shop.report.resolve() / "csat-report.xlsx") not in result.output
        assert MARK not in result.output.lower()


def test_the_erasure_names_the_alerts_tab_kept_once_alerts_tab_is_off(
    kit: Any, receivers: FakeNotify, tmp_path: Path
):
    """``alerts.tab`` emptied: the sync keeps the Alerts tab as it was (the team's "Handled"
    column), never rewritten, so it keeps an erased comment; the erasure says so."""
    kit.responses([["Timestamp"]])
    shop = Shop(kit, receivers, tmp_path)
    shop.config.output.gsheets.enabled = True
    shop.config.alerts.tab = None
    shop.sync()
    settings = yaml.safe_load(shop.config_path.read_text(encoding="utf-8"))
    settings["output"] = {
        "local": {"dir": str(shop.report)},
        "gsheets": {"enabled": True, "spreadsheet_id": SHEET_ID},
    }
    settings["google"] = {"service_account_json": json.dumps(kit.service_account)}
    settings["alerts"] = {"tab": ""}
    shop.config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")

    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 0, result.output
    assert f"the Alerts tab of spreadsheet {SHEET_ID}" in result.output
    assert "renamed by hand" in result.output


def spreadsheet_text(kit: Any) -> str:
    """Every cell of every tab of the report's spreadsheet, as text."""
    return "\n".join(
        str(value)
        for title in kit.fake.titles(SHEET_ID)
        for row in kit.sheet(title)
        for value in row
        if value not in (None, "")
    )


def test_a_survey_erased_before_its_answer_is_synced_gets_the_rating_only(
    kit: Any, receivers: FakeNotify, tmp_path: Path
):
    built = Shop(kit, receivers, tmp_path)  # not synced yet
    result = built.erase("--helpdesk", HELPDESK, "--customer-id", MARIA["customer_id"], "--yes")
    assert result.exit_code == 0, result.output
    built.sync()
    assert held(built.dump()) == {}
    assert MARK not in built.report_text().lower()
    with kit.engine.connect() as conn:
        ratings = conn.execute(
            sa.select(answers.c.dialog_id, answers.c.rating).order_by(answers.c.dialog_id)
        ).all()
    assert [tuple(r) for r in ratings] == [("D-1", 2), ("D-2", 5), ("D-3", 4)]


def test_one_dialog_only(shop: Shop):
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-2", "--yes")
    assert result.exit_code == 0, result.output
    with shop.kit.engine.connect() as conn:
        comments = {
            r[0]: r[1] for r in conn.execute(sa.select(answers.c.dialog_id, answers.c.comment))
        }
        customers = {
            r[0]: r[1]
            for r in conn.execute(sa.select(surveys.c.dialog_id, surveys.c.customer_email))
        }
        unverified = conn.execute(
            sa.select(unverified_answers.c.field_ticket, unverified_answers.c.comment)
        ).all()
    assert comments == {"D-1": "Maria again: rude", "D-2": None, "D-3": "Bob says fine"}
    assert customers == {"D-1": MARIA["customer_email"], "D-2": None, "D-3": BOB["customer_email"]}
    # D-2's (found by its ticket field) loses the fields the respondent typed too.
    assert sorted(map(tuple, unverified), key=repr) == [("D-1", "maria forged"), (None, None)]


def test_unverified_answers_matched_by_typed_ticket_only_are_said_apart_and_erased(shop: Shop):
    """An unverified answer carries only the ticket field as typed: no helpdesk. ``--helpdesk
    H --dialog D-2`` matches every one typed "D-2", whichever helpdesk's D-2 it is about (or
    nobody's), as erasing a comment that was not the customer's is the lesser harm in a legal
    request than keeping one that was (and an unverified answer is never credited: no figure
    moves). The dry run counts them apart from those whose reference names the survey and
    says why, and that --helpdesk cannot narrow them."""
    shop.lines["elsewhere"] = "2026/11/20 1:25:00 PM GMT+3,4,Carl on the other desk,Anna,D-2,"
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    before = shop.dump()
    dry = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-2")
    assert dry.exit_code == 0, dry.output
    assert shop.dump() == before
    assert "  unverified answers naming one of these surveys: 0 " in dry.output
    assert "  unverified answers matched by typed ticket only: 2 " in dry.output
    assert "--helpdesk cannot narrow them" in dry.output
    assert "another helpdesk's dialog of the same id" in dry.output
    assert "carl" not in dry.output.lower() and "d-2" not in dry.output.lower()

    applied = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-2", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "  unverified answers matched by typed ticket only: 2 " in applied.output
    assert "--helpdesk cannot narrow them" in applied.output
    with shop.kit.engine.connect() as conn:
        unverified = conn.execute(
            sa.select(unverified_answers.c.rating, unverified_answers.c.comment)
        ).all()
    # Both typed "D-2" lost their text, ratings kept; the forged one about D-1 is untouched.
    assert sorted(map(tuple, unverified), key=repr) == [(1, "maria forged"), (1, None), (4, None)]


def test_email_case_is_folded_by_the_database_on_both_sides(shop: Shop):
    with shop.kit.engine.begin() as conn:
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.dialog_id == "D-2")
            .values(customer_email="MARIA.LOPEZ@EXAMPLE.COM")
        )
    result = shop.erase("--email", "maria.LOPEZ@example.Com")
    assert result.exit_code == 0 and "  surveys: 2 " in result.output, result.output
    assert "Nothing to erase" in shop.erase("--email", "maria@example.com").output


def test_a_survey_whose_customer_id_is_the_address_is_found_by_email(shop: Shop):
    # Some helpdesks use the e-mail as the customer id (and send no e-mail field): that survey
    # is the customer's as surely as one with the address in customer_email.
    with shop.kit.engine.begin() as conn:
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.dialog_id == "D-2")
            .values(customer_id="MARIA.Lopez@example.com", customer_email=None)
        )
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.dialog_id == "D-1")
            .values(customer_id="ｍａｒｉａ.lopez@example.com", customer_email=None)
        )

    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 0 and "  surveys: 2 " in result.output, result.output
    assert held(shop.dump()).get("surveys", 0) == 0
    assert "Nothing to erase" in shop.erase("--email", "maria.lopez@example.com").output


def test_a_reply_not_sent_yet_is_cancelled_and_one_being_sent_is_erased_and_marked(shop: Shop):
    with shop.kit.engine.begin() as conn:
        conn.execute(sa.update(outbox).where(outbox.c.dialog_id == "D-1").values(status=PENDING))
        conn.execute(sa.update(surveys).where(surveys.c.dialog_id == "D-1").values(status="queued"))
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.dialog_id == "D-2")
            .values(status=SENDING, claimed_by="worker-1", body=None)
        )
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert "1 survey replies to this customer were being sent right now" in result.output
    with shop.kit.engine.connect() as conn:
        rows = {
            r.dialog_id: r
            for r in conn.execute(
                sa.select(
                    surveys.c.dialog_id,
                    surveys.c.status,
                    surveys.c.customer_email,
                    outbox.c.status.label("reply"),
                    outbox.c.body,
                    outbox.c.context,
                    outbox.c.erased_at,
                ).join(outbox, outbox.c.survey_id == surveys.c.id)
            )
        }
    assert (rows["D-1"].status, rows["D-1"].reply, rows["D-1"].customer_email) == (
        CANCELLED,
        CANCELLED,
        None,
    )
    assert rows["D-1"].body is None
    # Left to its worker, erased all the same and marked for its outcome.
    d2 = rows["D-2"]
    assert (d2.reply, d2.customer_email, d2.context) == (SENDING, None, {})
    assert d2.erased_at is not None
    assert held(shop.dump()) == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--email ADDRESS"),
        (("--yes",), "--email ADDRESS"),
        (("--helpdesk", "dryrun"), "--helpdesk needs --customer-id or --dialog"),
        (("--customer-id", "C-1"), "--customer-id needs --helpdesk"),
        (("--dialog", "D-1"), "--dialog needs --helpdesk"),
        (("--email", "  "), "--email"),
    ],
)
def test_a_selector_is_required(tmp_path: Path, args: tuple[str, ...], message: str):
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "none.yaml"), "erase", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "none.yaml").exists()


def test_a_digest_keeps_its_lines_without_the_customers_comments(shop: Shop):
    with shop.kit.engine.begin() as conn:
        when = {
            r.dialog_id: r.submitted_at.isoformat()
            for r in conn.execute(sa.select(answers.c.dialog_id, answers.c.submitted_at))
        }
        message = AlertMessage(
            ref="csat-alert-" + "ab" * 12,
            event=DIGEST,
            rule="daily",
            created_at=shop.kit.now.isoformat(),
            items=tuple(
                DigestItem(
                    rating=r, agent_name="Anna", dialog_id=d, comment=c, submitted_at=when[d]
                )
                for d, r, c in (("D-1", 2, "Maria again: rude"), ("D-3", 4, "Bob says fine"))
            ),
        )
        conn.execute(
            sa.insert(alerts).values(
                key="digest-key",
                ref=message.ref,
                kind="digest",
                rule="daily",
                payload=message.to_payload(),
                created_at=shop.kit.now,
            )
        )
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert "  alerts: 2 " in result.output, result.output
    with shop.kit.engine.connect() as conn:
        payload = conn.execute(
            sa.select(alerts.c.payload).where(alerts.c.key == "digest-key")
        ).scalar_one()
    assert [(i["dialog_id"], i["rating"], i["comment"]) for i in payload["items"]] == [
        ("D-1", 2, None),
        ("D-3", 4, "Bob says fine"),
    ]


def test_a_forged_answer_credited_later_comes_without_its_comment(shop: Shop):
    assert shop.erase("--email", "maria.lopez@example.com", "--yes").exit_code == 0
    config = shop.config
    config.token.previous_secrets = [SecretStr("a-secret-nobody-configured-here")]
    shop.kit.now += timedelta(minutes=5)
    summary = shop.kit.run(config)
    assert summary.reverified == 1, summary.error
    assert held(shop.dump()) == {}
    with shop.kit.engine.connect() as conn:
        ratings = conn.execute(
            sa.select(answer_history.c.rating).where(
                answer_history.c.survey_key == tokens.survey_key(shop.t1)
            )
        ).scalars()
        assert sorted(ratings) == [1, 3]


def test_a_running_sync_is_waited_for_and_nothing_is_erased_meanwhile(shop: Shop):
    from csat_hook.sync.lock import LOCK_NAME
    from csat_hook.sync.lock import acquire_lock

    with shop.kit.engine.begin() as conn:
        assert acquire_lock(
            conn, LOCK_NAME, "other:1:sync", utcnow(), utcnow() + timedelta(minutes=10)
        )
    before = shop.dump()
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert result.exit_code == 3, result.output
    assert "Nothing erased: another sync is running" in result.output
    assert shop.dump() == before


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--email", "maria\x00@example.com"),
        ("--email", "maria\udcff@example.com"),
        ("--customer-id", "CUST\x00-1"),
        ("--dialog", "D-\udc801"),
        ("--helpdesk", "dry\x00run"),
    ],
)
def test_a_value_no_database_can_hold_is_bad_usage_not_a_traceback(
    shop: Shop, option: str, value: str
):
    """A NUL byte (which PostgreSQL refuses) or a lone surrogate (an argument that was not
    UTF-8) matches nothing anywhere: exit 2 naming the option, never a traceback echoing it."""
    args = [option, value] if option != "--helpdesk" else [option, value, "--dialog", "D-1"]
    if option in ("--customer-id", "--dialog"):
        args = ["--helpdesk", HELPDESK, *args]
    before = shop.dump()
    result = shop.erase(*args, "--yes")
    assert result.exit_code == 2, (result.output, result.exception)
    assert option in result.output
    assert "CUST" not in result.output and "maria" not in result.output.lower()
    assert shop.dump() == before


def test_a_worker_claims_none_of_the_replies_the_erasure_is_erasing(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
):
    """PostgreSQL (READ COMMITTED): a worker claims while the erasure runs, between its reads
    and its writes. The erasure locked the customer's replies as it read them: the claim (which
    skips locked rows) takes none, and the erasure cancels the pending reply as read, instead
    of finding it claimed and leaving customer data behind for a second run."""
    if shop.kit.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the erasure holds the writer lock from BEGIN, no worker claims")
    from csat_hook.erasure import store as erasure_store
    from csat_hook.outbox import store as outbox_store

    with shop.kit.engine.begin() as conn:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.dialog_id == "D-1", outbox.c.kind == REPLY)
            .values(status=PENDING, body=None, next_attempt_at=shop.kit.now)
        )
        conn.execute(
            sa.update(outbox)
            .where(sa.not_(sa.and_(outbox.c.dialog_id == "D-1", outbox.c.kind == REPLY)))
            .values(next_attempt_at=shop.kit.now + timedelta(days=30))
        )
        conn.execute(sa.update(surveys).where(surveys.c.dialog_id == "D-1").values(status="queued"))
    original = erasure_store._alert_messages
    claimed: list[Any] = []

    def claim_then_read(*args: Any, **kwargs: Any) -> Any:
        if not claimed:  # the worker's claim runs between the erasure's reads and writes
            now = shop.kit.now + timedelta(seconds=1)
            with shop.kit.engine.begin() as other:
                claimed.append(
                    outbox_store.claim_due(other, "worker-1", now, now + timedelta(minutes=5), 10)
                )
        return original(*args, **kwargs)

    monkeypatch.setattr(erasure_store, "_alert_messages", claim_then_read)
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert claimed == [[]]
    assert result.exit_code == 0, result.output
    assert "being sent" not in result.output
    with shop.kit.engine.connect() as conn:
        reply = conn.execute(
            sa.select(outbox.c.status, outbox.c.context).where(
                outbox.c.dialog_id == "D-1", outbox.c.kind == REPLY
            )
        ).one()
    assert (reply.status, reply.context) == (CANCELLED, {})
    assert held(shop.dump()) == {}


def test_a_failed_reply_is_not_requeued_to_the_erased_customer(shop: Shop):
    """A reply that failed was never sent: erased, it is cancelled as a pending one is, so
    ``outbox retry --all-failed`` does not send the survey again, with an emptied context, to
    the customer who asked for the erasure. The survey's status (the funnel) is unchanged."""
    with shop.kit.engine.begin() as conn:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.dialog_id == "D-1", outbox.c.kind == REPLY)
            .values(status="failed", sent_at=None, last_error="HTTP 404")
        )
        conn.execute(sa.update(surveys).where(surveys.c.dialog_id == "D-1").values(status="failed"))
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert result.exit_code == 0, result.output
    # What `csat-hook outbox retry --all-failed` runs.
    with shop.kit.engine.begin() as conn:
        assert listing.requeue(conn, shop.kit.now) == []
    with shop.kit.engine.connect() as conn:
        reply = conn.execute(
            sa.select(outbox.c.status, outbox.c.body, outbox.c.context).where(
                outbox.c.dialog_id == "D-1", outbox.c.kind == REPLY
            )
        ).one()
        survey = conn.execute(
            sa.select(surveys.c.status).where(surveys.c.dialog_id == "D-1")
        ).scalar_one()
    assert (reply.status, reply.body, reply.context) == (CANCELLED, None, {})
    assert survey == "failed"


def test_the_form_fields_the_customer_typed_are_erased_with_the_comment(shop: Shop):
    """The form's agent and ticket fields are the respondent's to edit: what Maria typed there
    is hers (the Unverified tab shows it). Erased with the comment, from the answers, their
    history and the unverified answers, and never stored again by a later sync; the verified
    agent and dialog the metrics use stay."""
    for name in ("d1-earlier", "d2", "forged", "no-ref"):
        shop.lines[name] = shop.lines[name].replace(",Anna,", ",Maria Lopez typed this,")
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert MARK in shop.report_text().lower()
    figures = shop.figures()
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert held(shop.dump()) == {}
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert MARK not in shop.report_text().lower()
    assert shop.figures() == figures

    # An edit in the source (a new row identity) is stored without the typed fields either.
    shop.lines["d2"] = shop.lines["d2"].replace(",5,", ",4,")
    shop.lines["no-ref"] = shop.lines["no-ref"].replace(",1,", ",2,")
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert held(shop.dump()) == {}
    assert MARK not in shop.report_text().lower()


@pytest.mark.parametrize(
    "args",
    [
        ("--helpdesk", f" {HELPDESK} ", "--customer-id", f"  {MARIA['customer_id']}\t"),
        ("--helpdesk", HELPDESK, "--dialog", " D-2 "),
        ("--email", " maria.lopez@example.com\n"),
    ],
)
def test_values_pasted_with_surrounding_spaces_match_as_intake_stored_them(
    shop: Shop, args: tuple[str, ...]
):
    """Intake stores ids, dialogs and e-mails trimmed (helpdesks/payload.py): a value pasted
    with spaces around it finds the customer, not "Nothing to erase"."""
    result = shop.erase(*args)
    assert result.exit_code == 0, result.output
    assert "Would erase:" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("--helpdesk", HELPDESK, "--customer-id", f"{MARIA['customer_id']}\xa0"),
        ("--helpdesk", HELPDESK, "--dialog", "D-2\x85"),
        ("--helpdesk", HELPDESK, "--dialog", "\u3000D-2"),
    ],
)
def test_an_id_is_trimmed_as_intake_trims_it_never_taken_for_another(
    shop: Shop, args: tuple[str, ...]
):
    """Intake trims only the padding a template adds around an id (helpdesks/payload.py:
    trim_id): "D-2\x85" is a dialog of its own there. Erasing it must not erase D-2's
    surveys and answers (an unverified answer whose typed ticket field reads "D-2" may be
    matched: a typed ticket is compared loosely, db.text.ticket_form)."""
    result = shop.erase(*args)
    assert result.exit_code == 0, result.output
    assert "matched the stored dialog" not in result.output, result.output
    if "Would erase:" in result.output:
        assert "  surveys: 0 " in result.output, result.output
        assert "  answers: 0 " in result.output, result.output
        assert "  unverified answers naming one of these surveys: 0 " in result.output


@pytest.mark.parametrize("option", ["--customer-id", "--dialog"])
def test_a_blank_id_is_bad_usage(shop: Shop, option: str):
    result = shop.erase("--helpdesk", HELPDESK, option, "   ")
    assert result.exit_code == 2 and option in result.output, result.output


# Zoe's answer, typed with the ticket number of a dialog csat-hook has no survey for (D-9)
# and no reference: unverified, tied to D-9 by its ticket field alone. Her texts hold "zoe".
ZOE = "zoe"
TYPED = "2026/11/20 1:45:00 PM GMT+3,3,Zoe typed her ticket,Anna,D-9,"


def test_a_dialog_with_no_survey_and_no_answer_is_recorded_so_its_edited_row_stays_erased(
    shop: Shop,
):
    """``--dialog`` finds no survey and no answer, only an unverified row typed with its
    ticket number: the row is erased now and the erasure is recorded, so once the row is
    edited in the source (a new row identity) the next sync stores it without its text, as
    it does for a dialog whose survey was found."""
    shop.lines["typed"] = TYPED
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert held(shop.dump(), ZOE) == {"unverified_answers": 1}
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", "--yes")
    assert result.exit_code == 0, result.output
    assert "  unverified answers matched by typed ticket only: 1 " in result.output
    assert "  erasure records: 1 " in result.output
    assert held(shop.dump(), ZOE) == {}

    shop.lines["typed"] = TYPED.replace(",3,Zoe", ",4,Zoe")
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert held(shop.dump(), ZOE) == {}
    assert ZOE not in shop.report_text().lower()
    with shop.kit.engine.connect() as conn:
        edited = conn.execute(
            sa.select(unverified_answers.c.comment, unverified_answers.c.source_row).where(
                unverified_answers.c.rating == 4
            )
        ).one()
    assert not edited.comment and edited.source_row == {}  # stored, without its text

    again = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", "--yes")
    assert again.exit_code == 0 and "Nothing to erase" in again.output, again.output


def test_a_dialog_erased_before_anything_of_it_is_stored_keeps_every_later_text_out(
    shop: Shop,
):
    """Nothing of the dialog is stored yet (its answers are still to come from the source):
    the dry run says so and that the erasure would be recorded, ``--yes`` records it, and
    running it again changes nothing. Every later answer to that dialog of that helpdesk is
    stored without its text: credited (a survey row csat-hook no longer holds), naming it by a
    reference that does not verify, or typed with its ticket number; another helpdesk's dialog
    of the same id, credited by its own reference, is not this one."""
    before = shop.dump()
    dry = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9")
    assert dry.exit_code == 0, dry.output
    assert shop.dump() == before
    assert "Dry run, nothing changed" in dry.output
    assert "No stored data matches this dialog now" in dry.output
    assert "the erasure would be recorded (1 erasure record)" in dry.output
    assert "Would erase:" not in dry.output and "Nothing to erase" not in dry.output
    assert "--yes" in dry.output and "d-9" not in dry.output.lower()

    applied = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "No stored data matched this dialog" in applied.output
    assert "the erasure is recorded (1 erasure record)" in applied.output
    after = shop.dump()
    for args in ((), ("--yes",)):
        again = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", *args)
        assert again.exit_code == 0, again.output
        assert "Nothing to erase" in again.output
        assert "The erasure of this dialog is recorded already" in again.output
        assert shop.dump() == after

    issued = shop.kit.now - timedelta(hours=2)
    credited = tokens.sign(SECRET, tokens.SurveyRef(HELPDESK, "D-9", "7", issued))
    forged = tokens.sign(
        "a-secret-nobody-configured-here", tokens.SurveyRef(HELPDESK, "D-9", "7", issued)
    )
    elsewhere = tokens.sign(SECRET, tokens.SurveyRef("otherdesk", "D-9", "7", issued))
    shop.lines.update(
        {
            "zoe-credited": f"2026/11/20 2:10:00 PM GMT+3,2,Zoe credited,Zoe typed,D-9,{credited}",
            "zoe-forged": f"2026/11/20 2:11:00 PM GMT+3,1,Zoe forged,Anna,X-1,{forged}",
            "zoe-typed": TYPED,
            "elsewhere": f"2026/11/20 2:12:00 PM GMT+3,5,Olga elsewhere,Anna,D-9,{elsewhere}",
        }
    )
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert held(shop.dump(), ZOE) == {}
    assert ZOE not in shop.report_text().lower()
    with shop.kit.engine.connect() as conn:
        stored = {
            r.helpdesk: (r.rating, r.comment or None)
            for r in conn.execute(
                sa.select(answers.c.helpdesk, answers.c.rating, answers.c.comment).where(
                    answers.c.dialog_id == "D-9"
                )
            )
        }
        ratings = sorted(
            conn.execute(
                sa.select(unverified_answers.c.rating).where(unverified_answers.c.rating >= 3)
            ).scalars()
        )
    assert stored == {HELPDESK: (2, None), "otherdesk": (5, "Olga elsewhere")}
    assert ratings == [3]  # Zoe's typed row: stored, without its text


def test_a_forged_reference_naming_the_dialog_is_found_without_its_survey(shop: Shop):
    """A reference that does not verify still names a helpdesk's dialog: with no survey or
    answer of that dialog stored to find it by survey key, ``--dialog`` finds it by the dialog
    its reference names (counted with those naming the surveys), and the sync keeps it, edited,
    without its text."""
    issued = shop.kit.now - timedelta(hours=2)
    forged = tokens.sign(
        "a-secret-nobody-configured-here", tokens.SurveyRef(HELPDESK, "D-9", "7", issued)
    )
    # Another helpdesk's D-9, and the reference bent out of its one spelling (malformed, it
    # names nothing, as verify reads it): not this dialog.
    other = tokens.sign(
        "a-secret-nobody-configured-here", tokens.SurveyRef("otherdesk", "D-9", "7", issued)
    )
    shop.lines["zoe-forged"] = f"2026/11/20 2:11:00 PM GMT+3,1,Zoe forged,Anna,X-1,{forged}"
    shop.lines["other"] = f"2026/11/20 2:12:00 PM GMT+3,1,Olga forged,Anna,X-2,{other}"
    shop.lines["bent"] = f"2026/11/20 2:13:00 PM GMT+3,1,Olga bent,Anna,X-3,{forged}=="
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert held(shop.dump(), ZOE) == {"unverified_answers": 1}
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", "--yes")
    assert result.exit_code == 0, result.output
    assert "  unverified answers naming one of these surveys: 1 " in result.output
    assert "  unverified answers matched by typed ticket only: 0 " in result.output
    assert held(shop.dump(), ZOE) == {}
    assert held(shop.dump(), "olga") == {"unverified_answers": 2}

    shop.lines["zoe-forged"] = shop.lines["zoe-forged"].replace(",1,Zoe", ",2,Zoe")
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert held(shop.dump(), ZOE) == {}
    assert ZOE not in shop.report_text().lower()


@pytest.mark.parametrize("dialog", ["D-9\x00", "Д-9\x00"], ids=["ascii", "cyrillic"])
def test_a_forged_reference_naming_a_dialog_with_a_nul_is_kept_unverified(shop: Shop, dialog: str):
    """A forged reference's payload is whatever its writer encoded: a dialog id holding a
    NUL, which no dialog stored or erased can hold. Once any erasure was recorded, the sync
    looks the dialog a forged reference names up among the erased ones; PostgreSQL refused
    the NUL as the look-up's parameter (DataError), so every run failed on that row while
    SQLite's went on. It names no erased dialog: the answer is kept unverified, as any."""
    assert shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", "--yes").exit_code == 0
    issued = shop.kit.now - timedelta(hours=2)
    forged = tokens.sign(
        "a-secret-nobody-configured-here", tokens.SurveyRef(HELPDESK, dialog, "7", issued)
    )
    shop.lines["nul"] = f"2026/11/20 2:11:00 PM GMT+3,1,Zoe forged,Anna,X-1,{forged}"
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    summary = shop.sync()
    assert summary.unverified == {"forged": 1}
    with shop.kit.engine.connect() as conn:
        kept = conn.execute(
            sa.select(unverified_answers.c.reason, unverified_answers.c.comment).where(
                unverified_answers.c.field_ticket == "X-1"
            )
        ).one()
    assert tuple(kept) == ("forged", "Zoe forged")
    assert shop.sync().status == "ok"


@pytest.mark.parametrize(
    ("option", "value"),
    [("--helpdesk", "h" * 65), ("--dialog", "9" * 256)],
)
def test_a_value_longer_than_any_stored_one_is_bad_usage(shop: Shop, option: str, value: str):
    """No helpdesk name is longer than 64 characters, no ticket field than 255: such a value
    matches nothing and could not be recorded (PostgreSQL refuses it): exit 2, naming the
    option, never a traceback."""
    args = {"--helpdesk": [option, value, "--dialog", "D-9"]}.get(
        option, ["--helpdesk", HELPDESK, option, value]
    )
    before = shop.dump()
    result = shop.erase(*args, "--yes")
    assert result.exit_code == 2, (result.output, result.exception)
    assert option in result.output and value not in result.output
    assert shop.dump() == before


def test_an_unverified_answer_holding_the_e_mail_itself_is_erased_with_the_rest(shop: Shop):
    """An answer without a reference, about another ticket, whose comment gives Maria's
    address: nothing but the address ties it to her, and an erasure by address takes it
    (case aside); one holding a longer address that contains hers is not hers."""
    shop.lines["typed"] = (
        "2026/11/20 1:25:00 PM GMT+3,4,write to MARIA.Lopez@example.com please,Anna,X-9,"
    )
    shop.lines["longer"] = "2026/11/20 1:26:00 PM GMT+3,4,ask xmaria.lopez@example.com.au,Anna,X-8,"
    shop.write()
    shop.sync()

    dry = shop.erase("--email", "maria.lopez@example.com")
    assert dry.exit_code == 0, dry.output
    assert "  unverified answers holding the e-mail (a form's own question, a comment): 1 " in (
        dry.output
    )
    assert shop.erase("--email", "maria.lopez@example.com", "--yes").exit_code == 0
    with shop.kit.engine.connect() as conn:
        rows = {
            row.field_ticket or row.id: row
            for row in conn.execute(
                sa.select(
                    unverified_answers.c.id,
                    unverified_answers.c.comment,
                    unverified_answers.c.field_ticket,
                    unverified_answers.c.source_row,
                )
            )
        }
    assert not any("MARIA.Lopez" in (row.comment or "") for row in rows.values())
    assert not any("MARIA.Lopez" in str(row.source_row) for row in rows.values())
    assert rows["X-8"].comment == "ask xmaria.lopez@example.com.au"


def test_an_address_ending_a_sentence_is_the_address_itself(shop: Shop):
    """A full stop after the address ends the sentence, not the address: "write to
    maria.lopez@example.com." holds her address, as does one whose sentence goes on on the
    next line; a longer address (".au") is still not hers."""
    shop.lines["stop"] = "2026/11/20 1:25:00 PM GMT+3,4,write to MARIA.Lopez@example.com.,Anna,X-9,"
    shop.lines["line"] = (
        '2026/11/20 1:26:00 PM GMT+3,4,"mailto:maria.lopez@example.com.\nthanks",Anna,X-7,'
    )
    shop.lines["longer"] = "2026/11/20 1:27:00 PM GMT+3,4,ask maria.lopez@example.com.au,Anna,X-8,"
    shop.write()
    shop.sync()

    dry = shop.erase("--email", "maria.lopez@example.com")
    assert dry.exit_code == 0, dry.output
    assert "  unverified answers holding the e-mail (a form's own question, a comment): 2 " in (
        dry.output
    )
    assert shop.erase("--email", "maria.lopez@example.com", "--yes").exit_code == 0
    with shop.kit.engine.connect() as conn:
        comments = [
            row.comment or ""
            for row in conn.execute(sa.select(unverified_answers.c.comment))
            if "lopez@" in (row.comment or "").casefold()
        ]
    assert comments == ["ask maria.lopez@example.com.au"]


def test_an_address_in_another_spelling_is_another_customers(shop: Shop):
    """The address is compared without case, as the database lowers it (``_customer``),
    never by Unicode case folding: "straße@…" and "strasse@…" are two addresses (folding made
    them one, and erasing one customer took the other's comment); "STRASSE@…" in capitals is
    "strasse@…" still."""
    shop.lines["ss"] = "2026/11/20 1:25:00 PM GMT+3,4,write to strasse@example.com,Anna,X-9,"
    shop.lines["sharp"] = "2026/11/20 1:26:00 PM GMT+3,4,write to straße@example.com,Anna,X-8,"
    shop.write()
    shop.sync()

    dry = shop.erase("--email", "straße@example.com")
    assert dry.exit_code == 0, dry.output
    assert "  unverified answers holding the e-mail (a form's own question, a comment): 1 " in (
        dry.output
    )
    assert shop.erase("--email", "STRAßE@example.com", "--yes").exit_code == 0
    assert shop.erase("--email", "STRASSE@example.com", "--yes").exit_code == 0
    with shop.kit.engine.connect() as conn:
        rows = conn.execute(
            sa.select(unverified_answers.c.comment, unverified_answers.c.source_row).where(
                unverified_answers.c.rating == 4
            )
        ).all()
    assert [(row.comment, row.source_row) for row in rows] == [(None, {}), (None, {})]

    shop.lines["ss-again"] = "2026/11/20 1:27:00 PM GMT+3,4,strasse@example.com here,Anna,X-7,"
    shop.write()
    shop.sync()
    assert shop.erase("--email", "straße@example.com", "--yes").exit_code == 0
    with shop.kit.engine.connect() as conn:
        kept = conn.execute(
            sa.select(unverified_answers.c.comment).where(unverified_answers.c.rating == 4)
        ).scalars()
        assert "strasse@example.com here" in list(kept)


@pytest.mark.parametrize("email", ["maria", "a", "%", "_", "*", "@example.com", "maria@", "@"])
def test_an_email_that_is_no_address_is_bad_usage(shop: Shop, email: str):
    """--email takes an address: a name or a word (a careless "--email maria", "a") matched
    no survey but erased every unverified answer whose comment held that word ("maria
    forged", "without a reference"), anyone's. A LIKE wildcard never matched all, and is
    refused the same way. Exit 2, the value not echoed, nothing changed."""
    before = shop.dump()
    result = shop.erase("--email", email, "--yes")
    assert result.exit_code == 2, result.output
    assert "--email" in result.output and "not an e-mail address" in result.output
    assert "maria" not in result.output.lower()
    assert shop.dump() == before


@pytest.mark.parametrize(
    "args",
    [("--customer-id", MARIA["customer_id"]), ("--dialog", "D-2"), ("--dialog", "D-2", "--yes")],
)
def test_a_helpdesk_neither_configured_nor_stored_is_bad_usage(shop: Shop, args: tuple[str, ...]):
    """A misspelt --helpdesk said "Nothing to erase" (exit 0), and with --dialog --yes recorded
    the erasure of a dialog of a helpdesk that does not exist: the operator believed it done."""
    before = shop.dump()
    result = shop.erase("--helpdesk", "dryrnu", *args)
    assert result.exit_code == 2, result.output
    assert "--helpdesk" in result.output
    assert "no helpdesk named 'dryrnu'; configured: dryrun" in result.output
    assert "Nothing to erase" not in result.output
    assert shop.dump() == before


def test_a_helpdesk_removed_from_the_config_may_still_be_erased_from(shop: Shop):
    """Its rows stay in the database after it left the configuration: an erasure request must
    still reach them."""
    with shop.kit.engine.begin() as conn:
        conn.execute(sa.update(surveys).values(helpdesk="retired"))
        conn.execute(sa.update(outbox).values(helpdesk="retired"))
        conn.execute(sa.update(answers).values(helpdesk="retired"))
    result = shop.erase("--helpdesk", "retired", "--customer-id", MARIA["customer_id"], "--yes")
    assert result.exit_code == 0, result.output
    assert "  surveys: 2 " in result.output
    with shop.kit.engine.connect() as conn:
        emails = conn.execute(sa.select(surveys.c.customer_email).order_by(surveys.c.id)).all()
    assert [e[0] for e in emails] == [None, None, BOB["customer_email"]]


# --- a ticket as a person types it ----------------------------------------------------------


def _typed(name: str, ticket: str) -> str:
    """An answer without a reference from ``name``, typed with ``ticket`` (CSV-quoted)."""
    return f'2026/11/20 1:50:00 PM GMT+3,3,{name} typed a ticket,Anna,"{ticket}",'


def _unverified_comments(shop: Shop) -> dict[str, str | None]:
    with shop.kit.engine.connect() as conn:
        rows = conn.execute(
            sa.select(unverified_answers.c.rating, unverified_answers.c.comment).where(
                unverified_answers.c.rating == 3
            )
        ).all()
    return {str(comment): comment for _, comment in rows}


def test_a_ticket_typed_in_another_case_or_with_a_hash_is_the_same_ticket(shop: Shop):
    """The ticket field holds the dialog as the respondent typed it: "#d-2", "D-2 " or "d-2"
    are D-2, and erasing D-2 missed them (an exact match): a privacy defect. D-20, D and
    "D-2 x" are other tickets: never erased with D-2."""
    for name, ticket in (
        ("Hash", "#d-2"),
        ("Lower", "d-2"),
        ("Spaced", " # D-2 "),
        ("Longer", "D-20"),
        ("Shorter", "D"),
        ("Other", "D-2 x"),
    ):
        shop.lines[name] = _typed(name, ticket)
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()

    dry = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-2")
    assert dry.exit_code == 0, dry.output
    # The answer without a reference typed "D-2", and the three typed otherwise.
    assert "  unverified answers matched by typed ticket only: 4 " in dry.output
    assert "3 of them typed the ticket in another case" in dry.output

    applied = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-2", "--yes")
    assert applied.exit_code == 0, applied.output
    left = sorted(c for c in _unverified_comments(shop).values() if c)
    assert left == ["Longer typed a ticket", "Other typed a ticket", "Shorter typed a ticket"]


@pytest.mark.parametrize(
    ("dialog", "rendered", "others"),
    [
        # A long id in a number cell: shown in scientific notation, or kept to 15 digits (cut
        # or rounded at the 15th).
        (
            "1234567890123456789",
            ["1.23457E+18", "1,23457E+18", "1234567890123450000", "1234567890123460000"],
            ["1.23458E+18", "1234567890123470000", "123456789012345678"],
        ),
        # Leading zeros dropped.
        ("000987", ["987", "0987"], ["9870", "98"]),
    ],
)
def test_a_ticket_as_a_spreadsheet_rendered_the_dialog_is_erased_with_it(
    shop: Shop, dialog: str, rendered: list[str], others: list[str]
):
    """An export opened and saved in Excel holds a numeric dialog id as Excel shows it
    (``sync.attribution``'s spreadsheet renderings): the erasure compared the ticket field
    with the dialog exactly (as typed), and left those answers' comments behind. Another
    number is never one of them."""
    for index, ticket in enumerate([*rendered, *others]):
        shop.lines[f"typed-{index}"] = _typed(f"T{index}", ticket)
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    typed = {f"T{i} typed a ticket" for i in range(len(rendered) + len(others))}
    assert typed <= set(_unverified_comments(shop))

    dry = shop.erase("--helpdesk", HELPDESK, "--dialog", dialog)
    assert dry.exit_code == 0, dry.output
    assert f"  unverified answers matched by typed ticket only: {len(rendered)} " in dry.output

    applied = shop.erase("--helpdesk", HELPDESK, "--dialog", dialog, "--yes")
    assert applied.exit_code == 0, applied.output
    left = {c for c in _unverified_comments(shop).values() if c}
    assert left == {f"T{len(rendered) + i} typed a ticket" for i in range(len(others))}


@pytest.mark.parametrize("given", ["d-2", "#D-2", " # d-2 "])
def test_a_dialog_given_as_a_person_types_it_finds_the_stored_one_and_says_so(
    shop: Shop, given: str
):
    # "--dialog d-2" found nothing of the stored D-2 and recorded the erasure of "d-2".
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", given, "--yes")
    assert result.exit_code == 0, result.output
    assert "--dialog matched the stored dialog 'D-2'" in result.output
    assert "  surveys: 1 " in result.output
    with shop.kit.engine.connect() as conn:
        customers = dict(
            conn.execute(sa.select(surveys.c.dialog_id, surveys.c.customer_email)).all()
        )
        recorded = conn.execute(sa.select(erased_dialogs.c.dialog_id)).scalars().all()
    assert customers == {
        "D-1": MARIA["customer_email"],
        "D-2": None,
        "D-3": BOB["customer_email"],
    }
    assert recorded == ["D-2"]


@pytest.mark.parametrize("given", ["D", "D-", "-2", "D-20", "#D"])
def test_a_part_of_a_dialog_never_erases_it(shop: Shop, given: str):
    before = shop.dump()
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", given, "--yes")
    assert result.exit_code == 0, result.output
    assert "matched the stored dialog" not in result.output
    after = shop.dump()
    # Only the erasure record of that (unknown) dialog is added: no text is gone.
    assert {k: v for k, v in after.items() if k != "erased_dialogs"} == {
        k: v for k, v in before.items() if k != "erased_dialogs"
    }


def test_a_dialog_given_with_a_hash_is_recorded_without_it(shop: Shop):
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "#D-9", "--yes")
    assert result.exit_code == 0, result.output
    with shop.kit.engine.connect() as conn:
        assert conn.execute(sa.select(erased_dialogs.c.dialog_id)).scalars().all() == ["D-9"]


def test_a_later_answer_typed_in_another_form_is_stored_without_its_text(shop: Shop):
    """The sync matches a typed ticket with the erased dialogs the same way: a row typed
    "#d-9" after D-9 was erased is stored with its rating only; "D-90" keeps its text."""
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", "--yes")
    assert result.exit_code == 0, result.output
    shop.lines["zoe"] = _typed("Zoe", "#d-9 ")
    shop.lines["yan"] = _typed("Yan", "D-90")
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert held(shop.dump(), ZOE) == {}
    assert ZOE not in shop.report_text().lower()
    assert held(shop.dump(), "yan typed") == {"unverified_answers": 1}


@pytest.mark.parametrize("erased_as", ["dialog", "customer"])
@pytest.mark.parametrize(
    ("dialog", "rendered", "others"),
    [
        (
            "1234567890123456789",
            ["1.23457E+18", "1,23457e+18", "1234567890123450000", "1234567890123460000"],
            ["1.23458E+18", "1234567890123470000", "123456789012345678"],
        ),
        ("000987", ["987", "0987"], ["9870", "98"]),
    ],
)
def test_a_later_answer_typed_as_a_spreadsheet_rendered_the_erased_dialog_keeps_no_text(
    shop: Shop, erased_as: str, dialog: str, rendered: list[str], others: list[str]
):
    """The sync looked erased dialogs up by the spellings of the typed ticket, which never
    find the dialog a spreadsheet rendering stands for (a rounded one cannot be turned back):
    a new unverified answer typed "1.23457E+18" after 1234567890123456789 was erased, as a
    dialog (``erased_dialogs``) or with its customer's surveys (``erasures``), kept its
    comment. It is stored with its rating only; another number keeps its text."""
    if erased_as == "dialog":
        result = shop.erase("--helpdesk", HELPDESK, "--dialog", dialog, "--yes")
    else:
        shop.survey(dialog, MARIA)
        result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert result.exit_code == 0, result.output
    for index, ticket in enumerate([*rendered, *others]):
        shop.lines[f"typed-{index}"] = _typed(f"T{index}", ticket)
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    with shop.kit.engine.connect() as conn:
        stored = conn.execute(
            sa.select(unverified_answers.c.field_ticket, unverified_answers.c.comment).where(
                unverified_answers.c.rating == 3
            )
        ).all()
    # Every typed answer is stored, the renderings without their text (nor their ticket).
    assert len(stored) == len(rendered) + len(others)
    assert sorted((row.field_ticket, row.comment) for row in stored if row.comment) == sorted(
        (ticket, f"T{len(rendered) + i} typed a ticket") for i, ticket in enumerate(others)
    )
    assert all(not row.field_ticket for row in stored if not row.comment)


def test_two_stored_dialogs_differing_only_in_case_are_not_guessed_between(shop: Shop):
    shop.survey("d-2", BOB)  # a helpdesk whose ids are case-sensitive
    before = shop.dump()
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "#D-2", "--yes")
    assert result.exit_code == 2, result.output
    assert "names 2 stored dialogs" in result.output and "exactly as stored" in result.output
    assert shop.dump() == before
    exact = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-2")
    assert exact.exit_code == 0 and "matched the stored dialog" not in exact.output
    assert "  surveys: 1 " in exact.output


@pytest.mark.parametrize(
    ("typed", "form"),
    [
        ("D38", "d38"),
        ("#D38", "d38"),
        (" # d38 ", "d38"),
        ("\uff24\uff13\uff18", "d38"),  # full-width, as some keyboards type it
        ("D3", "d3"),
        ("##D38", "#d38"),
        ("#", ""),
        ("  ", ""),
    ],
)
def test_a_ticket_form_drops_case_spaces_and_one_leading_hash(typed: str, form: str):
    assert ticket_form(typed) == form


def test_a_dialog_erased_in_another_case_before_it_is_stored_keeps_later_texts_out(shop: Shop):
    """Nothing of D-9 is stored when "--dialog d-9" is erased: it is recorded as given. A
    later answer credited to D-9, or naming it by a forged reference, is that ticket: stored
    without its text. Another helpdesk's D-9 is not, nor this helpdesk's D-90."""
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "d-9", "--yes")
    assert result.exit_code == 0, result.output
    issued = shop.kit.now - timedelta(hours=2)
    credited = tokens.sign(SECRET, tokens.SurveyRef(HELPDESK, "D-9", "7", issued))
    forged = tokens.sign("a-secret-nobody-knows", tokens.SurveyRef(HELPDESK, "D-9", "7", issued))
    longer = tokens.sign(SECRET, tokens.SurveyRef(HELPDESK, "D-90", "7", issued))
    elsewhere = tokens.sign(SECRET, tokens.SurveyRef("otherdesk", "D-9", "7", issued))
    shop.lines.update(
        {
            "zoe-credited": f"2026/11/20 2:10:00 PM GMT+3,2,Zoe credited,Anna,D-9,{credited}",
            "zoe-forged": f"2026/11/20 2:11:00 PM GMT+3,1,Zoe forged,Anna,X-1,{forged}",
            "longer": f"2026/11/20 2:12:00 PM GMT+3,5,Yan on D-90,Anna,D-90,{longer}",
            "elsewhere": f"2026/11/20 2:13:00 PM GMT+3,5,Olga elsewhere,Anna,X-2,{elsewhere}",
        }
    )
    shop.write()
    shop.kit.now += timedelta(minutes=5)
    shop.sync()
    assert held(shop.dump(), ZOE) == {}
    assert held(shop.dump(), "yan on d-90") == {"answers": 1}
    assert held(shop.dump(), "olga elsewhere") == {"answers": 1}


def _remember_reopens(shop: Shop, *dialogs: tuple[str, str]) -> None:
    """Reopens delivered before their closes, remembered by intake for these dialogs."""
    with shop.kit.engine.begin() as conn:
        for helpdesk, dialog in dialogs:
            remember_reopen(conn, helpdesk, dialog, shop.kit.now, shop.kit.now)


def _reopens(shop: Shop) -> set[tuple[str, str]]:
    with shop.kit.engine.connect() as conn:
        rows = conn.execute(sa.select(early_reopens.c.helpdesk, early_reopens.c.dialog_id))
        return {(row.helpdesk, row.dialog_id) for row in rows}


def test_the_remembered_reopens_of_the_customers_dialogs_are_deleted(shop: Shop):
    """An early reopen is remembered by helpdesk and dialog only (no customer field): an
    erasure by e-mail deletes those of the dialogs of the customer's surveys, counted; Bob's
    dialog, another helpdesk's dialog of the same id and a dialog with no survey are kept."""
    kept = {(HELPDESK, "D-3"), ("otherdesk", "D-2"), (HELPDESK, "D-9")}
    _remember_reopens(shop, (HELPDESK, "D-1"), (HELPDESK, "D-2"), *sorted(kept))
    before = shop.dump()
    dry = shop.erase("--email", "maria.lopez@example.com")
    assert dry.exit_code == 0, dry.output
    assert shop.dump() == before
    assert "  remembered early reopens of these dialogs: 2 " in dry.output

    applied = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "  remembered early reopens of these dialogs: 2 " in applied.output
    assert _reopens(shop) == kept
    again = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert "Nothing to erase" in again.output, again.output


def test_a_dialog_erasure_deletes_its_remembered_reopen_even_with_nothing_else_stored(
    shop: Shop,
):
    _remember_reopens(shop, (HELPDESK, "D-9"), (HELPDESK, "D-2"), ("otherdesk", "D-9"))
    applied = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Erased:" in applied.output
    assert "  remembered early reopens of these dialogs: 1 " in applied.output
    assert "  erasure records: 1 " in applied.output
    assert _reopens(shop) == {(HELPDESK, "D-2"), ("otherdesk", "D-9")}

    by_dialog = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-2", "--yes")
    assert "  remembered early reopens of these dialogs: 1 " in by_dialog.output
    assert _reopens(shop) == {("otherdesk", "D-9")}
    again = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-9", "--yes")
    assert "Nothing to erase" in again.output, again.output


def _claim_d1(shop: Shop) -> tuple[Any, Any]:
    """D-1's reply queued, then claimed as a worker claims it: the row and its survey as the
    worker holds them (its customer fields included) while it sends."""
    from csat_hook.outbox import store as outbox_store

    with shop.kit.engine.begin() as conn:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.dialog_id == "D-1", outbox.c.kind == REPLY)
            .values(status=PENDING, body=None, sent_at=None, next_attempt_at=shop.kit.now)
        )
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.dialog_id == "D-1")
            .values(status="queued", sent_at=None)
        )
        # Nothing else is due meanwhile (the alerts' deliveries): this one claim is D-1's.
        conn.execute(
            sa.update(outbox)
            .where(sa.not_(sa.and_(outbox.c.dialog_id == "D-1", outbox.c.kind == REPLY)))
            .values(next_attempt_at=shop.kit.now + timedelta(days=30))
        )
    now = shop.kit.now + timedelta(seconds=1)
    with shop.kit.engine.begin() as conn:
        (item,) = outbox_store.claim_due(conn, "worker-1", now, now + timedelta(minutes=5), 10)
        survey = outbox_store.surveys_by_id(conn, [item.survey_id])[item.survey_id]
    assert item.status == SENDING and survey.customer_name == MARIA["customer_name"]
    return item, survey


@pytest.mark.parametrize("outcome", ["sent", "retry", "retry-uncertain", "failed", "taken-over"])
def test_a_reply_being_sent_is_erased_in_one_run_and_its_outcome_writes_nothing_back(
    shop: Shop, outcome: str
):
    """The erasure finds D-1's reply claimed by a worker: it erases the survey's customer
    fields and the row's context now, and marks the row, so whatever the worker records
    keeps no customer data: sent, recorded once as sent (exactly once: never sent again)
    without its text; a retry, a takeover or a failure cancels it (never sent again to the
    customer whose data is erased). One run: nothing is left for a second."""
    from csat_hook.outbox import store as outbox_store

    item, survey = _claim_d1(shop)
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert "run the same command again" not in result.output
    assert "  surveys: 2 " in result.output
    assert held(shop.dump()) == {}

    later = shop.kit.now + timedelta(seconds=30)
    with shop.kit.engine.begin() as conn:
        if outcome == "sent":
            # The text as the worker rendered it, from the survey row it held.
            body = f"Hi {survey.customer_name}, how did we do?"
            assert outbox_store.mark_sent(
                conn,
                item.id,
                "worker-1",
                later,
                external_id="msg-1",
                body=body,
                agent_id="7",
                agent_name="Anna Petrova",
                agent_email=None,
                link="https://forms.example/x",
            )
        elif outcome.startswith("retry"):
            assert outbox_store.reschedule(
                conn,
                item.id,
                "worker-1",
                later,
                next_attempt_at=later,
                error="HTTP 503",
                http_status=503,
                uncertain_since=later if outcome == "retry-uncertain" else None,
            )
        elif outcome == "failed":
            assert outbox_store.mark_failed(
                conn, item.id, "worker-1", later, error="HTTP 404", http_status=404
            )
        else:
            released = outbox_store.release_stale(
                conn,
                later + timedelta(minutes=10),
                dead_before=later + timedelta(minutes=10),
                quiet_before=later + timedelta(minutes=10),
                check_at=later + timedelta(minutes=10),
            )
            assert released == [item.id]
    assert held(shop.dump()) == {}
    with shop.kit.engine.connect() as conn:
        row = conn.execute(
            sa.select(outbox.c.status, outbox.c.body, outbox.c.context, outbox.c.external_id).where(
                outbox.c.id == item.id
            )
        ).one()
        status = conn.execute(
            sa.select(surveys.c.status).where(surveys.c.id == item.survey_id)
        ).scalar_one()
    expected = {
        "sent": (SENT, SENT),
        "retry": (CANCELLED, CANCELLED),
        "retry-uncertain": (CANCELLED, CANCELLED),
        "failed": (CANCELLED, "failed"),
        "taken-over": (CANCELLED, CANCELLED),
    }[outcome]
    assert (row.status, status) == expected
    assert (row.body, row.context) == (None, {})
    if outcome == "sent":
        assert row.external_id == "msg-1"
    # Nothing is due: no claim takes it again.
    with shop.kit.engine.begin() as conn:
        far = later + timedelta(days=1)
        assert outbox_store.claim_due(conn, "worker-2", far, far, 10) == []
    again = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert again.exit_code == 0 and "Nothing to erase" in again.output, again.output


@pytest.mark.parametrize("outcome", ["sent", "taken-over"])
def test_a_dialog_whose_reply_is_being_sent_is_erased_in_one_run_as_a_customer_is(
    shop: Shop, outcome: str
):
    """``--dialog`` erases a reply being sent as ``--email`` and ``--customer-id`` do: the
    survey's customer fields and the reply's context now, the row marked, so the worker's
    outcome writes nothing back; the output says so, and a second run finds nothing."""
    from csat_hook.outbox import store as outbox_store

    item, survey = _claim_d1(shop)
    dry = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-1")
    assert "1 survey replies to this customer are being sent right now: --yes" in dry.output
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-1", "--yes")
    assert result.exit_code == 0, result.output
    assert "  surveys: 1 " in result.output, result.output
    assert "1 survey replies to this customer were being sent right now" in result.output

    later = shop.kit.now + timedelta(seconds=30)
    with shop.kit.engine.begin() as conn:
        if outcome == "sent":
            assert outbox_store.mark_sent(
                conn,
                item.id,
                "worker-1",
                later,
                external_id="msg-1",
                body=f"Hi {survey.customer_name}, how did we do?",
            )
        else:
            far = later + timedelta(minutes=10)
            released = outbox_store.release_stale(
                conn, far, dead_before=far, quiet_before=far, check_at=far
            )
            assert released == [item.id]
    with shop.kit.engine.connect() as conn:
        customer = conn.execute(
            sa.select(
                surveys.c.customer_id, surveys.c.customer_email, surveys.c.customer_name
            ).where(surveys.c.id == item.survey_id)
        ).one()
        reply = conn.execute(
            sa.select(outbox.c.status, outbox.c.body, outbox.c.context).where(
                outbox.c.id == item.id
            )
        ).one()
        comment = conn.execute(
            sa.select(answers.c.comment).where(answers.c.dialog_id == "D-1")
        ).scalar_one()
    assert tuple(customer) == (None, None, None)
    assert tuple(reply) == ({"sent": SENT}.get(outcome, CANCELLED), None, {})
    assert comment is None
    again = shop.erase("--helpdesk", HELPDESK, "--dialog", "D-1", "--yes")
    assert again.exit_code == 0 and "Nothing to erase" in again.output, again.output


FULLWIDTH = "ＭＡＲＩＡ．ＬＯＰＥＺ＠ｅｘａｍｐｌｅ．ｃｏｍ"  # maria.lopez@example.com, NFKC


def test_an_address_in_fullwidth_characters_is_the_same_address_both_ways(shop: Shop):
    """E-mail addresses are compared under NFKC and lowered: "ＭＡＲＩＡ＠…" typed on a
    fullwidth keyboard is maria@…, stored or given (never case-folded: see the straße test)."""
    with shop.kit.engine.begin() as conn:
        conn.execute(
            sa.update(surveys).where(surveys.c.dialog_id == "D-2").values(customer_email=FULLWIDTH)
        )
    # Stored in fullwidth, given in ASCII; and stored in ASCII, given in fullwidth.
    for given in ("maria.lopez@example.com", FULLWIDTH, "ｍａｒｉａ.lopez@EXAMPLE.com"):
        result = shop.erase("--email", given)
        assert result.exit_code == 0, result.output
        assert "  surveys: 2 " in result.output, (given, result.output)

    shop.lines["wide"] = f"2026/11/20 1:25:00 PM GMT+3,4,write to {FULLWIDTH} please,Anna,X-9,"
    shop.lines["narrow"] = "2026/11/20 1:26:00 PM GMT+3,4,or maria.lopez@example.com,Anna,X-8,"
    shop.write()
    shop.sync()
    for given in ("maria.lopez@example.com", FULLWIDTH):
        dry = shop.erase("--email", given)
        assert (
            "  unverified answers holding the e-mail (a form's own question, a comment): 2 "
            in dry.output
        ), (given, dry.output)
    assert shop.erase("--email", FULLWIDTH, "--yes").exit_code == 0
    assert held(shop.dump()) == {}
    with shop.kit.engine.connect() as conn:
        emails = conn.execute(sa.select(surveys.c.customer_email)).scalars().all()
    assert [email for email in emails if email] == [BOB["customer_email"]]


# Pasted from a mail client, a chat or a PDF: characters that show nothing around and inside
# Maria's address (a zero-width space, a byte order mark, a word joiner, a soft hyphen,
# left-to-right marks), and a no-break space.
INVISIBLE = "\ufeff\u200eMaria.Lo\u00adpez@Exam\u200bple.COM\u2060\u200e\xa0"


def test_an_address_with_characters_that_show_nothing_is_the_same_address(shop: Shop):
    """Zero-width spaces, joiners at its ends, byte order marks, soft hyphens and bidi marks
    show nothing, and no address holds them (IDNA drops or refuses them in a domain): they are
    left out on both sides, stored or given, in surveys and in unverified answers alike. A
    zero-width joiner or non-joiner inside stays: it tells two words (and domains) apart in
    Persian or Hindi, so the address with one is another's."""
    with shop.kit.engine.begin() as conn:
        conn.execute(
            sa.update(surveys).where(surveys.c.dialog_id == "D-2").values(customer_email=INVISIBLE)
        )
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.dialog_id == "D-3")
            .values(customer_email="mar\u200cia.lopez@example.com")
        )
    for given in ("maria.lopez@example.com", INVISIBLE, "\u200dmaria.lopez@example.com\u200c"):
        result = shop.erase("--email", given)
        assert result.exit_code == 0, result.output
        assert "  surveys: 2 " in result.output, (ascii(given), result.output)

    shop.lines["hidden"] = f"2026/11/20 1:25:00 PM GMT+3,4,write to {INVISIBLE}please,Anna,X-9,"
    shop.write()
    shop.sync()
    dry = shop.erase("--email", "maria.lopez@example.com")
    assert (
        "  unverified answers holding the e-mail (a form's own question, a comment): 1 "
        in dry.output
    ), dry.output
    assert shop.erase("--email", INVISIBLE, "--yes").exit_code == 0
    assert held(shop.dump()) == {}
    with shop.kit.engine.connect() as conn:
        emails = conn.execute(sa.select(surveys.c.customer_email)).scalars().all()
    assert [email for email in emails if email] == ["mar\u200cia.lopez@example.com"]


def test_a_dry_run_says_a_reply_being_sent_would_be_erased_too(shop: Shop):
    _claim_d1(shop)
    before = shop.dump()
    result = shop.erase("--email", "maria.lopez@example.com")
    assert result.exit_code == 0, result.output
    assert shop.dump() == before
    assert "  surveys: 2 " in result.output
    assert "1 survey replies to this customer are being sent right now: --yes erases" in (
        result.output
    )


def blocked_by(engine: sa.Engine, pid: int) -> bool:
    """Whether a PostgreSQL session waits for a lock the backend ``pid`` holds."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE :p = ANY(pg_blocking_pids(pid))"),
            {"p": pid},
        ).scalar_one()
    return bool(found)


def test_an_erasure_aborted_as_a_deadlock_is_run_again_and_erases_everything(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
):
    """PostgreSQL: another writer takes one of Maria's surveys while the erasure holds her
    replies, then waits for one of those replies; the erasure, waiting for the survey first,
    is the one PostgreSQL aborts as a deadlock. Nothing was erased then: the command runs the
    erasure again (a bounded number of times) and exits 0 with everything erased, instead of
    exiting 1."""
    import threading
    import time

    if shop.kit.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: one writer at a time (BEGIN IMMEDIATE), no deadlock")
    from csat_hook.erasure import store as erasure_store

    engine = shop.kit.engine
    original = erasure_store._alert_messages
    holding = threading.Event()
    other: dict[str, Any] = {}

    def other_writer() -> None:
        # Survey first, then its reply: the opposite of the erasure's order.
        with engine.begin() as conn:
            # PostgreSQL aborts the session whose deadlock_timeout runs out first: the
            # erasure's (it waits first), unless a loaded machine lets this one's check run
            # first. This session checks only after 10 s, so the erasure is the one aborted.
            conn.execute(sa.text("SET LOCAL deadlock_timeout = '10s'"))
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            survey = conn.execute(
                sa.update(surveys)
                .where(surveys.c.dialog_id == "D-1")
                .values(team=surveys.c.team)
                .returning(surveys.c.id)
            ).scalar_one()
            holding.set()
            deadline = time.monotonic() + 20
            while not blocked_by(engine, pid):  # the erasure waits for this survey
                assert time.monotonic() < deadline
                time.sleep(0.02)
            conn.execute(
                sa.select(outbox.c.id).where(outbox.c.survey_id == survey).with_for_update()
            ).all()
        other["committed"] = True

    racing = threading.Thread(target=other_writer)

    def race_once(*args: Any, **kwargs: Any) -> Any:
        if not racing.is_alive() and not other:  # the first run only
            racing.start()
            assert holding.wait(20)
        return original(*args, **kwargs)

    monkeypatch.setattr(erasure_store, "_alert_messages", race_once)
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    racing.join(timeout=20)

    assert other == {"committed": True}
    assert result.exit_code == 0, result.output
    assert "  surveys: 2 " in result.output
    assert held(shop.dump()) == {}


def test_two_erasures_taking_the_same_replies_wait_for_each_other_instead_of_deadlocking(
    shop: Shop, caplog: pytest.LogCaptureFixture
):
    """PostgreSQL: the erasure locks the customer's replies in the order of their ids, the
    order another erasure of them takes too (one run past an expired sync lease), and
    ``outbox retry``'s (outbox/listing.py). Maria's replies are stored so that neither
    the table's order (a reply rewritten since moves to its end) nor her surveys' order is
    their ids' order. Another erasure of the same replies holds the first of them: the
    erasure waits for it holding none, and the other one takes the second and commits. Locked
    in the table's order, the erasure held the second while waiting for the first: a deadlock,
    one of the two aborted (and the erasure run again)."""
    import threading
    import time

    if shop.kit.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: one writer at a time (BEGIN IMMEDIATE), no row locks")
    engine = shop.kit.engine
    with engine.begin() as conn:
        mine = dict(
            conn.execute(
                sa.select(surveys.c.dialog_id, surveys.c.id).where(
                    surveys.c.dialog_id.in_(("D-1", "D-2"))
                )
            ).all()
        )
        assert mine["D-1"] < mine["D-2"]
        kept = conn.execute(
            sa.select(outbox).where(outbox.c.kind == REPLY, outbox.c.dialog_id == "D-1")
        ).one()
        conn.execute(sa.delete(outbox).where(outbox.c.id == kept.id))
        # D-1's reply stored again: a higher id than D-2's, a survey id lower...
        again = {k: v for k, v in kept._mapping.items() if k != "id"}
        first = conn.execute(sa.insert(outbox).values(**again).returning(outbox.c.id)).scalar_one()
    with engine.begin() as conn:
        second = conn.execute(
            sa.select(outbox.c.id).where(outbox.c.kind == REPLY, outbox.c.dialog_id == "D-2")
        ).scalar_one()
        assert second < first
        # ...and D-2's rewritten (an indexed column changed: a new row version and new index
        # entries), in the table and in its indexes after D-1's.
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == second)
            .values(next_attempt_at=shop.kit.now + timedelta(days=1))
        )
    lowest, highest = second, first
    other: dict[str, Any] = {}
    holding = threading.Event()

    def other_erasure() -> None:
        try:
            with engine.begin() as conn:
                pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
                lock = sa.select(outbox.c.id).with_for_update()
                conn.execute(lock.where(outbox.c.id == lowest)).all()
                holding.set()
                deadline = time.monotonic() + 20
                while not blocked_by(engine, pid):  # the erasure waits for the first reply
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
                conn.execute(lock.where(outbox.c.id == highest)).all()
            other["committed"] = True
        except Exception as exc:  # reported by the assertion below
            other["failed"] = repr(exc)

    racing = threading.Thread(target=other_erasure)
    racing.start()
    assert holding.wait(20)
    with caplog.at_level(logging.WARNING, logger="csat_hook"):
        result = shop.erase("--email", "maria.lopez@example.com", "--yes")
    racing.join(timeout=20)

    assert other == {"committed": True}
    assert result.exit_code == 0, result.output
    assert "erasure.deadlock-retried" not in [record.msg for record in caplog.records]
    assert "  surveys: 2 " in result.output
    assert held(shop.dump()) == {}


def test_an_address_between_words_parted_by_zero_width_spaces_is_found(shop: Shop):
    """Thai (Khmer, Lao, Burmese) text has no spaces between words: a zero-width space parts
    them, so it parts the address from the words around it in a comment. Left out, it joined
    them ("ติดต่อmaria…comครับ"), and the address was no longer found standing alone."""
    thai = "ติดต่อ\u200bmaria.lopez@example.com\u200bครับ"
    shop.lines["thai"] = f"2026/11/20 1:25:00 PM GMT+3,4,{thai},Anna,X-9,"
    shop.write()
    shop.sync()
    dry = shop.erase("--email", "maria.lopez@example.com")
    assert (
        "  unverified answers holding the e-mail (a form's own question, a comment): 1 "
        in dry.output
    ), dry.output
    assert shop.erase("--email", "maria.lopez@example.com", "--yes").exit_code == 0
    assert held(shop.dump()) == {}


def dry_run_line(dialog_id: str, text: str, kind: str = "reply") -> dict[str, Any]:
    """A line as the dry-run helpdesk writes it (helpdesks/dryrun.py)."""
    return {
        "type": kind,
        "helpdesk": HELPDESK,
        "dialog_id": dialog_id,
        "text": text,
        "link": f"https://csat.example/s/{dialog_id}-ref/5",
        "agent": {"id": "7", "name": "Anna Petrova", "email": None},
        "idempotency_key": f"key-{dialog_id}-{kind}",
        "marker": f"marker-{dialog_id}",
        "at": "2026-11-20T10:00:00+00:00",
        "html": f"<p>{text}</p>",
    }


def test_the_dry_run_helpdesks_lines_about_the_customer_keep_only_what_was_posted(shop: Shop):
    # The dry-run helpdesk's file holds the replies as sent and the alert notes: the
    # customer's name and comments. Each line stays (the worker finds a reply posted by its
    # marker after an unknown outcome), without its text.
    output = shop.tmp_path / "dry.jsonl"
    lines = [
        dry_run_line("D-1", "Hi Maria Lopez, how did we do?"),
        dry_run_line("D-2", "Low rating: Thanks from MARIA", kind="note"),
        dry_run_line("D-3", "Hi Bob, how did we do?"),
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"cut short: Maria\n'
    output.write_text(text, encoding="utf-8")

    dry = shop.erase("--email", "maria.lopez@example.com")
    assert "  dry-run helpdesk lines (replies and notes in its output file): 2 " in dry.output
    assert output.read_text(encoding="utf-8") == text  # a dry run changes nothing

    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 0, result.output
    assert "  dry-run helpdesk lines (replies and notes in its output file): 2 " in result.output
    first, second, third, cut = output.read_text(encoding="utf-8").splitlines()
    kept = ("type", "helpdesk", "dialog_id", "marker", "idempotency_key", "at")
    assert json.loads(first) == {**{k: lines[0][k] for k in kept}, "erased": True}
    assert json.loads(second) == {**{k: lines[1][k] for k in kept}, "erased": True}
    assert json.loads(third) == lines[2]  # Bob's
    assert cut == '{"cut short: Maria'  # not a message posted: not matched to a dialog
    assert output.stat().st_mode & 0o777 == 0o600
    again = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert "Nothing to erase" in again.output, again.output


@pytest.fixture
def signals_restored() -> Iterator[None]:
    """SIGTERM's and SIGINT's handlers as they were before the test (``erase --yes`` installs
    its own while it runs, and a test may stop it between)."""
    import signal

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_ctrl_c_once_the_erasure_committed_waits_for_the_files(
    signals_restored: None, shop: Shop, monkeypatch: pytest.MonkeyPatch, signum: str
):
    """Ctrl-C (or SIGTERM) after the transaction committed, while the files were rewritten,
    left the dry-run file's lines about the customer whole: a second run found nothing to
    erase (the surveys that named their dialogs no longer name the customer). The files are
    erased first, and the command ends as it would have."""
    import signal

    from csat_hook.cli import erase as erase_cli

    output = shop.tmp_path / "dry.jsonl"
    text = "".join(json.dumps(dry_run_line(d, f"Hi Maria {d}")) + "\n" for d in ("D-1", "D-3"))
    output.write_text(text, encoding="utf-8")
    real = erase_cli.erase_files

    def erase_files(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("apply"):
            os.kill(os.getpid(), getattr(signal, signum))  # the operator, at the wrong moment
        return real(*args, **kwargs)

    monkeypatch.setattr(erase_cli, "erase_files", erase_files)
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 0, result.output
    assert "  dry-run helpdesk lines (replies and notes in its output file): 1 " in result.output
    assert "Hi Maria D-1" not in output.read_text(encoding="utf-8")  # D-3 is Bob's
    assert "interrupted" in result.stderr
    assert held(shop.dump()) == {}


def test_ctrl_c_before_the_erasure_committed_erases_nothing(
    signals_restored: None, shop: Shop, monkeypatch: pytest.MonkeyPatch
):
    import signal

    from csat_hook.erasure import store as erasure_store

    before = shop.dump()
    real = erasure_store.erase

    def erase_rows(*args: Any, **kwargs: Any) -> Any:
        tally = real(*args, **kwargs)
        if kwargs.get("apply"):
            os.kill(os.getpid(), signal.SIGINT)  # inside the transaction, before its commit
        return tally

    monkeypatch.setattr("csat_hook.cli.erase.erase_rows", erase_rows)
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 1, result.output  # click's "Aborted!"
    assert shop.dump() == before  # rolled back: nothing erased


def _failing_at(path: Path, name: str, error: OSError) -> Any:
    """``os.<name>`` that raises ``error`` when its first argument (or, for ``replace``, its
    destination) is ``path`` or a temporary beside it, else does as the real one: a failure
    root cannot bypass, as a read-only or full disk would make it (tests run as root, and
    chmod does not stop root's writes)."""
    real = getattr(os, name)

    def failing(*args: Any, **kwargs: Any) -> Any:
        targets = [args[0], args[1]] if name == "replace" else [args[0]]
        if any(isinstance(t, (str, os.PathLike)) and str(t).startswith(str(path)) for t in targets):
            raise error
        if name == "fsync" and isinstance(args[0], int):
            raise error  # an fd: only the rewrite fsyncs while this runs
        return real(*args, **kwargs)

    return failing


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("replace", PermissionError(errno.EACCES, "Permission denied")),
        ("fsync", OSError(errno.ENOSPC, "No space left on device")),
    ],
)
def test_a_dry_run_file_that_cannot_be_rewritten_is_named_and_exits_1(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, name: str, error: OSError
):
    """The database is erased all the same; the dry-run file is left as it was, whole,
    with no temporary file beside it (one held the rewritten text, and stayed), named in
    the output with why, and the exit is 1."""
    output = shop.tmp_path / "dry.jsonl"
    text = "".join(json.dumps(dry_run_line(d, f"Hi Maria {d}")) + "\n" for d in ("D-1", "D-3"))
    output.write_text(text, encoding="utf-8")
    monkeypatch.setattr(os, name, _failing_at(output, name, error))

    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 1, result.output
    assert "Could not be read or written: erase the customer's data there by hand:" in (
        result.output
    )
    assert f"  helpdesks.{HELPDESK}.output ({output}): {error.strerror}" in result.output
    assert output.read_text(encoding="utf-8") == text  # whole: the old text, not a part
    assert sorted(p.name for p in shop.tmp_path.iterdir() if p.name.startswith("dry.")) == [
        "dry.jsonl"
    ]
    monkeypatch.undo()
    assert held(shop.dump()) == {}  # the database is erased


def test_a_dialog_erasure_reaches_the_dry_run_file_too(shop: Shop):
    output = shop.tmp_path / "dry.jsonl"
    output.write_text(
        "".join(json.dumps(dry_run_line(d, f"Hi {d}")) + "\n" for d in ("D-1", "D-2")),
        encoding="utf-8",
    )
    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "d-2", "--yes")

    assert result.exit_code == 0, result.output
    one, two = (json.loads(line) for line in output.read_text(encoding="utf-8").splitlines())
    assert one["text"] == "Hi D-1" and "text" not in two and two["erased"] is True


def test_captured_payloads_naming_the_customer_are_deleted(shop: Shop):
    captures = shop.tmp_path / "captures"
    captures.mkdir()
    config = yaml.safe_load(shop.config_path.read_text(encoding="utf-8"))
    config["helpdesks"][HELPDESK]["capture_dir"] = str(captures)
    config["helpdesks"]["other"] = {
        "kind": "generic",
        "auth": {"mode": "token", "token": "other-token-0123456789"},
        "reply": {"url": "http://127.0.0.1:9/{dialog_id}"},
        "capture_dir": str(captures),
    }
    shop.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    name = "{}-20261120T100000000000-{}.json"
    bodies = {
        name.format(HELPDESK, "0000000a"): {"user": {"email": "maria.lopez@EXAMPLE.com"}},
        name.format(HELPDESK, "0000000b"): {"event": "closed", "conversation": {"id": "D-2"}},
        name.format(HELPDESK, "0000000c"): {"customer": {"id": "CUST-MARIA-77"}},
        name.format(HELPDESK, "0000000d"): {"conversation": {"id": "D-3"}, "who": "bob"},
        # Another helpdesk's dialog D-2 is another dialog.
        name.format("other", "0000000e"): {"conversation": {"id": "D-2"}},
        name.format("other", "0000000f"): {"from": "Maria.Lopez@example.com"},
    }
    for file_name, body in bodies.items():
        (captures / file_name).write_text(json.dumps(body), encoding="utf-8")
    not_json = name.format(HELPDESK, "00000010")
    (captures / not_json).write_text("email=maria.lopez%40x&e=Maria.Lopez@Example.com")
    unrelated = captures / "notes.txt"
    unrelated.write_text("maria.lopez@example.com")

    dry = shop.erase("--email", "maria.lopez@example.com")
    assert "  captured webhook payloads (capture_dir): 5 " in dry.output, dry.output
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 0, result.output
    assert "  captured webhook payloads (capture_dir): 5 " in result.output, result.output
    assert {p.name for p in captures.iterdir()} == {
        name.format(HELPDESK, "0000000d"),
        name.format("other", "0000000e"),
        "notes.txt",  # not a capture
    }


def _capture_dir(shop: Shop) -> Path:
    captures = shop.tmp_path / "captures"
    captures.mkdir()
    config = yaml.safe_load(shop.config_path.read_text(encoding="utf-8"))
    config["helpdesks"][HELPDESK]["capture_dir"] = str(captures)
    shop.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return captures


def test_a_capture_holding_the_address_inside_a_text_is_deleted(shop: Shop):
    # An e-mail channel's sender ("Name <address>") and an address in a message's body: the
    # captures were compared a whole value at a time and kept, the customer's name and
    # address with them.
    captures = _capture_dir(shop)
    name = "{}-20261120T100000000000-{}.json"
    bodies = {
        "0000000a": {"message": {"from": "Maria Lopez <maria.lopez@example.com>"}},
        "0000000b": {"text": "Please write to Maria.Lopez@example.com."},
        "0000000c": {"text": "Please write to xmaria.lopez@example.com"},  # another address
        "0000000d": {"text": "maria.lopez@example.com.au"},  # another address
    }
    for suffix, body in bodies.items():
        (captures / name.format(HELPDESK, suffix)).write_text(json.dumps(body), "utf-8")

    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 0, result.output
    assert "  captured webhook payloads (capture_dir): 2 " in result.output, result.output
    assert sorted(p.name for p in captures.iterdir()) == [
        name.format(HELPDESK, "0000000c"),
        name.format(HELPDESK, "0000000d"),
    ]


def test_a_short_dialog_id_deletes_only_the_captures_of_that_dialog(shop: Shop):
    # Erasing dialog "7" deleted every capture with a 7 anywhere in it (a priority, an
    # assignee's id): another customer's dialog 815 went with it.
    captures = _capture_dir(shop)
    name = "{}-20261120T100000000000-{}.json"
    bodies = {
        "0000000a": {"dialog": {"id": 815, "priority": 7}, "agent": {"id": 7}},
        "0000000b": {"dialog": {"id": 7}, "customer": {"id": "c-9"}},
        "0000000c": {"dialog": {"id": "815"}, "customer": {"id": 7}},  # not a dialog id
        # A body the mapping reads no id from (kept while a mapping was designed): any whole
        # value of it counts, the lesser harm.
        "0000000d": {"conversation": {"id": 7}},
    }
    for suffix, body in bodies.items():
        (captures / name.format(HELPDESK, suffix)).write_text(json.dumps(body), "utf-8")

    result = shop.erase("--helpdesk", HELPDESK, "--dialog", "7", "--yes")

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in captures.iterdir()) == [
        name.format(HELPDESK, "0000000a"),
        name.format(HELPDESK, "0000000c"),
    ]


def test_a_relative_dry_run_file_not_found_from_here_is_named(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = yaml.safe_load(shop.config_path.read_text(encoding="utf-8"))
    config["helpdesks"][HELPDESK]["output"] = "var/dry-run-replies.jsonl"
    shop.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = shop.erase("--email", "maria.lopez@example.com")

    assert result.exit_code == 0, result.output
    assert "Not found from this folder" in result.output
    assert f"  helpdesks.{HELPDESK}.output (var/dry-run-replies.jsonl)" in result.output


def test_a_capture_of_a_form_body_naming_the_customer_is_deleted(shop: Shop):
    # A generic helpdesk takes a close posted as a form (helpdesks/records.py), and its capture
    # is the body as posted: the address percent-encoded, the ids in form fields, or the JSON
    # in a ``payload`` field. Read as raw text only, none of them was found and all were kept.
    captures = _capture_dir(shop)
    name = "{}-20261120T100000000000-{}.json"
    inner = json.dumps({"customer": {"email": "maria.lopez@example.com"}})
    bodies = {
        "0000000a": "event=closed&email=Maria.Lopez%40Example.com&dialog=D-9",
        "0000000b": "event=closed&customer_id=CUST-MARIA-77",
        "0000000c": "payload=" + urllib.parse.quote(inner),
        "0000000d": "event=closed&email=bob%40example.org&dialog=D-3",
    }
    for suffix, body in bodies.items():
        (captures / name.format(HELPDESK, suffix)).write_text(body, "utf-8")

    by_email = shop.erase("--email", "maria.lopez@example.com", "--yes")
    assert by_email.exit_code == 0, by_email.output
    by_id = shop.erase("--helpdesk", HELPDESK, "--customer-id", "CUST-MARIA-77", "--yes")
    assert by_id.exit_code == 0, by_id.output

    assert sorted(p.name for p in captures.iterdir()) == [name.format(HELPDESK, "0000000d")]


def test_an_erasure_by_customer_id_takes_the_unverified_answers_holding_their_address(
    shop: Shop,
):
    """Erased by her customer id, Maria is the same person as by her address, which her
    surveys hold: an unverified answer giving that address (nothing else ties it to her) is
    erased as an erasure by address erases it, not kept with her address in it."""
    shop.lines["typed"] = (
        "2026/11/20 1:25:00 PM GMT+3,4,write to MARIA.Lopez@example.com please,Anna,X-9,"
    )
    shop.lines["bob"] = "2026/11/20 1:26:00 PM GMT+3,4,write to bob@example.org,Anna,X-8,"
    shop.write()
    shop.sync()

    result = shop.erase("--helpdesk", HELPDESK, "--customer-id", "CUST-MARIA-77", "--yes")

    assert result.exit_code == 0, result.output
    assert "  unverified answers holding the e-mail (a form's own question, a comment): 1 " in (
        result.output
    )
    with shop.kit.engine.connect() as conn:
        rows = {
            row.field_ticket: row
            for row in conn.execute(
                sa.select(
                    unverified_answers.c.comment,
                    unverified_answers.c.field_ticket,
                    unverified_answers.c.source_row,
                )
            )
        }
    assert not any("MARIA.Lopez" in f"{row.comment} {row.source_row}" for row in rows.values())
    assert rows["X-8"].comment == "write to bob@example.org"


def test_a_long_erasure_keeps_the_sync_lock_renewed(shop: Shop, monkeypatch: pytest.MonkeyPatch):
    """An erasure holds the sync lock as a sync does, its lease renewed while it runs: one
    longer than sync.lock_lease_seconds let the lease expire, and a sync starting meanwhile
    took the lock and stored comments alongside."""
    import time

    from csat_hook.cli import erase as erase_cli
    from csat_hook.erasure import store as erasure_store
    from csat_hook.sync.lock import LOCK_NAME
    from csat_hook.sync.lock import lock_state

    if shop.kit.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the erasure holds the one writer; nothing renews or takes over")

    class QuickBeats(erase_cli.SyncLock):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.heartbeat_seconds = 0.05

    monkeypatch.setattr(erase_cli, "SyncLock", QuickBeats)
    original = erasure_store._alert_messages
    leases: list[Any] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        with shop.kit.engine.connect() as conn:
            leases.append(lock_state(conn, LOCK_NAME).lease_until)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the erasure goes on: the lease is renewed
            time.sleep(0.05)
            with shop.kit.engine.connect() as conn:
                if lock_state(conn, LOCK_NAME).lease_until > leases[0]:
                    leases.append(lock_state(conn, LOCK_NAME).lease_until)
                    break
        return original(*args, **kwargs)

    monkeypatch.setattr(erasure_store, "_alert_messages", slow)
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 0, result.output
    assert len(leases) == 2, "the lease was not renewed while the erasure ran"
    assert held(shop.dump()) == {}


def test_an_erasure_whose_lease_a_sync_took_over_erases_nothing(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
):
    """The lease is checked in the erasure's transaction, as a sync checks it before it
    commits: when it expired and a sync took the lock meanwhile (the database unreachable
    for the renewals), the erasure rolls back and says so (exit 3) rather than commit
    alongside that sync."""
    from csat_hook.erasure import store as erasure_store
    from csat_hook.sync.lock import LOCK_NAME
    from csat_hook.sync.lock import acquire_lock

    if shop.kit.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the erasure holds the one writer; no sync takes over meanwhile")
    original = erasure_store._alert_messages

    def taken_over(*args: Any, **kwargs: Any) -> Any:
        later = utcnow() + timedelta(days=1)  # past the erasure's lease
        with shop.kit.engine.begin() as conn:
            assert acquire_lock(conn, LOCK_NAME, "other:1:sync", later, later + timedelta(hours=1))
        return original(*args, **kwargs)

    monkeypatch.setattr(erasure_store, "_alert_messages", taken_over)
    before = shop.dump()
    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 3, result.output
    assert "Nothing erased: lost the sync lock" in result.output
    assert shop.dump() == before


def test_an_erasure_on_a_host_ahead_waits_for_a_live_sync_too(shop: Shop, monkeypatch):
    # erase read the sync's lease by its host's clock: on a host 40 minutes ahead, a live
    # sync's 10-minute lease looked expired, and the erasure took the lock from under it. On
    # PostgreSQL both compare the database's time.
    if shop.kit.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: one host's file, one clock")
    from csat_hook.sync.lock import LOCK_NAME
    from csat_hook.sync.lock import acquire_lock

    with shop.kit.engine.begin() as conn:
        now = conn.execute(sa.select(sa.func.now())).scalar_one()
        assert acquire_lock(conn, LOCK_NAME, "other:1:sync", now, now + timedelta(minutes=10))
    before = shop.dump()
    monkeypatch.setattr(csat_hook.clock, "datetime", HostAhead)

    result = shop.erase("--email", "maria.lopez@example.com", "--yes")

    assert result.exit_code == 3, result.output
    assert "Nothing erased: another sync is running" in result.output
    assert shop.dump() == before
