"""``csat-hook dev demo``: a realistic first look at the report in one minute.

Eight named agents in two teams close dialogs over the last 60 days; each close is a survey
in the configured database (as intake records it: agent, team, channel, a signed reference),
and about a third of the customers answer. Their answers are written as a Google Forms
"Download responses (.csv)" export at ``results.csv.path`` (the timestamp layout Forms
writes, the pre-filled agent, ticket and reference fields, the 0–10 NPS question when
``results.columns.nps`` names one), so the sync that follows credits every answer to a
survey it knows: surveys sent, answers and response rates agree. Like a real export it holds
a customer who changed their mind, a forged and a missing reference.

The agents differ on purpose: one steady and excellent, one who slipped since the previous
period, one who improved, a newcomer with too few answers to rank. Deterministic for a seed
and a day. Not a product path.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.db.schema import surveys
from csat_hook.intake import store

DIALOG_PREFIX = "demo-"
HEADER = ["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"]
DAYS = 60


@dataclass(frozen=True)
class DemoAgent:
    key: str
    name: str
    team: str
    closes_per_day: float
    csat_now: float  # the share of 4–5 ratings in the last 30 days…
    csat_before: float  # …and in the 30 days before


AGENTS = (
    DemoAgent("1041", "Anna Petrova", "Support", 6.5, 0.95, 0.93),
    DemoAgent("1042", "Boris Ivanov", "Support", 7.5, 0.86, 0.87),
    DemoAgent("1043", "Chen Wei", "Support", 3.0, 0.90, 0.88),
    DemoAgent("1044", "Dana Scott", "Support", 6.0, 0.66, 0.90),  # slipped
    DemoAgent("2051", "Elif Yilmaz", "Billing", 5.0, 0.82, 0.80),
    DemoAgent("2052", "Farid Haddad", "Billing", 0.25, 0.95, 0.95),  # new: few answers
    DemoAgent("2053", "Grace Okafor", "Billing", 4.5, 0.89, 0.86),
    DemoAgent("2054", "Hugo Martin", "Billing", 4.5, 0.90, 0.68),  # improved
)
CHANNELS = ("email", "email", "chat", "chat", "chat", "web")
COMMENTS = {
    "good": [
        "Quick and friendly, thanks!",
        "Solved on the first reply.",
        "Спасибо, всё отлично",
        "Very clear explanation",
        "",
        "",
        "",
    ],
    "bad": [
        "Waited two days for an answer",
        "Had to explain everything twice",
        "Долго ждал ответа",
        "The problem is still there",
        "",
    ],
}


@dataclass
class Demo:
    surveys: list[dict[str, Any]]
    rows: list[list[str]]  # the export's data rows, oldest first
    answered: int


def forms_time(moment: datetime, tz: ZoneInfo) -> str:
    """As a Forms CSV export writes a timestamp: ``2026/11/02 3:04:05 PM GMT+3``."""
    local = moment.astimezone(tz)
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    zone = "GMT" if not minutes else f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")
    hour = local.hour % 12 or 12
    meridiem = "AM" if local.hour < 12 else "PM"
    return f"{local:%Y/%m/%d} {hour}:{local:%M:%S} {meridiem} {zone}"


def _rating(rng: random.Random, satisfied: float) -> int:
    if rng.random() < satisfied:
        return 5 if rng.random() < 0.7 else 4
    return rng.choice((1, 2, 2, 3, 3, 3))


def _nps(rng: random.Random, rating: int) -> int:
    if rating >= 4:
        return rng.choice((8, 9, 9, 10, 10, 10)) if rating == 5 else rng.choice((7, 8, 8, 9))
    return rng.randint(0, 6)


def build(
    *,
    now: datetime,
    helpdesk: str,
    secret: str,
    tz: ZoneInfo,
    with_nps: bool,
    seed: int = 12,
) -> Demo:
    """Surveys (rows for ``store.insert_surveys``) and the export's data rows."""
    rng = random.Random(seed)
    start = now - timedelta(days=DAYS)
    made: list[dict[str, Any]] = []
    answers: list[tuple[datetime, list[str]]] = []
    number = 0
    for agent in AGENTS:
        closes = int(agent.closes_per_day * DAYS)
        for _ in range(closes):
            number += 1
            created = start + timedelta(seconds=rng.uniform(0, DAYS * 86400 - 3600))
            created = created.replace(microsecond=0)
            dialog = f"{DIALOG_PREFIX}{number:05d}"
            ref = tokens.SurveyRef(helpdesk, dialog, agent.key, created, nonce=f"{number:04x}")
            token = tokens.sign(secret, ref)
            sent = rng.random() > 0.03  # a few replies fail to go out
            made.append(
                {
                    "helpdesk": helpdesk,
                    "dialog_id": dialog,
                    "occurrence": "",
                    "agent_id": agent.key,
                    "agent_name": agent.name,
                    "team": agent.team,
                    "channel": rng.choice(CHANNELS),
                    "language": "en",
                    "token": token,
                    "status": "sent" if sent else "failed",
                    "closed_at": created,
                    "created_at": created,
                    "sent_at": created if sent else None,
                }
            )
            submitted = created + timedelta(minutes=rng.randint(4, 2 * 24 * 60))
            if not sent or rng.random() > 0.36 or submitted >= now:
                continue
            recent = created >= now - timedelta(days=30)
            rating = _rating(rng, agent.csat_now if recent else agent.csat_before)
            comment = rng.choice(COMMENTS["good" if rating >= 4 else "bad"])
            row = [forms_time(submitted, tz), str(rating), comment, agent.name, dialog, token]
            if with_nps:
                row.append(str(_nps(rng, rating)) if rng.random() < 0.85 else "")
            answers.append((submitted, row))
    answers.sort(key=lambda item: item[0])
    rows = [row for _, row in answers]
    answered = len(rows)
    rows += _oddities(rows, now, helpdesk, tz, with_nps)
    return Demo(made, rows, answered)


