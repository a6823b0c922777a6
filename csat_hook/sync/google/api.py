"""The Sheets and Forms calls the sync makes, over a
:class:`~csat_hook.sync.google.session.GoogleSession`.

Errors leave this module as :class:`~csat_hook.errors.GoogleApiError` with the HTTP status and
Google's status word; the API's message is kept only for calls whose body holds no customer
text (metadata, structure changes), never for value writes or reads, and without what it
quotes (a tab's title: an agent's name).
"""

from __future__ import annotations

import io
import json
import queue
import re
import threading
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import NamedTuple
from typing import TypeVar

import gspread
import requests
from gspread.urls import SPREADSHEET_BATCH_UPDATE_URL
from gspread.urls import SPREADSHEET_URL
from gspread.urls import SPREADSHEET_VALUES_BATCH_UPDATE_URL
from gspread.urls import SPREADSHEET_VALUES_BATCH_URL
from gspread.utils import absolute_range_name

from csat_hook.errors import GoogleApiError
from csat_hook.sync.config import GOOGLE_FORMS_BASE_URL
from csat_hook.sync.google.session import RETRYABLE_STATUS
from csat_hook.sync.google.session import UNKNOWN_OUTCOME_STATUS
from csat_hook.sync.google.session import GoogleSession
from csat_hook.sync.google.session import UnansweredError
from csat_hook.sync.google.session import asked_wait
from csat_hook.sync.google.session import error_reasons
from csat_hook.sync.google.session import is_rate_limit
from csat_hook.sync.google.session import service_account_email
from csat_hook.sync.google.session import spent_quota

# https://developers.google.com/workspace/forms/api/reference/rest/v1/forms.responses/list
FORMS_RESPONSES_URL = GOOGLE_FORMS_BASE_URL + "/v1/forms/{form_id}/responses"
FORMS_FORM_URL = GOOGLE_FORMS_BASE_URL + "/v1/forms/{form_id}"
# What forms.get answers the sync reads: each question's id and title (a grid's rows too),
# and the form's revision (remembered with them: sources/forms_api.py).
FORM_QUESTION_FIELDS = (
    "revisionId,items(title,questionItem(question(questionId)),"
    "questionGroupItem(questions(questionId,rowQuestion(title))))"
)


class FormQuestions(NamedTuple):
    """``forms.get``'s answer as the sync reads it: the form's ``revisionId`` (None when it
    sends none) and its questions, in order, as (questionId, title)."""

    revision: str | None
    questions: list[tuple[str, str]]


# The metadata the sync needs: tab ids, titles and grid sizes, the time zone of serials and
# the locale (the report's language); for the report's looks, each tab's chart ids and
# conditional rules (counted) and the spreadsheet's developer metadata (the looks' digest);
# each tab's own developer metadata (which of the report's own tabs it is: Sheet's
# ``developerMetadata`` holds the metadata located on that sheet).
METADATA_FIELDS = (
    "spreadsheetId,properties(title,locale,timeZone),"
    "developerMetadata(metadataId,metadataKey,metadataValue),"
    "sheets(properties(sheetId,title,index,"
    "gridProperties(rowCount,columnCount,frozenRowCount,frozenColumnCount)),"
    "charts(chartId),conditionalFormats(ranges(sheetId)),"
    "developerMetadata(metadataId,metadataKey,metadataValue))"
)

# A tab's cells with their data validation rules (spreadsheets.get with ranges: the sheets
# they are on, each with its GridData; the title tells the sheet asked for).
CELLS_FIELDS = (
    "sheets(properties(title),data(startRow,startColumn,"
    "rowData(values(effectiveValue,formattedValue,dataValidation))))"
)


@dataclass(frozen=True)
class SheetCell:
    """One cell as :meth:`SheetsApi.read_cells` reads it. ``value``: what it holds, as
    ``valueRenderOption=UNFORMATTED_VALUE`` reads it (a number, text, TRUE/FALSE; a date-time
    as its serial number; an error as its text, "#REF!"; None blank); ``shown``: the text
    the sheet shows; ``checkbox``: the values of its data validation rule of type BOOLEAN
    (its condition values as typed: ``()`` for TRUE/FALSE, ``("Yes", "No")`` for custom
    ones, ``("Done",)`` checked when "Done", unchecked when blank), None when it has no
    such rule."""

    value: str | int | float | bool | None = None
    shown: str | None = None
    checkbox: tuple[str, ...] | None = None


