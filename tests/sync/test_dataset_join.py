"""The answers' join to their surveys (each survey packed in one int while the answers are
read): every field an answer takes from its survey comes back as the survey row had it."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from csat_hook.sync.dataset import build_dataset

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def survey(key, agent, team, status, created_us, channel):
    return (f"{key}.sig", "chatwoot", f"D-{key}", agent, f"Name {agent}", None, team, status,
            created_us, channel)  # fmt: skip


def answer(key, agent, rating):
    return (key, "chatwoot", f"D-{key}", agent, T0, rating, f"comment {key}", T0, None)


def test_each_answer_takes_its_own_surveys_cohort_team_channel_status_and_agent():
    surveys = [
        survey("a", "7", "Team A", "sent", 1_780_000_000_123_456, "email"),
        survey("b", "8", None, "failed", -86_400_000_000 * 365 * 3 - 1, None),  # before 1970
        survey("c", "7", "Team B", "sent", 2**52 + 7, "whatsapp"),
        survey("d", "9", "Team A", "sent", 0, "email"),
        survey("e", "8", "Team B", "queued", 5, ""),  # never answered
    ]
    answers = [answer("c", "7", 5), answer("a", "7", 4), answer("b", "8", 1), answer("d", "9", 3)]
    data = build_dataset(iter(answers), iter(surveys), secrets=["s"], helpdesks={})
    got = {
        record.dialog_id: (
            data.agents[record.agent].key,
            data.teams[record.team],
            cohort,
            record.answered_sent,
            record.channel,
            record.rating,
        )
        for record, cohort in zip(data.answers, data.cohorts, strict=True)
    }
    assert got == {
        "D-a": ("7", "Team A", 1_780_000_000_123_456, True, "email", 4),
        "D-b": ("8", "", -86_400_000_000 * 365 * 3 - 1, False, "", 1),
        "D-c": ("7", "Team B", 2**52 + 7, True, "whatsapp", 5),
        "D-d": ("9", "Team A", 0, True, "email", 3),
    }
    assert len(data.sent.agent) == 3  # a, c, d
