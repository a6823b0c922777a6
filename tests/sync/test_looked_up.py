"""A run crediting a few answers looks their surveys and answers up (report_step._look_up)
instead of reading every survey and answer inside its write transaction; the report reads
everything once, after the commit. What it stores and writes must be what the whole read
gives, case by case: new, later, earlier and same-instant submissions, edited agent fields,
forged references, surveys the database does not hold, and a reference signed again under
a retired secret (found only by a whole read of the surveys)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.db.engine import make_engine
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import unverified_answers
from csat_hook.devtools.fake_google import FakeGoogle
from csat_hook.sync import report_step
from csat_hook.sync import store
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SECRET
from tests.sync.conftest import SHEET_ID
from tests.sync.conftest import SyncKit

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
RETIRED = "retired-token-secret-0123456789"


@contextmanager
def other_database(kit: SyncKit, tmp_path: Path) -> Iterator[str]:
    """A second fresh database of the kit's kind."""
    if kit.engine.name != "postgresql":
        yield f"sqlite:///{tmp_path / 'other.sqlite3'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = sa.make_url(kit.database_url)
    admin = make_engine(base.set(query={}).render_as_string(hide_password=False))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def resigned(token: str) -> str:
    """The same survey reference (same payload, so the same survey key), signed under the
    retired secret: valid, and not the token stored for the survey."""
    ref = tokens.verify(token, [SECRET])
    again = tokens.sign(RETIRED, ref)
    assert tokens.survey_key(again) == tokens.survey_key(token) and again != token
    return again


def forged(token: str) -> str:
    payload, _, tag = token.partition(".")
    return f"{payload}.{'A' if tag[0] != 'A' else 'B'}{tag[1:]}"


def scenario(kit: SyncKit) -> dict[str, Any]:
    """Two runs: four answers, then a second run adding every kind of row to the sheet;
    what the second run reports, stores and writes."""
    config = kit.config(token={"secret": SECRET, "previous_secrets": [RETIRED]})
    made = [
        kit.survey(
            f"T-{n}",
            str(n % 2),
            f"Agent {n % 2}",
            agent_email=f"a{n % 2}@example.com",
            created=T0 - timedelta(days=1),
        )
        for n in range(7)
    ]
    rows: list[list[Any]] = [EN_HEADER]
    rows += [
        [T0 + timedelta(hours=n), 5 - n % 3, f"comment {n}", "", "", made[n]] for n in range(4)
    ]
    kit.responses(rows)
    first = kit.run(config)
    assert (first.status, first.new) == ("ok", 4), first.error
    unknown = kit.token("T-elsewhere", "9", T0 - timedelta(days=2))  # signed, no survey row
    rows[2][1] = 1  # row 3 edited in place: same time, another rating
    rows += [
        [T0 + timedelta(hours=5), 4, "new", "", "", made[4]],
        [T0 + timedelta(hours=6), 2, "later", "", "", made[0]],
        [T0 - timedelta(hours=6), 3, "earlier", "", "", made[1]],
        [T0 + timedelta(hours=7), 5, "edited field", "Someone Else", "T-5", made[5]],
        [T0 + timedelta(hours=8), 1, "forged", "", "", forged(made[6])],
        [T0 + timedelta(hours=9), 4, "no survey", "", "", unknown],
        # The agent field shows the e-mail recorded on the survey: not an edit, which only
        # the survey row can tell.
        [T0 + timedelta(hours=10), 2, "re-signed", "a1@example.com", "", resigned(made[3])],
        # References a respondent or a sheet controls: pasted with spaces around (the stored
        # token), one character added, and a cell of 3,000 characters; none found by a
        # look-up that a whole read would not find.
        [T0 + timedelta(hours=11), 3, "pasted", "", "", f"  {made[2]}\n"],
        [T0 + timedelta(hours=12), 1, "edited", "", "", made[6] + "é"],
        [T0 + timedelta(hours=13), 1, "huge", "", "", "x" * 3000],
    ]
    kit.responses(rows)
    second = kit.run(config)
    assert second.status == "ok", second.error

    def table(t: sa.Table, *skip: str) -> list[dict[str, Any]]:
        found = [
            {k: v for k, v in row._asdict().items() if k not in ("id", *skip)}
            for row in kit.rows(t)
        ]
        return sorted(found, key=repr)

    said = second.as_dict()
    for varying in ("duration_ms", "phases_ms", "requests", "outputs"):
        said.pop(varying, None)
    return {
        "summary": said,
        "answers": table(answers),
        "history": table(answer_history),
        "unverified": table(unverified_answers),
        "sheet": {title: kit.sheet(title) for title in kit.fake.titles(SHEET_ID)},
    }


