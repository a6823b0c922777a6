"""Migration 0003 on data the 0002 code stored: one survey answered under four spellings of its
reference collapses to one answer (the latest), the others kept as history; every stored
fingerprint keeps working, so the next sync changes nothing; and the migration's frozen copies
of the key and the identity agree with the code."""

from __future__ import annotations

import csv
import importlib
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.config import load_config
from csat_hook.db import migrate
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import surveys
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import unverified_answers
from csat_hook.sync import store
from csat_hook.sync.dataset import build_dataset
from csat_hook.sync.records import position
from csat_hook.sync.runner import SyncRunner
from csat_hook.sync.sources.identity import legacy_fingerprint
from csat_hook.sync.sources.identity import submission_identity

MIGRATION = importlib.import_module("csat_hook.db.migrations.versions.0003_one_answer_per_survey")
SECRET = "migration-test-secret-0123456789"
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
CREATED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 2, 9, 0)  # naive UTC, as 0002 stored it
HEADER = ["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"]
ROLES = ["timestamp", "rating", "comment", "agent", "ticket", "token"]


def reference(dialog_prefix: str, remainder: int) -> str:
    for size in range(12):
        ref = tokens.SurveyRef("dryrun", dialog_prefix + "x" * size, "7", CREATED, nonce="0001")
        token = tokens.sign(SECRET, ref)
        if len(token.split(".")[0]) % 4 == remainder:
            return token
    raise AssertionError(remainder)


def respelled(token: str, step: int) -> str:
    """The same payload bytes, the last character's unused bits set (the 0002 verifier
    accepted it)."""
    payload, tag = token.split(".")
    return f"{payload[:-1]}{B64URL[B64URL.index(payload[-1]) + step]}.{tag}"


def export_time(when: datetime) -> str:
    return when.replace(tzinfo=UTC).strftime("%Y/%m/%d %I:%M:%S %p GMT+0")


# 0002 tables as that revision built them (naive UTC datetimes, no survey_key).
OLD = sa.MetaData()
OLD_ANSWERS = sa.Table(
    "answers",
    OLD,
    *(
        sa.Column(name, sa.String())
        for name in ("token", "helpdesk", "dialog_id", "agent_key", "comment", "field_agent")
    ),
    *(sa.Column(name, sa.String()) for name in ("field_ticket", "source", "source_ref")),
    *(sa.Column(name, sa.String()) for name in ("fingerprint",)),
    *(sa.Column(name, sa.DateTime()) for name in ("issued_at", "submitted_at", "updated_at")),
    sa.Column("rating", sa.Integer()),
    sa.Column("fields_edited", sa.Boolean()),
)
OLD_HISTORY = sa.Table(
    "answer_history",
    OLD,
    *(
        sa.Column(name, sa.String())
        for name in ("fingerprint", "token", "comment", "field_agent", "field_ticket")
    ),
    *(sa.Column(name, sa.String()) for name in ("source", "source_ref")),
    sa.Column("rating", sa.Integer()),
    sa.Column("fields_edited", sa.Boolean()),
    sa.Column("submitted_at", sa.DateTime()),
    sa.Column("recorded_at", sa.DateTime()),
)


