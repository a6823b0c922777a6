"""gunicorn's log records, as gunicorn 27.0 writes them, through the redacting filter: the
event and the kind of error stay, nothing the client sent does."""

from __future__ import annotations

import base64
import io
import logging
import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.http.errors import InvalidChunkSize
from gunicorn.http.errors import InvalidHeader
from gunicorn.http.errors import InvalidRequestLine
from gunicorn.http.errors import LimitRequestLine
from gunicorn.http.errors import NoMoreData

from csat_hook.webserver.redact import RedactingLogger
from csat_hook.webserver.redact import RedactRequestData

SECRET = "SECRETTOKEN4242"


def formatted(msg: str, args: tuple[object, ...] = (), exc: BaseException | None = None) -> str:
    exc_info = None
    if exc is not None:
        try:
            raise exc
        except BaseException:
            exc_info = sys.exc_info()
    record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, msg, args, exc_info)
    assert RedactRequestData().filter(record)
    return logging.Formatter("%(message)s").format(record)


@pytest.mark.parametrize(
    ("error", "kept"),
    [
        (
            InvalidRequestLine(f"GET /webhooks/x?token={SECRET}\x00 HTTP/1.1"),
            "Invalid HTTP request line",
        ),
        (InvalidHeader(f"X-Webhook-Token {SECRET}"), "Invalid HTTP Header"),
        (InvalidChunkSize(f'{{"token":"{SECRET}"}}'.encode()), "Invalid chunk size"),
        (LimitRequestLine(9000, 8190), "Request Line is too large (9000 > 8190)"),
    ],
)
def test_invalid_requests_keep_the_kind_of_error_only(error, kept):
    # gunicorn formats this one itself before logging: no args to scrub.
    line = formatted(f"Invalid request from ip=127.0.0.1: {error}")

    assert line.startswith(f"Invalid request from ip=127.0.0.1: {kept}")
    assert SECRET not in line


def test_an_error_escaping_the_app_logs_the_path_and_the_frames_only():
    line = formatted(
        "Error handling request %s %s",
        ("POST", f"/webhooks/generic?token={SECRET}"),
        exc=ValueError(f"bad input: token={SECRET}"),
    )

    assert line.startswith("Error handling request POST /webhooks/generic\n")
    assert "Traceback (most recent call last):" in line and "builtins.ValueError" in line
    assert SECRET not in line


def test_a_premature_disconnection_logs_the_error_type_only():
    line = formatted(
        "Ignored premature client disconnection. %s",
        (NoMoreData(f"POST /x HTTP/1.1\r\nX-Webhook-Token: {SECRET}".encode()),),
    )

    assert line == "Ignored premature client disconnection. NoMoreData"


def test_a_query_string_anywhere_else_is_cut():
    assert formatted(f"something about /webhooks/x?token={SECRET} happened") == (
        "something about /webhooks/x?[redacted] happened"
    )


def access_line(
    log_format: str, status: str, headers: list[tuple[str, str]], environ: dict[str, str]
) -> str:
    """The access-log line gunicorn writes through :class:`RedactingLogger` for one request."""
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", log_format)
    logger = RedactingLogger(cfg)
    stream = io.StringIO()
    # gunicorn's own handler: pytest adds its capture handlers to a logger that is not
    # propagating when a test starts (once a gunicorn Logger was made, this one).
    [handler] = [h for h in logger.access_log.handlers if getattr(h, "_gunicorn", False)]
    handler.stream = stream

    response = SimpleNamespace(status=status, sent=10, headers=[])
    logger.access(response, SimpleNamespace(headers=headers), environ, timedelta(seconds=0.01))
    return stream.getvalue()


def test_the_access_log_has_no_query_header_or_environ_atoms():
    headers = [("X-WEBHOOK-TOKEN", SECRET), ("REFERER", f"https://x/?token={SECRET}")]
    basic = base64.b64encode(f"{SECRET}:password".encode()).decode()  # Freshdesk's webhook
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/webhooks/generic?token={SECRET}",
        "PATH_INFO": "/webhooks/generic",
        "QUERY_STRING": f"token={SECRET}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": f"https://x/?token={SECRET}",
        "HTTP_AUTHORIZATION": f"Basic {basic}",
        "HTTP_USER_AGENT": f"agent/{SECRET}",
    }
    headers.append(("USER-AGENT", f"agent/{SECRET}"))
    line = access_line(
        "%(r)s %(q)s %(f)s %(U)s %({x-webhook-token}i)s %({query_string}e)s %({raw_uri}e)s %(u)s"
        " %(a)s",
        "200 OK",
        headers,
        environ,
    )
    assert line.startswith("POST /webhooks/generic HTTP/1.1 - - /webhooks/generic")
    assert SECRET not in line


