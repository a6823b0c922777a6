"""A sync run's report step: skipped rows judged, metrics and tables built from the database.

Mixed into :class:`csat_hook.sync.runner.SyncRunner` (see there for the phases)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from collections.abc import Sequence
from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.alerts.engine import Changed
from csat_hook.clicks.funnel import opened_survey_keys
from csat_hook.clicks.store import click_facts
from csat_hook.db.engine import snapshot
from csat_hook.sync import changes
from csat_hook.sync import recredit
from csat_hook.sync import report_key
from csat_hook.sync import reverify
from csat_hook.sync import skips
from csat_hook.sync import store
from csat_hook.sync.alerts_step import AlertsStep
from csat_hook.sync.attribution import FORGED
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.ingest import IngestResult
from csat_hook.sync.ingest import by_survey
from csat_hook.sync.ingest import ingest_rest
from csat_hook.sync.ingest import ingest_row_digests
from csat_hook.sync.ingest import ingest_submissions
from csat_hook.sync.metrics import Settings
from csat_hook.sync.periods import build_periods
from csat_hook.sync.places import Places
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.report import Report
from csat_hook.sync.report import ReportSpec
from csat_hook.sync.report import build_report
from csat_hook.sync.report.answers import KeptRows
from csat_hook.sync.summary import SyncSummary
from csat_hook.sync.summary import cycles_freed_as_made

MAX_UNVERIFIED_LISTED = 5000
# Submissions credited a part at a time (_ingest), each part's surveys and answers
# looked up instead of every survey and answer read inside the write transaction; 0: read
# every survey and answer instead (tests compare the two). A part's records, look-ups and row
# dicts are what the ingest adds to the batch it holds: parts of 2,500 peak 14 MB lower than
# parts of 10,000 in a first sync of 100,000 (192 against 206 MB), for ≈ 5 % more ingest time.
LOOKED_UP_MAX = 2_500


@dataclass(frozen=True, slots=True)
class _Kept:
    """The last report's dataset, what it was built with, and where its rows were read."""

    identity: tuple[Any, ...]
    data: Dataset
    mark: changes.Mark