_BLANK = SheetCell()

T = TypeVar("T")
# spreadsheets.batchUpdate's answer to an addSheet whose title is taken: HTTP 400
# INVALID_ARGUMENT, 'Invalid requests[0].addSheet: A sheet with the name "Summary" already
# exists. Please enter another name.'
_TAB_EXISTS = re.compile(r'A sheet with the name "[^"]*" already exists')
# Its answer to a deleteSheet whose tab is gone: HTTP 400 INVALID_ARGUMENT,
# "Invalid requests[3].deleteSheet: No sheet with id: 123456".
_TAB_GONE = re.compile(r"deleteSheet: No sheet with id")
# What Google's message quotes is what the request held: a tab's title (an agent's name, in
# the agent tabs), a value. The quotes stay, with "…" between them (_TAB_EXISTS still reads).
_QUOTED = re.compile(r""""[^"]*"|(?<!\w)'[^']*'(?!\w)""")


def _unquoted(match: re.Match[str]) -> str:
    return f"{match.group()[0]}…{match.group()[0]}"


class TabExistsError(GoogleApiError):
    """An addSheet was refused because the tab is there: typically our own earlier attempt,
    applied by Google but whose answer was lost (the session then retried it)."""


class TabGoneError(GoogleApiError):
    """A deleteSheet was refused because the tab is gone: our own earlier attempt applied
    but its answer lost, as for :class:`TabExistsError`, or a manager deleted it meanwhile."""


