"""A runner keeps the rows its answers' tabs were built with (report/answers.py: KeptRows)
and the next report of its kept dataset reuses the rows of the answers that did not change:
the tabs it writes must be, cell for cell, what a new runner building everything writes,
whatever arrived in between (answers newer and older than the kept ones, answers replaced,
ties in time, rows pushed past a tab's limit, a new agent's name changing the display names).
"""

from __future__ import annotations

import random
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from csat_hook.sync.dataset import Agent
from csat_hook.sync.dataset import AnswerRecord
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.dataset import epoch_microseconds
from csat_hook.sync.metrics import Settings
from csat_hook.sync.outputs.sheets import KeptEncoding
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.outputs.sheets import TabPlan
from csat_hook.sync.report import Report
from csat_hook.sync.report import ReportSpec
from csat_hook.sync.report import build_report
from csat_hook.sync.report.answers import KeptRows
from csat_hook.sync.report.answers import _merged
from csat_hook.sync.report.answers import _newest
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID
from tests.sync.conftest import SyncKit

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
TAB = "Form Responses 1"


def _record(rng: random.Random) -> AnswerRecord:
    # A small domain: ties in time, in ticket and in every key field happen.
    return AnswerRecord(
        agent=rng.randrange(3),
        team=0,
        helpdesk="desk",
        dialog_id=f"D-{rng.randrange(4)}",
        rating=rng.randrange(1, 3),
        comment=rng.choice(["", "ok"]),
        submitted_at=T0 + timedelta(minutes=rng.randrange(6)),
        answered_sent=True,
        nps=None,
        channel="",
    )


@pytest.mark.parametrize("seed", range(200))
def test_the_kept_order_merged_with_new_answers_is_the_order_a_sort_gives(seed: int) -> None:
    rng = random.Random(seed)
    kept = _newest([_record(rng) for _ in range(rng.randrange(0, 30))], 10_000)
    still = [a for a in kept if rng.random() < 0.8]
    added = [_record(rng) for _ in range(rng.randrange(0, 8))]
    answers = still + added
    rng.shuffle(answers)  # the dataset's own order plays no part for kept answers

    ordered, places = _merged(kept, answers)

    # A stable sort of the kept answers in their order, then the new ones in the dataset's.
    new_in_order = [a for a in answers if all(a is not b for b in kept)]
    expected = sorted(still + new_in_order, key=_key, reverse=True)
    assert [id(a) for a in ordered] == [id(a) for a in expected]
    for answer, place in zip(ordered, places, strict=True):
        if place >= 0:
            assert kept[place] is answer
        else:
            assert all(answer is not k for k in kept)


def _key(a: AnswerRecord) -> tuple[Any, ...]:
    return (a.submitted_at, a.dialog_id, a.rating, a.comment, a.helpdesk, a.agent, a.team)


def _row(n: int, when: datetime, rating: int, token: str) -> list[Any]:
    return [when, rating, f"comment {n % 3}", "typed", f"T-{n}", token]


def _report(kit: SyncKit) -> dict[str, list[list[Any]]]:
    return {title: kit.sheet(title) for title in kit.fake.titles(SHEET_ID) if title != TAB}


@pytest.mark.parametrize("seed", range(3))
def test_a_runner_reusing_its_rows_writes_what_a_new_runner_writes(kit: SyncKit, seed: int) -> None:
    rng = random.Random(seed)
    # Small limits: rows go past an agent's tab and the Responses tab as answers arrive.
    config = kit.config(output={"gsheets": {"max_rows_per_agent": 4, "max_response_rows": 6}})
    agents = [("1", "Anna"), ("2", "Boris"), ("3", "Anna")]  # two Annas: keys are shown
    tokens: list[str] = []
    rows: list[list[Any]] = [EN_HEADER]

    def add(count: int) -> None:
        for _ in range(count):
            n = len(tokens)
            agent_id, name = rng.choice(agents)
            tokens.append(kit.survey(f"T-{n}", agent_id, name, team=rng.choice(["L1", "L2"])))
            # Earlier and later than the answers before, and ties in time.
            when = T0 + timedelta(minutes=rng.randrange(0, 40))
            rows.append(_row(n, when, rng.randrange(1, 6), tokens[-1]))

    add(8)
    kit.responses(rows)
    kept = kit.runner(config)
    kept.run()
    for step in range(4):
        written = len(rows)
        add(rng.randrange(1, 5))
        if step == 1:
            # An answer given again, later: it replaces the first one.
            rows.append(_row(0, T0 + timedelta(minutes=50), 1, tokens[0]))
        if step == 2:
            agents.append(("4", "Boris"))  # a second Boris: the display names change
            add(1)
        kit.fake.append_rows(SHEET_ID, TAB, rows[written:])
        kept.run()
        assert kept.dataset_patched
        patched = _report(kit)
        kit.runner(config).run(full=True)
        assert _report(kit) == patched, f"step {step}"


NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _answer(rng: random.Random, data: Dataset) -> AnswerRecord:
    return AnswerRecord(
        agent=rng.randrange(len(data.agents)),
        team=rng.randrange(len(data.teams)),
        helpdesk=rng.choice(["desk", "other"]),
        dialog_id=f"D-{rng.randrange(6)}",
        rating=rng.randrange(1, 6),
        comment=rng.choice(["", "ok"]),
        submitted_at=T0 + timedelta(minutes=rng.randrange(8)),
        answered_sent=True,
        nps=rng.choice([None, 3, 9]),
        channel=rng.choice(["", "email"]),
    )


def _spec(rng: random.Random) -> ReportSpec:
    return ReportSpec(
        language=rng.choice(["en", "ru"]),
        settings=Settings(),
        tz=ZoneInfo(rng.choice(["UTC", "Europe/Moscow", "America/St_Johns"])),
        listed=[],
        headline_days=7,
        trend_weeks=2,
        trend_months=2,
        target=0.9,
        low_rating=2,
        nps=rng.random() < 0.5,
        templates=rng.choice(
            [{"desk": None}, {"desk": "https://x/{ticket_id}"}, {"other": "https://y/{ticket_id}"}]
        ),
        max_rows_per_agent=rng.randrange(1, 6),
        max_response_rows=rng.randrange(1, 12),
        every_answer=rng.random() < 0.5,
    )


def _tabs(report: Report) -> list[Any]:
    grids = [report.responses, *report.agents]
    csv = [[list(row) for row in t.rows] for t in report.csv if t.csv_name == "answers.csv"]
    return [(g.name, g.key, g.helpdesk, [list(row) for row in g.rows]) for g in grids] + csv


def _plans(report: Report) -> list[TabPlan]:
    return [
        TabPlan(f"{g.kind} {g.name} {g.key} {g.helpdesk}", g, len(g.rows) + 3, g.width, True, i)
        for i, g in enumerate(report.sheets())
    ]


@pytest.mark.parametrize("seed", range(40))
def test_kept_rows_and_encodings_are_what_a_new_build_gives_whatever_changed_between(
    seed: int,
) -> None:
    # Between reports: answers replaced and added (as patch_dataset does), agents added and
    # renamed (the display names), teams added, and now and then another language, time
    # zone, NPS column, ticket links, row limits or answers.csv; and reports that fail half
    # way (the Unverified tab, built between the Responses tab and the agents' tabs).
    rng = random.Random(seed)
    data = Dataset(agents=[Agent("desk", "1", "Anna", ""), Agent("desk", "2", "Boris", "")])
    data.teams = ["", "L1"]
    kept, encoding = KeptRows(), KeptEncoding()
    spec = _spec(rng)
    for step in range(6):
        for _ in range(rng.randrange(3) if data.answers else 0):
            data.answers[rng.randrange(len(data.answers))] = _answer(rng, data)
        if step and rng.random() < 0.3:
            key = str(len(data.agents) + 1)
            data.agents.append(Agent(rng.choice(["desk", "other"]), key, "Cleo", ""))
        if step and rng.random() < 0.2:
            at = rng.randrange(len(data.agents))
            was = data.agents[at]
            data.agents[at] = Agent(was.helpdesk, was.key, rng.choice(["Anna", "Dan"]), "")
        if step and rng.random() < 0.2:
            data.teams.append(f"T{len(data.teams)}")
        for _ in range(rng.randrange(6)):
            data.answers.append(_answer(rng, data))
            data.cohorts.append(epoch_microseconds(T0))
        if rng.random() < 0.3:
            spec = _spec(rng)
        if rng.random() < 0.2:
            with pytest.raises(AttributeError):
                build_report(data, spec, now=NOW, unverified=[object()], kept=kept)
        report = build_report(data, spec, now=NOW, unverified=[], kept=kept)
        anew = build_report(data, spec, now=NOW, unverified=[], kept=None)
        assert _tabs(report) == _tabs(anew), f"step {step}"
        plans = _plans(report)
        encoded = SheetsOutput(None, SHEET_ID, kept=encoding)._encoded(plans)  # type: ignore[arg-type]
        assert encoded == SheetsOutput(None, SHEET_ID)._encoded(plans), f"step {step}"  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(20))
