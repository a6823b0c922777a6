"""A reply and an alert queued while every request goes through a SOCKS proxy and PySocks
(a dependency, ``requests[socks]``) is missing: each attempt fails before anything is sent,
naming the proxy variable. That is retried as any failure to connect is, within
``delivery.max_attempts``, not failed at the first attempt: the operator who installs PySocks
(or fixes the variable) and restarts has what waits go out, once. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import surveys
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.helpdesks.test_socks_proxy import Socks5Proxy
from tests.helpdesks.test_socks_proxy import without_pysocks
from tests.outbox.test_worker import drain
from tests.outbox.test_worker import outbox_rows
from tests.outbox.test_worker import queue_generic

NAMED = "HTTP_PROXY is a SOCKS proxy, which needs PySocks, not installed"


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Socks5Proxy]:
    """A working SOCKS proxy on loopback, the only proxy variable ``HTTP_PROXY`` naming it."""
    fake = Socks5Proxy()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"socks5h://127.0.0.1:{fake.port}")
    yield fake
    fake.close()


def test_what_waits_goes_out_once_pysocks_is_installed(
    proxy, make_config, make_services, fake_notify, fake_helpdesk, clock, monkeypatch
):
    config = make_config(
        alerts=alerts_section(fake_notify), helpdesks={"generic": generic_notes(fake_helpdesk.url)}
    )
    with monkeypatch.context() as patched:
        without_pysocks(patched)
        before = make_services(config)
        queue_generic(before)
        raise_now(before, [changed(dialog_id="D-2002")])

        before.delivery_worker().run_once(limit=10)

        rows = outbox_rows(before)
        assert len(rows) == 5  # the reply, and the alert to four destinations
        assert {row.status for row in rows} == {"pending"}, [r.last_error for r in rows]
        assert all(row.attempts == 1 and NAMED in row.last_error for row in rows)
        assert all(row.uncertain_since is None for row in rows)  # not sent: nothing to settle
        with before.engine.connect() as conn:
            assert conn.execute(sa.select(surveys.c.status)).scalar_one() != "failed"
        assert fake_helpdesk.api_requests() == [] and proxy.asked == []

    # PySocks installed; the service restarted (a new client reads the environment anew).
    after = make_services(config)
    drain(after.delivery_worker(), clock)

    assert {row.status for row in outbox_rows(after)} == {"sent"}
    assert len(fake_notify.delivered("slack")) == 1 and len(fake_notify.delivered("webhook")) == 1
    assert proxy.asked  # through the proxy, as configured


def test_the_retries_stay_bounded_by_max_attempts(
    proxy, make_config, make_services, fake_helpdesk, clock, monkeypatch
):
    without_pysocks(monkeypatch)
    services = make_services(make_config(delivery={"max_attempts": 3}))
    queue_generic(services)

    drain(services.delivery_worker(), clock)

    [row] = outbox_rows(services)
    assert row.status == "failed" and row.attempts == 3
    assert NAMED in row.last_error
    assert fake_helpdesk.api_requests() == [] and proxy.asked == []