class OutcomeUnknownError(GoogleApiError):
    """A ``spreadsheets.batchUpdate`` was sent and its answer lost (no answer, or a 5xx):
    Google may have applied it or not. It is not sent again as it is: rules are deleted by
    index (a second pass deletes the rules just added), a chart added under its id is refused
    the second time, a developer metadata entry created twice is two. The caller reads the
    spreadsheet again and plans from what is there, not before ``retry_after`` seconds: what
    a 5xx asked to wait (``Retry-After``, Google's RetryInfo; None: it said nothing, or no
    answer came)."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        reason: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, reason=reason, retryable=retryable)
        self.retry_after = retry_after


def _error_from(
    what: str,
    response: requests.Response,
    *,
    keep_message: bool,
    attempts: int,
    share_with: str | None,
    shared: str = "spreadsheet",
    document: str | None = None,
) -> GoogleApiError:
    """The error for an answer that is not 2xx; ``document``: the id of the spreadsheet or
    form asked for, named in the advice to share it (the responses and the report may be in
    two spreadsheets, two keys: "the spreadsheet" was either)."""
    status = response.status_code
    # Google's error body is {"error": {"status": ..., "message": ...}}; a proxy or an outage
    # page may send anything else (not JSON, a list, a string, deeply nested), which is only
    # an error without its details.
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    reason = error.get("status")
    reason = reason[:64] if isinstance(reason, str) and reason else None
    text = f"{what}: HTTP {status}" + (f" {reason}" if reason else "")
    message = error.get("message")
    if keep_message and isinstance(message, str) and message:
        text += f" ({_QUOTED.sub(_unquoted, message)[:200]})"
    if attempts > 1:
        text += f" after {attempts} attempts"
    reasons = error_reasons(response)
    rate_limited = is_rate_limit(status, reasons)
    quota = spent_quota(response)  # named: a values call's message (which names it) is left out
    if quota is not None and quota.daily:
        text += (
            f"; Google's quota {quota.name or '(not named)'} is spent for the day: the first "
            "run after it is renewed goes on where this one stopped (a higher quota: Google "
            "Cloud console → APIs & Services → Quotas)"
        )
    elif quota is not None:
        text += (
            f"; a rate limit at Google{f' ({quota.name})' if quota.name else ''}: the next "
            "run goes on where this one stopped (a higher quota: Google Cloud console → APIs "
            "& Services → Quotas)"
        )
    elif status == 403 and ("SERVICE_DISABLED" in reasons or "accessNotConfigured" in reasons):
        text += "; " + _enable_api(reasons.get("SERVICE_DISABLED", {}))
    elif status == 400 and str(message).startswith(_NO_SUCH_RANGE):
        text += (
            "; a tab it names is no longer there (renamed or deleted during the run): the "
            "next run reads the tabs again"
        )
    elif status == 400 and _PAST_THE_GRID.search(str(message)[:1000]):
        text += (
            "; a tab is smaller than the run made it (rows or columns deleted during the "
            "run): the next run grows it again"
        )
    elif status == 400 and reason == "FAILED_PRECONDITION" and _NOT_A_SHEET in str(message):
        text += (
            "; the id is of a file that is not a Google Sheets spreadsheet (an Excel file in "
            "Drive?): open it, File → Save as Google Sheets, and give the new spreadsheet's id"
        )
    elif status == 400 and _PROTECTED in str(message)[:1000]:
        editor = share_with or "the service account"
        text += (
            "; a protected range or tab is in the way (Data → Protected sheets and ranges): "
            f"add {editor} to its editors, or remove the protection"
        )
    elif status in (403, 404) and share_with:
        rights = "(as an editor)" if shared == "form" else "(Editor to write, Viewer to read)"
        named = f"{shared} {document}" if document else shared
        text += f"; share the {named} with {share_with} {rights} and check its id"
    return GoogleApiError(
        text,
        http_status=status,
        reason=reason,
        # A quota: the next run may do (a daily one, once it is renewed).
        retryable=status in RETRYABLE_STATUS or rate_limited or quota is not None,
    )


# Sheets' answer (400 FAILED_PRECONDITION) to a call on a Drive file that is not a Google
# Sheets spreadsheet: an .xlsx uploaded to Drive opens in the Sheets editor and looks alike.
_NOT_A_SHEET = "This operation is not supported for this document"

# Sheets' answer (400 INVALID_ARGUMENT) to a write into a protected range or tab (Data →
# Protected sheets and ranges) whose editors leave the service account out: an editor of the
# spreadsheet is not enough. The message is left out of a values call's error, so it is told.
_PROTECTED = "You are trying to edit a protected cell or object"

# Sheets' answer (400 INVALID_ARGUMENT) to a range naming no tab the spreadsheet has, e.g.
# "Unable to parse range: 'Form Responses 1'" (the title is left out of the error).
_NO_SUCH_RANGE = "Unable to parse range:"

# Its answer to a write past a tab's grid: "Range (Sheet1!A1001) exceeds grid limits. Max
# rows: 1000, max columns: 26" (the tab's title left out of a values call's error).
_PAST_THE_GRID = re.compile(r"^Range \(.*\) exceeds grid limits\.", re.DOTALL)

# What names an API and a project in SERVICE_DISABLED's ErrorInfo metadata (Google's text,
# shown only when it looks like a service name, a project number or id, an API's title).
_SERVICE = re.compile(r"[a-z0-9.-]{1,100}")
_PROJECT = re.compile(r"projects/([a-z0-9-]{1,64})")
_TITLE = re.compile(r"[A-Za-z0-9 ()-]{1,80}")


def _enable_api(metadata: dict[str, Any]) -> str:
    """What the operator must do about a 403 SERVICE_DISABLED: enable the API (named when
    Google named it) in the service account's project."""
    service = metadata.get("service")
    title = metadata.get("serviceTitle")
    project = _PROJECT.fullmatch(str(metadata.get("consumer", "")))
    api = "the API"
    if isinstance(service, str) and _SERVICE.fullmatch(service):
        named = title if isinstance(title, str) and _TITLE.fullmatch(title) else None
        api = f"the {named} ({service})" if named else service
    where = (
        f"Google Cloud project {project.group(1)}, the service account's"
        if project
        else ("the service account's Google Cloud project")
    )
    return f"enable {api} in {where} (APIs & Services → Library)"


