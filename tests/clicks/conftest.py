"""Short links served over real HTTP: the app on a loopback werkzeug server, a survey sent."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from csat_hook.app import create_app
from csat_hook.db.schema import link_clicks
from csat_hook.db.schema import surveys
from csat_hook.services import Services
from tests.helpers import generic_close

BASE = "https://csat.example.test"
FORM_URL = "https://docs.google.com/forms/d/e/1FAIpQLSfTEST/viewform"


def survey_section(form_url: str = FORM_URL, **links: Any) -> dict[str, Any]:
    return {
        "form": {
            "url": form_url,
            "fields": {
                "agent_name": "entry.111",
                "agent_id": "entry.222",
                "ticket": "entry.333",
                "token": "entry.444",
                "rating": "entry.555",
            },
        },
        "links": {"public_base_url": BASE, "style": "scores", **links},
    }


@dataclass
class Served:
    url: str  # http://127.0.0.1:<port>
    services: Services
    session: requests.Session

    def send_survey(
        self, dialog_id: str, agent_id: str = "7", agent_name: str = "Anna", language: str = "en"
    ) -> Any:
        """A close of ``dialog_id`` through the webhook, its reply delivered: the survey row."""
        response = self.session.post(
            f"{self.url}/webhooks/generic",
            json=generic_close(
                dialog_id, agent_id=agent_id, agent_name=agent_name, language=language
            ),
            headers={"X-Webhook-Token": "generic-token-123"},
            timeout=10,
        )
        assert response.status_code == 200 and response.json()["status"] == "queued"
        assert self.services.delivery_worker().run_once() == 1
        with self.services.engine.connect() as conn:
            return conn.execute(sa.select(surveys).where(surveys.c.dialog_id == dialog_id)).one()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, allow_redirects=False, timeout=10, **kwargs)

    def clicks(self) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(sa.select(link_clicks).order_by(link_clicks.c.id)).all())


def serve_app(services: Services) -> tuple[str, Callable[[], None]]:
    """The web app on a loopback port in a thread: (its URL, stop)."""
    server = make_server("127.0.0.1", 0, create_app(services=services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}", stop


@pytest.fixture
def make_served(make_config, make_services) -> Iterator[Callable[..., Served]]:
    stops: list[Callable[[], None]] = []

    def build(**survey: Any) -> Served:
        services = make_services(make_config(survey=survey_section(**survey)))
        url, stop = serve_app(services)
        stops.append(stop)
        return Served(url, services, requests.Session())

    yield build
    for stop in stops:
        stop()


@pytest.fixture
def served(make_served: Callable[..., Served]) -> Served:
    return make_served()