@pytest.mark.parametrize("part", [10_000, 2], ids=["one part", "parts of two"])
def test_answers_looked_up_store_and_report_what_a_whole_read_does(
    kit: SyncKit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_key: Any, part: int
) -> None:
    whole_reads: list[str] = []
    for name in ("survey_facts", "iter_survey_facts"):  # read at once or streamed
        original = getattr(store, name)

        def counting(conn: sa.Connection, _original: Any = original) -> Any:
            whole_reads.append("surveys")
            return _original(conn)

        monkeypatch.setattr(store, name, counting)
    # In parts of two, a survey's later submissions join the part of its first one (T-0's
    # "later" row, T-1's edit in place), and the reference signed again is in a later part.
    monkeypatch.setattr(report_step, "LOOKED_UP_MAX", part)
    looked_up = scenario(kit)
    # The second run: one whole read of the surveys for the re-signed reference (once, in
    # parts too), one for the report after the commit (the first run: the report's only).
    assert whole_reads == ["surveys"] * 3

    monkeypatch.setattr(report_step, "LOOKED_UP_MAX", 0)  # every run reads everything
    other = FakeGoogle().start()
    try:
        with other_database(kit, tmp_path) as url:
            (tmp_path / "twin").mkdir()
            twin = SyncKit(other, url, tmp_path / "twin", rsa_key)
            try:
                whole = scenario(twin)
            finally:
                twin.engine.dispose()
    finally:
        other.stop()

    assert looked_up["summary"]["new"] == 3  # T-4, T-5 and the survey held elsewhere
    assert looked_up["summary"]["unverified"] == {"forged": 1, "malformed": 2}
    # Later submissions of T-0, T-2 (pasted) and T-3 (re-signed); T-1 edited in place.
    assert looked_up["summary"]["updated"] == 4
    assert any("changed in place" in w for w in looked_up["summary"]["warnings"])
    assert looked_up["summary"]["edited_fields"] == 1  # the field "Someone Else" only
    assert looked_up == whole


