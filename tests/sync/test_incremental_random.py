"""A randomised differential: a sheet or export edited between syncs (rows appended, edited in
place, deleted, re-sorted, clicked twice, references edited, unreadable rows), synced after
each edit, credits what a first run over the final source credits (docs/sync.md "Credit":
"an incremental run credits what a first run over the same sheet or export would").

Surveys none of whose rows verifies in the final source are left out: the docs keep their
answer (a row removed from the source keeps what was read)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from csat_hook.db.schema import answers
from csat_hook.db.schema import unverified_answers
from tests.sync.test_double_click import T0
from tests.sync.test_double_click import Export
from tests.sync.test_double_click import Sheet
from tests.sync.test_double_click import forget_every_read


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
    return sorted(
        (r.dialog_id, r.rating, r.comment, r.submitted_at.replace(tzinfo=None))
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
    forget_every_read(kit)
    kit.run(source.config)
    assert _credited(kit, verified) == incremental, ops
    assert sorted((r.field_ticket, r.rating) for r in kit.rows(unverified_answers)) == unverified
