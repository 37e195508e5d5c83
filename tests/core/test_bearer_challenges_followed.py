"""A bearer client that follows the challenge it gets is asked for something an
authorization server would act on (RFC 9470, OIDC Core 3.1.2.1), and every refusal of a
bearer request names a ``Bearer`` challenge (RFC 6750 section 3)."""

from __future__ import annotations

import json

import pytest
from joserfc import jws

from api.tokens_support import AUDIENCE, ISSUER, KEY, LEVELS, T0, guard, parse_challenge, sign
from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.bearer import BearerGuard
from stepup.integrations.http import (
    HttpResponse,
    RequestInfo,
    bearer_credentials,
    decision_response,
)
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth, ReauthRequired, ReauthUnavailable, UnavailableReason
from stepup.testing import SettableClock
from stepup.tokens import AccessToken
from stepup.twofactor import Channel


def _guard(policy: Policy, clock: SettableClock) -> BearerGuard:
    validator = AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        fetch_jwks=lambda: {"keys": [KEY.as_dict(private=False)]},
        clock=clock,
    )
    return BearerGuard(Reauth(MemoryStore(), policy, clock=clock), validator)


def _token(**claims: object) -> str:
    """A signed token; a claim given as ``None`` is left out."""
    token = sign(**claims)
    if None not in claims.values():
        return token
    payload = json.loads(jws.deserialize_compact(token, KEY).payload)
    kept = {name: value for name, value in payload.items() if value is not None}
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
    return jws.serialize_compact(header, json.dumps(kept).encode(), KEY)


def _refused(protect: BearerGuard, action: str, **claims: object) -> HttpResponse:
    request = RequestInfo("DELETE", "/w/prod", authorization=f"Bearer {_token(**claims)}")
    answer = protect.check(request, action)
    assert isinstance(answer, HttpResponse)
    return answer