def test_four_spellings_of_one_survey_become_one_answer_and_the_next_sync_changes_nothing(
    engine, database_url, tmp_path: Path
):
    anna = reference("A-", 2)  # 16 spellings for the 0002 verifier
    boris = reference("B-", 0)
    forged = reference("F-", 0)[:-3] + "AAA"
    spellings = [anna, *(respelled(anna, step) for step in (1, 2, 3))]
    rows = [
        # when, rating, comment, token: as the responses export holds them
        *(
            (T0 + timedelta(hours=i), [1, 2, 1, 4][i], f"try {i}", s)
            for i, s in enumerate(spellings)
        ),
        (T0 + timedelta(hours=1), 5, "boris", boris),
        (T0, 3, "boris early", boris),
        (T0 + timedelta(hours=2), 1, "forged", forged),
        (T0 + timedelta(hours=4), "ten", "", anna),
    ]
    export = tmp_path / "responses.csv"
    with export.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows([export_time(w), r, c, "Anna", "", t] for w, r, c, t in rows)

    def legacy(n: int) -> str:
        """The fingerprint the 0002 code stored for data row ``n`` (raw CSV text by role)."""
        when, rating, comment, token = rows[n]
        cells = [export_time(when), str(rating), comment, "Anna", "", token]
        return legacy_fingerprint("csv", {k: v or None for k, v in zip(ROLES, cells, strict=True)})

    # What the 0002 sync stored for that export: one answer per token *text*.
    migrate.upgrade(engine, "0002")
    with engine.begin() as conn:
        for token, dialog in ((anna, "A"), (boris, "B")):
            conn.execute(
                surveys.insert().values(
                    helpdesk="dryrun",
                    dialog_id=tokens.verify(token, [SECRET]).dialog_id,
                    occurrence="",
                    agent_id="7",
                    agent_name="Anna",
                    team=f"Team {dialog}",
                    token=token,
                    status="sent",
                    created_at=CREATED,
                    sent_at=CREATED,
                )
            )

        def answer(n: int) -> dict:
            when, rating, comment, token = rows[n]
            ref = tokens.verify(anna if n < 4 else boris, [SECRET])
            return {
                "token": token,
                "helpdesk": "dryrun",
                "dialog_id": ref.dialog_id,
                "agent_key": "7",
                "issued_at": CREATED.replace(tzinfo=None),
                "rating": rating,
                "comment": comment,
                "submitted_at": when,
                "field_agent": "Anna",
                "field_ticket": "",
                "fields_edited": False,
                "source": "csv",
                "source_ref": f"row {n + 2}",
                "updated_at": T0,
                "fingerprint": legacy(n),
            }

        conn.execute(OLD_ANSWERS.insert(), [answer(n) for n in range(5)])
        early = answer(5)
        conn.execute(
            OLD_HISTORY.insert(),
            [
                {
                    **{k: early[k] for k in ("token", "rating", "comment", "submitted_at")},
                    **{k: early[k] for k in ("field_agent", "field_ticket", "fields_edited")},
                    "source": "csv",
                    "source_ref": "row 7",
                    "fingerprint": legacy(5),
                    "recorded_at": T0,
                }
            ],
        )
        conn.execute(
            sa.text(
                "INSERT INTO unverified_answers (fingerprint, reason, source, source_ref, "
                "submitted_at, rating, comment, field_agent, field_ticket, source_row, "
                "recorded_at) VALUES (:fp, 'forged', 'csv', 'row 8', :at, 1, 'forged', "
                "'Anna', '', '{}', :at)"
            ),
            {"fp": legacy(6), "at": rows[6][0]},
        )
        conn.execute(
            sa.text(
                "INSERT INTO sync_skipped_rows (fingerprint, source, source_ref, reason, detail, "
                "recorded_at) VALUES (:fp, 'csv', 'row 9', 'bad_rating', 'x', :at)"
            ),
            {"fp": legacy(7), "at": T0},
        )

    assert migrate.upgrade(engine) == ("0002", migrate.head_revision())

    def read(table: sa.Table) -> list:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(table).order_by(table.c.id)))

    anna_key = tokens.survey_key(anna)
    [kept_boris, kept_anna] = sorted(read(answers), key=lambda r: r.survey_key == anna_key)
    # The latest submission wins, under the spelling it was typed with.
    assert (kept_anna.survey_key, kept_anna.token, kept_anna.rating) == (anna_key, spellings[3], 4)
    assert kept_boris.survey_key == tokens.survey_key(boris)
    history = read(answer_history)
    assert sorted((h.survey_key == anna_key, h.rating, h.comment) for h in history) == [
        (False, 3, "boris early"),
        (True, 1, "try 0"),
        (True, 1, "try 2"),
        (True, 2, "try 1"),
    ]
    assert all(r.fingerprint.startswith("r2-") for r in [*read(answers), *history])

    # The next sync over the same export changes nothing, and counts one answer per survey.
    config = load_config(
        None,
        env={},
        overrides={
            "database": {"url": database_url},
            "token": {"secret": SECRET},
            "results": {"source": "csv", "csv": {"path": str(export)}},
            "output": {"local": {"enabled": False}},
            "helpdesks": {"dryrun": {"kind": "dryrun", "output": str(tmp_path / "d.jsonl")}},
        },
    )
    runner = SyncRunner(config, engine, clock=lambda: datetime(2026, 11, 20, tzinfo=UTC))
    tables = (answers, answer_history, unverified_answers, sync_skipped_rows)
    before = [[tuple(r)[1:] for r in read(t)] for t in tables[:2]]
    summary = runner.run()
    assert summary.status == "ok", summary.error
    # The skipped row is read again (skipped rows are, every run) and still skipped.
    assert (summary.new, summary.updated, summary.history_only, summary.unchanged) == (0, 0, 0, 7)
    assert (summary.unverified, summary.skipped) == ({}, {"bad_rating": 1})
    assert summary.totals == {
        "answers": 2,
        "unverified": {"forged": 1},
        "skipped": {"bad_rating": 1},
    }
    assert [[tuple(r)[1:] for r in read(t)] for t in tables[:2]] == before
    # Unverified and skipped rows were recognised by their 0002 fingerprint, now replaced.
    assert [r.fingerprint[:3] for t in tables[2:] for r in read(t)] == ["r2-", "r2-"]
    settled = [[tuple(r)[1:] for r in read(t)] for t in tables]
    assert runner.run().unchanged == 7
    assert [[tuple(r)[1:] for r in read(t)] for t in tables] == settled

    with engine.connect() as conn:
        data = build_dataset(
            store.all_answers(conn), store.survey_facts(conn), secrets=[SECRET], helpdesks={}
        )
    # Both answers meet their survey (the winning spelling is not the survey's token text).
    assert sorted((a.dialog_id[:1], a.rating, a.answered_sent) for a in data.answers) == [
        ("A", 4, True),
        ("B", 5, True),
    ]
    assert sorted(data.teams[a.team] for a in data.answers) == ["Team A", "Team B"]

    # Down to 0002 (answers unique on the token text again) and back up.
    assert migrate.downgrade(engine, "0002") == "0002"
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
    assert len(read(answers)) == 2