def test_the_workers_own_refusal_lines_are_kept_whole():
    # BufferedThreadWorker.handle_error logs the exception's class and a fixed reason.
    line = formatted(
        "Invalid request from ip=%s: %s (%s)",
        ("10.0.0.1", "UnsupportedTransferCoding", "a Transfer-Encoding other than chunked"),
    )

    assert line == (
        "Invalid request from ip=10.0.0.1: UnsupportedTransferCoding "
        "(a Transfer-Encoding other than chunked)"
    )
    # The same shape with quoted client bytes in the parentheses is still redacted.
    assert SECRET not in formatted("Invalid request from ip=%s: %s", ("1.2.3.4", f"X ('{SECRET}')"))


REFERENCE = "MXxnZW5lcmljfEQtMXw3fHRvc3VvMHx0ODJt.dNV7EsUP8kuisFco"


@pytest.mark.parametrize(
    "uri",
    [
        f"/s/{REFERENCE}",
        f"/s/{REFERENCE}/4?utm=x",
        f"/csat/s/{REFERENCE}/4",  # public_base_url with a path, kept by the proxy
        f"/s//{REFERENCE}",
        f"/s%2F{REFERENCE}/4",  # decoded by the server before the route is matched
        f"/%73/{REFERENCE}",
        f"/S/{REFERENCE}",  # refused by the app, but the reference is in it
        f"/%53/{REFERENCE}",
        f"/%53%2f{REFERENCE}",
    ],
)
def test_an_error_on_a_short_link_keeps_no_reference(uri):
    # A short link's path is the survey's reference: whoever reads the line could open the
    # customer's form and answer as them (the app's own handler never logs that path).
    line = formatted("Error handling request %s %s", ("GET", uri), exc=ValueError("x"))

    assert line.startswith("Error handling request GET /")
    assert "/s/[reference redacted]" in line
    assert REFERENCE not in line


def test_the_access_log_of_a_short_link_keeps_no_reference():
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/s/{REFERENCE}/4",
        "PATH_INFO": f"/s/{REFERENCE}/4",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    line = access_line("%(r)s %(U)s %(s)s", "302 FOUND", [], environ)
    assert "GET /s/[reference redacted] HTTP/1.1 /s/[reference redacted] 302" in line, line
    assert REFERENCE not in line


@pytest.mark.parametrize("uri", [f"/s/{REFERENCE}", f"/s%2F{REFERENCE}/4", f"/S/{REFERENCE}"])
def test_the_debug_line_of_each_request_keeps_no_reference(uri):
    # gunicorn's default pre_request hook logs every request's method and path at DEBUG
    # (--log-level debug, or GUNICORN_CMD_ARGS): a short link's path is the reference.
    line = formatted("%s %s", ("GET", uri))

    assert line == "GET /s/[reference redacted]"
    assert formatted("%s %s", ("POST", "/webhooks/generic")) == "POST /webhooks/generic"


@pytest.mark.parametrize(
    ("uri", "kept"),
    [
        (f"/webhooks/generic&token={SECRET}", "/webhooks/[path redacted]"),
        (f"/webhooks/generic;token={SECRET}", "/webhooks/[path redacted]"),
        (f"/webhooks/generic%3Ftoken={SECRET}", "/webhooks/[path redacted]"),
        (f"/webhooks/generic/{SECRET}", "/webhooks/generic/[path redacted]"),
        (f"/healthz&{SECRET}", "/[path redacted]"),
        (f"webhooks/generic?token={SECRET}", "[path redacted]"),
        (f"/csat/webhooks/{SECRET}/s/{REFERENCE}", "/csat/webhooks/[path redacted]/s/[ref"),
        ("/webhooks/generic", "/webhooks/generic"),
        ("/api/outbox", "/api/outbox"),
        ("/", "/"),
    ],
)
def test_a_path_is_kept_only_as_far_as_it_has_the_shape_of_a_route(uri, kept):
    # A token typed after "&" instead of "?", or pasted as a path segment, is in the path.
    for line in (
        formatted("Error handling request %s %s", ("POST", uri), exc=ValueError("x")),
        formatted("Error handling request %s", (uri,), exc=ValueError("x")),
        formatted("%s %s", ("POST", uri)),
    ):
        assert kept in line
        assert SECRET not in line and REFERENCE not in line


