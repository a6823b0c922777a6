"""Links to a dialog in reports and alerts: the dialog id (the sender's text) is one escaped
segment of the configured link, never a path, a query or a fragment of its own."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from csat_hook.alerts.records import ticket_url as alert_ticket_url
from csat_hook.helpdesks.base import ticket_url
from csat_hook.sync.report.common import ticket_link

TEMPLATE = "https://desk.example.com/tickets/{ticket}"


@pytest.mark.parametrize(
    ("dialog_id", "link"),
    [
        ("4512", "https://desk.example.com/tickets/4512"),
        ("D-1001_a.b~c", "https://desk.example.com/tickets/D-1001_a.b~c"),
        (
            "10/../../admin?x=1#y",
            "https://desk.example.com/tickets/10%2F..%2F..%2Fadmin%3Fx%3D1%23y",
        ),
        ("заявка 7", "https://desk.example.com/tickets/%D0%B7%D0%B0%D1%8F%D0%B2%D0%BA%D0%B0%207"),
    ],
)
def test_the_dialog_id_is_one_escaped_segment_in_reports_and_alerts(dialog_id, link):
    assert ticket_url(TEMPLATE, dialog_id) == link
    assert ticket_link({"desk": TEMPLATE}, "desk", dialog_id) == link
    helpdesks = {"desk": SimpleNamespace(ticket_url_template=TEMPLATE)}
    assert alert_ticket_url(helpdesks, "desk", dialog_id) == link


def test_no_template_no_link():
    assert ticket_url(None, "4512") is None
    assert ticket_link({"desk": None}, "desk", "4512") is None
    assert alert_ticket_url({}, "desk", "4512") is None
