"""An agent name longer than its column, end to end: intake clips it on a boundary a reader
sees (never half an emoji), signs that clip into the reference when the name is the agent's
key, sends it in the survey's link, and the sync credits the answer to the very agent the
survey was sent for."""

from __future__ import annotations

import csv
import re
import urllib.parse
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.app import create_app
from csat_hook.db.schema import answers
from csat_hook.db.schema import surveys
from csat_hook.db.schema import unverified_answers
from csat_hook.db.text import clipped as clip
from csat_hook.db.text import digest
from csat_hook.links.form import MAX_LINK_LENGTH
from csat_hook.sync.dataset import survey_agent_key
from csat_hook.sync.runner import SyncRunner
from tests.helpers import generic_close
from tests.helpers import link_fields

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 7 code points
# 299 code points: a plain cut at 255 ends inside the 36th family. With an id, the id is the
# agent's key. Without one the name is, and it is signed into the reference: the key-by-name
# case is a Latin name ending in a family (a plain cut: 5 of its 7).
BY_ID = ({"id": "7", "name": "Anna " + FAMILY * 42}, "Anna " + FAMILY * 35, "7")
BY_NAME = ({"name": "a" * 250 + FAMILY * 2}, "a" * 250, "a" * 250)
# An e-mail is the key lowered: "İ" lowers to "i" and a combining dot, 130 of them to 260 code
# points, longer than answers.agent_key: the sync clips it on both sides of the join alike
# (never between an "i" and its dot).
CAPITAL_I = "\u0130"
BY_EMAIL = ({"email": CAPITAL_I * 130 + "@e.org"}, None, "i\u0307" * 127)
# A name alone, of 300 Chinese characters: clipped to 255 (765 UTF-8 bytes), too long to sign
# into the reference as it is; signed as its digest, the close is surveyed (it was refused,
# id_too_long) and its answer credited to that one agent, shown by the name.
LONG = "张伟" * 150
BY_LONG_NAME = ({"name": LONG}, LONG[:255], digest(LONG[:255]))


@pytest.mark.parametrize(
    ("agent", "clipped", "key"),
    [BY_ID, BY_NAME, BY_EMAIL, BY_LONG_NAME],
    ids=["id", "name", "email", "long name"],
)
def test_a_name_ending_in_a_family_emoji_is_clipped_whole_and_credited_to_the_same_agent(
    make_config, make_services, fake_helpdesk, clock, tmp_path, agent, clipped, key
):
    export, report = tmp_path / "export.csv", tmp_path / "report"
    config = make_config(
        results={"source": "csv", "csv": {"path": str(export)}},
        output={"gsheets": {"enabled": False}, "local": {"enabled": True, "dir": str(report)}},
        metrics={"min_n": 1, "timezone": "UTC"},
    )
    services = make_services(config)
    client = create_app(services=services).test_client()
    close = generic_close("D-300", agent=agent)
    response = client.post(
        "/webhooks/generic", json=close, headers={"X-Webhook-Token": "generic-token-123"}
    )
    assert response.status_code == 200, response.get_data()
    assert services.delivery_worker().run_once() == 1

    with services.engine.connect() as conn:
        survey = conn.execute(sa.select(surveys)).one()
    assert survey.agent_name == clipped and survey.agent_id == agent.get("id")
    secret = config.token.secret.get_secret_value()
    signed = tokens.verify(survey.token, [secret]).agent
    assert signed == key or (signed.startswith(key) and len(signed) > 255)
    [posted] = [r for r in fake_helpdesk.requests if r["method"] == "POST"]
    form_link = re.search(r"https://docs\.google\.com/forms/[^\s'\")}]+", str(posted["body"]))
    assert form_link and len(form_link.group(0)) <= MAX_LINK_LENGTH
    prefilled = link_fields(urllib.parse.unquote(form_link.group(0)))
    # The name as far as the link's bound allows it (35 families percent-encoded are ~3,000
    # characters), cut where a reader sees a cut: whole characters, never half a family.
    shown = prefilled.get("entry.111")
    name = clipped or "Support team"
    assert shown and name.startswith(shown) and clip(name, len(shown)) == shown

    answered = (clock.now + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    with export.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"])
        writer.writerow([answered, 5, "fine", prefilled["entry.111"], "D-300", survey.token])
    clock.advance(2 * 3600)
    summary = SyncRunner(
        config, services.engine, clock=clock, sleep=lambda _s: None, google_sleep=lambda _s: None
    ).run()
    assert summary.status == "ok", summary

    with services.engine.connect() as conn:
        (answer,) = conn.execute(sa.select(answers)).all()
        assert conn.execute(sa.select(unverified_answers)).all() == []
    assert answer.agent_key == key and answer.field_agent == prefilled.get("entry.111")
    with (report / "summary.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # One agent, under the name whole: the survey sent and the answer credited to it.
    agents = [(row["Agent"], row["Surveys sent"], row["Answers"]) for row in rows if row["Rank"]]
    assert agents == [(clipped or agent["email"], "1", "1")]


def test_a_survey_signed_under_a_retired_secret_keeps_the_key_intake_signed():
    """A survey whose reference no current secret verifies is keyed as intake keyed it: its
    name (as stored), or that name's digest when the name was too long to sign."""
    now = datetime(2026, 12, 4, tzinfo=UTC)
    name = LONG[:255]
    digested = tokens.sign("retired", tokens.SurveyRef("generic", "D-1", digest(name), now))
    plain = tokens.sign("retired", tokens.SurveyRef("generic", "D-2", "Anna", now))
    forged = tokens.sign("retired", tokens.SurveyRef("generic", "D-3", digest("Bob"), now))

    assert survey_agent_key(None, name, None, digested, ["current"]) == digest(name)
    assert survey_agent_key(None, "Anna", None, plain, ["current"]) == "Anna"
    # A digest of another name than the survey's is not taken from the payload.
    assert survey_agent_key(None, "Anna", None, forged, ["current"]) == "Anna"
    assert survey_agent_key("7", name, None, digested, ["current"]) == "7"
