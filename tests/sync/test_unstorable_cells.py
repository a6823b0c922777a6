"""Cells PostgreSQL cannot store (NUL, lone surrogates) never stop a sync (issue #10): the
answer is credited with its text cleaned, the same on SQLite and PostgreSQL, and an unverified
row keeps its cells as read, cleaned."""

from __future__ import annotations

import sqlalchemy as sa

from csat_hook.db.schema import answers
from csat_hook.db.schema import unverified_answers
from tests.sync.conftest import EN_HEADER
from tests.sync.test_attribution import at


def test_nul_and_lone_surrogates_in_cells_are_stored_cleaned(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses(
        [
            EN_HEADER,
            [at(1), 2, "slow\x00 reply \ud800here", "An\x00na", "T-1", token],
            [at(2), 1, "forged\x00 one", "Bo\udfffris", "T-2", "bad\x00token"],
        ]
    )
    first = kit.run()
    assert first.status == "ok", first.error
    assert (first.new, first.unverified) == (1, {"malformed": 1})
    with kit.engine.connect() as conn:
        credited = conn.execute(sa.select(answers.c.comment, answers.c.field_agent)).one()
        kept = conn.execute(
            sa.select(unverified_answers.c.comment, unverified_answers.c.source_row)
        ).one()
    assert credited == ("slow reply \ufffdhere", "Anna")
    assert kept.comment == "forged one"
    assert "\x00" not in str(kept.source_row) and "\ud800" not in str(kept.source_row)
    again = kit.run()
    assert (again.status, again.new, again.unchanged) == ("ok", 0, 2)


def test_a_reference_with_a_nul_inside_or_at_an_end_is_not_credited(kit):
    # A NUL removed to store the cell made an edited reference verify: the check reads the
    # reference as the respondent sent it (the NUL as U+FFFD), so it is malformed.
    anna = kit.survey("T-1", "7", "Anna Petrova")
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    vera = kit.survey("T-3", "9", "Vera Sokolova")
    kit.responses(
        [
            EN_HEADER,
            [at(1), 1, "", "", "T-1", anna[:10] + "\x00" + anna[10:]],
            [at(2), 1, "", "", "T-2", boris + "\x00"],
            [at(3), 1, "", "", "T-3", "\x00" + vera],
        ]
    )
    summary = kit.run()
    assert summary.status in ("ok", "data_error"), summary.error
    assert (summary.new, summary.unverified) == (0, {"malformed": 3})
    with kit.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(answers)).scalar_one() == 0


def test_a_responses_tab_title_holding_a_lone_surrogate_fails_the_run_naming_the_tab(kit):
    # Sheets' JSON may carry "\ud800" in a title; no URL can ask for that tab by name (UTF-8
    # cannot encode it), and the run ended in "internal error (UnicodeEncodeError ...)".
    token = kit.survey("T-1", "7", "Anna Petrova")
    row = [at(1), 2, "slow", "Anna", "T-1", token]
    kit.responses([EN_HEADER, row], title="Answers \ud800")
    refused = kit.run()
    assert refused.status == "failed"
    assert refused.error.startswith("results.gsheets.sheet_gid: the tab (gid 0) has a title")
    assert "rename the tab" in refused.error
    assert kit.rows(answers) == []
    kit.responses([EN_HEADER, row], title="Answers")
    renamed = kit.run()
    assert (renamed.status, renamed.new) == ("ok", 1), renamed.error