def test_a_method_other_than_the_standard_ones_is_not_repeated():
    # gunicorn passes on any upper-case token as the method.
    assert formatted("%s %s", (f"X{SECRET}", "/healthz")) == "[method redacted] /healthz"
    line = formatted("Error handling request %s %s", (SECRET, "/"), exc=ValueError("x"))
    assert line.startswith("Error handling request [method redacted] /\n")
    environ = {"REQUEST_METHOD": SECRET, "RAW_URI": f"/webhooks/x&t={SECRET}", "PATH_INFO": "/"}
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    assert SECRET not in access_line("%(m)s %(r)s %(U)s", "405 METHOD NOT ALLOWED", [], environ)


def test_the_configuration_printed_at_debug_keeps_no_environment_value():
    # The master prints every setting at DEBUG; raw_env (-e NAME=VALUE) is how gunicorn is
    # handed environment variables, csat-hook's secrets among them (${VAR} in the config).
    cfg = Config()
    cfg.set("raw_env", [f"CSAT_TOKEN_SECRET={SECRET}", "PLAIN=1"])
    cfg.set("raw_paste_global_conf", [f"token={SECRET}"])
    dump = "Current configuration:\n" + "\n".join(
        f"  {name}: {setting.value}" for name, setting in sorted(cfg.settings.items())
    )

    line = formatted(dump)

    assert SECRET not in line
    assert "  raw_env: ['CSAT_TOKEN_SECRET=[redacted]', 'PLAIN=[redacted]']" in line
    assert "  threads: 1" in line and "  limit_request_line: 4094" in line


PASTED = "sk_live_Customer-Jane-hunter2"  # a route-shaped segment: unreserved characters


@pytest.mark.parametrize(
    "uri",
    [
        f"/webhooks/{PASTED}?x=1",
        f"/webhook/{PASTED}",
        f"/Webhooks/{PASTED}",
        f"/webhooks/{PASTED}/s/{REFERENCE}",
    ],
)
def test_a_webhook_url_of_no_configured_helpdesk_keeps_no_name(uri):
    # The app logs a name no helpdesk is configured by as its length only: it is the
    # sender's text (/webhooks/<a secret pasted in the wrong place>). gunicorn's access log,
    # its DEBUG line of each request and its "Error handling request" line printed it whole.
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", "%(r)s %(U)s")
    logger = RedactingLogger(cfg)
    logger.service_helpdesks = frozenset({"generic"})
    logger.setup(cfg)
    stream = io.StringIO()
    [handler] = [h for h in logger.access_log.handlers if getattr(h, "_gunicorn", False)]
    handler.stream = stream
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": uri,
        "PATH_INFO": uri.partition("?")[0],
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    response = SimpleNamespace(status="404 NOT FOUND", sent=10, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(seconds=0.01))
    [error_filter] = [f for f in logger.error_log.filters if isinstance(f, RedactRequestData)]

    lines = [stream.getvalue()]
    for msg, args in [
        ("%s %s", ("POST", uri)),
        ("Error handling request %s %s", ("POST", uri)),
        ("Error handling request %s", (uri,)),
    ]:
        record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, msg, args, None)
        assert error_filter.filter(record)
        lines.append(record.getMessage())

    for line in lines:
        assert PASTED not in line and REFERENCE not in line, line
        assert "/[path redacted]" in line, line
    # A configured helpdesk's URL is kept as it is.
    record = logging.LogRecord(
        "gunicorn.error", logging.DEBUG, __file__, 1, "%s %s", ("POST", "/webhooks/generic"), None
    )
    assert error_filter.filter(record)
    assert record.getMessage() == "POST /webhooks/generic"


def test_the_access_log_keeps_no_redirect_target():
    # A short link's answer is a 302 to the customer's pre-filled form, whose URL carries the
    # survey's token (whoever has it can answer as the customer) and the agent's name.
    # Response header atoms were kept, a query cut by the filter but not a fragment: an
    # access format naming %({location}o)s printed them on every click.
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", "%(s)s %({location}o)s %({content-type}o)s")
    logger = RedactingLogger(cfg)
    stream = io.StringIO()
    [handler] = [h for h in logger.access_log.handlers if getattr(h, "_gunicorn", False)]
    handler.stream = stream
    # A template form's link may carry them in its fragment (survey.form.url_template).
    target = f"https://example.typeform.com/to/AbCdEf#agent=Anna&ref={REFERENCE}"
    headers = [("Location", target), ("Content-Type", "text/html; charset=utf-8")]
    response = SimpleNamespace(status="302 FOUND", sent=10, headers=headers)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/s/x",
        "PATH_INFO": "/s/x",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(seconds=0.01))

    line = stream.getvalue()
    assert REFERENCE not in line and "Anna" not in line, line
    assert line.startswith("302 - text/html; charset=utf-8"), line
