"""``forms_api``: ``forms.responses.list`` with a ``timestamp >=`` watermark and paging.

Answers are matched by questionId (stable when a question is renamed or translated). A
question deleted and added again gets a new questionId: the first response of a read that
answers a question no role reads has the form's questions asked for (``forms.get``, once a
read at most, one request of the "Read requests" quota, not an expensive read; what it lists
and the form's ``revisionId`` are remembered with the read, ``SourceBatch.remember``, and
taken instead while the responses answer no question it did not list and ``question_ids``
are the same: a form with an extra question no longer costs a forms.get every run), and a role whose
questionId the form no longer has also reads each question titled as
``results.columns.<role>`` names it (older responses keep their answers to the old one); with
none so titled, a warning names both keys and the form's questions no role reads (a refused
``forms.get`` is a warning too: the responses are read by the questionIds alone). The
first run (and ``csat-hook sync --full``) reads every response, page after page (up to 5000
each: about 200 requests for 1,000,000 answers, the most a form's linked sheet can hold). The
watermark is the latest ``lastSubmittedTime`` seen; a later run asks only for
``timestamp >= watermark − results.forms_api.overlap_seconds`` (default one hour: a response
Google makes visible late, or a clock step, is still caught; rows read again are recognised
by their identity and change nothing). Responses the filter leaves out are not "gone": the
ingest only adds, and the report is built from every stored answer. A response deleted in the
form is simply no longer listed: a filtered read cannot tell, so it is noticed by the next
read of every response, which credits each survey as a first read of the form as it is would
(an earlier response of the survey still listed credited again: :mod:`~csat_hook.sync.recredit`;
a survey with no response left keeps its answer), and forgets the unverified answers of the
responses no longer listed, as a sheet's read of every row does (``ingest.forget_gone_unverified``;
not when it lists none where responses were read before: ``read_step.hold_emptied``).

An edited response keeps its responseId, gets a later ``lastSubmittedTime`` and so a new
identity (the submission time is part of it): it is read as a later submission of the same
survey, which is credited in place of the earlier one (:mod:`~csat_hook.sync.attribution`).
Submissions of one survey within one second are ordered by the fraction of their
``lastSubmittedTime`` (read to the microsecond); two of them alike but for it are one row
identity (its time is whole seconds), kept at the later time on a first read and moved there
when a later read meets the later one (:mod:`~csat_hook.sync.retime`).
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

A listed response in a shape Google never sends (a proxy's or a fake's: no responseId, an
``answers`` or ``textAnswers`` that is no object, a ``value`` that is no text, an answer with
only a ``grade``, a ``lastSubmittedTime`` that is no RFC 3339 time) is a skipped row naming
the response (its responseId, else its place in the listing) and the field, as a sheet's
unreadable row is: the rest of the listing is read, and it is read again every run. So is an
answer with only ``fileUploadAnswers``, which Google does send: for a file upload question,
the detail says, so a questionId named wrong; and an answer of several texts (a checkbox
question's options ticked) for a role of one value (rating, NPS, reference, agent, ticket):
joined, "5 - Excellent, 1 - Awful" read as a 5 (a comment's are joined). A responseId
listed more than once in one read at one ``lastSubmittedTime`` with other answers each time
is skipped each time (``duplicate_response``): which is the response is unclear. Listed
again alike it is one row; at a later time, an edit (above).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Container
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from csat_hook.db import schema
from csat_hook.db.text import fitted
from csat_hook.errors import GoogleApiError
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.records import FROM_FIELDS
from csat_hook.sync.records import LEGACY_PRESENT
from csat_hook.sync.records import SkippedRow
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.records import skipped_of
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.sources.base import RowParser
from csat_hook.sync.sources.identity import admit
from csat_hook.sync.sources.identity import instant
from csat_hook.sync.sources.identity import legacy_fingerprint
from csat_hook.sync.sources.identity import row_identity
from csat_hook.sync.sources.identity import skipped_identity
from csat_hook.sync.timestamps import TimestampError
from csat_hook.sync.values import RatingScale
from csat_hook.sync.values import normalize

_NANOS = re.compile(r"(\.\d{6})\d+")
# RFC 3339's date-time (section 5.6): a date, "T", a time with seconds, and "Z" or an offset
# (its fraction bounded here at 30 digits: Google's have nine).
# Python's parser also takes a date alone, no zone, a space for "T" or the basic format
# ("20261120T120000Z"); such a text was read as midnight, or as UTC, where Google wrote none.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,30})?(?:Z|[+-]\d{2}:[0-5]\d)",
    re.ASCII | re.IGNORECASE,
)
# Before Google Forms existed: a filter from here reads every response.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Why a response in a shape Google never sends is skipped (SkippedRow.detail, after the field).
_NEVER = "Google never lists a response so (a proxy or a fake changed the listing?)"
# Why an answer Google does list so is skipped: the questionId is of another question.
_OTHER_KIND = (
    "the questionId named is not a text or choice question's (forms.get lists each question's kind)"
)
# Why an answer of several texts is skipped for a role of one value.
_SEVERAL = (
    "a checkbox question's options ticked, one answer each: which one is meant is unclear "
    "(make it a multiple choice or a linear scale question: one answer)"
)


def parse_rfc3339(text: str) -> datetime | None:
    """``2023-07-19T11:17:22.850363123Z`` (Google writes up to nine fraction digits; up to
    30 are read, truncated to microseconds; ``t`` and ``z`` as RFC 3339 allows; an offset
    instead of ``Z`` read as its instant) as aware UTC; None when it is not an RFC 3339
    date-time."""
    if type(text) is not str or _RFC3339.fullmatch(text) is None:
        return None
    text = text.upper()
    if text.endswith("Z") and len(text) <= 30:
        # What Google writes ("generated output will always be Z-normalized"): Python's own
        # parser reads it directly, nanoseconds truncated as the fallback below does.
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(_NANOS.sub(r"\1", text).replace("Z", "+00:00"))
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        # OverflowError: an offset that moves year 1 or 9999 outside datetime's range.
        return None


class MalformedResponseError(ValueError):
    """A listed response in a shape Google never sends: ``field`` (``answers.<id>...``) and
    what it is (``is a number, not text``)."""

    def __init__(
        self, field: str, what: str, *, google_shape: bool = False, why: str | None = None
    ) -> None:
        super().__init__(f"{field} {what}")
        self.field = field
        self.what = what
        # A shape Google does send, for another kind of question than the role needs (a
        # questionId named wrong), not a listing changed on its way.
        self.google_shape = google_shape
        # Why such an answer is no value of the role, when not _OTHER_KIND.
        self.why = why


def _kind(value: Any) -> str:
    """A JSON value's kind, as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


