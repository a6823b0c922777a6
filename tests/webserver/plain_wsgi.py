"""``csat_hook.wsgi:app`` without the webhooks' fast path (``intake.web.WebhookFastPath``):
every request goes to Flask's own ``wsgi_app``. For gunicorn in tests that compare the two
(``tests/webserver/test_fast_path_server.py``)."""

from __future__ import annotations

from tests.no_fast_path import without_fast_path

with without_fast_path():
    from csat_hook.wsgi import app

__all__ = ["app"]