class ReportStep(AlertsStep):
    """The report step of :class:`~csat_hook.sync.runner.SyncRunner`."""

    def _judge_skips(
        self,
        summary: SyncSummary,
        batch: SourceBatch,
        skipped: dict[str, str],
        in_a_row: Mapping[str, int] | None = None,
    ) -> None:
        """A large share of skipped or unverified rows is a ``data_error``
        (``in_a_row``: ``IngestResult.unverified_in_a_row``)."""
        results = self.config.results
        problems = skips.judge(
            batch,
            skipped,
            max_share=results.max_skipped_share,
            min_rows=results.min_skipped_rows,
        )
        found = [{**p.as_dict(), "message": p.message()} for p in problems]
        new_rows = summary.new + summary.updated + sum(summary.unverified.values())
        found += skips.judge_unverified(
            summary.unverified,
            new_rows,
            max_share=results.max_skipped_share,
            min_rows=results.min_skipped_rows,
            source=batch.source,
            in_a_row=in_a_row,
        )
        if found:
            summary.status = "data_error"
            summary.error = "; ".join(p.pop("message") for p in found)
            summary.problems = found

    def _read_back(self, conn: sa.Connection) -> tuple[list[Any], dict[str, Any]]:
        """The surveys and the current answers (survey key → answer) the dataset is built
        from, and the surveys opened through a short link (the funnel's middle step)."""
        surveys = store.survey_facts(conn)
        self._read_opened(conn)
        return surveys, {row.survey_key: row for row in store.all_answers(conn)}

    def _read_opened(self, conn: sa.Connection) -> None:
        """The keys of the surveys opened through a short link (the funnel's middle step)."""
        self._opened = opened_survey_keys(click_facts(conn), self.config.survey.links.burst_seconds)

    def _ingest(
        self,
        conn: sa.Connection,
        batch: SourceBatch,
        source_key: str,
        now: datetime,
        *,
        read_back: tuple[dict[str, Any], dict[str, Any]] | None = None,
        keep_digests: bool = False,
        recredits: Sequence[recredit.Recredit] = (),
        retimes: Mapping[str, tuple[datetime, str, str]] | None = None,
        whole_read: bool = False,
        appended: bool = False,
        origin: str | None = None,
    ) -> tuple[IngestResult, list[Changed]]:
        """Verify, classify and store ``batch`` (:mod:`~csat_hook.sync.ingest`); the answers
        the alert rules read (:meth:`_changed`) are returned beside.

        Without ``read_back`` the submissions are credited a part at a time
        (:func:`~csat_hook.sync.ingest.by_survey`, :data:`LOOKED_UP_MAX` submissions), each
        part's surveys and answers looked up (:meth:`_look_up`): what is held at a time is
        one part's, whatever the batch's size, and ``result.answers`` is emptied after each
        part. With ``read_back`` (every survey by survey key and every current answer, read
        in this transaction: :meth:`_read_back`) the batch is one part credited against
        them, and ``result.answers`` keeps the answers added or replaced, for the caller to
        merge into its read. The batch's row digests are stored first and then dropped from
        it, unless ``keep_digests`` (the caller prunes stale stored digests against them).
        ``recredits``: the surveys the read found to credit again (:mod:`.recredit`), credited
        before any submission is weighed against their answers, and after the stored rows
        the read met at a later time take it (``retimes``: :mod:`.retime`). ``whole_read``:
        the batch is a read of every row of a sheet or export, or of every response of a form
        (``SourceRead.every_row``: a stored answer it did not find is no longer
        in the source: :func:`~csat_hook.sync.ingest.ingest_submissions`). ``appended``: the
        batch is the rows added after an earlier read's, each below every row it met (a
        stored answer it did not meet is above them: :func:`~csat_hook.sync.places.placed`).
        ``origin``: the source read (``ResultsSource.identity``), stored with the unverified
        answers and the skipped rows."""
        result = IngestResult()
        changed: list[Changed] = []
        ingest_row_digests(conn, batch, keep=keep_digests)  # first: then dropped (memory)
        if retimes:
            store.retime(conn, retimes)
            if read_back is not None:
                answers = read_back[1]
                for when, _, key in retimes.values():
                    row = answers.get(key)
                    if row is not None and row.submitted_at < when:
                        answers[key] = row._replace(submitted_at=when)
        if recredits:
            changed += self._recredit(conn, recredits, now, result, read_back)
        if read_back is not None:
            parts = [batch.submissions] if batch.submissions else []
        else:
            parts = by_survey(batch.submissions, LOOKED_UP_MAX)
        every_survey: dict[str, Any] | None = None  # read once, if a part needs it
        places = Places(batch, whole=whole_read, appended=appended)
        # No answer stored yet (a first sync): no part has any to look up. Each survey's
        # submissions are in one part (by_survey), so a part never meets an answer an earlier
        # part stored, and nothing else writes answers while the sync holds its lock.
        none_stored = read_back is None and not store.any_answers(conn)
        # More submissions than any dataset is patched with (a first sync): their answers
        # are listed as one change, not a row each (changes.unlisted).
        bulk = len(batch.submissions) > changes.MAX_CHANGED
        with (
            changes.unlisted(conn) if bulk else contextlib.nullcontext(),
            cycles_freed_as_made() as free_cycles,
        ):
            for part in parts:
                found, every_survey = self._credit(
                    conn,
                    part,
                    batch.source,
                    now,
                    result,
                    read_back=read_back,
                    every=every_survey,
                    places=places,
                    none_stored=none_stored,
                    origin=origin,
                )
                changed += found
                free_cycles()  # the part's compiled look-ups
        ingest_rest(conn, batch, source_key=source_key, now=now, into=result, origin=origin)
        for reason in skips.UNVERIFIED_JUDGED:
            if result.unverified[reason]:
                # Forged: under the secrets now configured (reverify.py credits the others).
                key_set = tokens.key_set_id(self.config.token.all_secrets())
                result.unverified_in_a_row[reason] = store.unverified_since_credited(
                    conn, reason, key_set if reason == FORGED else None
                )
        return result, changed

    def _recredit(
        self,
        conn: sa.Connection,
        plans: Sequence[recredit.Recredit],
        now: datetime,
        into: IngestResult,
        read_back: tuple[dict[str, Any], dict[str, Any]] | None,
    ) -> list[Changed]:
        """Credit ``plans`` again (:func:`recredit.apply`), counted in ``into``; with
        ``read_back``, its current answers are updated, as the batch is weighed against them.
        Returns the answers the alert rules read (a rating lowered alerts as any edit)."""
        again = IngestResult()
        replaced = recredit.apply(conn, plans, now, again)
        into.updated += again.updated
        into.edited_in_place += again.edited_in_place
        into.warnings.extend(again.warnings)
        written = sorted({row.token for row in replaced.values() if row.token})
        surveys = {
            tokens.survey_key(row.token): row for row in store.survey_facts_by_token(conn, written)
        }
        changed = self._changed(again.answers, replaced, surveys)
        if read_back is not None:
            read_back[1].update((row.survey_key, row) for row in again.answers)
            into.answers.extend(again.answers)
        return changed

    def _reverify(
        self, conn: sa.Connection, now: datetime, absent: Set[int] = frozenset()
    ) -> tuple[IngestResult, list[Changed], list[Submission]]:
        """Credit the stored forged answers the current secrets verify (:mod:`.reverify`), a
        part at a time, each source's rows with their surveys and answers looked up as
        :meth:`_ingest` does; what was credited, the answers the alert rules read, and the
        submissions credited (:func:`recredit.overtaken` weighs the read's plans by them).
        ``absent``: the ids of those the run's read no longer finds (left unchecked)."""
        result = IngestResult()
        changed: list[Changed] = []
        credited: list[Submission] = []
        every_survey: dict[str, Any] | None = None  # read once, if a part needs it
        for part in reverify.check_stored(conn, self.config.token.all_secrets(), absent):
            for source, submissions in part.credited.items():
                found, every_survey = self._credit(
                    conn, submissions, source, now, result, every=every_survey
                )
                changed += found
                credited += submissions
            reverify.settle(conn, part)
        return result, changed, credited

    def _credit(
        self,
        conn: sa.Connection,
        submissions: Sequence[Submission],
        source: str,
        now: datetime,
        into: IngestResult,
        *,
        read_back: tuple[dict[str, Any], dict[str, Any]] | None = None,
        every: dict[str, Any] | None = None,
        places: Places | None = None,
        none_stored: bool = False,
        origin: str | None = None,
    ) -> tuple[list[Changed], dict[str, Any] | None]:
        """Credit one part of ``source``'s submissions (:func:`ingest_submissions`) against
        ``read_back`` or, without it, against their surveys and answers looked up
        (:meth:`_look_up`; ``into.answers`` is then emptied after). ``every`` is every survey
        by key, once a part has needed them all read: given back, for the next part.
        ``places``: where the read found processed rows (:mod:`~csat_hook.sync.places`).
        ``none_stored``: the part's surveys have no answer stored (none is looked up).
        ``origin``: the source read (``ResultsSource.identity``; None: stored answers).
        Returns the answers the alert rules read (:meth:`_changed`), and ``every``."""
        if read_back is not None:
            by_key, current = read_back
        else:
            looked_up, current = self._look_up(conn, submissions, none_stored=none_stored)
            if looked_up is None:
                if every is None:
                    every = {tokens.survey_key(row.token): row for row in store.survey_facts(conn)}
                looked_up = every
            by_key = looked_up
        config = self.config
        # With ``read_back`` the answers credited again before this part (_recredit) are in
        # ``into.answers`` already, handed to the rules with the answer they replaced and
        # merged into ``current``: read again here, they were "unchanged" (previous rating =
        # rating), and an edit that raised a rating already alerted passed for a new one.
        first = len(into.answers)
        ingest_submissions(
            conn,
            submissions,
            source,
            secrets=config.token.all_secrets(),
            agents={name: options.agents for name, options in config.helpdesks.items()},
            surveys=by_key,
            answers=current,
            now=now,
            into=into,
            places=places,
            origin=origin,
        )
        changed = self._changed(into.answers[first:], current, by_key)
        if read_back is None:
            into.answers.clear()  # only what _changed reads; the report reads them again
        return changed, every

    def _look_up(
        self, conn: sa.Connection, submissions: Sequence[Submission], *, none_stored: bool = False
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """What :meth:`_read_back` holds for ``submissions`` (one part of a batch), looked
        up by their references: the surveys their tokens name (survey key → survey) and the
        current answers of those surveys (survey key → answer).

        The surveys are found by the token as stored. A reference that verifies but is not
        the token stored for its survey (signed again under another secret) can only be
        found by its survey key, which no index holds: then the surveys are None, and the
        caller reads every survey, as :meth:`_read_back` does. References that do not verify
        need no survey (they are unverified, whatever it holds). ``none_stored``: the
        caller knows these surveys have no answer stored, so none is looked up.
        """
        written = sorted({s.token.strip() for s in submissions} - {""})
        surveys = {
            tokens.survey_key(row.token): row for row in store.survey_facts_by_token(conn, written)
        }
        answers = (
            {}
            if none_stored
            else store.answers_among(conn, sorted({tokens.survey_key(t) for t in written}))
        )
        secrets = self.config.token.all_secrets()
        unfound = (t for t in written if tokens.survey_key(t) not in surveys)
        if any(tokens.verifies(t, secrets) for t in unfound):
            return None, answers
        return surveys, answers

    def _read_for_report(self) -> tuple[Dataset, list[Any], str | None]:
        """After the ingest's commit: the dataset of every survey and answer, the unverified
        answers for the report, and the data version they are (report_key.py), or None.

        The dataset the last report was built from, when this runner kept one, is patched by
        the surveys and answers changed since (:mod:`~csat_hook.sync.changes`): a run with a
        few new answers reads those, not every row. Otherwise the rows are streamed into a new
        dataset (:func:`store.iter_survey_facts`): only what the dataset keeps of them is
        held, not every row at once. Either way the dataset is kept for the next run, with
        the rows its answers' tabs are built with (:class:`KeptRows`, dropped with a dataset
        built anew: a new dataset's answers are new objects, which no kept row is for)."""
        kept, self._kept = getattr(self, "_kept", None), None  # half-patched if this fails
        rows, self._kept_rows = getattr(self, "_kept_rows", None), None
        # A snapshot: the webhooks' writers are not held back while every row is read, and
        # the version read first describes exactly the rows read after it.
        with snapshot(self.engine) as conn:
            first = report_key.read_version(conn)  # first: the data is at least this new
            self._read_opened(conn)
            at = changes.mark(conn)
            data = self._patched(conn, kept) if kept is not None else None
            self.dataset_patched = data is not None
            if data is None:
                # Their memory, before the new dataset's: rows are kept for the answers
                # of the kept dataset, and a new one holds none of them. The encodings of
                # the last write hold those rows too (and its bytes): none is found again.
                del kept, rows
                rows = self._encodings = None
                # So do the local files' kept rows: their text's files closed.
                files, self._files = self._files, None
                if files is not None:
                    files[1].drop()
                data = self._dataset(store.iter_answers(conn), store.iter_survey_facts(conn))
            unverified = store.list_unverified(conn, MAX_UNVERIFIED_LISTED)
            version = report_key.settled(conn, first)
        if changes.prune_due(at):
            with self.engine.begin() as conn:
                changes.prune(conn, at)
        self._kept = _Kept(self._dataset_identity(), data, at)
        self._kept_rows = rows or KeptRows()
        return data, unverified, version

    def _patched(self, conn: sa.Connection, kept: _Kept) -> Dataset | None:
        """``kept``'s dataset patched to what this snapshot holds, or None (build anew)."""
        if kept.identity != self._dataset_identity():
            return None
        opened: Set[str] = getattr(self, "_opened", frozenset())
        return kept.data if changes.patched(conn, kept.data, kept.mark, opened=opened) else None

    def _dataset_identity(self) -> tuple[Any, ...]:
        """What a dataset is built with besides the rows: a dataset kept under other settings
        is not patched."""
        return (id(self.config), tuple(self.config.token.all_secrets()))

    def _report(
        self,
        summary: SyncSummary,
        data: Dataset,
        unverified: list[Any],
        now: datetime,
        language: str,
    ) -> Report:
        """The report from ``data`` (``_dataset`` of every answer and survey)."""
        config = self.config
        metrics = config.metrics
        tz = ZoneInfo(metrics.timezone)
        summary.agents = len({a.agent for a in data.answers})
        sheets = config.output.gsheets
        spec = ReportSpec(
            language=language,
            settings=Settings(metrics.scale_min, metrics.scale_max, metrics.top_box, metrics.min_n),
            tz=tz,
            listed=build_periods(now, tz, metrics.periods),
            headline_days=metrics.headline_days,
            trend_weeks=metrics.trend_weeks,
            trend_months=metrics.trend_months,
            target=metrics.target_csat,
            low_rating=metrics.low_rating_limit,
            nps=config.results.nps_configured,
            funnel=config.survey.links.enabled or bool(getattr(self, "_opened", None)),
            templates={
                name: options.ticket_url_template for name, options in config.helpdesks.items()
            },
            max_rows_per_agent=sheets.max_rows_per_agent,
            max_response_rows=sheets.max_response_rows,
            summary_name=sheets.summary_tab,
            unverified_name=sheets.unverified_tab,
            unverified=sheets.unverified,
            every_answer=config.output.local.enabled and config.output.local.csv,
        )
        kept: _Kept | None = getattr(self, "_kept", None)
        rows = getattr(self, "_kept_rows", None) if kept is not None and kept.data is data else None
        report = build_report(data, spec, now=now, unverified=unverified, kept=rows)
        self._attach_alerts(report)
        return report