_NOT_RFC3339 = "lastSubmittedTime is not an RFC 3339 time within the years 1-9999"


def _submission_time(value: Any) -> datetime:
    """The RowParser's reading of ``values["timestamp"]``: :meth:`FormsApiResults._one` puts
    the parsed time there, or the text it could not parse."""
    if isinstance(value, datetime):
        return value
    raise TimestampError("bad_timestamp", _NOT_RFC3339)


def listing_ref(index: int) -> str:
    """The ``ref`` of a response without a usable responseId: its place in this read's
    listing (1 the first), for the operator to find it by."""
    return f"response #{index} of the listing"


def response_ref(response_id: str) -> str:
    """A response's ``ref`` (stored as ``source_ref``): ``response <responseId>``, as a
    ``source_ref`` column holds it. The id is Google's text: a NUL or a lone surrogate in it
    would fail every run's write, and the ref compared with a stored one must be that one."""
    # Every source_ref column (answers, history, unverified, skipped) is VARCHAR(191).
    ref = f"response {response_id or '(no responseId)'}"
    return fitted(schema.answers.c.source_ref, ref) or ref


def answer_text(
    answers: Mapping[str, Any], question_id: str, *, several: bool = True
) -> str | None:
    """The text of an answer (several for checkboxes, joined; with ``several`` False,
    MalformedResponseError when it has more than one: a score or an id is one value, and a
    checkbox question's ticks joined, "5 - Excellent, 1 - Awful", read as the first one's
    score); None when unanswered.
    MalformedResponseError naming the field when the answer is in a shape Google never sends: an
    answer or ``textAnswers`` that is no object, ``answers`` no list, a ``value`` no text, or
    no ``textAnswers`` (only ``fileUploadAnswers`` or a ``grade``: not a text or choice
    question). Read as unanswered or as ``str()`` of it, such an answer was a rating missing
    or read from a number Google never wrote."""
    answer = answers.get(question_id)
    if answer is None:
        return None
    where = f"answers.{question_id}"
    if not isinstance(answer, Mapping):
        raise MalformedResponseError(where, f"is {_kind(answer)}, not an object")
    texts = answer.get("textAnswers")
    if texts is None and answer.get("fileUploadAnswers") is not None:
        raise MalformedResponseError(
            where,
            "is a file upload question's answer (fileUploadAnswers), not text",
            google_shape=True,
        )
    if texts is None:
        others = ", ".join(sorted(str(k) for k in answer if k != "questionId")) or "nothing"
        raise MalformedResponseError(
            where, f"has no textAnswers (it has {others}): not a text or choice question"
        )
    if not isinstance(texts, Mapping):
        raise MalformedResponseError(f"{where}.textAnswers", f"is {_kind(texts)}, not an object")
    listed = texts.get("answers")
    if not isinstance(listed, list):
        what = "is missing" if listed is None else f"is {_kind(listed)}, not a list"
        raise MalformedResponseError(f"{where}.textAnswers.answers", what)
    values = []
    for i, text in enumerate(listed):
        field = f"{where}.textAnswers.answers[{i}]"
        if not isinstance(text, Mapping):
            raise MalformedResponseError(field, f"is {_kind(text)}, not an object")
        value = text.get("value")
        if type(value) is not str:
            what = "is missing" if "value" not in text else f"is {_kind(value)}, not text"
            raise MalformedResponseError(f"{field}.value", what)
        values.append(value)
    if len(values) > 1 and not several:
        raise MalformedResponseError(
            f"{where}.textAnswers.answers",
            f"lists {len(values)} answers",
            google_shape=True,
            why=_SEVERAL,
        )
    return ", ".join(values) if values else None