def _challenge(answer: HttpResponse) -> dict[str, str]:
    scheme, params = parse_challenge(answer.headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    return params


# A recent token whose methods fall short, no acr would do: max_age="0" --------------


METHODS_ONLY = Levels(
    (Level("password", methods=(("pwd",),)), Level("mfa", methods=(("pwd", "otp"),)))
)


def test_a_recent_token_no_acr_can_help_is_asked_for_a_new_authentication_now() -> None:
    """``max_age`` of the rule's lifetime would not make a conforming authorization
    server prompt (the token's authentication is younger): it would hand back the same
    ``auth_time`` and ``amr``, refused again, for ever. ``0`` forces the prompt."""
    clock = SettableClock(T0)
    policy = Policy(
        {"workspace.delete": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa")},
        levels=METHODS_ONLY,
    )
    answer = _refused(
        _guard(policy, clock), "workspace.delete", auth_time=T0 - 30, amr=["pwd"], acr=None
    )
    params = _challenge(answer)
    assert answer.status == 401
    assert params["error"] == "insufficient_user_authentication"
    assert params["error_description"] == "A different authentication is required"
    assert params["max_age"] == "0"
    assert "acr_values" not in params
    assert json.loads(answer.body)["max_age"] == 0  # the body asks what the header asks


def test_a_stale_token_is_still_asked_for_the_rules_lifetime() -> None:
    clock = SettableClock(T0)
    policy = Policy(
        {"workspace.delete": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa")},
        levels=METHODS_ONLY,
    )
    answer = _refused(
        _guard(policy, clock), "workspace.delete", auth_time=T0 - 400, amr=["pwd"], acr=None
    )
    assert _challenge(answer)["max_age"] == "300"
    assert json.loads(answer.body)["max_age"] == 300


def test_a_session_api_subject_challenged_by_methods_gets_max_age_zero_too() -> None:
    """decision_response's RFC 9470 challenge (a ``Channel.API`` session) asks the same,
    in its header and its body; a JSON client's body keeps the rule's lifetime."""
    decision = ReauthRequired(
        "keys.read",
        Sensitivity.SENSITIVE,
        ("pwd", "otp"),
        21600.0,
        T0 - 5,
        stale=False,
        channel=Channel.API,
    )
    bearer = RequestInfo("GET", "/k", authorization="Bearer abc")
    answer = decision_response(decision, bearer, reauth_url="/stepup/reauth")
    assert answer is not None
    assert _challenge(answer)["max_age"] == "0"
    assert json.loads(answer.body)["max_age"] == 0
    plain = RequestInfo("GET", "/k", accept="application/json")
    answer = decision_response(decision, plain, reauth_url="/stepup/reauth")
    assert answer is not None
    assert "WWW-Authenticate" not in answer.headers or answer.headers[
        "WWW-Authenticate"
    ].startswith("Session")
    assert json.loads(answer.body)["max_age"] == 21600


# A stale token that met the level is asked for the level again ---------------------


def test_a_stale_token_that_met_the_level_is_asked_for_it_again() -> None:
    """Else the new authentication, asked for no level, may come back at a provider's
    default (a password) and be refused a second time, asking for the level."""
    answer = _refused(
        guard(SettableClock(T0)), "workspace.delete", acr="urn:mfa", auth_time=T0 - 400
    )
    params = _challenge(answer)
    assert params["error_description"] == "A more recent authentication is required"
    assert params["acr_values"] == "urn:mfa"  # its own acr: it satisfied, it is only old
    assert params["max_age"] == "300"
    body = json.loads(answer.body)
    assert (body["level"], body["acr_values"], body["max_age"]) == ("mfa", ["urn:mfa"], 300)


def test_a_token_without_auth_time_that_met_the_level_is_asked_for_it_too() -> None:
    answer = _refused(guard(SettableClock(T0)), "workspace.delete", acr="urn:mfa", auth_time=None)
    params = _challenge(answer)
    assert (params["acr_values"], params["max_age"]) == ("urn:mfa", "300")


def test_a_stale_token_whose_acr_stood_for_an_alternative_is_asked_for_that_level() -> None:
    levels = Levels(
        (
            Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
            Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
            Level("phr", acr=("urn:phr",), methods=(("phr",),)),
        )
    )
    policy = Policy(
        {"a": Rule(Sensitivity.CRITICAL, lifetime=300.0, accept=(("phr",), ("primary", "otp")))},
        levels=levels,
    )
    answer = _refused(
        _guard(policy, SettableClock(T0)), "a", acr="urn:mfa", amr=["pwd"], auth_time=T0 - 400
    )
    params = _challenge(answer)
    assert (params["acr_values"], params["max_age"]) == ("urn:phr urn:mfa", "300")
    assert json.loads(answer.body)["level"] == "mfa"


def test_a_stale_token_its_amr_proved_without_a_rule_level_gets_max_age_only() -> None:
    """No level proved it, so none is asked for (not a stronger one another alternative
    would need)."""
    policy = Policy(
        {"a": Rule(Sensitivity.CRITICAL, lifetime=300.0, accept=(("phr",), ("pwd", "otp")))},
        levels=Levels(
            (
                Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
                Level("phr", acr=("urn:phr",), methods=(("phr",),)),
            )
        ),
    )
    answer = _refused(
        _guard(policy, SettableClock(T0)), "a", acr=None, amr=["pwd", "otp"], auth_time=T0 - 400
    )
    params = _challenge(answer)
    assert params["max_age"] == "300"
    assert "acr_values" not in params
    assert "level" not in json.loads(answer.body)


def test_the_core_decision_names_the_level_of_a_stale_token() -> None:
    clock = SettableClock(T0)
    reauth = Reauth(
        MemoryStore(),
        Policy(
            {"workspace.delete": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa")},
            levels=LEVELS,
        ),
        clock=clock,
    )
    token = AccessToken(
        issuer="https://idp.example",
        subject="alice",
        audience=("https://api.example",),
        expires_at=T0 + 600,
        issued_at=T0,
        auth_time=T0 - 400,
        acr="urn:mfa",
        amr=("pwd", "otp"),
    )
    decision = reauth.check_token(token, "workspace.delete")
    assert isinstance(decision, ReauthRequired)
    assert (decision.stale, decision.level, decision.acr_values) == (True, "mfa", ("urn:mfa",))


# Another scheme's commas; several headers ----------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        'Digest username="Mufasa", realm="api", nonce="abc", uri="/w/prod", response="66"',
        "AWS4-HMAC-SHA256 Credential=AKID/20261205/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=abcd",
        'Digest username="a", bearertoken="x"',
        "Basic YTpi, Digest x=1",
    ],
)
def test_another_scheme_with_commas_gets_the_challenge_without_an_error(header: str) -> None:
    answer = bearer_credentials(RequestInfo("GET", "/w", authorization=header))
    assert isinstance(answer, HttpResponse)
    assert (answer.status, answer.headers["WWW-Authenticate"]) == (401, 'Bearer realm="api"')


@pytest.mark.parametrize(
    "header",
    [
        "Basic YTpi, Bearer abc",
        "Basic YTpi,bearer abc",
        "Digest x=1, BEARER",
        "Bearer a, b",
        ", Bearer abc",
    ],
)
def test_a_bearer_credential_among_several_is_malformed(header: str) -> None:
    answer = bearer_credentials(RequestInfo("GET", "/w", authorization=header))
    assert isinstance(answer, HttpResponse)
    assert answer.status == 400
    assert _challenge(answer)["error"] == "invalid_request"


class _Headers:
    """A framework's headers with ``getlist`` (Starlette's, Werkzeug's)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, key: str, default: str) -> str:
        found = self.getlist(key)
        return found[0] if found else default

    def getlist(self, key: str) -> list[str]:
        return [value for name, value in self.pairs if name.lower() == key.lower()]


@pytest.mark.parametrize("first", ["", "Bearer abc"])
def test_several_authorization_headers_are_refused_whichever_comes_first(first: str) -> None:
    """An empty first header too: the answer is the same 400 as when it comes second."""
    others = ["Bearer abc", ""] if first else ["", "Bearer abc"]
    for pair in (others, [first, "Bearer xyz"]):
        headers = _Headers([("Authorization", value) for value in pair])
        info = RequestInfo.from_headers("GET", "/w", headers)
        answer = bearer_credentials(info)
        assert isinstance(answer, HttpResponse)
        assert answer.status == 400


# A refusal for good names its challenge -----------------------------------------------


def test_a_token_refused_for_good_gets_a_bearer_challenge() -> None:
    policy = Policy(
        {"workspace.destroy": Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True)}
    )
    answer = _refused(_guard(policy, SettableClock(T0)), "workspace.destroy")
    assert answer.status == 403
    params = _challenge(answer)
    # No error code: RFC 9470's insufficient_user_authentication would ask for a new token.
    assert params == {"error_description": "No access token can confirm this action"}
    body = json.loads(answer.body)
    assert (body["error"], body["reason"]) == ("reauth_unreachable", "transaction_bound")


def test_a_session_refused_for_good_keeps_its_answer() -> None:
    """Browsers and JSON clients of a session get the 403 without a Bearer challenge."""
    decision = ReauthUnavailable("keys.read", UnavailableReason.NON_INTERACTIVE, "")
    for request in (
        RequestInfo("GET", "/k", accept="application/json"),
        RequestInfo("GET", "/k"),
    ):
        answer = decision_response(decision, request, reauth_url="/stepup/reauth")
        assert answer is not None
        assert answer.status == 403
        assert "WWW-Authenticate" not in answer.headers