def test_a_reference_stored_as_signed_needs_no_whole_read_inside_the_transaction(
    kit: SyncKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in (
        "survey_facts",
        "all_answers",
        "iter_survey_facts",
        "iter_answers",
        "survey_facts_by_token",
        "answers_among",
    ):
        original = getattr(store, name)

        def counting(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(store, name, counting)
    made = [kit.survey(f"T-{n}", "1", "Agent 1", created=T0 - timedelta(days=1)) for n in range(3)]
    kit.responses([EN_HEADER, *([T0, 5, "", "", "", t] for t in made)])

    summary = kit.run()

    assert (summary.status, summary.new, summary.totals["answers"]) == ("ok", 3, 3)
    # Looked up in the ingest, then streamed once into the report's dataset, after the commit.
    # No answer stored before this first run: none is looked up.
    assert calls == ["survey_facts_by_token", "iter_answers", "iter_survey_facts"]

    calls.clear()
    later = kit.survey("T-3", "1", "Agent 1", created=T0 - timedelta(days=1))
    kit.responses(
        [
            EN_HEADER,
            *([T0, 5, "", "", "", t] for t in made),
            [T0 + timedelta(hours=1), 2, "", "", "", made[0]],  # a later submission of T-0
            [T0 + timedelta(hours=1), 4, "", "", "", later],
        ]
    )
    kit.now += timedelta(minutes=10)
    summary = kit.run()

    assert (summary.status, summary.new, summary.updated) == ("ok", 1, 1)
    assert summary.totals["answers"] == 4
    assert calls == ["survey_facts_by_token", "answers_among", "iter_answers", "iter_survey_facts"]


def test_a_batch_is_looked_up_a_part_at_a_time_with_each_survey_in_one_part(
    kit: SyncKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_step, "LOOKED_UP_MAX", 2)
    looked: list[list[str]] = []
    original = report_step.ReportStep._look_up

    def recording(self: Any, conn: sa.Connection, subs: Any, **options: Any) -> Any:
        looked.append([s.comment for s in subs])
        return original(self, conn, subs, **options)

    monkeypatch.setattr(report_step.ReportStep, "_look_up", recording)
    whole: list[str] = []

    def read_whole(conn: sa.Connection) -> list[Any]:
        whole.append("read")
        return []

    monkeypatch.setattr(store, "survey_facts", read_whole)
    made = [kit.survey(f"T-{n}", "1", "Agent 1", created=T0 - timedelta(days=1)) for n in range(3)]
    kit.responses(
        [
            EN_HEADER,
            [T0, 5, "a", "", "", made[0]],
            [T0, 4, "b", "", "", made[1]],
            [T0, 3, "c", "", "", made[2]],
            [T0 + timedelta(hours=1), 1, "a later", "", "", made[0]],
            [T0, 2, "no reference", "", "", ""],
        ]
    )

    summary = kit.run()

    assert (summary.new, summary.history_only, summary.unverified) == (3, 1, {"missing": 1})
    assert looked == [["a", "b", "a later"], ["c", "no reference"]]
    assert whole == []  # every reference as stored: no survey read whole
    assert {row.survey_key: row.rating for row in kit.rows(answers)} == {
        tokens.survey_key(made[0]): 1,
        tokens.survey_key(made[1]): 4,
        tokens.survey_key(made[2]): 3,
    }


def test_a_dry_run_reads_whole_so_its_report_holds_what_it_would_credit(kit: SyncKit) -> None:
    made = [kit.survey(f"T-{n}", "1", "Agent 1", created=T0 - timedelta(days=1)) for n in range(3)]
    kit.responses([EN_HEADER, *([T0, 5, "", "", "", t] for t in made)])
    config = kit.config(output={"gsheets": {"enabled": False}, "local": {"enabled": True}})
    dry = kit.run(config, dry_run=True)
    assert (dry.status, dry.new, dry.totals["answers"]) == ("ok", 3, 3)
    assert kit.rows(answers) == []  # rolled back


def test_parts_keep_order_and_each_survey_whole() -> None:
    from csat_hook.sync.ingest import by_survey
    from csat_hook.sync.records import Submission

    def sub(name: str, token: str) -> Submission:
        return Submission(name, name, T0, 5, "", token, "", "")

    rows = [
        sub("a1", "A.tag1"),
        sub("b", " B.tag \n"),  # spaces around: the same survey as "B.other"
        sub("none1", ""),
        sub("c", "C.tag"),
        sub("none2", "   "),
        sub("a2", "A.tag2"),  # survey A, signed again: joins A's part
        sub("b2", "B.other"),
        sub("d", "D.tag"),
        sub("none3", ""),
    ]
    parts = by_survey(rows, 2)
    assert [[s.fingerprint for s in part] for part in parts] == [
        ["a1", "b", "a2", "b2"],
        ["none1", "c"],
        ["none2", "d"],
        ["none3"],
    ]
    assert by_survey([], 2) == []


def _parts_by_every_key(submissions: list[Any], size: int) -> list[list[Any]]:
    """The parts as a map of every key to its part made them (before the bitmap)."""
    parts: list[list[Any]] = []
    part_of: dict[str, int] = {}
    for submission in submissions:
        key = submission.token.strip().partition(".")[0]
        index = part_of.get(key) if key else None
        if index is None:
            if not parts or len(parts[-1]) >= size:
                parts.append([])
            index = len(parts) - 1
            if key:
                part_of[key] = index
        parts[index].append(submission)
    return parts


@pytest.mark.parametrize("seed", range(6))
def test_parts_found_through_the_bitmap_are_those_of_a_map_of_every_key(seed: int) -> None:
    import random

    from csat_hook.sync.ingest import by_survey
    from csat_hook.sync.records import Submission

    rng = random.Random(seed)
    # Surveys answered once, some twice or more far apart, some rows without a reference;
    # thousands of keys, so some of them share a slot of the bitmap.
    pool = [f"K{rng.randrange(10**9)}" for _ in range(rng.choice((5, 300, 4_000)))]
    rows = [
        Submission(
            str(n),
            f"row {n}",
            T0,
            5,
            "",
            "" if rng.random() < 0.05 else f" {rng.choice(pool)}.sig{n} ",
            "",
            "",
        )
        for n in range(rng.choice((1, 50, 6_000)))
    ]
    size = rng.choice((1, 7, 500))
    expected = _parts_by_every_key(rows, size)
    assert [[s.fingerprint for s in p] for p in by_survey(rows, size)] == [
        [s.fingerprint for s in p] for p in expected
    ]
