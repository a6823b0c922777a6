"""A bug inside a run fails that run visibly and leaves the next one free to run."""

from __future__ import annotations

import logging
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from csat_hook.sync.report_step import ReportStep
from tests.sync.conftest import EN_HEADER

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
SECRET = "the customer's own words"


def test_an_unexpected_exception_fails_the_run_naming_its_type_and_line_only(
    kit, monkeypatch, caplog
):
    kit.responses(
        [EN_HEADER]
        + [
            [T0 + timedelta(hours=i), 5, SECRET, "", "", kit.survey(f"T-{i}", "7", "Anna")]
            for i in range(3)
        ]
    )

    def broken(*_args, **_kwargs):
        raise RuntimeError(f"cannot handle {SECRET!r}")

    monkeypatch.setattr(ReportStep, "_report", broken)
    caplog.set_level(logging.DEBUG)

    failed = kit.run()

    assert failed.status == "failed"
    # The last line of csat-hook's own code it passed through (here the call of the step).
    assert re.fullmatch(r"internal error \(RuntimeError at sync/runner\.py:\d+\)", failed.error)
    [done] = [r for r in caplog.records if r.getMessage() == "sync.done"]
    assert done.levelno == logging.ERROR and done.__dict__["error"] == failed.error
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert SECRET not in logged

    monkeypatch.undo()  # the bug fixed: the lock was released, the next run completes
    again = kit.run()
    assert again.status == "ok" and again.agents == 1
