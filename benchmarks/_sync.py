"""What the sync and Forms API benchmarks share: the seeded surveys and answers (one
generator, one secret, one clock), the fake Google API's request log, CPU of a process, the
machine's description, and the peer scripts' launcher."""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

from csat_hook import tokens

SECRET = "benchmark-token-secret-0123456789"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
COMMENTS = [
    "Great, thanks!",
    "ok",
    "",
    "Took too long",
    "Спасибо, всё быстро",
    "",
    "=SUM(1;2)",
    "Solved on first contact",
    "meh",
    "",
]


LATE = 1000  # answers that arrive between the second and the third sync


def generate(agents: int, answers: int, unanswered: int) -> Iterator[tuple]:
    """Deterministic surveys: (n, agent, token, created, answered_at or None, rating, comment).

    The first ``answers`` are in the sheet from the start, the next LATE arrive later, the
    rest are never answered.
    """
    rng = random.Random(42)
    for n in range(answers + LATE + unanswered):
        agent = str(1000 + rng.randrange(agents))
        created = NOW - timedelta(seconds=rng.randrange(120 * 86400))
        ref = tokens.SurveyRef("dryrun", f"D-{n}", agent, created, nonce=f"{n % 1679616:04x}")
        token = tokens.sign(SECRET, ref)
        if n < answers + LATE:
            submitted = created + timedelta(minutes=rng.randrange(5, 3000))
            rating = rng.choices([5, 4, 3, 2, 1], [45, 25, 12, 10, 8])[0]
            yield n, agent, token, created, submitted, rating, rng.choice(COMMENTS)
        else:
            yield n, agent, token, created, None, None, None


def requests_by_kind(url: str) -> tuple[dict[str, int], float]:
    """Requests the fake saw, by kind, and the seconds it spent answering them."""
    with urllib.request.urlopen(f"{url}/_fake/requests") as response:
        seen = json.load(response)
    return (dict(Counter(r["kind"] for r in seen)), sum(r.get("server_ms", 0) for r in seen) / 1000)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({model}), "
        f"Python {platform.python_version()}"
    )


def reset_requests(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/_fake/requests", method="DELETE"))


def run_peer_script(
    fake: dict, fake_pid: int, script: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``script`` (beside this file) in its own process, given the fake's URL, a service
    account file and ``args``; returns the finished process and the fake's CPU meanwhile (the
    fake's request log is reset first)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as account:
        json.dump(fake["service_account"], account)
        account.flush()
        reset_requests(fake["url"])
        fake_cpu = cpu_seconds(fake_pid)
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name(script)),
                fake["url"],
                account.name,
                *args,
            ],
            capture_output=True,
            text=True,
        )
        return done, cpu_seconds(fake_pid) - fake_cpu