def _answer_text_fast(
    answers: dict[str, Any], question_id: str, *, several: bool = True
) -> str | None:
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
    return answer_text(answers, question_id, several=several)


# The roles whose answer is one value: a score is read from one option's text, and an id from
# one field's. A comment's several answers (a checkbox question's ticks) are one comment.
_ONE_VALUE = frozenset({"rating", "nps", "token", "agent", "ticket"})


class FormsApiResults(ResultsSource):
    kind = "forms_api"
    remembers = True  # what forms.get said (recall)

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
        titles: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.api = api
        self.form_id = form_id
        self.question_ids = dict(question_ids)
        self.page_size = page_size
        self.overlap = timedelta(seconds=overlap_seconds)
        self.full_read_every = timedelta(hours=full_read_hours) if full_read_hours else None
        self.parser = RowParser(ratings, _submission_time, now=self.now, formulas=False)
        # One headers tuple for every row (a first run holds 1,000,000 submissions). The
        # responseId is not among them: it is the submission's ``ref`` ("response <id>"),
        # stored beside the row as read, and a second copy of it was ≈ 60 MB at 1,000,000.
        self.headers = ("lastSubmittedTime", *self.question_ids)
        self.roles = tuple(self.question_ids.items())
        # Role → the titles its question may have (results.columns): a role whose questionId
        # the form no longer has reads the form's question of such a title too.
        self.titles = (
            {
                role: tuple(t for t in titles.get(role, ()) if t.strip())
                for role in self.question_ids
            }
            if titles
            else {}
        )
        # The questions an earlier read's forms.get listed (recall); None: none remembered.
        self._recalled: list[tuple[str, str]] | None = None
        self._plain()

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
            titles={role: getattr(config.results.columns, role) for role in options.question_ids},
        )

    @property
    def key(self) -> str:
        return f"forms_api:{self.form_id}"

    def _plain(self) -> None:
        """Each role read by its configured questionId alone, the form not asked (yet)."""
        # (role, its questionIds, the current one first; whether several texts are one answer)
        self._reads: list[tuple[str, tuple[str, ...], bool]] = [
            (role, (qid,), role not in _ONE_VALUE) for role, qid in self.roles
        ]
        self._read_ids = frozenset(self.question_ids.values())
        # The questionIds a response may answer without the form being asked: those read, and
        # those of the questions remembered from an earlier forms.get (:meth:`recall`) once
        # applied.
        self._seen = self._read_ids
        self._looked = False  # forms.get asked in this read
        self._replaced: dict[str, str] = {}  # role → why its re-added question is not read

    def _configured(self) -> list[str]:
        """The configured questionIds, sorted: what a remembered forms.get was asked under."""
        return sorted(set(self.question_ids.values()))

    def recall(self, state: Mapping[str, Any] | None) -> None:
        """What an earlier read remembered (``SourceBatch.remember``): the questions an
        earlier ``forms.get`` listed, with the form's ``revisionId``, asked while the same
        questionIds were configured. Used instead of asking again while every questionId a
        response answers is among them."""
        self._recalled = None
        if not isinstance(state, Mapping) or state.get("read") != self._configured():
            return  # none, or asked under other question_ids: asked again when needed
        listed = state.get("questions")
        if isinstance(listed, list) and all(
            isinstance(q, list) and len(q) == 2 and all(type(v) is str for v in q) for q in listed
        ):
            self._recalled = [(qid, title) for qid, title in listed]

    def _look_up_questions(self, batch: SourceBatch, answers: Mapping[str, Any]) -> None:
        """The form's questions, when a response answers a question no role reads: those an
        earlier read remembered (:meth:`recall`) while every question the response answers is
        among them, else ``forms.get`` (once a read: one request of the "Read requests"
        quota), its answer remembered for the next reads (``batch.remember``). A role whose
        questionId the form no longer has (the question deleted and added again: a new
        questionId) reads, besides it (the old responses' answers), each question of the form
        titled as ``results.columns.<role>`` names it that no role reads, the form's own first;
        with none, the role is said in a warning. Responses read before this answered no
        question the questions applied did not list, so they read the same either way (but
        for a question renamed between the remembered forms.get and this one)."""
        recalled = self._recalled
        if recalled is not None and self._seen is self._read_ids:  # not applied in this read
            known = self._read_ids | {qid for qid, _ in recalled}
            if answers.keys() <= known:
                self._apply(batch, recalled)  # not asked: forms.get would say the same
                self._seen = known
                return
        self._looked = True
        try:
            form = self.api.questions(self.form_id)
        except GoogleApiError as exc:
            # The responses are readable (the listing answered): read them as before, said.
            batch.warnings.append(
                f"{exc} (a question deleted and added again cannot be looked for: the "
                "responses are read by results.forms_api.question_ids alone)"
            )
            return
        batch.remember = {
            "read": self._configured(),
            "revision": form.revision,
            "questions": [list(q) for q in form.questions],
        }
        self._apply(batch, form.questions)

    def _apply(self, batch: SourceBatch, listed: Sequence[tuple[str, str]]) -> None:
        """Read each role by the questions ``listed`` (the form's, in order), from its
        configured questionId again (an earlier listing applied in this read is replaced)."""
        self._reads = [(role, (qid,), role not in _ONE_VALUE) for role, qid in self.roles]
        self._read_ids = frozenset(self.question_ids.values())
        self._replaced = {}
        batch.columns.update({role: f"question {qid}" for role, qid in self.roles})
        if not listed:
            return  # a form of no question (a proxy, a fake): read by the questionIds alone
        present = {qid for qid, _ in listed}
        others = [(qid, title) for qid, title in listed if qid not in self._read_ids]
        reads: list[tuple[str, tuple[str, ...], bool]] = []
        for role, qids, several in self._reads:
            if qids[0] in present:
                reads.append((role, qids, several))
                continue
            wanted = {normalize(t) for t in self.titles.get(role, ())}
            found = tuple(q for q, title in others if title.strip() and normalize(title) in wanted)
            reads.append((role, (*found, *qids), several))
            if found:
                batch.columns[role] = "question " + ", ".join((*found, *qids))
            else:
                self._replaced[role] = self._not_replaced(role, qids[0], others)
        self._reads = reads
        self._read_ids = frozenset(q for _, qids, _ in reads for q in qids)

    def _not_replaced(self, role: str, qid: str, others: list[tuple[str, str]]) -> str:
        """The warning for a role whose questionId the form no longer has, no question of
        the form titled as its titles are: it names the keys, and the form's questions no role
        reads by id and title (the form's author's words, never a respondent's)."""
        shown = ", ".join(
            f"{q!r} ({t if len(t) <= 60 else t[:57] + '...'!r})" for q, t in others[:5]
        )
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        return (
            f"results.forms_api.question_ids.{role}: {qid!r} is no longer a question of the "
            "form (deleted?), and no question of the form is titled as "
            f"results.columns.{role} names it: its answers in older responses are read, those "
            "to the question that took its place are not; add that question's title to "
            f"results.columns.{role}"
            + (f" (the form's questions no role reads: {shown}{more})" if shown else "")
        )

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
        self._plain()
        # Role → its place among a response's texts, until a response answers it.
        self._unanswered = {role: at for at, (role, _) in enumerate(self.roles)}
        self._unnamed: set[str] = set()  # questionIds answered that no role names
        for response in self.api.list_responses(
            self.form_id, since=since, page_size=self.page_size
        ):
            batch.rows_read += 1
            self._one(batch, response, known, seen)
        _skip_conflicting(batch)
        batch.warnings.extend(self._replaced[role] for role in sorted(self._replaced))
        batch.warnings.extend(self._question_id_warnings(batch.rows_read))
        return batch

    def _question_id_warnings(self, listed: int) -> list[str]:
        """A warning per role whose questionId none of the ``listed`` responses answers while
        they answer questions no role names: the question was deleted and added again (a new
        questionId), or its id was mistyped. Such an answer reads as a question skipped: the
        comments (or NPS answers, agent or ticket fields) were read as empty, in "ok" runs,
        and their alert rules never matched. Said when enough responses were listed
        (:data:`_FEW_RESPONSES`): a few of them may all skip an optional question."""
        if listed < _FEW_RESPONSES or not self._unanswered or not self._unnamed:
            return []
        others = ", ".join(repr(q) for q in sorted(self._unnamed)[:5])
        more = f" and {len(self._unnamed) - 5} more" if len(self._unnamed) > 5 else ""
        return [
            f"results.forms_api.question_ids.{role}: {qid!r} is answered in none of the "
            f"{listed:,} responses read, while questions {others}{more} are answered and "
            "named by no role: a question deleted and added again has a new questionId "
            f"(GET https://forms.googleapis.com/v1/forms/{self.form_id} lists them under "
            "items[].questionItem.question.questionId)"
            for role, qid in sorted(self.question_ids.items())
            if role in self._unanswered and role not in self._replaced
        ]

    def _note_questions(self, answers: dict[str, Any], texts: list[str | None]) -> None:
        """Note which roles ``answers`` answers and the questions it answers that no role
        names (for :meth:`_question_id_warnings`); called until each role was answered once,
        not for every response of a first read."""
        for role, at in list(self._unanswered.items()):
            if texts[at] is not None:
                del self._unanswered[role]
        if not self._unnamed and len(answers) > sum(t is not None for t in texts):
            self._unnamed = set(answers) - self._read_ids

    def _malformed(
        self,
        batch: SourceBatch,
        ref: str,
        role: str,
        problem: MalformedResponseError,
        response: Any,
        known: Container[str],
        seen: dict[str, int],
    ) -> None:
        """Add the response as a skipped row naming the field: its identity is its whole
        JSON (no field of it can be trusted), so it is one row each time it is listed so."""
        listed = json.dumps(response, sort_keys=True, default=repr, ensure_ascii=False)
        detail = f"{problem}: {problem.why or (_OTHER_KIND if problem.google_shape else _NEVER)}"
        item = SkippedRow(
            row_identity("malformed", listed), ref, "malformed_response", detail, role
        )
        admit(batch, item, known, seen, legacy=None)

    def _one(
        self,
        batch: SourceBatch,
        response: Mapping[str, Any],
        known: Container[str],
        seen: dict[str, int],
    ) -> None:
        if not isinstance(response, Mapping):
            problem = MalformedResponseError(
                "the listed response", f"is {_kind(response)}, not a JSON object"
            )
            self._malformed(
                batch, listing_ref(batch.rows_read), "response", problem, response, known, seen
            )
            return
        response_id = response.get("responseId")
        if type(response_id) is str and response_id:
            ref = response_ref(response_id)
        else:
            missing = response_id in (None, "")
            what = "is missing" if missing else f"is {_kind(response_id)}, not text"
            problem = MalformedResponseError("responseId", what)
            self._malformed(
                batch, listing_ref(batch.rows_read), "response", problem, response, known, seen
            )
            return
        # lastSubmittedTime only: createTime is an edited response's first submission, and
        # read for a missing one it credited the edit at a time it was not made.
        raw_stamp = response.get("lastSubmittedTime")
        stamp = "" if raw_stamp is None else str(raw_stamp)
        submitted = parse_rfc3339(stamp)
        answers = response.get("answers")
        if answers is None:
            answers = {}  # no question answered
        elif type(answers) is not dict:
            problem = MalformedResponseError("answers", f"is {_kind(answers)}, not an object")
            self._malformed(batch, ref, "response", problem, response, known, seen)
            return
        if not self._looked and not answers.keys() <= self._seen:
            self._look_up_questions(batch, answers)  # a question no role reads: re-added?
        texts = []
        for role, qids, several in self._reads:
            try:
                text = _answer_text_fast(answers, qids[0], several=several)
                if text is None and len(qids) > 1:  # a question re-added: its other ids
                    for other in qids[1:]:
                        text = _answer_text_fast(answers, other, several=several)
                        if text is not None:
                            break
                texts.append(text)
            except MalformedResponseError as exc:
                named = MalformedResponseError(
                    f"{exc.field} (question_ids.{role})",
                    exc.what,
                    google_shape=exc.google_shape,
                    why=exc.why,
                )
                self._malformed(batch, ref, role, named, response, known, seen)
                return
        if self._unanswered:  # until every role was answered once: a few responses
            self._note_questions(answers, texts)
        values: dict[str, Any] = dict(zip(self.question_ids, texts, strict=True))
        # A time that is not one (or none) makes the response a skipped row, as a bad cell of
        # a sheet is: it neither fails the run nor moves the watermark.
        values["timestamp"] = stamp if submitted is None else submitted
        if submitted is not None and (batch.watermark is None or submitted > batch.watermark):
            batch.watermark = submitted
        item = self.parser.parse(
            values,
            ref=ref,
            headers=self.headers,
            cells=FROM_FIELDS,  # the row as read made from the fields when asked for
        )
        if isinstance(item, SkippedRow) and item.reason in {"bad_timestamp", "missing_timestamp"}:
            detail = "the response has no lastSubmittedTime" if not stamp else _NOT_RFC3339
            item = dataclasses.replace(item, detail=detail)
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


