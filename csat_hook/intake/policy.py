"""The send policy: whether a close gets a survey (configured by the ``policy`` section)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta

from csat_hook.db.text import name_key
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.intake.config import PolicyConfig


def _excluded(name: str | None, excluded: list[str]) -> bool:
    """Whether ``name`` is one of ``excluded`` once both are folded
    (:func:`~csat_hook.db.text.name_key`); a name that folds to nothing never is."""
    return bool(excluded and name) and name_key(name or "") in _folded(tuple(excluded))


@functools.lru_cache(maxsize=16)
def _folded(names: tuple[str, ...]) -> frozenset[str]:
    """``names`` as :func:`~csat_hook.db.text.name_key` folds them (none that folds to
    nothing), once per list."""
    return frozenset(key for name in names if (key := name_key(name)))


def looks_back(policy: PolicyConfig) -> bool:
    """True when :func:`skip_reason` may query earlier surveys (a re-close grace or a
    customer cool-down); False when it decides from the close alone."""
    return (
        policy.per_dialog == "every_close" and policy.reclose_grace_seconds > 0
    ) or policy.customer_cooldown_days > 0


# What a look-back asks about: ("dialog", helpdesk, dialog id), ("customer", helpdesk, id)
# or ("email", helpdesk, e-mail as the database lowers it). Scoped to the helpdesk as the
# queries are: ids of two helpdesks, or a customer id and a dialog id, that are the same text
# are not one.
LookBackKey = tuple[str, str, str]
# Each customer e-mail of a batch → the database's lower() of it (store.fold_emails): the
# look-back compares e-mails that way, so the keys must too (Python's lower() differs).
FoldedEmails = Mapping[str, str]


def look_back_emails(policy: PolicyConfig, events: Iterable[DialogClosed]) -> set[str]:
    """The customer e-mails whose fold :func:`look_back_keys` and :func:`skip_reason` need
    (none without a customer cool-down)."""
    if policy.customer_cooldown_days <= 0:
        return set()
    return {event.customer.email for event in events if event.customer.email}


def look_back_keys(
    policy: PolicyConfig, event: DialogClosed, emails: FoldedEmails
) -> set[LookBackKey]:
    """What :func:`skip_reason` may look back for ``event`` about (empty without a look-back):
    closes sharing a key must be decided one after the other (:func:`store.lock_look_backs`).
    ``emails`` folds the e-mails of :func:`look_back_emails`."""
    keys: set[LookBackKey] = set()
    if policy.per_dialog == "every_close" and policy.reclose_grace_seconds > 0:
        keys.add(_dialog_key(event))
    if policy.customer_cooldown_days > 0:
        keys |= _customer_keys(event, emails)
    return keys


def _dialog_key(event: DialogClosed) -> LookBackKey:
    return ("dialog", event.helpdesk, event.dialog_id)


def _customer_keys(event: DialogClosed, emails: FoldedEmails) -> set[LookBackKey]:
    keys: set[LookBackKey] = set()
    if event.customer.id:
        keys.add(("customer", event.helpdesk, event.customer.id))
    if event.customer.email:
        keys.add(("email", event.helpdesk, emails[event.customer.email]))
    return keys


def look_back_since(policy: PolicyConfig, now: datetime) -> dict[str, datetime]:
    """By look-back kind: the earliest survey time a close at ``now`` looks back to (a close
    later than ``now`` looks back to no earlier)."""
    return {
        "dialog": now - timedelta(seconds=policy.reclose_grace_seconds),
        "customer": now - timedelta(days=policy.customer_cooldown_days),
        "email": now - timedelta(days=policy.customer_cooldown_days),
    }


# Each look-back key of a batch → its latest queued or sent survey's creation time, when no
# earlier than the batch's earliest close looks back to (store.latest_surveys).
LatestSurveys = Mapping[LookBackKey, datetime]


def skip_reason(
    policy: PolicyConfig,
    latest: LatestSurveys | None,
    event: DialogClosed,
    now: datetime,
    seen: set[LookBackKey],
    emails: FoldedEmails,
) -> str | None:
    """Why this close gets no survey, or None to send one.

    ``latest`` holds the latest survey of each of the batch's look-back keys
    (:func:`look_back_keys`, looked up before any close of the batch is stored, as far back
    as :func:`look_back_since` of its earliest close), None only where the policy does not
    look back (:func:`looks_back`; ValueError otherwise); ``seen`` the customers and dialogs
    surveyed earlier in the same transaction; ``emails`` folds the e-mails of
    :func:`look_back_emails` as the database does.
    """
    if event.unsurveyable:  # the helpdesk cannot take the reply (DialogClosed.unsurveyable)
        return event.unsurveyable
    if policy.skip_without_agent and not event.agent.known:
        return "no_agent"
    # A team is compared as the report groups teams (db.text.name_key): "Billing", "billing"
    # and "BILLING\u00a0" are one team, excluded or not; a channel likewise. Folded only
    # when something is excluded (nearly every configuration excludes nothing).
    if _excluded(event.channel, policy.exclude_channels):
        return "excluded_channel"
    if _excluded(event.team, policy.exclude_teams):
        return "excluded_team"
    if latest is None:
        if looks_back(policy):
            raise ValueError("a look-back policy decides from the batch's latest surveys")
        latest = {}
    since = look_back_since(policy, now) if latest else {}
    if policy.per_dialog == "every_close" and policy.reclose_grace_seconds > 0:
        dialog = _dialog_key(event)
        if dialog in seen or _surveyed_since(latest, dialog, since):
            return "recently_surveyed"
        seen.add(dialog)
    if policy.customer_cooldown_days > 0:
        who = _customer_keys(event, emails)
        if who & seen or any(_surveyed_since(latest, key, since) for key in who):
            return "customer_cooldown"
        seen.update(who)
    return None


def _surveyed_since(latest: LatestSurveys, key: LookBackKey, since: Mapping[str, datetime]) -> bool:
    """Whether ``key``'s latest survey was created at or after its kind's look-back time."""
    found = latest.get(key)
    return found is not None and found >= since[key[0]]
