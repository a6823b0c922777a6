"""The ``requests`` session behind :class:`~csat_hook.helpdesks.transport.HttpClient`.

``Session.request`` costs about half a millisecond of CPU per call before a byte leaves: it
re-reads the proxy and CA environment and looks for a ``.netrc`` file, merges the session's
settings through generic helpers, prepares cookies from an empty jar, and afterwards looks for
redirects a caller told it not to follow. :class:`LeanSession` keeps requests' own building
blocks (``PreparedRequest``'s steps, the host's ``HTTPAdapter.send``, response hooks, cookie
extraction) and skips only work that cannot change the request or the response:

* the environment (``*_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``,
  ``.netrc``) is read once per scheme and host, as requests would read it on that call; the
  environment does not change while the service runs;
* the cookie jar is consulted only when it holds a cookie, and filled only from a response
  that sets one;
* a response is searched for a redirect target only when it is a redirect.

Its http and https adapter is :class:`~csat_hook.helpdesks.deadline.DeadlineAdapter`: every
call, lean or not, is sent and answered within connect plus read timeout from its start, the
request's body, the status line and headers included, or fails as a timeout.

Anything off that path (``allow_redirects`` true, ``files``, ``auth``, ``cookies``,
``proxies``, ``stream``, ``verify``, ``cert``, positional arguments, a ``.netrc`` entry for the
host, a session whose defaults were changed, headers or params that are not dicts) goes
through ``requests.Session.request`` unchanged, so the result is always what requests sends.
"""

from __future__ import annotations

import importlib.util
import os
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import requests
from requests.cookies import RequestsCookieJar
from requests.cookies import extract_cookies_to_jar
from requests.hooks import dispatch_hook
from requests.sessions import merge_setting
from requests.sessions import preferred_clock
from requests.structures import CaseInsensitiveDict
from requests.utils import get_netrc_auth

from csat_hook.helpdesks.deadline import DeadlineAdapter

# Keyword arguments the lean path handles; any other sends the call through requests' own.
_LEAN_KWARGS = frozenset({"params", "data", "headers", "json", "hooks", "timeout"})


def socks_proxies_without_pysocks(environ: Mapping[str, str] | None = None) -> list[str]:
    """The environment variables (of ``environ``, else the process's) that give requests a
    SOCKS proxy (``socks5://``, ``socks5h://``, ``socks4://``, ``socks4a://``) when PySocks
    is not installed: every request through one then fails before it is sent (requests'
    InvalidSchema). Empty when PySocks is installed (a dependency: ``requests[socks]``).
    Of ``http_proxy``, ``https_proxy`` and ``all_proxy``, the lower-case name is read when
    set, as urllib reads them (else the upper-case one)."""
    if importlib.util.find_spec("socks") is not None:
        return []
    env = os.environ if environ is None else environ
    found: list[str] = []
    for lower in ("http_proxy", "https_proxy", "all_proxy"):
        name = lower if lower in env else lower.upper()
        if env.get(name, "").strip().lower().startswith("socks"):
            found.append(name)
    return found