def test_each_agents_positions_are_its_first_answers_in_order(seed):
    from csat_hook.sync.report.answers import _positions_by_agent

    rng = random.Random(seed)
    agents = rng.randint(1, 6)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    answers = [
        AnswerRecord(rng.randrange(agents), 0, "hd", str(i), 5, "", when, True, None, "")
        for i in range(rng.randint(0, 60))
    ]
    max_rows = rng.randint(1, 12)
    expected: dict[int, list[int]] = {}
    for index, answer in enumerate(answers):
        mine = expected.setdefault(answer.agent, [])
        if len(mine) < max_rows:
            mine.append(index)
    # Agents numbered past the last with answers (they have surveys only) get no entry.
    assert _positions_by_agent(answers, agents + 2, max_rows) == expected


@pytest.mark.parametrize("seed", range(10))
def test_the_objects_absent_from_a_pool_are_found_by_identity(seed):
    from csat_hook.sync.report.answers import _absent

    rng = random.Random(seed)
    pool = [(i,) for i in range(rng.randint(0, 50))]
    # Equal tuples that are other objects are absent: answers are told apart by identity.
    items = rng.sample(pool, k=len(pool) // 2) + [(i,) for i in range(rng.randint(0, 5))]
    rng.shuffle(items)
    held = {id(p) for p in pool}
    assert _absent(items, pool) == [i for i, item in enumerate(items) if id(item) not in held]


@pytest.mark.parametrize("seed", range(20))
def test_each_answers_kept_row_is_picked_by_its_place_and_the_missing_ones_found(seed):
    from csat_hook.sync.report.answers import _by_place
    from csat_hook.sync.report.answers import _missing
    from csat_hook.sync.report.answers import _reused

    rng = random.Random(seed)
    # Kept rows by place, some None (past a tab's row limit when they were kept).
    kept: list[Any] = [None if rng.random() < 0.2 else (f"row {i}",) for i in range(20)]
    places = [rng.randrange(-1, len(kept)) for _ in range(rng.randint(0, 40))]
    count = rng.randint(0, len(places))
    rows = _reused(_by_place(kept), places[:count], count)
    assert rows == [kept[p] if p >= 0 else None for p in places[:count]]
    assert _reused(_by_place([]), places[:count], count) == [None] * count
    assert _missing(rows) == [i for i, row in enumerate(rows) if row is None]


def test_a_reports_listing_again_holds_no_more_than_the_runners_kept_rows() -> None:
    """A report keeps how to list its answers again (Report.relist) while it is written, the
    run's peak of memory: it holds the sorted answers the runner keeps anyway, not the
    report's working state (one slot per answer: 8 MB more at 1,000,000 answers)."""
    import gc
    import tracemalloc
    from dataclasses import replace

    rng = random.Random(7)
    data = Dataset(agents=[Agent("desk", "1", "Anna", ""), Agent("desk", "2", "Boris", "")])
    data.teams = ["", "L1"]
    for _ in range(50_000):
        data.answers.append(_answer(rng, data))
        data.cohorts.append(epoch_microseconds(T0))
    spec = replace(_spec(rng), max_rows_per_agent=10, max_response_rows=10)
    kept = KeptRows()
    tracemalloc.start()  # before the report: only what is allocated traced is seen freed
    try:
        report = build_report(data, spec, now=NOW, unverified=[], kept=kept)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        report = replace(report, relist=None)  # the listing again and what only it holds go
        gc.collect()
        freed = before - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert report.relist is None
    assert freed < 50_000 * 2  # under two bytes per answer: nothing per answer