def test_the_frozen_copies_in_the_migration_agree_with_the_code():
    for remainder in (0, 2, 3):
        token = reference("K-", remainder)
        payload, tag = token.split(".")
        slack = {0: 1, 2: 16, 3: 4}[remainder]
        same_bytes = [respelled(token, step) for step in range(slack)]
        old_spellings = [
            *same_bytes,
            f"  {token}\n",
            f"{payload}=.{tag}",
            token.replace("-", "+").replace("_", "/"),
        ]
        assert {MIGRATION.survey_key(s) for s in old_spellings} == {tokens.survey_key(token)}
    assert MIGRATION.survey_key("not a reference") == "not a reference"

    moments = [
        datetime(2026, 9, 27, 12, 0, 0, 999999, tzinfo=UTC),
        datetime(2026, 9, 27, 15, 0, 1, tzinfo=datetime.now().astimezone().tzinfo),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ]
    texts = ["", "plain", "line\r\nbreak\rold mac", "Спасибо", "e\u0301t\u00e9", "\u212b"]
    for when in moments:
        for text in texts:
            live = submission_identity(when, "tok.en", 4, text, text[:3], text[-2:])
            naive = when.astimezone(UTC).replace(tzinfo=None)
            assert MIGRATION.answer_identity(naive, "tok.en", 4, text, text[:3], text[-2:]) == live
            assert MIGRATION.answer_identity(when, "tok.en", 4, text, text[:3], text[-2:]) == live
    assert MIGRATION.answer_identity(moments[0], "t", 1, None, None, None) == submission_identity(
        moments[0], "t", 1, "", "", ""
    )
    for ref in ("row 2", "row 10", "response ACYD", "", "row x"):
        assert MIGRATION.position(ref) == position(ref)