class LeanSession(requests.Session):
    """A ``requests.Session`` whose ``request`` skips per-call work a reply does not need.

    Contract: for the calls it takes (see the module docstring), the request the adapter
    sends (method, URL, headers, body, proxies, TLS settings, timeout) and the response the
    caller gets (content read, hooks applied, cookies kept) are those of
    ``requests.Session.request``; every other call is ``requests.Session.request``.
    """

    def __init__(self) -> None:
        super().__init__()
        # Every exchange within connect plus read timeout from its start, headers included.
        self.mount("https://", DeadlineAdapter())
        self.mount("http://", DeadlineAdapter())
        # scheme://netloc -> (adapter send settings, whether .netrc has auth for the host)
        self._host_settings: dict[str, tuple[dict[str, Any], bool]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        """requests' merge, with the environment's part read once per scheme and host."""
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        return dict(self._settings_for(url)[0])

    def _settings_for(self, url: str) -> tuple[dict[str, Any], bool]:
        parts = urllib.parse.urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        cached = self._host_settings.get(key)
        if cached is None:
            settings = dict(super().merge_environment_settings(url, {}, None, None, None))
            netrc = bool(self.trust_env and get_netrc_auth(url))
            cached = self._host_settings[key] = (settings, netrc)
        return cached

    def _is_plain(self) -> bool:
        # The session's defaults as requests.Session() sets them (HttpClient adds only the
        # User-Agent header); a changed default sends calls through requests' own path.
        return (
            self.trust_env
            and not self.cookies
            and self.auth is None
            and not self.params
            and not self.proxies
            and self.stream is False
            and self.verify is True
            and self.cert is None
            and self.hooks == {"response": []}
        )

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send one request; see the class contract for when requests' own path runs."""
        headers = kwargs.get("headers")
        params = kwargs.get("params")
        if (
            args
            or kwargs.get("allow_redirects", True)
            or not _LEAN_KWARGS.issuperset(k for k in kwargs if k != "allow_redirects")
            or not isinstance(url, str)
            or not (headers is None or isinstance(headers, dict))
            or not (params is None or isinstance(params, dict))
            or not self._is_plain()
        ):
            return super().request(method, url, *args, **kwargs)
        settings, netrc = self._settings_for(url)
        if netrc:
            return super().request(method, url, **kwargs)
        return self._send_lean(method, url, settings, kwargs)

    def _send_lean(
        self, method: str, url: str, settings: dict[str, Any], kwargs: dict[str, Any]
    ) -> requests.Response:
        # PreparedRequest.prepare's steps, in its order, on what Session.prepare_request
        # would hand it: session headers overridden by the call's (None removes one),
        # no cookies (the jar is empty), auth only from the URL (no .netrc entry).
        headers: dict[str, Any] | None = kwargs.get("headers")
        merged = CaseInsensitiveDict(self.headers)
        if headers:
            merged.update(headers)
        for name in [name for name, value in merged.items() if value is None]:
            del merged[name]
        params = kwargs.get("params")
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.prepare_url(url, _merge(params, self.params) if params else None)
        prepared.prepare_headers(merged)
        # prepare_cookies's jar without its Cookie header pass: an empty jar adds no header.
        prepared._cookies = RequestsCookieJar()  # type: ignore[attr-defined]
        prepared.prepare_body(kwargs.get("data") or {}, None, kwargs.get("json"))
        prepared.prepare_auth(None, url)
        prepared.prepare_hooks(kwargs.get("hooks"))
        # Session.send's steps for allow_redirects=False.
        # A copy of the cached proxies: a hook receives them and could change them.
        send_kwargs = {
            "timeout": kwargs.get("timeout"),
            **settings,
            "proxies": dict(settings["proxies"]),
        }
        adapter = self.get_adapter(url=prepared.url or "")
        start = preferred_clock()
        response = adapter.send(prepared, **send_kwargs)
        response.elapsed = timedelta(seconds=preferred_clock() - start)
        response = dispatch_hook(  # type: ignore[no-untyped-call]
            "response", prepared.hooks, response, **send_kwargs
        )
        if "Set-Cookie" in response.headers or "Set-Cookie2" in response.headers:
            extract_cookies_to_jar(  # type: ignore[no-untyped-call]
                self.cookies, prepared, response.raw
            )
        if response.is_redirect:  # not followed; response.next names the request it asks for
            following = self.resolve_redirects(
                response, prepared, yield_requests=True, **send_kwargs
            )
            response._next = next(following, None)
        if not send_kwargs["stream"]:
            response.content  # noqa: B018 - read the body now, as requests does
        result: requests.Response = response
        return result


def _merge(request_setting: Any, session_setting: Any) -> Any:
    return merge_setting(request_setting, session_setting)  # type: ignore[no-untyped-call]
