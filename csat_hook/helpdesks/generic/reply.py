"""Posting through a ``generic`` helpdesk: the reply request, and the note request (an alert,
for the team), which has the same shape.

The request is a template (:mod:`~csat_hook.helpdesks.generic.templates`) filled with the
reply's or the note's values. A 2xx answer may still be an error (``error_path``);
``error_reason`` reads the vendor's reason from an error answer, cleaned of customer text
before it reaches ``last_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import created_message
from csat_hook.helpdesks.calls import response_json
from csat_hook.helpdesks.generic.templates import RequestOptions
from csat_hook.helpdesks.generic.templates import render
from csat_hook.helpdesks.generic.templates import rendered_parts
from csat_hook.helpdesks.generic.templates import require_jmespath
from csat_hook.helpdesks.generic.templates import search_or_none
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import as_items
from csat_hook.helpdesks.reasons import explainer
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.signing import header_name
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.helpdesks.transport import vendor_reason


class ReplyRequestOptions(RequestOptions):
    """The HTTP request that posts the reply. Placeholders: ``{text}``, ``{dialog_id}``...

    ``headers`` and ``query`` values are treated as secrets (masked by check-config).
    """

    method: Literal["POST", "PUT", "PATCH"] = "POST"
    url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    query: dict[str, SecretStr] = Field(default_factory=dict)
    body: Any = Field(default_factory=lambda: {"dialog_id": "{dialog_id}", "text": "{text}"})
    encoding: Literal["json", "form"] = "json"
    idempotency_header: str | None = "Idempotency-Key"
    message_id: str | None = "id"
    # Whether every 2xx answer of this API carries the created message's id (``message_id``):
    # then a 2xx without it (a proxy's or captive portal's page) is not taken for "sent" but
    # for an unknown outcome, looked for before the reply is posted again. Off by default: a
    # generic endpoint may rightly answer 204, or a body without the id.
    require_message_id: bool = False
    error_path: str | None = None
    # JMESPath into an error answer for the vendor's reason, e.g. "errors[].message" or
    # "error.code"; strings, numbers, or objects with code/field/message. Cleaned of customer
    # text (csat_hook.helpdesks.reasons) before it reaches last_error.
    error_reason: str | None = None

    _idempotency_header = field_validator("idempotency_header")(header_name)

    @model_validator(mode="after")
    def _flat_form(self) -> ReplyRequestOptions:
        """A form body is fields of single values: ``requests`` sent a text body as written
        (a reply text holding ``&dialog=9`` added a field) and a nested object as its keys."""
        if self.encoding != "form":
            return self
        if not isinstance(self.body, dict):
            raise ValueError(
                "body: with encoding form, write the fields as an object "
                '({"dialog": "{dialog_id}", "text": "{text}"}): each value is then escaped'
            )
        for key, value in self.body.items():
            if isinstance(value, dict | list):
                raise ValueError(
                    f"body.{key}: a form field holds one text or number, not "
                    f"{'an object' if isinstance(value, dict) else 'a list'} "
                    "(use encoding json for nested bodies)"
                )
            if value is None or isinstance(value, bool):
                # requests writes a boolean as Python spells it ("private=False", a non-empty
                # text most form readers take for true; YAML's yes/no/on/off are booleans
                # too) and leaves a null field out.
                said = "null" if value is None else str(value).lower()
                raise ValueError(
                    f"body.{key}: {said} has no one spelling in a form; write the text the "
                    'API reads, quoted ("false", "0", or "" for an empty field)'
                )
        return self

    @model_validator(mode="after")
    def _id_to_require(self) -> ReplyRequestOptions:
        if self.require_message_id and not self.message_id:
            raise ValueError(
                "require_message_id: set message_id too (where a 2xx answer holds the "
                "created message's id)"
            )
        return self

    @field_validator("message_id", "error_path", "error_reason")
    @classmethod
    def _jmespath(cls, value: str | None) -> str | None:
        if value is not None:
            require_jmespath(value)
        return value


def send(
    http: HttpClient,
    name: str,
    spec: ReplyRequestOptions,
    values: Mapping[str, str],
    idempotency_key: str,
    sent: Reply | Note,
) -> SendResult:
    """Post ``sent`` (a reply or a note) with ``spec`` filled with ``values``; the posted
    message's id when ``message_id`` finds one. DeliveryError as the HTTP client classifies
    it, permanent for a 2xx answer that ``error_path`` calls an error, and an unknown outcome
    for a 2xx without the id when ``require_message_id`` says the API always gives one."""
    url, headers, params = rendered_parts(spec, values)
    if spec.idempotency_header:
        headers.setdefault(spec.idempotency_header, idempotency_key)
    body = render(spec.body, values)
    kwargs: dict[str, Any] = {"json": body} if spec.encoding == "json" else {"data": body}
    explain = None
    if spec.error_reason:
        explain = explainer(lambda body: _reason_items(spec.error_reason, body), sent)
    response = http.request(
        spec.method, url, headers=headers, params=params, explain=explain, **kwargs
    )
    answer = response_json(response)
    # The request was answered 2xx: an expression that cannot read the answer (a function
    # refusing its types) must not raise, which reads as an unknown outcome (posted again).
    if spec.error_path and answer is not None and search_or_none(spec.error_path, answer):
        reason = vendor_reason(explain, response)
        message = f"{name}: the API answered 2xx with an error ({spec.error_path})"
        raise DeliveryError(
            f"{message}: {reason}" if reason else message,
            retryable=False,
            http_status=response.status_code,
            vendor_reason=reason,
        )
    message_id = search_or_none(spec.message_id, answer) if spec.message_id else None
    if spec.require_message_id:
        return created_message(response, as_text(message_id))
    return SendResult(external_id=as_text(message_id))


def _reason_items(expression: str | None, body: Any) -> list[ErrorItem]:
    """What ``reply.error_reason`` selects in an error answer, as items."""
    found = search_or_none(expression, body) if expression else None
    return as_items(found, _reason_item)


def _reason_item(value: Any) -> ErrorItem | None:
    if isinstance(value, Mapping):
        return ErrorItem(
            code=value.get("code"), field=value.get("field"), message=value.get("message")
        )
    if isinstance(value, str | int) and not isinstance(value, bool):
        return ErrorItem(message=value)
    return None