def tab_rows(body: bytes) -> list[list[Any]]:
    """The rows of a ``values.batchGet`` response of one range (:meth:`SheetsApi.read_tab`);
    GoogleApiError when the body is not that: one ValueRange, by rows, each row a list
    (``values`` left out is an empty tab, as Google sends it). Anything else (``[]``, ``{}``,
    no range, a row that is a string, columns) was read as an empty tab or as other rows: a
    run "ok" over answers it never read."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise GoogleApiError("values.batchGet: the answer is not JSON") from exc
    ranges = decoded.get("valueRanges") if isinstance(decoded, dict) else None
    if not (isinstance(ranges, list) and len(ranges) == 1 and isinstance(ranges[0], dict)):
        raise GoogleApiError("values.batchGet: the answer is not the one range asked for")
    if ranges[0].get("majorDimension", "ROWS") != "ROWS":
        raise GoogleApiError("values.batchGet: the answer is by columns, not by rows as asked")
    values = ranges[0].get("values", [])
    if not isinstance(values, list):
        raise GoogleApiError("values.batchGet: the answer holds something else than rows")
    for number, row in enumerate(values, start=1):
        if type(row) is not list:
            raise GoogleApiError(
                f"values.batchGet: row {number} of the tab is not a list of cells: Sheets "
                "never answers so (a proxy or a fake in between?)"
            )
    return values


def _json_object(what: str, decoded: Any) -> dict[str, Any]:
    """``decoded`` when it is a JSON object, as every Sheets answer is; else GoogleApiError
    (a list, a string or null from a proxy crashed the run with a TypeError)."""
    if not isinstance(decoded, dict):
        raise GoogleApiError(f"{what}: the answer is not a JSON object")
    return decoded


def _answer(what: str, response: requests.Response) -> dict[str, Any]:
    """The JSON object a 2xx ``response`` holds (:func:`_json_object`); GoogleApiError with
    its status when it is not JSON at all (a proxy's page, a body cut short): requests'
    JSONDecodeError made "spreadsheets.batchUpdate: JSONDecodeError", status lost."""
    try:
        # From the bytes: requests' .json() decodes them to text first.
        decoded = json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        status = response.status_code
        raise GoogleApiError(
            f"{what}: HTTP {status}, the answer is not JSON", http_status=status
        ) from exc
    return _json_object(what, decoded)


class _Refused(Exception):  # noqa: N818 (not an error of ours: carries Google's answer)
    """A Sheets answer that is not 2xx, for :meth:`SheetsApi._call` to read."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class _HttpClient(gspread.http_client.HTTPClient):
    """gspread's client, except that an error answer is raised as it came: gspread's
    APIError reads the body itself and fails with TypeError or KeyError on one that is not
    Google's shape (``{"error": "quota"}``, no ``code``), which no caller expects."""

    def request(
        self,
        method: str,
        endpoint: str,
        params: Any = None,
        data: Any = None,
        json: Any = None,
        files: Any = None,
        headers: Any = None,
    ) -> requests.Response:
        response = self.session.request(
            method=method,
            url=endpoint,
            json=json,
            params=params,
            data=data,
            files=files,
            headers=headers,
            timeout=self.timeout,
        )
        if not response.ok:
            raise _Refused(response)
        return response


class SheetsApi:
    """The Sheets v4 calls the sync makes (gspread's HTTPClient over a GoogleSession).

    Metadata is fetched once per spreadsheet and per instance: gspread's ``worksheet()`` and
    friends re-read it on every call, which is how jobs burn their read quota.
    """

    def __init__(self, session: GoogleSession) -> None:
        self.session = session
        self.http = _HttpClient(auth=None, session=session)  # type: ignore[arg-type]
        self._metadata: dict[str, dict[str, Any]] = {}

    def _call(
        self, what: str, document: str, call: Callable[[], T], *, keep_message: bool = True
    ) -> T:
        """``call()``; a refusal or a transport failure as GoogleApiError (``document``: the
        spreadsheet's id, which a refusal names)."""
        try:
            return call()
        except (_Refused, gspread.exceptions.APIError) as exc:
            raise _error_from(
                what,
                exc.response,
                keep_message=keep_message,
                attempts=self.session.attempts,
                share_with=service_account_email(self.session),
                document=document,
            ) from exc
        except requests.RequestException as exc:
            raise GoogleApiError(f"{what}: {type(exc).__name__}") from exc

    def metadata(self, spreadsheet_id: str) -> dict[str, Any]:
        """Spreadsheet properties (time zone, locale) and tabs (id, title, grid size)."""
        if spreadsheet_id not in self._metadata:
            params: dict[str, str | int | bool | float | list[str] | None] = {
                "includeGridData": "false",
                "fields": METADATA_FIELDS,
            }
            # gspread's fetch_sheet_metadata, minus its JSON decoding.
            url = SPREADSHEET_URL % spreadsheet_id
            self._metadata[spreadsheet_id] = self._call(
                "spreadsheets.get",
                spreadsheet_id,
                lambda: _answer("spreadsheets.get", self.http.request("get", url, params=params)),
            )
        return self._metadata[spreadsheet_id]

    def forget_metadata(self, spreadsheet_id: str) -> None:
        self._metadata.pop(spreadsheet_id, None)

    def read_tab(self, spreadsheet_id: str, title: str) -> list[list[Any]]:
        """A whole tab in one request: numbers stay numbers, date-times come as serials (the
        Alerts tab, whose "Handled" cells are wanted as the sheet shows them, with their
        checkboxes, is read with :meth:`read_cells`)."""
        return tab_rows(self.read_tab_bytes(spreadsheet_id, title))

    def read_cells(
        self, spreadsheet_id: str, title: str, ranges: Sequence[str]
    ) -> dict[tuple[int, int], SheetCell]:
        """The cells of ``ranges`` (A1 without the title: ``"1:1"``, ``"N:N"``) of the tab
        ``title``, in one ``spreadsheets.get``: by (row, column), 0-based, each cell's value,
        the text it shows and its checkbox (:class:`SheetCell`). A cell holding nothing and
        no rule is left out."""
        params: dict[str, str | int | bool | float | list[str] | None] = {
            "ranges": [absolute_range_name(title, r) for r in ranges],
            "fields": CELLS_FIELDS,
        }
        url = SPREADSHEET_URL % spreadsheet_id
        answer = self._call(
            "spreadsheets.get",
            spreadsheet_id,
            lambda: _answer("spreadsheets.get", self.http.request("get", url, params=params)),
            keep_message=False,
        )
        return sheet_cells(answer, title)

    def read_tab_bytes(self, spreadsheet_id: str, title: str) -> bytes:
        """:meth:`read_tab`'s response body as sent (``tab_rows`` decodes it): a caller can
        tell the same tab from its bytes before decoding them."""
        params: dict[str, str | int | bool | float | list[str] | None] = {
            "valueRenderOption": "UNFORMATTED_VALUE",
            "dateTimeRenderOption": "SERIAL_NUMBER",
            "majorDimension": "ROWS",
            "ranges": [absolute_range_name(title)],
        }
        # gspread's values_batch_get, minus its JSON decoding.
        url = SPREADSHEET_VALUES_BATCH_URL % spreadsheet_id
        response = self._call(
            "values.batchGet",
            spreadsheet_id,
            lambda: self.http.request("get", url, params=params),
            keep_message=False,
        )
        return bytes(response.content)

    def read_shown(
        self, spreadsheet_id: str, title: str, ranges: Sequence[str]
    ) -> list[list[list[Any]]]:
        """The cells of ``ranges`` (A1 without the title: ``"C2:C90"``) of the tab ``title``
        as the sheet shows them (FORMATTED_VALUE: text, in the spreadsheet's locale), in one
        ``values.batchGet``: each range's rows, in order. GoogleApiError when the answer is
        not one list of rows per range asked for."""
        params: dict[str, str | int | bool | float | list[str] | None] = {
            "valueRenderOption": "FORMATTED_VALUE",
            "majorDimension": "ROWS",
            "ranges": [absolute_range_name(title, r) for r in ranges],
        }
        url = SPREADSHEET_VALUES_BATCH_URL % spreadsheet_id
        answer = self._call(
            "values.batchGet",
            spreadsheet_id,
            lambda: _answer("values.batchGet", self.http.request("get", url, params=params)),
            keep_message=False,
        )
        found = answer.get("valueRanges")
        if not (isinstance(found, list) and len(found) == len(ranges)):
            raise GoogleApiError("values.batchGet: the answer is not the ranges asked for")
        shown = []
        for value_range in found:
            rows = value_range.get("values", []) if isinstance(value_range, dict) else None
            if not (isinstance(rows, list) and all(type(row) is list for row in rows)):
                raise GoogleApiError("values.batchGet: the answer holds something else than rows")
            shown.append(rows)
        return shown

    def update_structure(
        self, spreadsheet_id: str, requests_: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """One ``spreadsheets.batchUpdate`` (atomic: all sub-requests or none).

        TabExistsError when an addSheet's title is taken, TabGoneError when a deleteSheet's
        tab is gone, OutcomeUnknownError when the answer was lost: the batch is sent once,
        never repeated by the session (the metadata is forgotten in every case: the caller
        re-reads it and plans again).
        """
        url = SPREADSHEET_BATCH_UPDATE_URL % spreadsheet_id

        def send() -> requests.Response:
            response = self.session.request(
                "post", url, json={"requests": requests_}, timeout=self.http.timeout, repeat=False
            )
            if not response.ok:
                raise _Refused(response)
            return response

        try:
            body = self._call(
                "spreadsheets.batchUpdate",
                spreadsheet_id,
                lambda: _answer("spreadsheets.batchUpdate", send()),
            )
        except GoogleApiError as exc:
            self.forget_metadata(spreadsheet_id)
            if isinstance(exc, UnansweredError) or exc.http_status in UNKNOWN_OUTCOME_STATUS:
                # A 5xx's wait is the caller's to honour: it plans again itself (api.pause).
                answer = exc.__cause__
                raise OutcomeUnknownError(
                    exc.message,
                    http_status=exc.http_status,
                    reason=exc.reason,
                    retryable=True,
                    retry_after=(
                        asked_wait(answer.response) if isinstance(answer, _Refused) else None
                    ),
                ) from exc
            if exc.http_status == 400 and _TAB_EXISTS.search(exc.message):
                raise TabExistsError(
                    exc.message, http_status=400, reason=exc.reason, retryable=False
                ) from exc
            if exc.http_status == 400 and _TAB_GONE.search(exc.message):
                raise TabGoneError(
                    exc.message, http_status=400, reason=exc.reason, retryable=False
                ) from exc
            raise
        self.forget_metadata(spreadsheet_id)
        replies = body.get("replies")  # unused by callers so far: read loosely
        return [r for r in replies if isinstance(r, dict)] if isinstance(replies, list) else []

    @property
    def max_retries(self) -> int:
        """How many times the session sends a request again (``google.max_retries``)."""
        return self.session.max_retries

    def pause(self, attempt: int, retry_after: float | None = None) -> None:
        """Wait before trying a write again after a lost answer (the session's backoff), at
        least the ``retry_after`` its answer asked for (:attr:`OutcomeUnknownError.
        retry_after`), capped as the session caps every wait."""
        self.session.pause(attempt, retry_after)

    def write_values(self, spreadsheet_id: str, data: Sequence[bytes]) -> dict[str, Any]:
        """One ``values.batchUpdate`` with RAW input: text is never parsed as a formula.

        ``data`` holds the ValueRanges already encoded as UTF-8 JSON (the caller measured
        them to split the write; encoding 100,000 rows again would double the cost)."""
        body = JoinedBody(VALUES_HEAD, data, VALUES_TAIL)
        url = SPREADSHEET_VALUES_BATCH_UPDATE_URL % spreadsheet_id
        return self._call(
            "values.batchUpdate",
            spreadsheet_id,
            lambda: _answer(
                "values.batchUpdate",
                self.http.request(
                    "post",
                    url,
                    data=body,  # requests sends any readable body
                    headers={"Content-Type": "application/json"},
                ),
            ),
            keep_message=False,
        )


def sheet_cells(answer: dict[str, Any], title: str) -> dict[tuple[int, int], SheetCell]:
    """The cells of a ``spreadsheets.get`` answer with grid data for the tab ``title``
    (:meth:`SheetsApi.read_cells`). GoogleApiError when it is not that: no sheet of that
    title, or its data not lists of rows of cells (read as an empty tab, the team's edits
    there were never read and the rewrite replaced them). Left out, ``data``, ``rowData``
    and ``values`` are empty, as Google leaves them out."""
    sheets = answer.get("sheets")
    titled = [
        s
        for s in (sheets if isinstance(sheets, list) else [])
        if isinstance(s, dict) and _dict(s.get("properties")).get("title") == title
    ]
    if not titled:
        raise GoogleApiError("spreadsheets.get: the answer does not hold the tab asked for")
    found: dict[tuple[int, int], SheetCell] = {}
    for grid in _strict(titled[0].get("data")):
        row0, col0 = _int(grid.get("startRow")), _int(grid.get("startColumn"))
        for r, row in enumerate(_strict(grid.get("rowData"))):
            for c, data in enumerate(_strict(row.get("values"))):
                cell = _sheet_cell(data)
                if cell != _BLANK:
                    found[row0 + r, col0 + c] = cell
    return found


def _strict(value: Any) -> list[dict[str, Any]]:
    """A list of objects of a grid data answer (None: left out, empty)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise GoogleApiError("spreadsheets.get: the answer's grid data is not rows of cells")
    return value


def _sheet_cell(data: dict[str, Any]) -> SheetCell:
    """A ``CellData`` as a :class:`SheetCell` (loosely read: what is not the shape is left
    out)."""
    effective = _dict(data.get("effectiveValue"))
    value: str | int | float | bool | None = None
    for name, kind in (("boolValue", bool), ("numberValue", int | float), ("stringValue", str)):
        found = effective.get(name)
        if isinstance(found, kind) and (kind is bool or not isinstance(found, bool)):
            value = found
            break
    shown = data.get("formattedValue")
    if "errorValue" in effective and isinstance(shown, str):
        value = shown  # "#REF!", as UNFORMATTED_VALUE reads an error
    condition = _dict(_dict(data.get("dataValidation")).get("condition"))
    checkbox = None
    if condition.get("type") == "BOOLEAN":
        typed = [_dict(v).get("userEnteredValue") for v in _listed(condition.get("values"))]
        checkbox = tuple(v for v in typed if isinstance(v, str))
    return SheetCell(value, shown if isinstance(shown, str) else None, checkbox)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# What a ``values.batchUpdate`` body holds around its ValueRanges (joined by commas): the
# caller packs the ranges so that the whole body stays within its limit.
VALUES_HEAD = b'{"valueInputOption":"RAW","data":['
VALUES_TAIL = b"]}"


def values_body_size(sizes: Sequence[int]) -> int:
    """The bytes of a :meth:`SheetsApi.write_values` body holding ValueRanges of ``sizes``."""
    return len(VALUES_HEAD) + sum(sizes) + max(len(sizes) - 1, 0) + len(VALUES_TAIL)


class JoinedBody(io.RawIOBase):
    """``head + b",".join(parts) + tail`` as a request body read in blocks, never joined.

    A first sync's value write is up to ``output.gsheets.max_request_bytes`` (tens of MB)
    of tabs already encoded; joining them made a second copy at the run's peak of memory.
    requests sends a readable body with a known length as is (``Content-Length``, not
    chunked), reading it in blocks; :class:`~csat_hook.sync.google.session.GoogleSession`
    rewinds it before every attempt.
    """

    def __init__(self, head: bytes, parts: Sequence[bytes], tail: bytes) -> None:
        super().__init__()
        pieces = [head]
        for index, part in enumerate(parts):
            if index:
                pieces.append(b",")
            pieces.append(part)
        pieces.append(tail)
        self._pieces = [memoryview(piece) for piece in pieces if piece]
        self._length = sum(len(piece) for piece in self._pieces)
        self._piece = 0  # where the next read starts: piece index and offset in it
        self._offset = 0
        self._position = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) == (0, io.SEEK_END):
            self._piece, self._offset, self._position = len(self._pieces), 0, self._length
        elif (offset, whence) == (0, io.SEEK_SET):
            self._piece = self._offset = self._position = 0
        else:  # requests and urllib3 rewind to the start or ask for the end, nothing else
            raise io.UnsupportedOperation("JoinedBody seeks to its start or end only")
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._piece >= len(self._pieces):
            return 0
        piece = self._pieces[self._piece]
        size = min(len(buffer), len(piece) - self._offset)
        buffer[:size] = piece[self._offset : self._offset + size]
        self._offset += size
        self._position += size
        if self._offset == len(piece):
            self._piece, self._offset = self._piece + 1, 0
        return size


def _check_page(body: dict[str, Any], number: int) -> None:
    """GoogleApiError naming the field when page ``number`` of ``forms.responses.list`` is in
    a shape Google never sends: ``responses`` not a list (a number failed the run as an
    internal error; an object's keys were read as responses), ``nextPageToken`` not text (an
    object or a list failed it so). A response in the list is judged by the source, alone."""
    responses = body.get("responses")
    if responses is not None and not isinstance(responses, list):
        raise GoogleApiError(
            f"forms.responses.list: page {number}'s responses is not a list: Google never "
            "answers so (a proxy or a fake in between?)"
        )
    token = body.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise GoogleApiError(
            f"forms.responses.list: page {number}'s nextPageToken is not text: Google never "
            "answers so (a proxy or a fake in between?)"
        )


class FormsApi:
    """``forms.responses.list`` with a timestamp filter and paging; ``forms.get``'s
    questions."""

    def __init__(self, session: GoogleSession) -> None:
        self.session = session

    def questions(self, form_id: str) -> FormQuestions:
        """``forms.get``'s questions, in the form's order: (questionId, title), a grid's rows
        each under its row's title, with the form's ``revisionId``. Items of another kind, and
        parts in a shape Google never sends, are left out (the caller reads by questionId; a
        title only finds one)."""
        url = FORMS_FORM_URL.format(form_id=urllib.parse.quote(form_id, safe=""))
        form = self._get("forms.get", url, {"fields": FORM_QUESTION_FIELDS}, form_id)
        found: list[tuple[str, str]] = []
        for item in _listed(form.get("items")):
            item = _dict(item)
            question = _dict(_dict(item.get("questionItem")).get("question"))
            if isinstance(question.get("questionId"), str):
                found.append((question["questionId"], str(item.get("title") or "")))
            for row in _listed(_dict(item.get("questionGroupItem")).get("questions")):
                row = _dict(row)
                if isinstance(row.get("questionId"), str):
                    title = _dict(row.get("rowQuestion")).get("title")
                    found.append((row["questionId"], str(title or "")))
        revision = form.get("revisionId")
        return FormQuestions(revision if isinstance(revision, str) else None, found)

    def list_responses(
        self, form_id: str, *, since: datetime | None, page_size: int
    ) -> Iterator[dict[str, Any]]:
        """Every response submitted at or after ``since`` (all of them when None)."""
        for page in self.pages(form_id, since=since, page_size=page_size):
            yield from page.get("responses") or ()

    def pages(
        self, form_id: str, *, since: datetime | None, page_size: int
    ) -> Iterator[dict[str, Any]]:
        """The pages of ``forms.responses.list``, in order, until one has no
        ``nextPageToken``; GoogleApiError when a page hands back a token already followed
        (asking for it again would list the same pages again, without end), or is in a shape
        Google never sends (:func:`_check_page`).

        The next page is requested (by one background thread, through the same session:
        timeouts, bounded retries, counting) while the caller works on the current one, so
        Google's answer time overlaps our parsing: a first run reads ~200 pages. At most one
        page waits unread. When the caller stops early, the thread stops after the request
        it is making; an error in the thread is raised here, in order.
        """
        url = FORMS_RESPONSES_URL.format(form_id=urllib.parse.quote(form_id, safe=""))
        params: dict[str, Any] = {"pageSize": page_size}
        if since is not None:
            stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params["filter"] = f"timestamp >= {stamp}"
        ready: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def hand_over(item: dict[str, Any] | BaseException | None) -> None:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def fetch() -> None:
            followed: set[Any] = set()  # a few hundred tokens for the largest form
            try:
                while not stop.is_set():
                    body = self._page(url, params, form_id)
                    token = body.get("nextPageToken")
                    _check_page(body, len(followed) + 1)
                    if token and token in followed:
                        # Requested again, it came back again: the run never ended (with an
                        # end, "ok" over the same responses read many times).
                        raise GoogleApiError(
                            f"forms.responses.list: page {len(followed) + 1} gave a "
                            "nextPageToken an earlier page gave: the listing goes round in "
                            "a circle; run the sync again later"
                        )
                    hand_over(body)
                    if not token:
                        break
                    followed.add(token)
                    params["pageToken"] = token
                hand_over(None)
            except BaseException as exc:  # handed to the caller, raised there
                hand_over(exc)

        thread = threading.Thread(target=fetch, name="forms-pages", daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()

    def _page(self, url: str, params: dict[str, Any], form_id: str) -> dict[str, Any]:
        return self._get("forms.responses.list", url, params, form_id)

    def _get(self, method: str, url: str, params: dict[str, Any], form_id: str) -> dict[str, Any]:
        """One GET of the Forms API ``method`` on ``form_id``'s form: its JSON object, or a
        :class:`GoogleApiError` naming the method (and, refused, the form to share)."""
        try:
            response = self.session.get(url, params=params)
        except requests.RequestException as exc:
            raise GoogleApiError(f"{method}: {type(exc).__name__}") from exc
        if not response.ok:
            raise _error_from(
                method,
                response,
                keep_message=False,
                attempts=self.session.attempts,
                share_with=service_account_email(self.session),
                shared="form",
                document=form_id,
            )
        return _answer(method, response)
