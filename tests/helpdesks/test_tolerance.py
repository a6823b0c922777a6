"""The replay window of every signed-timestamp check is a positive number of seconds, at most
a day: ``.inf`` made every timestamp fresh (no replay check), and zero or a negative one
refused every webhook as "outside the tolerance window"."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from csat_hook.helpdesks.chatwoot.options import ChatwootOptions
from csat_hook.helpdesks.generic.auth import AuthOptions
from csat_hook.helpdesks.zendesk.options import ZendeskOptions

OPTIONS = [
    (
        ZendeskOptions,
        {"subdomain": "acme", "oauth_token": "zd-oauth", "webhook_secret": "zendesk-secret-1"},
    ),
    (ChatwootOptions, {"api_access_token": "chatwoot-token", "webhook_secret": "cw-secret-12"}),
    (AuthOptions, {"mode": "hmac", "secret": "generic-signing-secret"}),
]


@pytest.mark.parametrize(("model", "base"), OPTIONS)
@pytest.mark.parametrize("tolerance", [float("inf"), 1e300, 86401, 0, -5])
def test_a_replay_window_without_end_or_without_room_is_refused(model, base, tolerance):
    with pytest.raises(ValidationError, match="tolerance_seconds"):
        model.model_validate({**base, "tolerance_seconds": tolerance})


@pytest.mark.parametrize(("model", "base"), OPTIONS)
def test_a_window_of_up_to_a_day_is_taken(model, base):
    assert model.model_validate({**base, "tolerance_seconds": 86400}).tolerance_seconds == 86400
    assert model.model_validate(base).tolerance_seconds == 300
