"""Scripted answers from the loopback fake helpdesk, for vendor APIs whose answer matters.

The fake answers every API call 200 with the created message's id in every vendor's shape.
A user look-up needs a user in the answer, and a lookup that keeps failing needs a failure on
that route only: :func:`script_answers` makes the fake answer matching requests as scripted.
Every request is still recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest

from csat_hook.devtools.fake_helpdesk import Answer as FakeAnswer
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk


@dataclass
class Answer:
    """What the fake answers to ``method`` requests whose path fully matches ``path``."""

    method: str
    path: str
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # How many matching requests get this answer (None: all of them); later ones fall through.
    times: int | None = None


def script_answers(fake: FakeHelpdesk, monkeypatch: pytest.MonkeyPatch, *answers: Answer) -> None:
    """Answer matching requests as scripted (the first matching answer with uses left)."""
    original = fake.record
    remaining = [answer.times for answer in answers]

    def record(
        method: str, path: str, query: str, headers: dict[str, str], raw: bytes
    ) -> FakeAnswer:
        answered = original(method, path, query, headers, raw)
        for i, answer in enumerate(answers):
            if answer.method != method or not re.fullmatch(answer.path, path):
                continue
            if remaining[i] is not None:
                if remaining[i] == 0:
                    continue
                remaining[i] -= 1
            with fake.lock:
                fake.requests[-1]["answered"] = answer.status
            return FakeAnswer(answer.status, answer.body, dict(answer.headers))
        return answered

    # The fake's request handler calls fake.record(...): an instance attribute wins.
    monkeypatch.setattr(fake, "record", record)
