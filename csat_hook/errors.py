"""The error tree.

Every error the service raises on purpose derives from :class:`CsatHookError`. Errors that
reach an HTTP client carry the status they map to (``status``) and a stable machine-readable
``code``; the one error handler in :mod:`csat_hook.webhooks` turns them into JSON. Messages
never contain secrets or customer text: they name keys, paths and statuses, not values.
"""

from __future__ import annotations


class CsatHookError(Exception):
    """Base class. ``status`` is the HTTP status this error maps to."""

    status: int = 500
    code: str = "internal_error"
    # Seconds the HTTP answer's Retry-After tells the client to wait before trying again;
    # None: no Retry-After.
    retry_after_header: int | None = None
    # The challenge the HTTP answer's WWW-Authenticate carries (a 401 must have one, RFC 9110
    # 15.5.2): what the client should prove itself with, never a secret. None: no header.
    www_authenticate: str | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        """The JSON body answered to an HTTP client."""
        return {"error": self.code, "reason": self.message}


class ConfigError(CsatHookError):
    """The configuration is invalid; the message names the key and what is wrong."""

    code = "config_error"


class ResultsMissingError(ConfigError):
    """The results export the sync reads is not there yet (a normal state before the first
    download). ``path`` is where it is expected."""

    code = "results_missing"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class SourceConfigError(ConfigError):
    """The results source lacks what the configuration names (a Sheets tab, by
    ``sheet_gid`` or ``sheet_name``; a required column's title in its first row): a
    configuration error (exit 2), but one the source's editors can cause and undo without a
    deploy (a tab deleted and restored, a question renamed and named back, the title row
    deleted or pushed down), so a periodic sync reports it every run and goes on instead of
    stopping."""


class WebhookError(CsatHookError):
    """A webhook request we refuse; subclasses set the status."""

    status = 400
    code = "bad_request"


class BadPayloadError(WebhookError):
    """The body is not what the adapter expects (not JSON, a required field missing...)."""

    status = 400
    code = "bad_payload"


class InvalidSignatureError(WebhookError):
    """The sender could not be verified: bad, missing or stale signature or token.

    ``challenge`` is its ``WWW-Authenticate``: for a webhook, set where the adapter is known
    (:meth:`csat_hook.helpdesks.base.Helpdesk.challenge`), not where the error is raised."""

    status = 401
    code = "unauthorized"

    def __init__(
        self, message: str, *, code: str | None = None, challenge: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.www_authenticate = challenge


class UnknownHelpdeskError(WebhookError):
    """No helpdesk with that name is configured."""

    status = 404
    code = "unknown_helpdesk"


class NoSuchUrlError(WebhookError):
    """A request for a URL no route has (a webhook posted to ``/webhooks/<helpdesk>/``)."""

    status = 404
    code = "not_found"


class PayloadTooLargeError(WebhookError):
    """The body is over ``server.max_body_bytes``."""

    status = 413
    code = "payload_too_large"


class UnsupportedEncodingError(WebhookError):
    """The body is compressed or otherwise encoded (``Content-Encoding``): never decoded, so no
    sender makes a small body inflate past ``server.max_body_bytes``."""

    status = 415
    code = "unsupported_encoding"


class RequestTimeoutError(WebhookError):
    """The sender did not send the whole body within ``server.body_timeout_seconds``."""

    status = 408
    code = "request_timeout"


class ServiceUnavailableError(CsatHookError):
    """A dependency (the database) is down; the sender should retry later.

    The answer says when (``Retry-After``), in under a minute: Zendesk retries a 503 only
    when its Retry-After is below 60 seconds (with none, the webhook is never sent again),
    and vendors that retry anyway take it as a hint.
    """

    status = 503
    code = "unavailable"
    retry_after_header = 30


class SchemaError(CsatHookError):
    """The database's schema revision is not one this release can bring to its newest: a newer
    release upgraded it (the app was rolled back), or the target revision is unknown or behind
    the database. Nothing was changed; the message names both revisions."""

    status = 503
    code = "schema_mismatch"


class DeliveryError(CsatHookError):
    """An outbound call failed.

    ``retryable`` says whether trying again later can help (429, 5xx, timeouts, connection
    errors) or not (other 4xx). ``retry_after`` is the delay in seconds the vendor asked for,
    when it said so. ``http_status`` is the vendor's status, when there was a response.
    ``vendor_reason`` is what the vendor said was wrong (its error codes, field names and short
    messages), already stripped of anything that could be customer text
    (:mod:`csat_hook.helpdesks.reasons`); the message ends with it too.

    ``outcome_unknown`` is True when the request was (or may have been) sent and no answer
    came back (a read timeout, a connection dropped after the request was written), or the
    answer to a write can come after the vendor acted on it (500, a proxy's 502 or timeout).
    The vendor may have acted on it, so it is not a failure: before sending again, find out
    whether it landed. Such an error is always retryable.
    """

    status = 502
    code = "delivery_failed"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        http_status: int | None = None,
        retry_after: float | None = None,
        vendor_reason: str | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable or outcome_unknown
        self.http_status = http_status
        self.retry_after = retry_after
        self.vendor_reason = vendor_reason
        self.outcome_unknown = outcome_unknown

    def reworded(self, message: str, *, retryable: bool | None = None) -> DeliveryError:
        """The same failure under an adapter's clearer ``message``, the vendor's reason kept."""
        if self.vendor_reason:
            message = f"{message}: {self.vendor_reason}"
        return DeliveryError(
            message,
            retryable=self.retryable if retryable is None else retryable,
            http_status=self.http_status,
            retry_after=self.retry_after,
            vendor_reason=self.vendor_reason,
            outcome_unknown=self.outcome_unknown,
        )


class DialogReopenedError(DeliveryError):
    """The helpdesk says the dialog is open again since its close (a customer's answer, an
    agent's reopen) while the reopen's webhook was not seen, read by an adapter right before
    the reply: nothing was posted, and with ``policy.cancel_on_reopen`` nothing will be (the
    reply is cancelled, as a reopen cancels it). Never retryable: the next close surveys the
    dialog anew."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class TokenError(CsatHookError):
    """A survey reference token is malformed, forged or signed with an unknown key."""

    status = 400
    code = "invalid_token"


class SyncError(CsatHookError):
    """The sync could not finish: a source, an output or the database refused.

    Messages name the config key, the tab, the row number or the HTTP status, never cell
    values (they are customer text) nor credentials.
    """

    code = "sync_failed"


class SourceError(SyncError):
    """The results source cannot be read as configured (tab, header or file missing)."""

    code = "source_error"


class GoogleApiError(SyncError):
    """A Google API call failed after the bounded retries.

    ``http_status`` is the HTTP status (None for timeouts and connection errors);
    ``reason`` is Google's status word (``RESOURCE_EXHAUSTED``, ``PERMISSION_DENIED``...).
    """

    code = "google_api_error"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        reason: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.reason = reason
        self.retryable = retryable


class SyncLockedError(SyncError):
    """Another sync holds the lock (overlapping runs are serialised, never run together)."""

    code = "sync_locked"
