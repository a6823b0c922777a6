"""A randomised differential: a sheet or an export edited between syncs (rows appended,
edited in place, deleted, re-sorted, clicked twice, references edited, unreadable rows), or a
form's responses added, edited, deleted and forged, synced after each edit, credits what a
first run over the final source credits (docs/sync.md "Credit": "an incremental run credits
what a first run over the same sheet or export would").

Surveys none of whose rows verifies in the final source are left out: the docs keep their
answer (a row removed from the source keeps what was read)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import sync_state
from csat_hook.db.schema import unverified_answers
from tests.sync.test_double_click import T0
from tests.sync.test_double_click import Export
from tests.sync.test_double_click import Sheet
from tests.sync.test_double_click import forget_every_read
from tests.sync.test_forms_api import RATING
from tests.sync.test_forms_api import TOKEN
from tests.sync.test_forms_api import form_response
from tests.sync.test_forms_api import stamp


def _edit(rng: random.Random, rows: list[list[Any]], tokens: dict[str, str], clock: list[int]):
    op = rng.choice(
        ["append", "append", "again", "edit", "delete", "sort", "double", "forge", "bad", "same"]
    )
    survey = rng.choice(list(tokens))
    if op in ("append", "again") or not rows:
        clock[0] += rng.choice([0, 1, 1, 30, 3600])
        when = T0 + timedelta(seconds=clock[0])
        rows.append([when, rng.randint(1, 5), f"c{rng.randint(0, 3)}", "A", survey, tokens[survey]])
        return op
    i = rng.randrange(len(rows))
    if op == "edit":
        rows[i] = [rows[i][0], rng.randint(1, 5), f"e{rng.randint(0, 3)}", *rows[i][3:]]
    elif op == "delete":
        del rows[i]
    elif op == "sort":
        rng.shuffle(rows)
    elif op == "double":
        rows.insert(rng.randrange(i, len(rows) + 1), list(rows[i]))
    elif op == "forge":
        token = rows[i][5]
        rows[i] = [*rows[i][:5], token[:-2] + ("AA" if token[-2:] != "AA" else "BB")]
    elif op == "bad":
        rows[i] = [rows[i][0], "ten", *rows[i][2:]]
    elif op == "same":
        # Another submission of a survey in the same second as an existing row.
        rows.insert(
            rng.randrange(len(rows) + 1),
            [rows[i][0], rng.randint(1, 5), "s", "A", survey, tokens[survey]],
        )
    return op


def _credited(kit: Any, keep: set[str]) -> list[tuple[Any, ...]]:
    # To the second, as a row's identity is: two responses of one survey in one second with
    # the same answers are one submission, stored at the time of whichever was read first.
    return sorted(
        (r.dialog_id, r.rating, r.comment, r.submitted_at.replace(tzinfo=None, microsecond=0))
        for r in kit.rows(answers)
        if r.dialog_id in keep
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", [Sheet, Export], ids=["gsheets", "csv"])
def test_incremental_syncs_credit_what_a_first_run_over_the_final_source_does(
    kit: Any, tmp_path: Any, kind: Any, seed: int
) -> None:
    rng = random.Random(seed)
    source = kind(kit, tmp_path)
    tokens = {f"D{n}": kit.survey(f"D{n}", str(n % 3), f"Agent {n % 3}") for n in range(5)}
    rows: list[list[Any]] = []
    clock = [0]
    ops = []
    for _ in range(12):
        for _ in range(rng.randint(1, 3)):
            ops.append(_edit(rng, rows, tokens, clock))
        source.write(rows)
        summary = kit.run(source.config)
        assert summary.status in ("ok", "data_error"), (ops, summary.error)
    verified = {r[4] for r in rows if r[5] == tokens[r[4]] and r[1] != "ten"}
    incremental = _credited(kit, verified)
    unverified = sorted((r.field_ticket, r.rating) for r in kit.rows(unverified_answers))
    # Once more, the source unchanged (replayed when the last read was remembered): the
    # unreadable rows it says, and those on record, are a first run's too.
    again = kit.run(source.config)
    skipped = _skipped(kit)
    forget_every_read(kit)
    first = kit.run(source.config)
    assert _credited(kit, verified) == incremental, ops
    assert sorted((r.field_ticket, r.rating) for r in kit.rows(unverified_answers)) == unverified
    assert (again.skipped, again.skipped_rows) == (first.skipped, first.skipped_rows), ops
    assert _skipped(kit) == skipped, ops


def _skipped(kit: Any) -> list[tuple[Any, ...]]:
    """The unreadable rows on record (the time aside, and the row each was first recorded
    at: a record keeps it when the row moves, and only the run's own list shows rows)."""
    return sorted(
        (r.fingerprint, r.reason, r.detail, r.source_key) for r in kit.rows(sync_skipped_rows)
    )


@pytest.mark.parametrize("seed", range(4))
def test_forms_api_runs_then_a_full_read_credit_what_a_first_run_over_the_form_does(
    kit: Any, seed: int
) -> None:
    # Responses added, edited (a later lastSubmittedTime, sometimes in the same second as
    # another response of the survey), deleted, forged; filtered runs, then `sync --full`.
    rng = random.Random(seed)
    tokens = {f"F{n}": kit.survey(f"F{n}", str(n % 3), f"Agent {n % 3}") for n in range(5)}
    kit.fake.add_form("f", [])
    form: dict[int, tuple[str, str, str]] = {}  # n → (survey, rating, token)
    config = kit.config(
        results={
            "source": "forms_api",
            "forms_api": {
                "form_id": "f",
                "question_ids": {"rating": RATING, "token": TOKEN},
                "page_size": 3,
                "full_read_hours": 0,
            },
        },
        output={"gsheets": {"enabled": False}},
    )
    start = kit.now - timedelta(hours=2)
    clock = 0
    ops = []
    for _ in range(10):
        for _ in range(rng.randint(1, 3)):
            op = rng.choice(["new", "new", "edit", "delete", "forge"]) if form else "new"
            ops.append(op)
            clock += rng.choice([0, 1, 60])
            when = stamp(start + timedelta(seconds=clock), rng.randrange(1_000_000_000))
            if op == "delete":
                n = rng.choice(list(form))
                del form[n]
                kit.fake.delete_response("f", form_response(n, when, "1", "")["responseId"])
                continue
            if op == "new":
                n, survey = len(ops), rng.choice(list(tokens))
                token = tokens[survey]
            else:
                n = rng.choice(list(form))
                survey, _, token = form[n]
                if op == "forge":
                    token = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
            rating = str(rng.randint(1, 5))
            form[n] = (survey, rating, token)
            kit.fake.submit_response("f", form_response(n, when, rating, token))
        kit.now = start + timedelta(seconds=clock + 5)
        summary = kit.run(config)
        assert summary.status in ("ok", "data_error"), (ops, summary.error)
    kit.run(config, full=True)
    verified = {survey for survey, _, token in form.values() if token == tokens[survey]}
    incremental = _credited(kit, verified)
    unverified = sorted((r.source_ref, r.rating) for r in kit.rows(unverified_answers))
    forget_every_read(kit)
    with kit.engine.begin() as conn:
        conn.execute(sync_state.delete())
    kit.run(config)
    assert _credited(kit, verified) == incremental, ops
    assert sorted((r.source_ref, r.rating) for r in kit.rows(unverified_answers)) == unverified
