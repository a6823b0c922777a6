"""Write examples/sample_responses.csv: a Google Forms "Download responses (.csv)" export.

Its references are signed with the built-in development secret (``dev-insecure-token-secret``),
so ``csat-hook -c examples/sync-demo.yaml sync`` credits them out of the box. It holds what a
real export holds: duplicate submissions, an edited pre-filled agent field, a forged and a
missing reference, a rating that is not a rating, a blank row, and a comment starting with
``=`` (it must land as text everywhere).

    .venv/bin/python examples/make_sample_responses.py [--out PATH] [--secret SECRET]

Deterministic: the same secret gives the same file.
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

try:
    from csat_hook import tokens
except ModuleNotFoundError:  # the system Python, not the virtualenv's
    raise SystemExit(
        "csat_hook is not installed for this Python: run the script with the virtualenv's,"
        " .venv/bin/python examples/make_sample_responses.py"
    ) from None

DEV_SECRET = "dev-insecure-token-secret"  # noqa: S105 (the documented development default)
HEADER = ["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"]
AGENTS = {"7": "Anna Petrova", "8": "Boris Ivanov", "9": "Chen Wei", "11": "Dana Scott"}
COMMENTS = [
    "Quick and friendly, thanks!",
    "Solved my problem.",
    "",
    "Took a while.",
    "Very helpful",
    "Спасибо, всё отлично",
    "",
    "Could be faster",
    "Great support",
]
MSK = timezone(timedelta(hours=3))


def forms_time(moment: datetime) -> str:
    """How the Forms CSV export writes a timestamp: 2026/11/02 3:04:05 PM GMT+3."""
    local = moment.astimezone(MSK)
    hour = local.hour % 12 or 12
    return f"{local:%Y/%m/%d} {hour}:{local:%M:%S} {'AM' if local.hour < 12 else 'PM'} GMT+3"


def build_rows(secret: str) -> list[list[str]]:
    rng = random.Random(20261122)
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rows: list[list[str]] = []
    for n in range(36):
        agent = rng.choice(list(AGENTS))
        issued = start + timedelta(hours=7 * n)
        ticket = f"T-{1000 + n}"
        ref = tokens.SurveyRef("dryrun", ticket, agent, issued, nonce=f"{n:04d}")
        token = tokens.sign(secret, ref)
        rating = rng.choices([5, 4, 3, 2, 1], weights=[50, 25, 10, 8, 7])[0]
        submitted = issued + timedelta(minutes=rng.randint(5, 600))
        rows.append(
            [forms_time(submitted), str(rating), rng.choice(COMMENTS), AGENTS[agent], ticket, token]
        )
    # The same customer changes their mind: the later submission wins, both are history.
    first = rows[3]
    rows.append(
        [
            forms_time(start + timedelta(days=3)),
            "5",
            "Changed my mind, all good",
            first[3],
            first[4],
            first[5],
        ]
    )
    # Edited pre-filled agent field: still credited to the agent in the reference.
    rows[5][3] = "Somebody Else"
    # A comment that would run as a formula if written carelessly.
    rows[6][2] = '=HYPERLINK("https://example.com","click me")'
    # A label instead of a number.
    rows[7][1] = "5 - Very satisfied"
    forged = tokens.sign(
        "not-our-secret-0123456789", tokens.SurveyRef("dryrun", "T-9999", "7", start, nonce="ffff")
    )
    rows.append(
        [
            forms_time(start + timedelta(days=4)),
            "1",
            "Forged reference",
            "Anna Petrova",
            "T-9999",
            forged,
        ]
    )
    rows.append(
        [
            forms_time(start + timedelta(days=4, hours=1)),
            "2",
            "No reference at all",
            "Boris Ivanov",
            "T-9998",
            "",
        ]
    )
    rows.append(
        [
            forms_time(start + timedelta(days=5)),
            "excellent!!",
            "Not a rating",
            "Chen Wei",
            "T-1010",
            rows[10][5],
        ]
    )
    rows.append(["", "", "", "", "", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("sample_responses.csv")
    )
    parser.add_argument("--secret", default=DEV_SECRET)
    args = parser.parse_args()
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(build_rows(args.secret))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