def _oddities(
    rows: Sequence[list[str]], now: datetime, helpdesk: str, tz: ZoneInfo, with_nps: bool
) -> list[list[str]]:
    """What real exports hold: a customer who changed their mind (the later answer counts),
    a forged reference and a missing one (both shown as unverified, credited to no one)."""
    extra = []
    if rows:
        changed = list(rows[len(rows) // 2])
        changed[0] = forms_time(now - timedelta(minutes=30), tz)
        changed[1], changed[2] = "5", "Sorted out after all, thank you"
        if with_nps:
            changed[6] = "9"
        extra.append(changed)
    victim = AGENTS[0]
    forged = tokens.sign(
        "not-our-secret-0123456789",
        tokens.SurveyRef(helpdesk, "demo-forged", victim.key, now, nonce="ffff"),
    )
    tail = [""] if with_nps else []
    extra.append(
        [forms_time(now - timedelta(hours=3), tz), "1", "Forged", victim.name, "X-1", forged, *tail]
    )
    extra.append(
        [
            forms_time(now - timedelta(hours=2), tz),
            "2",
            "No reference",
            victim.name,
            "X-2",
            "",
            *tail,
        ]
    )
    return extra


def seeded(conn: sa.Connection, helpdesk: str) -> bool:
    """Whether this database already holds the demo's surveys."""
    found = conn.execute(
        sa.select(sa.func.count())
        .select_from(surveys)
        .where(surveys.c.helpdesk == helpdesk, surveys.c.dialog_id.like(f"{DIALOG_PREFIX}%"))
    ).scalar_one()
    return bool(found)


def others(conn: sa.Connection, helpdesk: str) -> bool:
    """Whether this database holds surveys the demo did not make (a database in use)."""
    demo = sa.and_(surveys.c.helpdesk == helpdesk, surveys.c.dialog_id.like(f"{DIALOG_PREFIX}%"))
    found = conn.execute(sa.select(surveys.c.id).where(sa.not_(demo)).limit(1)).first()
    return found is not None


def store_surveys(conn: sa.Connection, demo: Demo) -> int:
    return len(store.insert_surveys(conn, demo.surveys))


def write_export(path: Path, demo: Demo, nps_title: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*HEADER, nps_title] if nps_title else HEADER)
        writer.writerows(demo.rows)
