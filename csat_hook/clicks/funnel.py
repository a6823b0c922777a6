"""Which surveys a person opened: the middle step of the funnel sent → opened → answered.

A survey is *opened* when at least one of its stored clicks is human: not automated when it
was stored (HEAD, a scanner's User-Agent, too soon after sending) and not part of a burst
(:func:`~csat_hook.clicks.scanners.burst_ids`, applied again here over every stored click but
the prefetches, so a burst whose clicks were stored by different web processes is found too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from csat_hook import tokens
from csat_hook.clicks.scanners import StoredClick
from csat_hook.clicks.scanners import burst_ids


def opened_survey_keys(rows: Iterable[Any], burst_seconds: float) -> set[str]:
    """Survey keys (:func:`csat_hook.tokens.survey_key`) with a human click, from
    :func:`~csat_hook.clicks.store.click_facts` rows."""
    clicks = list(rows)
    bursts = burst_ids((StoredClick(c[0], c[1], c[2], c[3]) for c in clicks), burst_seconds)
    return {tokens.survey_key(c[1]) for c in clicks if not c[4] and c[0] not in bursts}
