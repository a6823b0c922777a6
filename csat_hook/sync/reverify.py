"""Forged answers credited once the secret that signed them is configured again.

An answer whose reference no configured secret signed is kept unverified (reason
``forged``), with the reference as read and the set of secrets it was checked under
(:func:`csat_hook.tokens.key_set_id`). That is what a rotated ``token.secret`` without the
old one in ``token.previous_secrets`` does to every answer to a survey sent before the
rotation, and the run's ``data_error`` says to add it there. Such rows are never read from
the source again (their identity is processed), so a sync checks the stored ones again
whenever the set of secrets differs from the one they were checked under: those that now
verify are credited (:meth:`~csat_hook.sync.report_step.ReportStep._reverify`: the same
precedence, history and alerts as the run's own rows) and leave the unverified answers; the
others are marked as checked under the new set, and cost nothing until it changes again.

Rows stored before the reference was kept (migration 0011) are checked once, their reference
found among the cells they kept: the one cell that verifies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from collections.abc import Set
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.sync import store
from csat_hook.sync.attribution import FORGED
from csat_hook.sync.records import Submission

PART = 2_500  # rows checked (and credited) at a time: a bounded read, whatever the table holds


@dataclass
class Checked:
    """One part of the stored forged answers, checked under the current secrets:
    ``credited`` now verify (source → submissions, as read again from their rows, with
    their unverified ids in ``ids``); ``still`` (unverified ids) do not. ``key_set`` is the
    secrets' :func:`~csat_hook.tokens.key_set_id`."""

    key_set: str
    credited: dict[str, list[Submission]] = field(default_factory=lambda: defaultdict(list))
    ids: list[int] = field(default_factory=list)
    still: list[int] = field(default_factory=list)


def check_stored(
    conn: sa.Connection, secrets: Sequence[str], absent: Set[int] = frozenset()
) -> Iterator[Checked]:
    """The stored forged answers not yet checked under ``secrets``, a part at a time, each
    checked. The caller credits a part's ``credited``, then calls :func:`settle` on it,
    before asking for the next part. Those whose id is in ``absent`` (rows the run's read of
    every row no longer has: the read forgets them) are neither credited nor marked."""
    key_set = tokens.key_set_id(secrets)
    after = 0
    while rows := store.unverified_to_check(conn, FORGED, key_set, after, PART):
        after = rows[-1].id
        yield check_rows([row for row in rows if row.id not in absent], secrets, key_set)


def settle(conn: sa.Connection, part: Checked) -> None:
    """Forget the part's credited rows (now answers or history) and mark the others checked
    under the part's secrets."""
    store.forget_unverified(conn, part.ids)
    store.mark_checked(conn, part.still, part.key_set)


def check_rows(rows: Sequence[Any], secrets: Sequence[str], key_set: str) -> Checked:
    """Which of the stored unverified ``rows`` now verify under ``secrets`` (whose
    :func:`~csat_hook.tokens.key_set_id` is ``key_set``)."""
    checked = Checked(key_set)
    for row in rows:
        token = row.token or _reference_among(row.source_row, secrets)
        if (
            token is None
            or row.submitted_at is None
            or row.rating is None
            or not tokens.verifies(token, secrets)
        ):
            checked.still.append(row.id)
            continue
        checked.ids.append(row.id)
        checked.credited[row.source].append(
            Submission(
                fingerprint=row.fingerprint,
                ref=row.source_ref or "",
                submitted_at=row.submitted_at,
                rating=row.rating,
                comment=row.comment or "",
                token=token,
                field_agent=row.field_agent or "",
                field_ticket=row.field_ticket or "",
                nps=row.nps,
            )
        )
    return checked


def _reference_among(cells: Any, secrets: Sequence[str]) -> str | None:
    """A row stored without its reference: the one cell it kept that verifies (None when
    none does, or more than one different ones do)."""
    if not isinstance(cells, Mapping):
        return None
    found = {
        value.strip()
        for value in cells.values()
        if isinstance(value, str)
        and value.count(".") == 1
        and tokens.verifies(value.strip(), secrets)
    }
    return found.pop() if len(found) == 1 else None
