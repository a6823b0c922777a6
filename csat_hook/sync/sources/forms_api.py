"""``forms_api``: ``forms.responses.list`` with a ``timestamp >=`` watermark and paging.

Answers are matched by questionId (stable when a question is renamed or translated). The
first run (and ``csat-hook sync --full``) reads every response, page after page (up to 5000
each: about 200 requests for 1,000,000 answers, the most a form's linked sheet can hold). The
watermark is the latest ``lastSubmittedTime`` seen; a later run asks only for
``timestamp >= watermark − results.forms_api.overlap_seconds`` (default one hour: a response
Google makes visible late, or a clock step, is still caught; rows read again are recognised
by their identity and change nothing). Responses the filter leaves out are not "gone": the
ingest only adds, and the report is built from every stored answer.

An edited response keeps its responseId, gets a later ``lastSubmittedTime`` and so a new
identity (the submission time is part of it): it is read as a later submission of the same
survey, which is credited in place of the earlier one (:mod:`~csat_hook.sync.attribution`).
Google documents the filter as "responses submitted at and after timestamp N" without naming
the field; an edit is a submission (``lastSubmittedTime`` is "the most recent time the
response was submitted"), and the fake compares that field. Were Google to compare
``createTime``, an edit made more than the overlap after the response was first submitted
would only be seen by a full read: ``csat-hook sync --full``, or the one the runner makes
when the last full read is older than ``results.forms_api.full_read_hours`` (default 24).

The runner also reads in full when no full read was made under this code's way of reading
cells (``READING_VERSION``: the last one is remembered with it): a response read before the
watermark is not listed again otherwise, and an answer an older version misread would stay
as read (with ``full_read_hours: 0``, for good), where a sheet's rows are all read once more.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Container
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from csat_hook.db import schema
from csat_hook.db.text import fitted
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.records import FROM_FIELDS
from csat_hook.sync.records import LEGACY_PRESENT
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.records import skipped_of
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.sources.base import RowParser
from csat_hook.sync.sources.identity import admit
from csat_hook.sync.sources.identity import legacy_fingerprint
from csat_hook.sync.sources.identity import skipped_identity
from csat_hook.sync.timestamps import TimestampError
from csat_hook.sync.values import RatingScale

_NANOS = re.compile(r"(\.\d{6})\d+")
# Before Google Forms existed: a filter from here reads every response.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def parse_rfc3339(text: str) -> datetime | None:
    """``2023-07-19T11:17:22.850363123Z`` (up to nine fraction digits, truncated to
    microseconds) as aware UTC; None when it is not such a time."""
    if type(text) is str and text.endswith("Z") and len(text) <= 30:
        # What Google writes ("generated output will always be Z-normalized"): Python's own
        # parser reads it directly, nanoseconds truncated as the fallback below does.
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(_NANOS.sub(r"\1", text).replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        # OverflowError: an offset that moves year 1 or 9999 outside datetime's range.
        return None


def _submission_time(value: Any) -> datetime:
    """The RowParser's reading of ``values["timestamp"]``: :meth:`FormsApiResults._one` puts
    the parsed time there, or the text it could not parse."""
    if isinstance(value, datetime):
        return value
    raise TimestampError(
        "bad_timestamp", "lastSubmittedTime is not an RFC 3339 time within the years 1-9999"
    )


def response_ref(response_id: str) -> str:
    """A response's ``ref`` (stored as ``source_ref``): ``response <responseId>``, as a
    ``source_ref`` column holds it. The id is Google's text: a NUL or a lone surrogate in it
    would fail every run's write, and the ref compared with a stored one must be that one."""
    # Every source_ref column (answers, history, unverified, skipped) is VARCHAR(191).
    ref = f"response {response_id or '(no responseId)'}"
    return fitted(schema.answers.c.source_ref, ref) or ref


def answer_text(answers: Mapping[str, Any], question_id: str) -> str | None:
    """The text of an answer (several for checkboxes, joined); None when unanswered."""
    answer = answers.get(question_id)
    if not isinstance(answer, Mapping):
        return None
    texts = answer.get("textAnswers", {}).get("answers", [])
    values = [str(t.get("value", "")) for t in texts if isinstance(t, Mapping)]
    return ", ".join(values) if values else None


