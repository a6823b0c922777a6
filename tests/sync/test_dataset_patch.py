"""A dataset kept from the last report and patched by the rows changed since
(``changes.patched``: ``changes.since`` + ``dataset.patch_dataset``, then the counts) holds
what a new build from every row holds, through random runs of what the writers do: closes
stored and sent, an agent looked up at send time, answers credited and replaced, names and
teams, short links opened. What cannot
be patched (a removal, a pruned list, an agent no longer named) is refused, never wrong."""

from __future__ import annotations

import random
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.db.engine import make_engine
from csat_hook.db.engine import snapshot
from csat_hook.db.migrate import create_schema
from csat_hook.db.schema import answers
from csat_hook.db.schema import surveys
from csat_hook.sync import changes
from csat_hook.sync import report_key
from csat_hook.sync import store
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.dataset import build_dataset

SECRETS = ["s" * 32]
# Teams as helpdesks spell them: "L1" four ways, "Билинг" two (one team each in the report).
TEAMS = [None, "L1", "l1", "L1 ", "L1\u00a0", "L2", "Билинг", "БИЛИНГ", " "]
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _normal(data: Dataset) -> dict[str, Any]:
    """What a report can read of a dataset, with indexes replaced by what they index."""
    agents, teams = data.agents, data.teams

    def who(index: int) -> tuple[str, str, str, str]:
        a = agents[index]
        return (a.helpdesk, a.key, a.name, a.email)

    return {
        "agents": sorted(who(i) for i in range(len(agents))),
        "answers": sorted(
            (who(a.agent), teams[a.team], *a[2:])
            for a in data.answers  # type: ignore[misc]
        ),
        "sent": sorted(
            (who(agent), teams[team], cohort, opened)
            for agent, team, cohort, opened in zip(
                data.sent.agent, data.sent.team, data.sent.cohort, data.sent.opened, strict=True
            )
        ),
        "teams": sorted(set(teams)),
    }


class World:
    """The writers, through SQLAlchemy as the service's are (SQLite's triggers see them)."""

    def __init__(self, engine: sa.Engine, rng: random.Random) -> None:
        self.engine, self.rng = engine, rng
        self.n = 0
        self.pending: list[int] = []
        self.signed: list[tuple[int, str, str]] = []  # (id, token, agent)

    def close(
        self, *, agent: str | None, sent: bool, team: str | None = None, name: str | None = None
    ) -> None:
        self.n += 1
        n, rng = self.n, self.rng
        named = agent if agent is not None else ""
        token = tokens.sign(SECRETS[0], tokens.SurveyRef("h", f"d{n}", named, START))
        with self.engine.begin() as conn:
            survey_id = conn.execute(
                sa.insert(surveys)
                .values(
                    helpdesk="h",
                    dialog_id=f"d{n}",
                    agent_id=agent,
                    agent_name=name
                    or (rng.choice([None, f"Name {agent}", f"Other {agent}"]) if agent else None),
                    team=team if team is not None else rng.choice(TEAMS),
                    channel=rng.choice([None, "email", "chat"]),
                    token=token,
                    status="sent" if sent else "pending",
                    created_at=START + timedelta(minutes=n),
                )
                .returning(surveys.c.id)
            ).scalar_one()
        if not sent:
            self.pending.append(survey_id)
        self.signed.append((survey_id, token, named))

    def send(self, *, look_up: str | None = None) -> None:
        """A pending survey sent; ``look_up``: its agent recorded as it went out."""
        if not self.pending:
            return
        survey_id = self.pending.pop(self.rng.randrange(len(self.pending)))
        values: dict[str, Any] = {"status": "sent"}
        if look_up is not None:
            values.update(agent_id=look_up, agent_name=f"Looked up {look_up}")
        with self.engine.begin() as conn:
            conn.execute(sa.update(surveys).where(surveys.c.id == survey_id).values(values))

    def reteam(self) -> None:
        """A survey's team spelt another way, or another team (a close re-armed)."""
        if not self.signed:
            return
        survey_id = self.rng.choice(self.signed)[0]
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(surveys)
                .where(surveys.c.id == survey_id)
                .values(team=self.rng.choice(TEAMS))
            )

    def cancel(self) -> None:
        """A sent survey marked failed (no longer among the sent: another takes its place in
        the sent columns)."""
        if not self.signed:
            return
        survey_id = self.rng.choice(self.signed)[0]
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(surveys)
                .where(surveys.c.id == survey_id, surveys.c.status == "sent")
                .values(status="failed")
            )

    def answer(self, *, rating: int | None = None, orphan: bool = False) -> None:
        """An answer credited (or replaced: one per survey); ``orphan``: a survey this
        database does not hold (sent by another installation)."""
        rng = self.rng
        self.n += 1
        if orphan or not self.signed:
            token = tokens.sign(SECRETS[0], tokens.SurveyRef("h", f"x{self.n}", "far", START))
            agent = "far"
        else:
            _, token, agent = rng.choice(self.signed)
        key = tokens.survey_key(token)
        row = {
            "survey_key": key,
            "token": token,
            "helpdesk": "h",
            "dialog_id": f"a{self.n}",
            "agent_key": agent,
            "issued_at": START,
            "rating": rating if rating is not None else rng.randint(1, 5),
            "comment": rng.choice([None, "", "ok", "плохо"]),
            "submitted_at": START + timedelta(hours=1, seconds=self.n),
            "source": "csv",
            "updated_at": START,
            "nps": rng.choice([None, 0, 10]),
        }
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(answers.c.id).where(answers.c.survey_key == key)
            ).scalar_one_or_none()
            if found is None:
                conn.execute(sa.insert(answers).values(row))
            else:
                conn.execute(sa.update(answers).where(answers.c.id == found).values(row))


