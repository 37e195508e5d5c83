"""RFC 9110 15.5.2: a server sending 401 must send ``WWW-Authenticate`` with at least one
challenge. A bearer client gets its ``Bearer`` challenge (RFC 6750, RFC 9470); a
session's JSON client, which has no HTTP authentication scheme of its own, gets
``Session realm="stepup"``; a browser is sent on with a 303 instead of a 401."""

from __future__ import annotations

import pytest

from stepup.integrations.http import (
    SESSION_CHALLENGE,
    RequestInfo,
    authentication_required,
    decision_response,
)
from stepup.integrations.views import jsonapi_error
from stepup.policy import Sensitivity
from stepup.reauth import ReauthRequired
from stepup.twofactor import Channel

DECISION = ReauthRequired("api_key.read", Sensitivity.SENSITIVE, ("pwd",), 3600.0, None)
JSON = RequestInfo("GET", "/api-key", accept="application/json")


@pytest.mark.parametrize(
    "request_info",
    [JSON, RequestInfo("GET", "/x", x_requested_with="XMLHttpRequest")],
)
def test_a_sessions_json_client_gets_a_challenge_with_every_401(request_info: RequestInfo) -> None:
    for response in (
        decision_response(DECISION, request_info, reauth_url="/stepup/reauth"),
        authentication_required(request_info),
        jsonapi_error(401, "unauthenticated", "Sign in first"),
    ):
        assert response is not None
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == SESSION_CHALLENGE


def test_a_bearer_client_gets_the_bearer_challenge_not_the_sessions() -> None:
    bearer = RequestInfo("GET", "/api-key", authorization="Bearer abc")
    for response in (
        decision_response(
            DECISION._replace(channel=Channel.API), bearer, reauth_url="/stepup/reauth"
        ),
        authentication_required(bearer),
    ):
        assert response is not None
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_other_statuses_name_no_challenge() -> None:
    for status in (400, 403, 404, 409, 415, 422):
        assert "WWW-Authenticate" not in jsonapi_error(status, "x", "x").headers