def _answer_text_fast(answers: dict[str, Any], question_id: str) -> str | None:
    """:func:`answer_text` for the shape Google sends (one text answer of a str value), in a
    few dict look-ups; anything else goes the general way. A first run reads 1,000,000."""
    answer = answers.get(question_id)
    if answer is None:
        return None
    try:
        texts = answer["textAnswers"]["answers"]
        if type(texts) is list and len(texts) == 1:
            value = texts[0]["value"]
            if type(value) is str:
                return value
    except (KeyError, TypeError, IndexError):
        pass
    return answer_text(answers, question_id)


class FormsApiResults(ResultsSource):
    kind = "forms_api"

    def __init__(
        self,
        api: FormsApi,
        form_id: str,
        *,
        question_ids: Mapping[str, str],
        page_size: int,
        overlap_seconds: float,
        ratings: RatingScale,
        full_read_hours: float = 0,
    ) -> None:
        self.api = api
        self.form_id = form_id
        self.question_ids = dict(question_ids)
        self.page_size = page_size
        self.overlap = timedelta(seconds=overlap_seconds)
        self.full_read_every = timedelta(hours=full_read_hours) if full_read_hours else None
        self.parser = RowParser(ratings, _submission_time)
        # One headers tuple for every row (a first run holds 1,000,000 submissions). The
        # responseId is not among them: it is the submission's ``ref`` ("response <id>"),
        # stored beside the row as read, and a second copy of it was ≈ 60 MB at 1,000,000.
        self.headers = ("lastSubmittedTime", *self.question_ids)
        self.roles = tuple(self.question_ids.items())

    @classmethod
    def from_config(
        cls, config: SyncSettings, *, sheets: SheetsApi | None = None, forms: FormsApi | None = None
    ) -> FormsApiResults:
        if forms is None:
            raise ValueError("the forms_api source needs a Forms API client")
        api = forms
        options = config.results.forms_api
        assert options.form_id is not None  # checked by the config model
        return cls(
            api,
            options.form_id,
            question_ids=options.question_ids,
            page_size=options.page_size,
            overlap_seconds=options.overlap_seconds,
            full_read_hours=options.full_read_hours,
            ratings=RatingScale.from_config(config.results, config.metrics),
        )

    @property
    def key(self) -> str:
        return f"forms_api:{self.form_id}"

    def fetch(self, known: Container[str], watermark: datetime | None) -> SourceBatch:
        # A watermark from a response dated near year 1 reads from before Forms existed (the
        # overlap taken from year 1 would not be a date).
        since = None
        if watermark is not None:
            since = max(watermark, _EARLIEST + self.overlap) - self.overlap
        batch = SourceBatch(source=self.kind, watermark=watermark, complete=since is None)
        batch.columns.update(
            {role: f"question {qid}" for role, qid in self.question_ids.items()},
            timestamp="lastSubmittedTime",
        )
        seen: dict[str, int] = {}
        for response in self.api.list_responses(
            self.form_id, since=since, page_size=self.page_size
        ):
            batch.rows_read += 1
            self._one(batch, response, known, seen)
        return batch

    def _one(
        self,
        batch: SourceBatch,
        response: Mapping[str, Any],
        known: Container[str],
        seen: dict[str, int],
    ) -> None:
        response_id = str(response.get("responseId") or "")
        stamp = str(response.get("lastSubmittedTime") or response.get("createTime") or "")
        submitted = parse_rfc3339(stamp)
        answers = response.get("answers") or {}
        if type(answers) is not dict:
            answers = {}
        texts = [_answer_text_fast(answers, qid) for _, qid in self.roles]
        values: dict[str, Any] = dict(zip(self.question_ids, texts, strict=True))
        # A time that is not one (or none) makes the response a skipped row, as a bad cell of
        # a sheet is: it neither fails the run nor moves the watermark.
        values["timestamp"] = stamp if submitted is None else submitted
        if submitted is not None and (batch.watermark is None or submitted > batch.watermark):
            batch.watermark = submitted
        item = self.parser.parse(
            values,
            ref=response_ref(response_id),
            headers=self.headers,
            cells=FROM_FIELDS,  # the row as read made from the fields when asked for
        )
        # The identity leaves the responseId out: the same answer read from the responses
        # sheet or an export is the same row.
        legacy = LEGACY_PRESENT in known
        if isinstance(item, Submission) and not batch.complete:
            # Skipped by an earlier run (a rating label was missing) and readable now.
            earlier = skipped_identity(values, item.submitted_at)
            if earlier in skipped_of(known):
                batch.resolved_skips.append(earlier)
        admit(
            batch,
            item,
            known,
            seen,
            legacy=functools.partial(legacy_fingerprint, self.kind, values, response_id)
            if legacy
            else None,
        )