# Fewer responses listed than this say nothing of a questionId none of them answers.
_FEW_RESPONSES = 10


def _skip_conflicting(batch: SourceBatch) -> None:
    """Move the submissions that share a responseId and a submission time with another of
    other answers (listed twice in one read: the same response listed alike is one identity,
    one submission) to the skipped rows, each named. Which one is the response is unclear;
    credited, the one listed last won. A first pass marks each responseId's hash in a bitmap
    of 64 bits per submission (a first read holds 1,000,000; a text's hash is kept by the text,
    a pair's would be computed, the aware time's offset included, twice): only the
    submissions of responseIds met twice are grouped by responseId and time."""
    submissions = batch.submissions
    if len(submissions) < 2:
        return
    mask = (1 << (len(submissions) * 64).bit_length()) - 1
    bits = bytearray((mask + 1) >> 3)
    shared: set[int] = set()
    for sub in submissions:
        slot = hash(sub.ref) & mask
        if bits[slot >> 3] & 1 << (slot & 7):
            shared.add(slot)
        else:
            bits[slot >> 3] |= 1 << (slot & 7)
    del bits
    if not shared:
        return
    groups: dict[tuple[str, datetime], list[int]] = {}
    for index, sub in enumerate(submissions):
        if hash(sub.ref) & mask in shared:
            groups.setdefault((sub.ref, sub.submitted_at), []).append(index)
    conflicting = {i: len(g) for g in groups.values() if len(g) > 1 for i in g}
    if not conflicting:
        return
    kept = []
    for index, sub in enumerate(submissions):
        times = conflicting.get(index)
        if times is None:
            kept.append(sub)
            continue
        when = sub.submitted_at.isoformat().replace("+00:00", "Z")
        batch.skipped.append(
            SkippedRow(
                row_identity("duplicate", instant(sub.submitted_at), sub.fingerprint),
                sub.ref,
                "duplicate_response",
                f"responseId listed {times} times with lastSubmittedTime {when} and other "
                "answers each time: which is the response is unclear; it is read again every "
                f"run. {_NEVER}",
                "response",
            )
        )
    batch.submissions = kept