def _build(engine: sa.Engine, opened: set[str]) -> tuple[Dataset, changes.Mark]:
    with snapshot(engine) as conn:
        at = changes.mark(conn)
        data = build_dataset(
            store.iter_answers(conn),
            store.iter_survey_facts(conn),
            secrets=SECRETS,
            helpdesks={},
            opened=opened,
        )
    return data, at


def _patch(
    engine: sa.Engine, data: Dataset, at: changes.Mark, opened: set[str]
) -> tuple[Dataset | None, changes.Mark]:
    """``data`` patched as the report step does, or None where it builds anew."""
    with snapshot(engine) as conn:
        now = changes.mark(conn)
        ok = changes.patched(conn, data, at, opened=opened)
    return (data if ok else None), now


@pytest.fixture
def engine(migrated_url: str) -> Any:
    engine = make_engine(migrated_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_patched_dataset_is_what_a_new_build_holds(engine: sa.Engine, seed: int) -> None:
    rng = random.Random(seed)
    world = World(engine, rng)
    agents = ["7", "8", "9", "10"]
    for _ in range(30):
        world.close(agent=rng.choice(agents), sent=True)
    for _ in range(10):
        world.answer()
    opened: set[str] = set()
    data, at = _build(engine, opened)
    patched_runs = 0
    for _ in range(12):
        for _ in range(rng.randint(0, 12)):
            step = rng.random()
            if step < 0.3:
                world.close(
                    agent=rng.choice([*agents, "new" + str(world.n)]), sent=rng.random() < 0.5
                )
            elif step < 0.45:
                world.close(agent=None, sent=False)
            elif step < 0.6:
                world.send(look_up=rng.choice([None, rng.choice(agents)]))
            elif step < 0.7:
                world.cancel()
            elif step < 0.9:
                world.answer()
            else:
                world.answer(orphan=True)
        if rng.random() < 0.3 and world.signed:
            opened = opened | {tokens.survey_key(rng.choice(world.signed)[1])}
        patched, at = _patch(engine, data, at, opened)
        fresh, _ = _build(engine, opened)
        if patched is None:
            data = fresh  # as the report step does
            continue
        patched_runs += 1
        assert _normal(patched) == _normal(fresh)
        data = patched
    assert patched_runs >= 6  # the runs mostly patch: a test of the patch, not of the build


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_teams_spelt_several_ways_patched_are_what_a_new_build_holds(
    engine: sa.Engine, seed: int
) -> None:
    """A team's name in the report is its most frequent spelling: surveys added and
    re-spelt move it, the same in a patched dataset as in a new build."""
    rng = random.Random(seed)
    world = World(engine, rng)
    for _ in range(12):
        world.close(agent=rng.choice(["7", "8"]), sent=True)
    for _ in range(6):
        world.answer()
    data, at = _build(engine, set())
    patched_runs, shown = 0, set()
    for _ in range(15):
        for _ in range(rng.randint(1, 6)):
            step = rng.random()
            if step < 0.4:
                world.close(agent=rng.choice(["7", "8"]), sent=rng.random() < 0.8)
            elif step < 0.7:
                world.reteam()
            else:
                world.answer()
        patched, at = _patch(engine, data, at, set())
        fresh, _ = _build(engine, set())
        assert len([t for t in fresh.teams if t]) <= 3  # "L1", "L2", "Билинг" at most
        shown.update(fresh.teams)
        if patched is None:
            data = fresh
            continue
        patched_runs += 1
        assert _normal(patched) == _normal(fresh)
        assert sorted(patched.teams) == sorted(fresh.teams)
        data = patched
    assert patched_runs >= 8
    assert len(shown) > 3  # the shown spelling did move


def test_the_shown_spelling_moves_with_the_surveys(engine: sa.Engine) -> None:
    world = World(engine, random.Random(12))
    world.close(agent="7", sent=True, team="billing")
    world.close(agent="7", sent=True, team="Billing ")
    data, at = _build(engine, set())
    assert [t for t in data.teams if t] == ["Billing"]  # a tie: code-point order
    world.close(agent="8", sent=True, team="BILLING")
    world.close(agent="8", sent=True, team="billing\u00a0")
    patched, _ = _patch(engine, data, at, set())
    assert patched is not None
    assert (
        [t for t in patched.teams if t]
        == ["billing"]
        == [t for t in _build(engine, set())[0].teams if t]
    )


def test_a_team_no_survey_names_any_more_is_refused(engine: sa.Engine) -> None:
    world = World(engine, random.Random(13))
    world.close(agent="7", sent=True, team="L1")
    world.close(agent="7", sent=True, team="L2")
    data, at = _build(engine, set())
    with engine.begin() as conn:
        conn.execute(sa.update(surveys).where(surveys.c.team == "L2").values(team="l1"))
    patched, _ = _patch(engine, data, at, set())
    assert patched is None  # a new build has no team L2
    assert [t for t in _build(engine, set())[0].teams if t] == ["L1"]


def test_an_agent_no_survey_names_any_more_is_refused(engine: sa.Engine) -> None:
    world = World(engine, random.Random(5))
    world.close(agent=None, sent=False)
    world.close(agent="7", sent=True)
    data, at = _build(engine, set())
    # The pending survey (no agent) gets one as it is sent: the no-agent key ("h", "") is
    # then named by no survey, and a new build would not list it.
    world.send(look_up="7")
    patched, _ = _patch(engine, data, at, set())
    assert patched is None


def test_the_survey_an_agents_name_came_from_changing_agent_is_refused(
    engine: sa.Engine,
) -> None:
    """Agent 7's name is the latest survey's; that survey's agent is looked up as 8: a new
    build names 7 from the survey before, which the dataset does not hold."""
    world = World(engine, random.Random(9))
    world.close(agent="7", sent=True, name="Anna")
    world.close(agent="7", sent=False, name="Anna B.")
    data, at = _build(engine, set())
    assert {a.name for a in data.agents} == {"Anna B."}
    world.send(look_up="8")
    patched, _ = _patch(engine, data, at, set())
    assert patched is None
    assert {(a.key, a.name) for a in _build(engine, set())[0].agents} == {
        ("7", "Anna"),
        ("8", "Looked up 8"),
    }


def test_a_survey_opened_before_it_was_sent_is_marked_opened(engine: sa.Engine) -> None:
    world = World(engine, random.Random(10))
    world.close(agent="7", sent=True)
    world.close(agent="7", sent=False)
    opened = {tokens.survey_key(world.signed[1][1])}
    data, at = _build(engine, opened)  # opened already, not sent yet
    world.send()
    patched, _ = _patch(engine, data, at, opened)
    assert patched is not None
    assert patched.sent.opened.count(True) == 1
    assert _normal(patched) == _normal(_build(engine, opened)[0])


def test_removals_are_found_by_the_counts_and_build_anew(engine: sa.Engine) -> None:
    world = World(engine, random.Random(6))
    for _ in range(5):
        world.close(agent="7", sent=True)
        world.answer()
    data, at = _build(engine, set())
    with engine.begin() as conn:
        conn.execute(
            sa.delete(answers).where(
                answers.c.id == sa.select(sa.func.min(answers.c.id)).scalar_subquery()
            )
        )
    patched, _ = _patch(engine, data, at, set())
    assert patched is None

    data, at = _build(engine, set())
    with engine.begin() as conn:  # a token cleared: the survey leaves the signed ones
        conn.execute(sa.update(surveys).where(surveys.c.id == 1).values(token=None))
    patched, _ = _patch(engine, data, at, set())
    assert patched is None


def test_a_mark_older_than_the_pruned_list_builds_anew(engine: sa.Engine) -> None:
    if engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL lists no rows: changes are found by xmin")
    world = World(engine, random.Random(7))
    world.close(agent="7", sent=True)
    data, at = _build(engine, set())
    world.answer()
    _, later = _build(engine, set())
    with engine.begin() as conn:
        changes.prune(conn, later)
    patched, _ = _patch(engine, data, at, set())
    assert patched is None
    # A dataset read at the mark the list was pruned to is patched.
    kept, at = _build(engine, set())
    world.answer(rating=1)
    patched, _ = _patch(engine, kept, at, set())
    assert patched is not None
    assert _normal(patched) == _normal(_build(engine, set())[0])


def test_a_prune_changes_no_data_version(engine: sa.Engine) -> None:
    """The list's sequence is part of the data version (migration 0025): a prune changes no
    data, so the report keyed before it is still the data's; a dataset read before the
    mark pruned to still finds it cannot be patched, and a write after it moves the version."""
    if engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL lists no rows: changes are found by xmin")
    world = World(engine, random.Random(12))
    world.close(agent="7", sent=True)
    data, early = _build(engine, set())
    world.answer()
    _, at = _build(engine, set())
    with engine.connect() as conn:
        before = report_key.read_version(conn)
    with engine.begin() as conn:
        changes.prune(conn, at)
    with engine.connect() as conn:
        assert report_key.read_version(conn) == before
        assert changes.mark(conn) == changes.Mark(at.position, int(at.position))
    patched, _ = _patch(engine, data, early, set())
    assert patched is None
    world.answer(rating=2)
    with engine.connect() as conn:
        assert report_key.read_version(conn) != before


def test_rows_listed_after_a_prune_are_found_from_the_mark_pruned_to(engine: sa.Engine) -> None:
    """As the report step does: the dataset's own mark pruned, then rows written, then the
    dataset patched from that mark (SQLite numbers rows from 1 again in an emptied table
    unless told not to)."""
    if engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL lists no rows: changes are found by xmin")
    world = World(engine, random.Random(11))
    for _ in range(3):
        world.close(agent="7", sent=True)
        world.answer()
    data, at = _build(engine, set())
    with engine.begin() as conn:
        changes.prune(conn, at)
    world.close(agent="8", sent=True)
    world.answer()
    patched, _ = _patch(engine, data, at, set())
    assert patched is not None
    assert _normal(patched) == _normal(_build(engine, set())[0])


def test_every_writer_of_surveys_and_answers_is_listed_on_sqlite(engine: sa.Engine) -> None:
    """The triggers list inserts, updates and deletes of both tables, whoever writes."""
    if engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL lists no rows: changes are found by xmin")
    world = World(engine, random.Random(8))
    with snapshot(engine) as conn:
        before = int(changes.mark(conn).position)
    world.close(agent="7", sent=False)
    world.send()
    world.answer()
    with engine.begin() as conn:
        conn.execute(sa.delete(answers))
    with engine.connect() as conn:
        listed = (
            conn.execute(
                sa.text("SELECT tbl FROM row_changes WHERE seq > :b ORDER BY seq"), {"b": before}
            )
            .scalars()
            .all()
        )
    assert listed == ["surveys", "surveys", "answers", "answers"]


def _listed_after(engine: sa.Engine, seq: int) -> list[str]:
    with engine.connect() as conn:
        query = sa.text("SELECT tbl FROM row_changes WHERE seq > :s ORDER BY seq")
        return list(conn.execute(query, {"s": seq}).scalars())


def test_a_bulk_write_is_listed_once_and_a_dataset_from_before_it_is_built_anew(
    engine: sa.Engine,
) -> None:
    """``changes.unlisted``: the answers written inside are one "bulk" row (SQLite), which a
    dataset marked before it cannot be patched past; the data version moves with it, and a
    dataset marked after it is patched with what follows. PostgreSQL lists nothing either
    way: the dataset is patched by ``xmin`` and holds what a new build holds."""
    world = World(engine, random.Random(13))
    for _ in range(4):
        world.close(agent="7", sent=True)
    world.answer()
    data, at = _build(engine, set())
    with engine.begin() as conn, changes.unlisted(conn):
        pass  # the pause alone: the row is listed even when nothing was written
    world.answer(rating=1)
    with engine.connect() as conn:
        version = report_key.read_version(conn)
    with engine.begin() as conn, changes.unlisted(conn):
        for key, rating in ((world.signed[1][1], 2), (world.signed[2][1], 5)):
            _write_answer(conn, key, rating)
    with engine.connect() as conn:
        assert report_key.read_version(conn) != version
        assert conn.execute(sa.text("SELECT count(*) FROM row_changes_paused")).scalar() == 0
    patched, _ = _patch(engine, data, at, set())
    if engine.dialect.name == "postgresql":
        assert patched is not None
        assert _normal(patched) == _normal(_build(engine, set())[0])
        return
    assert _listed_after(engine, int(at.position)) == [changes.BULK, "answers", changes.BULK]
    assert patched is None
    kept, at = _build(engine, set())
    world.answer(rating=3)
    assert _listed_after(engine, int(at.position)) == ["answers"]
    patched, _ = _patch(engine, kept, at, set())
    assert patched is not None
    assert _normal(patched) == _normal(_build(engine, set())[0])


def test_an_error_inside_a_bulk_write_lifts_the_pause(engine: sa.Engine) -> None:
    """An error raised inside ``changes.unlisted`` reaches the caller as raised; a caller
    that catches it and commits leaves no pause behind (later writes are listed) and the
    bulk row listed for what was written."""
    if engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL lists no rows: changes are found by xmin")
    world = World(engine, random.Random(15))
    world.close(agent="7", sent=True)
    _, at = _build(engine, set())

    def fails_inside(conn: sa.Connection) -> None:
        with changes.unlisted(conn):
            _write_answer(conn, world.signed[0][1], 4)
            raise LookupError("inside")

    with engine.begin() as conn, pytest.raises(LookupError, match="inside"):
        fails_inside(conn)
    world.answer(rating=2)
    assert _listed_after(engine, int(at.position)) == [changes.BULK, "answers"]


def _write_answer(conn: sa.Connection, token: str, rating: int) -> None:
    key = tokens.survey_key(token)
    conn.execute(sa.delete(answers).where(answers.c.survey_key == key))
    conn.execute(
        sa.insert(answers).values(
            survey_key=key,
            token=token,
            helpdesk="h",
            dialog_id=f"bulk-{key[-6:]}",
            agent_key="7",
            issued_at=START,
            rating=rating,
            submitted_at=START + timedelta(hours=2),
            source="csv",
            updated_at=START,
        )
    )
