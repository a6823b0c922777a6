"""The Forms v1 state the fake serves: forms, their questions and their responses.

``forms.get`` and ``forms.responses.list`` as Google documents them
(https://developers.google.com/workspace/forms/api/reference/rest/v1/forms.responses/list):

* ``pageSize``: the most to return, and "the service may return fewer" (:attr:`Form.page_cap`
  makes it so); unspecified or 0 → at most 5000; negative → 400;
* ``pageToken``: opaque; valid only with the same form and filter (else 400); the page after
  the last response returned (a keyset, so responses added or edited while a client pages
  neither shift nor hide the ones it has not seen yet); ``nextPageToken`` is absent on the
  last page, and so is ``responses`` on an empty one;
* ``filter``: exactly ``timestamp > N`` or ``timestamp >= N`` with N in RFC3339 UTC "Zulu"
  (``2014-10-02T15:01:23Z``, up to nine fraction digits); anything else is a 400. Google says
  "responses submitted after N" without naming the field: this fake compares
  ``lastSubmittedTime`` (:attr:`Form.filter_field` switches to ``createTime`` to test a client
  against the other reading).

Google does not document the order of a list; this fake returns the oldest
``lastSubmittedTime`` first (ties by responseId). Responses are kept sorted once per change
and each is JSON-encoded once, so a page costs a bisect and a slice even at 1,000,000.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from csat_hook.devtools import discovery
from csat_hook.devtools.sheets_model import SheetsApiError

MAX_PAGE = 5000
_FILTER = re.compile(
    r"timestamp\s*(>=|>)\s*"
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z"
)
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z")


class RawJson(bytes):
    """An answer body already encoded as JSON (the handler sends it as it is)."""


def instant_key(stamp: str) -> str:
    """An RFC3339 Zulu time as a fixed-width string that sorts as the instants do
    (``…:00Z`` and ``…:00.5Z`` do not sort as text)."""
    found = _STAMP.fullmatch(stamp)
    if found is None:
        raise ValueError(f"not an RFC3339 UTC time: {stamp!r}")
    return f"{found.group(1)}.{(found.group(2) or '').ljust(9, '0')}"


def parse_filter(text: str) -> tuple[str, str]:
    """(operator, instant key) of a documented filter; SheetsApiError 400 otherwise."""
    found = _FILTER.fullmatch(text.strip())
    if found is None:
        raise SheetsApiError(
            400,
            f"Invalid filter: {text!r}. Supported: 'timestamp > N' and 'timestamp >= N' with "
            "N in RFC3339 UTC (Zulu) format.",
        )
    return found.group(1), f"{found.group(2)}.{(found.group(3) or '').ljust(9, '0')}"


def question(question_id: str, title: str, *, choices: list[str] | None = None) -> dict[str, Any]:
    """A form item holding one question (a radio choice, else a short text), as forms.get
    returns it."""
    kind: dict[str, Any] = (
        {"choiceQuestion": {"type": "RADIO", "options": [{"value": c} for c in choices]}}
        if choices
        else {"textQuestion": {"paragraph": False}}
    )
    return {
        "itemId": f"{question_id}0",
        "title": title,
        "questionItem": {"question": {"questionId": question_id, "required": False, **kind}},
    }


@dataclass
class Form:
    """One form: its items (questions) and responses (kept JSON-encoded, by responseId)."""

    form_id: str
    title: str = "CSAT survey"
    items: list[dict[str, Any]] = field(default_factory=list)
    filter_field: str = "lastSubmittedTime"  # or "createTime"
    page_cap: int = MAX_PAGE  # the most one page holds, whatever pageSize asks
    _encoded: dict[str, bytes] = field(default_factory=dict)
    _stamps: dict[str, tuple[str, str]] = field(default_factory=dict)  # (created, last) keys
    _order: list[tuple[str, str]] = field(default_factory=list)  # (instant key, responseId)
    _removed: set[tuple[str, str]] = field(default_factory=set)  # in _order, to be dropped
    _mended: bool = True  # _order is sorted and holds no removed key
    _ordered_by: str = "lastSubmittedTime"  # the field _order is keyed by

    def put(self, response: dict[str, Any], *, check: bool = True) -> None:
        """Add a response, or replace the one with its responseId (an edit: the respondent
        submitted again, so ``lastSubmittedTime`` moved). ``check`` validates it against
        the FormResponse schema (off for bulk seeding, which checks a sample)."""
        if check:
            problems = discovery.validate(response, "FormResponse", api="forms")
            if problems:
                raise ValueError("not a FormResponse: " + "; ".join(problems[:3]))
        response_id = response["responseId"]
        stamps = (instant_key(response["createTime"]), instant_key(response["lastSubmittedTime"]))
        last = self.filter_field == "lastSubmittedTime"
        # The order is mended on the next list (:meth:`settle`): keys come and go here, so
        # seeding 1,000,000 responses or editing a few among them never sorts per put.
        before = self._stamps.get(response_id)
        key = (stamps[last], response_id)
        old = (before[last], response_id) if before is not None else None
        if key != old:
            if old is not None:
                self._removed.add(old)
                self._mended = False
            if key in self._removed:
                self._removed.discard(key)  # its entry is still in the list: it stays
            else:
                if self._order and self._order[-1] > key:
                    self._mended = False
                self._order.append(key)
        self._stamps[response_id] = stamps
        # Encoded once: a list answers with slices of these (formId is not in a list's).
        try:
            encoded = json.dumps(response, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: JSON escapes it (\ud800), as Google may
            encoded = json.dumps(response).encode("ascii")
        self._encoded[response_id] = encoded

    def delete(self, response_id: str) -> bool:
        """Delete a response, as the form's owner does in the Responses tab (the API has no
        method for it): it is no longer listed, with or without a filter, nor got. False:
        no such response."""
        stamps = self._stamps.pop(response_id, None)
        if stamps is None:
            return False
        del self._encoded[response_id]
        self._removed.add((stamps[self.filter_field == "lastSubmittedTime"], response_id))
        self._mended = False
        return True

    def response(self, response_id: str) -> dict[str, Any] | None:
        """forms.responses.get (None: no such response)."""
        encoded = self._encoded.get(response_id)
        return None if encoded is None else {"formId": self.form_id, **json.loads(encoded)}

    def __len__(self) -> int:
        return len(self._encoded)

    def get(self) -> dict[str, Any]:
        """forms.get: the form, its items and the link respondents use."""
        return {
            "formId": self.form_id,
            "info": {"title": self.title, "documentTitle": self.title},
            "revisionId": f"r{len(self.items)}",
            "responderUri": f"https://docs.google.com/forms/d/e/{self.form_id}/viewform",
            "items": self.items,
        }

    def settle(self) -> list[tuple[str, str]]:
        """The keys in order: re-keyed when ``filter_field`` changed, else mended (removed
        keys dropped, one sort: Timsort takes a sorted list plus a few appended keys in
        near-linear time). Seeding calls it once so the first list does not pay for it."""
        if self._ordered_by != self.filter_field:
            last = self.filter_field == "lastSubmittedTime"
            self._order = sorted((stamps[last], rid) for rid, stamps in self._stamps.items())
            self._ordered_by, self._removed, self._mended = self.filter_field, set(), True
        elif not self._mended:
            if self._removed:
                removed = self._removed
                self._order = [key for key in self._order if key not in removed]
                self._removed = set()
            self._order.sort()
            self._mended = True
        return self._order

    def list(self, query: dict[str, list[str]]) -> RawJson:
        """forms.responses.list (the query already checked against the discovery document)."""
        text = query.get("filter", [""])[0]
        size = int(query.get("pageSize", ["0"])[0] or 0)
        if size < 0:
            raise SheetsApiError(400, "page_size must not be negative")
        size = min(size or MAX_PAGE, MAX_PAGE, self.page_cap)
        keys = self.settle()
        if text:
            op, stamp = parse_filter(text)
            # ">=": the first key at or after stamp; ">": the first after every key at stamp.
            start = bisect.bisect_left(keys, (stamp, "") if op == ">=" else (stamp, "\U0010ffff"))
        else:
            start = 0
        token = query.get("pageToken", [""])[0]
        if token:
            start = max(start, bisect.bisect_right(keys, self._resume(token, text)))
        page = keys[start : start + size]
        parts = [b"{"]
        if page:
            encoded = self._encoded
            parts += [b'"responses":[', b",".join([encoded[rid] for _, rid in page]), b"]"]
        if start + size < len(keys):
            after = json.dumps({"f": self.form_id, "q": text, "k": list(page[-1])})
            parts += [b"," if page else b"", b'"nextPageToken":"', _b64(after.encode()), b'"']
        parts.append(b"}")
        return RawJson(b"".join(parts))

    def _resume(self, token: str, text: str) -> tuple[str, str]:
        try:
            state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            key = (str(state["k"][0]), str(state["k"][1]))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SheetsApiError(400, "Invalid page token.") from exc
        if state.get("f") != self.form_id or state.get("q") != text:
            raise SheetsApiError(
                400, "The form and the filter must be the same as for the original request."
            )
        return key


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
