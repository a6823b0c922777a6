"""A stateful fake of the Google APIs the sync uses, on loopback.

For tests, the benchmark and a manual try (``csat-hook dev fake-google``). It serves:

* ``POST /token``: the OAuth 2.0 JWT-bearer grant a service account uses; the assertion is
  checked (RS256 signature against the keys this fake issued, audience, expiry, scope);
* Sheets v4 under ``/v4/spreadsheets``: ``get`` (with a ``fields`` mask, and ``ranges``:
  their grid data, cells' data validation included), ``values.get``,
  ``values:batchGet``, ``values.update``, ``values:batchUpdate``, ``values:batchClear``,
  ``values/<range>:clear`` and ``:batchUpdate`` (tabs, cell formats, sizes, conditional
  rules, charts, developer metadata: see :mod:`.sheets_model`); every request (method, query
  parameters, body) is checked against Google's Sheets discovery document first
  (:mod:`.discovery`), then the model checks what a body asks for;
* Forms v1 ``forms.get`` and ``forms.responses.list`` (``timestamp >``/``>=`` filters, paging:
  see :mod:`.forms_model`); every Forms request (path, method, query parameters, body, a
  ``fields`` selector) is checked against Google's Forms discovery document first, and one it
  refuses gets Google's 400 (404 for a method the API does not have).

Every request is recorded with its quota kind (``sheets_read``, ``sheets_write``,
``forms_read``, ``token``). Faults can be scripted: ``fail(count, status, kind)`` answers the
next matching requests with Google's real 429 body (no ``Retry-After``) or a 503, without
applying them; ``lose(count, kind, path=..., status=...)`` *applies* the next matching
requests and then loses the answer (the connection is dropped, or a 5xx comes back), as a
timeout or a reset after Google has done the work does.

Point the sync at it with ``google.sheets_base_url`` / ``google.forms_base_url`` and a
service-account JSON from :meth:`FakeGoogle.service_account_info` (its ``token_uri`` is this
server). Control endpoints: ``GET/DELETE /_fake/requests``, ``POST /_fake/fail``,
``POST /_fake/lose``.
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import io
import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from collections import deque
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa

from csat_hook.devtools import discovery
from csat_hook.devtools import forms_model
from csat_hook.devtools import sheets_model as model
from csat_hook.devtools.loopback import LoopbackServer
from csat_hook.devtools.sheets_model import SheetsApiError
from csat_hook.sync.timestamps import TimestampColumn
from csat_hook.sync.timestamps import TimestampError

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth always signs this audience, whatever the token_uri (service_account.py).
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)


# The Forms API's per-minute, per-user quotas (https://developers.google.com/workspace/forms/
# api/limits): "Read requests" 390 (forms.get), "Expensive read requests" 180 (used for
# forms.responses.list). Its 429 is not recorded here: the body is Google's quota error as
# Sheets' recorded one has it, with Forms' service and these quotas' names (the metric's id
# made as Sheets' are, "<service>/<snake_case name>").
_FORMS_QUOTAS = {
    "read": ("Read requests", "read_requests", "ReadRequestsPerMinutePerUser", "390"),
    "expensive": (
        "Expensive read requests",
        "expensive_read_requests",
        "ExpensiveReadRequestsPerMinutePerUser",
        "180",
    ),
}


def quota_body(kind: str, path: str = "") -> dict[str, Any]:
    """Google's 429 body for the quota a request of ``kind`` (and ``path``) counts against:
    Sheets' read or write bucket (as recorded from the real API), or the Forms API's read
    or expensive read one (``forms.responses.list``)."""
    if kind == "forms_read":
        bucket = "expensive" if path.rstrip("/").endswith("/responses") else "read"
        name, metric, limit, value = _FORMS_QUOTAS[bucket]
        service = "forms.googleapis.com"
    else:
        word, snake = ("Write", "write") if kind == "sheets_write" else ("Read", "read")
        name, metric = f"{word} requests", f"{snake}_requests"
        limit, value = f"{word}RequestsPerMinutePerUser", "60"
        service = "sheets.googleapis.com"
    return {
        "error": {
            "code": 429,
            "message": f"Quota exceeded for quota metric '{name}' and limit '{name} per minute "
            f"per user' of service '{service}' for consumer 'project_number:603366585132'.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "googleapis.com",
                    "metadata": {
                        "service": service,
                        "consumer": "projects/603366585132",
                        "quota_metric": f"{service}/{metric}",
                        "quota_limit": limit,
                        "quota_limit_value": value,
                        "quota_location": "global",
                    },
                }
            ],
        }
    }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGoogle(LoopbackServer):
    """Start with :meth:`start` (background thread) or :meth:`serve_forever`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        require_auth: bool = True,
        latency: float = 0.0,
    ) -> None:
        discovery.schemas()  # fails at once, and says why, without google-api-python-client
        self.spreadsheets: dict[str, model.Spreadsheet] = {}
        self.forms: dict[str, forms_model.Form] = {}
        self.requests: list[dict[str, Any]] = []
        self.failures: deque[tuple[int, str | None]] = deque()
        self.losses: deque[tuple[int, str | None, re.Pattern[str] | None, str | None]] = deque()
        self.require_auth = require_auth
        self.latency = latency  # seconds added to every API answer (overlap and timeout tests)
        self.lock = threading.RLock()
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._tokens: set[str] = set()
        self.server = _QuietServer((host, port), _handler(self))
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- seeding and inspecting ----------------------------------------------------------

    def add_spreadsheet(
        self,
        spreadsheet_id: str,
        *,
        title: str = "CSAT (Responses)",
        locale: str = "en_US",
        time_zone: str = "Etc/GMT",
        office_file: bool = False,
    ) -> model.Spreadsheet:
        """A spreadsheet; ``office_file``: the id is of an Excel file kept in Drive, which
        the Sheets editor opens but the API refuses (:func:`not_a_sheet`)."""
        with self.lock:
            sheet = model.Spreadsheet(spreadsheet_id, title, locale, time_zone)
            sheet.office_file = office_file
            self.spreadsheets[spreadsheet_id] = sheet
            return sheet

    def add_tab(
        self,
        spreadsheet_id: str,
        title: str,
        rows: list[list[Any]] | None = None,
        *,
        sheet_id: int | None = None,
        row_count: int = 1000,
        col_count: int = 26,
    ) -> model.Tab:
        """Add a tab holding ``rows`` (datetimes become date-time serials, "" blank)."""
        with self.lock:
            sheet = self.spreadsheets[spreadsheet_id]
            if sheet_id is None:
                sheet_id = 0 if not sheet.tabs else sheet.next_sheet_id
                sheet.next_sheet_id += 7919
            rows = rows or []
            tab = model.Tab(
                sheet_id=sheet_id,
                title=title,
                index=len(sheet.tabs),
                rows=max(row_count, len(rows)),
                cols=max([col_count, *(len(r) for r in rows)]),
            )
            tab.cells = [[sheet.cell_value(v) for v in row] for row in rows]
            sheet.tabs.append(tab)
            return tab

    def copy_sheet_metadata(self, spreadsheet_id: str, source: int, target: int) -> None:
        """Give the tab ``target`` a copy of the developer metadata on the tab ``source`` (new
        ids), as a copy of a tab may carry it: for tests of a tab that is not what it says."""
        with self.lock:
            sheet = self.spreadsheets[spreadsheet_id]
            found, into = sheet.tab_by_id(source), sheet.tab_by_id(target)
            assert found is not None and into is not None
            for metadata in found.developer_metadata:
                copied = copy.deepcopy(metadata)
                copied["metadataId"] = sheet.next_metadata_id
                copied["location"] = {"locationType": "SHEET", "sheetId": target}
                sheet.next_metadata_id += 1
                into.developer_metadata.append(copied)

    def strip_sheet_metadata(self, spreadsheet_id: str) -> None:
        """Drop the developer metadata on every tab (a spreadsheet an earlier version wrote)."""
        with self.lock:
            for tab in self.spreadsheets[spreadsheet_id].tabs:
                tab.developer_metadata = []

    def append_rows(self, spreadsheet_id: str, title: str, rows: list[list[Any]]) -> None:
        """What a form submission does: rows added under the last non-empty one."""
        with self.lock:
            sheet = self.spreadsheets[spreadsheet_id]
            tab = sheet.tab_by_title(title)
            assert tab is not None
            while tab.cells and not any(v is not None for v in tab.cells[-1]):
                tab.cells.pop()
            for row in rows:
                tab.cells.append([sheet.cell_value(v) for v in row])
            tab.rows = max(tab.rows, len(tab.cells))

    def set_cell(self, spreadsheet_id: str, title: str, row: int, col: int, value: Any) -> None:
        with self.lock:
            sheet = self.spreadsheets[spreadsheet_id]
            tab = sheet.tab_by_title(title)
            assert tab is not None
            tab.put(row, col, sheet.cell_value(value))

    def set_validation(
        self, spreadsheet_id: str, title: str, row: int, col: int, rule: dict[str, Any] | None
    ) -> None:
        """Put a data validation rule on a cell (None: take it off), as a person does in the
        Sheets editor: a checkbox is ``{"condition": {"type": "BOOLEAN"}}``, with custom
        values ``{"condition": {"type": "BOOLEAN", "values": [{"userEnteredValue": "Yes"},
        {"userEnteredValue": "No"}]}}``. The rule is checked against the discovery
        document's ``DataValidationRule``."""
        if rule is not None:
            problems = discovery.validate(rule, "DataValidationRule")
            assert not problems, problems
        with self.lock:
            tab = self.spreadsheets[spreadsheet_id].tab_by_title(title)
            assert tab is not None
            if rule is None:
                tab.validations.pop((row, col), None)
            else:
                tab.validations[row, col] = copy.deepcopy(rule)

    def cells(self, spreadsheet_id: str, title: str) -> list[list[Any]]:
        """A tab's stored cells (typed: str, numbers, Formula, DateTimeCell,
        ShownNumber; None = blank)."""
        with self.lock:
            tab = self.spreadsheets[spreadsheet_id].tab_by_title(title)
            if tab is None:
                raise KeyError(title)
            rows = [list(line) for line in tab.cells]
        while rows and not any(v is not None for v in rows[-1]):
            rows.pop()
        return [_trim(line) for line in rows]

    def tab(self, spreadsheet_id: str, title: str) -> model.Tab:
        """A tab as the model holds it (formats, widths, rules, charts): for inspection."""
        with self.lock:
            tab = self.spreadsheets[spreadsheet_id].tab_by_title(title)
            if tab is None:
                raise KeyError(title)
            return tab

    def state(self, spreadsheet_id: str) -> dict[str, Any]:
        """Everything a spreadsheet holds, comparable between runs."""
        with self.lock:
            return self.spreadsheets[spreadsheet_id].state()

    def titles(self, spreadsheet_id: str) -> list[str]:
        with self.lock:
            tabs = sorted(self.spreadsheets[spreadsheet_id].tabs, key=lambda t: t.index)
            return [t.title for t in tabs]

    def add_form(
        self,
        form_id: str,
        responses: list[dict[str, Any]] | None = None,
        *,
        items: list[dict[str, Any]] | None = None,
        title: str = "CSAT survey",
        check: bool = True,
    ) -> forms_model.Form:
        """A form holding ``responses`` (FormResponse objects; a form added again replaces
        the earlier one). ``check`` validates each against the FormResponse schema."""
        with self.lock:
            form = forms_model.Form(form_id, title=title, items=list(items or []))
            for response in responses or []:
                form.put(response, check=check)
            self.forms[form_id] = form
            return form

    def submit_response(self, form_id: str, response: dict[str, Any]) -> None:
        """A respondent submits: a new responseId adds a response, a known one is an edit."""
        with self.lock:
            self.forms[form_id].put(response)

    def delete_response(self, form_id: str, response_id: str) -> bool:
        """The form's owner deletes a response: it simply no longer appears in
        ``forms.responses.list`` (nor ``get``). False: no such response."""
        with self.lock:
            return self.forms[form_id].delete(response_id)

    def api_requests(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if kind is None or r["kind"] == kind]

    def count(self, kind: str) -> int:
        return len(self.api_requests(kind))

    def reset_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def fail(self, count: int, status: int = 429, kind: str | None = None) -> None:
        """Answer the next ``count`` requests of ``kind`` (any API kind if None) with a fault."""
        with self.lock:
            self.failures.extend([(status, kind)] * count)

    def lose(
        self,
        count: int = 1,
        kind: str | None = None,
        *,
        path: str | None = None,
        status: int = 0,
        retry_delay: str | None = None,
    ) -> None:
        """Apply the next ``count`` requests of ``kind`` whose path matches the regex ``path``,
        then lose the answer: ``status`` 0 drops the connection with no answer at all,
        otherwise Google's error body with that status (500, 503, 504) is sent instead, with a
        ``google.rpc.RetryInfo`` asking to wait ``retry_delay`` (a Duration: "30s") if given."""
        with self.lock:
            pattern = re.compile(path) if path is not None else None
            self.losses.extend([(status, kind, pattern, retry_delay)] * count)

    def clear_failures(self) -> None:
        with self.lock:
            self.failures.clear()
            self.losses.clear()

    # --- credentials ---------------------------------------------------------------------

    def service_account_info(
        self,
        email: str = "csat-sync@fake-project.iam.gserviceaccount.com",
        *,
        key: rsa.RSAPrivateKey | None = None,
    ) -> dict[str, Any]:
        """A service-account JSON whose token_uri is this server (a fresh RSA key unless
        ``key`` is given: generating one takes a moment, tests share one). The key's id is
        derived from the key, as a real key's id names that key: the same key, the same
        JSON (tests parse a shared key once, ``tests/conftest.py``)."""
        key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key_id = hashlib.sha256(public).hexdigest()[:16]
        with self.lock:
            self._keys[key_id] = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        return {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": "1000000000000",
            "token_uri": f"{self.url}/token",
            "universe_domain": "googleapis.com",
        }

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != JWT_GRANT or not form.get("assertion"):
            return 400, {"error": "unsupported_grant_type"}
        try:
            header_b64, claims_b64, signature_b64 = form["assertion"].split(".")
            header = json.loads(_unb64url(header_b64))
            claims = json.loads(_unb64url(claims_b64))
            key = self._keys.get(header.get("kid", ""))
            if key is None or header.get("alg") != "RS256":
                raise ValueError("unknown key")
            key.verify(
                _unb64url(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:  # any defect in the assertion is the same answer, as at Google
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        audiences = (GOOGLE_TOKEN_AUDIENCE, f"{self.url}/token")
        if claims.get("aud") not in audiences or claims.get("exp", 0) < time.time():
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: aud/exp"}
        if not claims.get("scope"):
            return 400, {"error": "invalid_scope", "error_description": "Empty scope"}
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        with self.lock:
            self._tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def authorized(self, header: str | None) -> bool:
        if not self.require_auth:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        with self.lock:
            return header[7:] in self._tokens

    # --- dispatch --------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        authorization: str | None,
    ) -> tuple[int, Any]:
        kind = _kind(method, path)
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "kind": kind,
            "bytes": len(body),
        }
        with self.lock:
            entry["n"] = len(self.requests) + 1
            self.requests.append(entry)
            fault = self._take_fault(kind)
        if self.latency and kind != "token":
            time.sleep(self.latency)
        if fault is not None:
            entry["status"] = fault
            return fault, quota_body(kind, path) if fault == 429 else _fault(fault)
        if kind not in ("token", "control") and len(body) > PAYLOAD_MAX:
            status, answer = 400, payload_too_large()
        elif kind == "token":
            status, answer = self.issue_token(dict(urllib.parse.parse_qsl(body.decode())))
        elif not self.authorized(authorization):
            status, answer = (
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        else:
            try:
                status, answer = 200, self._route(method, path, query, body)
            except SheetsApiError as exc:
                status, answer = exc.status, exc.body
        loss = self._take_loss(kind, path) if status == 200 and kind != "token" else None
        if loss is not None:
            lost, delay = loss
            entry["status"], entry["lost"] = lost or "dropped", True
            return lost, _fault(lost, delay) if lost else None
        entry["status"] = status
        return status, answer

    def _take_loss(self, kind: str, path: str) -> tuple[int, str | None] | None:
        """The first scripted loss for this request (each is used once): its status and the
        RetryInfo delay to send with it."""
        with self.lock:
            for i, (status, wanted, pattern, delay) in enumerate(self.losses):
                if (wanted is None or wanted == kind) and (pattern is None or pattern.search(path)):
                    del self.losses[i]
                    return status, delay
        return None

    def _take_fault(self, kind: str) -> int | None:
        """The first scripted fault for this kind of request (each is used once)."""
        for i, (status, wanted) in enumerate(self.failures):
            if (wanted is None and kind != "token") or wanted == kind:
                del self.failures[i]
                return status
        return None

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Any:
        if path.startswith("/v1/forms"):
            return self._forms_call(method, path, query, body)
        if not path.startswith("/v4/spreadsheets/"):
            raise SheetsApiError(404, "Requested entity was not found.", "NOT_FOUND")
        # The method, its query parameters and the body's shape, as Google's document says
        # (the deeper checks of what a body asks for are the model's: sheets_model.py).
        check = discovery.check_request("sheets", method, path, query, body)
        if check.method is None:
            raise SheetsApiError(404, "Requested entity was not found.", "NOT_FOUND")
        if check.problems:
            raise SheetsApiError(400, "; ".join(check.problems[:5]))
        data = json.loads(body) if body else {}
        tail = path[len("/v4/spreadsheets/") :]
        key, sep, rest = tail.partition("/")
        if not sep and ":" in key:
            key, rest = key.split(":", 1)
            rest = ":" + rest
        with self.lock:
            sheet = self.spreadsheets.get(urllib.parse.unquote(key))
            if sheet is None:
                raise SheetsApiError(404, "Requested entity was not found.", "NOT_FOUND")
            if sheet.office_file:
                raise not_a_sheet()
            return _sheets_call(sheet, method, rest, query, data)

    def _forms_call(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Any:
        """A Forms v1 request, checked against the discovery document before it is served."""
        check = discovery.check_request("forms", method, path, query, body)
        if check.method is None:
            raise SheetsApiError(404, "Requested entity was not found.", "NOT_FOUND")
        if check.problems:
            raise SheetsApiError(400, "; ".join(check.problems[:5]))
        with self.lock:
            form = self.forms.get(check.path_params.get("formId", ""))
            if form is None:
                raise SheetsApiError(404, "Requested entity was not found.", "NOT_FOUND")
            if check.method.id == "forms.forms.responses.list":
                answer: Any = form.list(query)
            elif check.method.id == "forms.forms.get":
                answer = form.get()
            elif check.method.id == "forms.forms.responses.get":
                answer = form.response(check.path_params["responseId"])
                if answer is None:
                    raise SheetsApiError(404, "Requested entity was not found.", "NOT_FOUND")
            else:
                raise SheetsApiError(501, f"{check.method.id} is not emulated", "UNIMPLEMENTED")
        fields = query.get("fields", [""])[0]
        if fields:
            if isinstance(answer, forms_model.RawJson):
                answer = json.loads(answer)
            answer = discovery.select(answer, fields)
        return answer

    # --- running -----------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected in timeout tests; not an error.
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)


# What Google answers with each HTTP status: google.rpc.Code's word and the message its
# front end gives (https://cloud.google.com/apis/design/errors#handling_errors). A fault
# scripted with a status Google never answers in JSON gets :data:`UNKNOWN_FAULT`.
FAULTS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    500: ("INTERNAL", "Internal error encountered."),
    501: ("UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
UNKNOWN_FAULT = ("UNKNOWN", "Unknown error.")
# The largest request body Google takes: a larger one is refused whole, whatever the method
# (recorded: 400 "Request payload size exceeds the limit: 10485760 bytes.", with the legacy
# errors[] entry; SCRT-HQ/PSGSuite#62, jlolling/talendcomp_tGoogleSheet#1).
PAYLOAD_MAX = 10_485_760


def not_a_sheet() -> SheetsApiError:
    """Google's answer to any Sheets call on a Drive file that is no Google Sheets
    spreadsheet (an .xlsx opened in the Sheets editor): recorded in burnash/gspread#732 and
    googleworkspace/php-samples#65."""
    message = "This operation is not supported for this document"
    refused = SheetsApiError(400, message, "FAILED_PRECONDITION")
    refused.body["error"]["errors"] = [
        {"message": message, "domain": "global", "reason": "failedPrecondition"}
    ]
    return refused


def payload_too_large() -> dict[str, Any]:
    """Google's answer (HTTP 400) to a body over :data:`PAYLOAD_MAX` bytes."""
    message = f"Request payload size exceeds the limit: {PAYLOAD_MAX} bytes."
    return {
        "error": {
            "code": 400,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
            "status": "INVALID_ARGUMENT",
        }
    }


class RawHtml(bytes):
    """An answer body that is an HTML page (the handler sends it as ``text/html``)."""


# What Google's front end answers with a 502 (the API behind it sent nothing it could pass
# on: google.rpc has no 502), in place of any JSON: its own error page.
FRONT_END_PAGES = {
    502: (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server "
        "Error)!!1</title>\n  <p><b>502.</b> <ins>That’s an error.</ins>\n  <p>The server "
        "encountered a temporary error and could not complete your request.<p>Please try "
        "again in 30 seconds.  <ins>That’s all we know.</ins>\n"
    )
}


def _fault(status: int, retry_delay: str | None = None) -> dict[str, Any] | RawHtml:
    """A scripted fault's body: the front end's page (:data:`FRONT_END_PAGES`), else
    Google's JSON error (:func:`_unavailable`)."""
    page = FRONT_END_PAGES.get(status)
    return RawHtml(page.encode("utf-8")) if page is not None else _unavailable(status, retry_delay)


def _unavailable(status: int, retry_delay: str | None = None) -> dict[str, Any]:
    """Google's error body for a scripted fault of ``status`` (:data:`FAULTS`), with a
    ``google.rpc.RetryInfo`` asking to wait ``retry_delay`` if given."""
    word, message = FAULTS.get(status, UNKNOWN_FAULT)
    error: dict[str, Any] = {"code": status, "message": message, "status": word}
    if retry_delay is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        ]
    return {"error": error}


def _trim(line: list[Any]) -> list[Any]:
    while line and line[-1] is None:
        line.pop()
    return line


def _kind(method: str, path: str) -> str:
    if path == "/token":
        return "token"
    if path.startswith("/_fake/"):
        return "control"
    if path.startswith("/v1/forms/"):
        return "forms_read"
    return "sheets_read" if method == "GET" else "sheets_write"


def _sheets_call(
    sheet: model.Spreadsheet,
    method: str,
    rest: str,
    query: dict[str, list[str]],
    data: dict[str, Any],
) -> Any:
    value_option = query.get("valueRenderOption", ["FORMATTED_VALUE"])[0]
    date_option = query.get("dateTimeRenderOption", ["SERIAL_NUMBER"])[0]
    if rest == "" and method == "GET":
        fields = query.get("fields", [None])[0]
        grid = query.get("includeGridData", ["false"])[0] == "true"
        return sheet.metadata(fields or None, query.get("ranges"), grid)
    if rest == ":batchUpdate" and method == "POST":
        replies = model.batch_update(sheet, list(data.get("requests", [])))
        return {"spreadsheetId": sheet.spreadsheet_id, "replies": replies}
    if rest == "values:batchGet" and method == "GET":
        return {
            "spreadsheetId": sheet.spreadsheet_id,
            "valueRanges": [
                model.read(sheet, r, value_option, date_option) for r in query.get("ranges", [])
            ],
        }
    if rest == "values:batchUpdate" and method == "POST":
        problems = discovery.validate(data, "BatchUpdateValuesRequest")
        if problems:
            raise SheetsApiError(400, "Invalid JSON payload received. " + "; ".join(problems[:5]))
        option = data.get("valueInputOption") or ""
        plans = [
            model.write(sheet, item["range"], item.get("values", []), option)
            for item in data.get("data", [])
        ]  # all validated before any is applied
        done = [model.apply_write(sheet, plan) for plan in plans]
        return {
            "spreadsheetId": sheet.spreadsheet_id,
            "totalUpdatedRows": sum(d["updatedRows"] for d in done),
            "totalUpdatedColumns": max((d["updatedColumns"] for d in done), default=0),
            "totalUpdatedCells": sum(d["updatedCells"] for d in done),
            "totalUpdatedSheets": len({p["box"].tab.sheet_id for p in plans}),
            "responses": done,
        }
    if rest == "values:batchClear" and method == "POST":
        cleared = [model.clear(sheet, r) for r in data.get("ranges", [])]
        return {"spreadsheetId": sheet.spreadsheet_id, "clearedRanges": cleared}
    if rest.startswith("values/"):
        target = urllib.parse.unquote(rest[len("values/") :])
        if method == "POST" and target.endswith(":clear"):
            return {
                "spreadsheetId": sheet.spreadsheet_id,
                "clearedRange": model.clear(sheet, target[: -len(":clear")]),
            }
        if method == "GET":
            return model.read(sheet, target, value_option, date_option)
        if method == "PUT":
            option = query.get("valueInputOption", [""])[0]
            plan = model.write(sheet, target, data.get("values", []), option)
            return model.apply_write(sheet, plan)
    raise SheetsApiError(404, "Requested entity was not found.", "NOT_FOUND")


def _handler(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            return

        def _reply(self, status: int, body: Any) -> None:
            raw = isinstance(body, forms_model.RawJson | RawHtml)
            data = bytes(body) if raw else self._encode(body)
            kind = "text/html" if isinstance(body, RawHtml) else "application/json"
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _encode(self, body: Any) -> bytes:
            try:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate in a cell: JSON escapes it (\ud800)
                data = json.dumps(body).encode("ascii")
            return data

        def _handle(self) -> None:
            started = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
            if parts.path.startswith("/_fake/"):
                self._control(parts.path, raw)
                return
            try:
                status, body = fake.handle(
                    self.command, parts.path, query, raw, self.headers.get("Authorization")
                )
            except ValueError:
                status, body = (
                    400,
                    {
                        "error": {
                            "code": 400,
                            "message": "Invalid JSON payload.",
                            "status": "INVALID_ARGUMENT",
                        }
                    },
                )
            if status == 0:  # a scripted loss: the work is done, the answer never arrives
                self.close_connection = True
                return
            self._reply(status, body)
            with fake.lock:  # how long the fake itself took (benchmarks subtract it)
                if fake.requests:
                    fake.requests[-1].setdefault(
                        "server_ms", round((time.perf_counter() - started) * 1000, 1)
                    )

        def _control(self, path: str, raw: bytes) -> None:
            if path == "/_fake/requests" and self.command == "GET":
                self._reply(200, fake.api_requests())
            elif path == "/_fake/requests" and self.command == "DELETE":
                fake.reset_requests()
                self._reply(200, {"cleared": True})
            elif path == "/_fake/fail" and self.command == "POST":
                spec = json.loads(raw or b"{}")
                fake.fail(int(spec.get("count", 1)), int(spec.get("status", 429)), spec.get("kind"))
                self._reply(200, {"scripted": True})
            elif path == "/_fake/lose" and self.command == "POST":
                spec = json.loads(raw or b"{}")
                fake.lose(
                    int(spec.get("count", 1)),
                    spec.get("kind"),
                    path=spec.get("path"),
                    status=int(spec.get("status", 0)),
                )
                self._reply(200, {"scripted": True})
            else:
                self._reply(404, {"error": "unknown control endpoint"})

        do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

    return Handler


# The largest field size the csv module takes on every platform (a C long).
FIELD_LIMIT_MAX = 2**31 - 1


class SeedError(ValueError):
    """A responses CSV that cannot be seeded; the message names the file and the row."""


def seed_from_csv(fake: FakeGoogle, spreadsheet_id: str, title: str, gid: int, path: Path) -> int:
    """Put a Forms CSV export into a tab as Forms would have: timestamps as date-time serials,
    whole numbers as numbers, the rest as text. Returns the number of data rows.

    A timestamp without a zone is read in the spreadsheet's time zone (``--time-zone``):
    Forms writes the export's and the responses sheet's in the form's, so the tab shows the
    time the export does. A cell may be as long as the file (the csv module's limit of
    131,072 characters is raised to the file's length, at most :data:`FIELD_LIMIT_MAX`).
    Raises :class:`SeedError`, naming the file and the row, for a file that is not UTF-8 or
    not CSV."""
    records = _csv_records(path)
    if not records:
        fake.add_tab(spreadsheet_id, title, [], sheet_id=gid)
        return 0
    stamps = TimestampColumn(ZoneInfo(fake.spreadsheets[spreadsheet_id].time_zone))
    stamps.scan(record[0] for record in records[1:] if record)
    rows: list[list[Any]] = [list(records[0])]
    for record in records[1:]:
        row: list[Any] = []
        for i, text in enumerate(record):
            when = _instant(stamps, text) if i == 0 else None
            row.append(when if when is not None else int(text) if text.strip().isdigit() else text)
        rows.append(row)
    fake.add_tab(spreadsheet_id, title, rows, sheet_id=gid)
    return len(rows) - 1


def _csv_records(path: Path) -> list[list[str]]:
    """The records of the CSV file ``path`` (UTF-8, a byte order mark allowed)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        raise SeedError(
            f"{path}: row {row} is not UTF-8 text (byte {exc.start}): save the export as UTF-8"
        ) from None
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(min(len(text), FIELD_LIMIT_MAX))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return list(reader)
    except csv.Error as exc:
        raise SeedError(f"{path}: row {reader.line_num} is not CSV as read ({exc})") from None


def _instant(stamps: TimestampColumn, text: str) -> datetime | None:
    try:
        return stamps.parse(text)
    except TimestampError:
        return None  # kept as text, as a hand-typed cell would be
