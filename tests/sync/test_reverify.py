"""Answers stored as forged because ``token.secret`` was rotated without the old one kept:
once the old secret is in ``token.previous_secrets``, the next sync credits them, as the run
that stored them would have, and they leave the unverified answers (sync/reverify.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic import SecretStr

from csat_hook import tokens
from csat_hook.cli import main
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import unverified_answers
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.sync import reverify
from tests.sync.conftest import SECRET
from tests.sync.test_read_memo import CSV_HEADER
from tests.sync.test_read_memo import csv_config
from tests.sync.test_read_memo import export_lines

NEW_SECRET = "a-new-secret-nobody-kept-the-old-one-of"


def rotated(kit: Any, export: Path, *, keep_old: bool) -> Any:
    """The configuration after the secret was changed, with or without the old one kept."""
    config = csv_config(kit, export)
    config.token.secret = SecretStr(NEW_SECRET)
    config.token.previous_secrets = [SecretStr(SECRET)] if keep_old else []
    return config


def write(export: Path, lines: list[str]) -> None:
    export.write_bytes(("\r\n".join([CSV_HEADER, *lines]) + "\r\n").encode())


def test_adding_the_old_secret_credits_the_answers_stored_as_forged(kit, tmp_path: Path):
    export = tmp_path / "export.csv"
    write(export, export_lines(kit, "R", 4))  # surveys sent (and signed) before the rotation
    first = kit.run(rotated(kit, export, keep_old=False))
    assert first.status == "data_error" and first.unverified == {"forged": 4}
    assert kit.rows(answers) == []

    fixed = kit.run(rotated(kit, export, keep_old=True))
    assert (fixed.status, fixed.reverified, fixed.new) == ("ok", 4, 0), fixed.error
    credited = {(r.dialog_id, r.agent_key, r.rating) for r in kit.rows(answers)}
    assert credited == {(f"R-{n}", str(n), 4 + n % 2) for n in range(4)}
    assert kit.rows(unverified_answers) == []
    assert fixed.totals["unverified"] == {} and fixed.totals["answers"] == 4
    # Credited once: the next runs find nothing to check again, and the file is unchanged.
    again = kit.run(rotated(kit, export, keep_old=True))
    assert (again.status, again.reverified, again.new, again.read) == ("ok", 0, 0, "replayed")
    assert len(kit.rows(answers)) == 4


def test_the_report_and_the_cli_say_what_was_credited(kit, tmp_path: Path):
    export = tmp_path / "export.csv"
    write(export, export_lines(kit, "C", 3))
    kit.run(rotated(kit, export, keep_old=False))
    config_file = tmp_path / "config.yaml"
    report = tmp_path / "report"
    config_file.write_text(
        f"database: {{url: '{kit.database_url}'}}\n"
        f"token: {{secret: {NEW_SECRET}, previous_secrets: [{SECRET}]}}\n"
        f"results: {{source: csv, csv: {{path: '{export}'}}}}\n"
        f"output: {{local: {{enabled: true, dir: '{report}'}}}}\n"
    )
    result = CliRunner().invoke(main, ["-c", str(config_file), "sync"])
    assert result.exit_code == 0, result.output
    assert "3 answers kept as forged verify under the secrets now configured" in result.output
    assert SECRET not in result.output and NEW_SECRET not in result.output
    summary_csv = (tmp_path / "report" / "summary.csv").read_text("utf-8")
    assert "Agent 2" in summary_csv


def test_a_recredited_answer_takes_its_place_by_submission_time(kit, tmp_path: Path):
    # Survey E: its forged answer is earlier than the one credited since (history). Survey L:
    # its forged answer is later than the one credited since (it replaces it).
    rows = []
    for dialog, forged_hour, valid_hour in (("E", 9, 15), ("L", 15, 9)):
        old_token = kit.survey(dialog, "7", "Agent 7")
        # The same survey signed again under the new secret (the same payload: one survey).
        payload = tokens.survey_key(old_token)
        ref = tokens.verify(old_token, [SECRET])
        new_token = tokens.sign(NEW_SECRET, ref)
        assert tokens.survey_key(new_token) == payload
        rows.append(
            f"2026/11/18 {forged_hour}:00:00 GMT+3,1,forged one,Agent 7,{dialog},{old_token}"
        )
        rows.append(f"2026/11/18 {valid_hour}:00:00 GMT+3,5,valid one,Agent 7,{dialog},{new_token}")
    export = tmp_path / "export.csv"
    write(export, rows)
    first = kit.run(rotated(kit, export, keep_old=False))
    assert (first.new, first.unverified) == (2, {"forged": 2})
    fixed = kit.run(rotated(kit, export, keep_old=True))
    assert fixed.reverified == 2
    current = {r.dialog_id: (r.rating, r.comment) for r in kit.rows(answers)}
    assert current == {"E": (5, "valid one"), "L": (1, "forged one")}
    history = sorted((r.comment, r.rating) for r in kit.rows(answer_history))
    assert history == [("forged one", 1), ("valid one", 5)]
    assert kit.rows(unverified_answers) == []


def test_a_reference_no_secret_signed_stays_unverified_and_is_checked_once_per_set(
    kit, tmp_path: Path
):
    lines = export_lines(kit, "F", 3)
    forged = kit.token("F-0", "0", secret="a-forger-secret-99")  # signed by no one we know
    lines[0] = lines[0].rsplit(",", 1)[0] + "," + forged
    export = tmp_path / "export.csv"
    write(export, lines)
    kit.run(rotated(kit, export, keep_old=False))
    fixed = kit.run(rotated(kit, export, keep_old=True))
    assert fixed.reverified == 2 and fixed.totals["unverified"] == {"forged": 1}
    [still] = kit.rows(unverified_answers)
    assert still.source_ref == "row 2"
    assert still.checked_with == tokens.key_set_id([NEW_SECRET, SECRET])
    assert SECRET not in still.checked_with and NEW_SECRET not in still.checked_with
    # Under the same secrets, in another order, nothing is checked again.
    config = rotated(kit, export, keep_old=True)
    config.token.secret, config.token.previous_secrets = SecretStr(SECRET), [SecretStr(NEW_SECRET)]
    with kit.engine.connect() as conn:
        assert list(reverify.check_stored(conn, config.token.all_secrets())) == []


def test_rows_stored_before_the_reference_was_kept_are_found_by_their_cells(kit, tmp_path: Path):
    export = tmp_path / "export.csv"
    write(export, export_lines(kit, "O", 2))
    kit.run(rotated(kit, export, keep_old=False))
    with kit.engine.begin() as conn:  # as migration 0011 left them
        conn.execute(sa.update(unverified_answers).values(token=None, checked_with=None))
    fixed = kit.run(rotated(kit, export, keep_old=True))
    assert fixed.reverified == 2
    assert {r.dialog_id for r in kit.rows(answers)} == {"O-0", "O-1"}


def test_a_dry_run_credits_nothing(kit, tmp_path: Path):
    export = tmp_path / "export.csv"
    write(export, export_lines(kit, "D", 2))
    kit.run(rotated(kit, export, keep_old=False))
    dry = kit.run(rotated(kit, export, keep_old=True), dry_run=True)
    assert dry.reverified == 2
    assert kit.rows(answers) == [] and len(kit.rows(unverified_answers)) == 2
    assert kit.run(rotated(kit, export, keep_old=True)).reverified == 2


@pytest.fixture
def receivers(kit: Any) -> Iterator[FakeNotify]:
    fake = FakeNotify(now=lambda: kit.now.timestamp()).start()
    yield fake
    fake.stop()


def test_a_recredited_bad_rating_raises_its_alert(kit, receivers, tmp_path: Path):
    token = kit.survey("B-1", "3", "Agent 3")
    export = tmp_path / "export.csv"
    write(export, [f"2026/11/20 2:58:00 PM GMT+3,1,awful,Agent 3,B-1,{token}"])  # 2 min ago
    settings: dict[str, Any] = {
        "results": {"source": "csv", "csv": {"path": str(export)}},
        "output": {"gsheets": {"enabled": False}},
        "alerts": {
            "destinations": {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}},
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
        },
    }
    first = kit.run(kit.config(**settings, token={"secret": NEW_SECRET}))
    assert first.unverified == {"forged": 1} and first.alerts["raised"] == {}
    kit.now += timedelta(minutes=5)
    keep = {"secret": NEW_SECRET, "previous_secrets": [SECRET]}
    fixed = kit.run(kit.config(**settings, token=keep))
    assert fixed.reverified == 1, fixed.error
    assert fixed.alerts["raised"] == {"low": 1}, fixed.alerts
    assert kit.run(kit.config(**settings, token=keep)).alerts["raised"] == {}


def test_an_old_row_whose_cells_hold_two_references_that_verify_stays_unverified(
    kit, tmp_path: Path
):
    # A row stored before 0011 kept no reference of its own: it is found as the one cell that
    # verifies. A customer who pasted another survey's reference into the comment gives two,
    # and neither is taken: the comment's could credit the answer to the other survey.
    own = kit.survey("P-1", "1", "Agent 1")
    other = kit.survey("P-9", "9", "Agent 9")
    export = tmp_path / "export.csv"
    write(export, [f"2026/11/19 3:47:14 PM GMT+3,2,{other},Agent 1,P-1,{own}"])
    kit.run(rotated(kit, export, keep_old=False))
    with kit.engine.begin() as conn:  # as migration 0011 left it
        conn.execute(sa.update(unverified_answers).values(token=None, checked_with=None))

    fixed = kit.run(rotated(kit, export, keep_old=True))

    assert fixed.reverified == 0 and kit.rows(answers) == []
    [still] = kit.rows(unverified_answers)
    assert still.checked_with == tokens.key_set_id([NEW_SECRET, SECRET])


def test_a_forged_row_deleted_in_the_run_that_puts_its_secret_back_is_not_credited(
    kit, tmp_path: Path
):
    # Survey L: a valid answer at 9:00 and a forged one at 15:00 (rating 1). The 15:00 row
    # was deleted from the export, and the old secret put back, before the same run: that
    # run credited the deleted row (the later one) over the row still there, and kept it
    # (the next run replays the file), where a first run over the file credits the 5.
    old_token = kit.survey("L", "7", "Agent 7")
    new_token = tokens.sign(NEW_SECRET, tokens.verify(old_token, [SECRET]))
    valid = f"2026/11/18 9:00:00 GMT+3,5,valid one,Agent 7,L,{new_token}"
    forged = f"2026/11/18 15:00:00 GMT+3,1,forged one,Agent 7,L,{old_token}"
    export = tmp_path / "export.csv"
    write(export, [valid, forged])
    first = kit.run(rotated(kit, export, keep_old=False))
    assert (first.new, first.unverified) == (1, {"forged": 1})
    write(export, [valid])
    fixed = kit.run(rotated(kit, export, keep_old=True))
    assert (fixed.status, fixed.reverified, fixed.read) == ("ok", 0, "read"), fixed.error
    assert [(r.rating, r.comment) for r in kit.rows(answers)] == [(5, "valid one")]
    assert kit.rows(unverified_answers) == [] and kit.rows(answer_history) == []
    again = kit.run(rotated(kit, export, keep_old=True))
    assert (again.read, again.reverified) == ("replayed", 0)
    assert [(r.rating, r.comment) for r in kit.rows(answers)] == [(5, "valid one")]


@pytest.mark.parametrize("forged_hour", [12, 16])
def test_a_survey_whose_answer_was_deleted_as_its_secret_was_put_back_credits_the_latest_left(
    kit, tmp_path: Path, forged_hour: int
):
    # Survey L: 5 at 9:00, forged (old secret) 3 at 12:00 or 16:00, 1 at 15:00. The 15:00
    # row was deleted and the old secret put back before the same run: it credited the 9:00
    # row again (planned by the read before the forged one was credited), and kept it, where
    # a first run over the file credits the 3, the latest row left.
    old_token = kit.survey("L", "7", "Agent 7")
    new_token = tokens.sign(NEW_SECRET, tokens.verify(old_token, [SECRET]))
    kept = f"2026/11/18 9:00:00 GMT+3,5,first,Agent 7,L,{new_token}"
    forged = f"2026/11/18 {forged_hour}:00:00 GMT+3,3,forged one,Agent 7,L,{old_token}"
    deleted = f"2026/11/18 15:00:00 GMT+3,1,last,Agent 7,L,{new_token}"
    export = tmp_path / "export.csv"
    write(export, [kept, forged, deleted])
    first = kit.run(rotated(kit, export, keep_old=False))
    assert (first.new, first.unverified) == (1, {"forged": 1})
    write(export, [kept, forged])
    fixed = kit.run(rotated(kit, export, keep_old=True))
    assert (fixed.status, fixed.reverified) == ("ok", 1), fixed.error
    assert [(r.rating, r.comment) for r in kit.rows(answers)] == [(3, "forged one")]
    history = sorted(r.comment for r in kit.rows(answer_history))
    assert history == ["first", "last"]
    again = kit.run(rotated(kit, export, keep_old=True))
    assert again.read == "replayed"
    assert [(r.rating, r.comment) for r in kit.rows(answers)] == [(3, "forged one")]
