"""Two bearer answers that misled: an ``AccessTokenValidator`` given an async
``fetch_jwks`` and used synchronously said "the issuer's keys could not be read" (a 503,
for ever) instead of naming the configuration mistake; and the 403 for an action no new
token can allow carried RFC 9470's ``insufficient_user_authentication``, which asks the
client to authorize again (a generic client loops)."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from typing import Any

import pytest

from api.tokens_support import AUDIENCE, ISSUER, KEY, T0, parse_challenge, sign
from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.bearer import BearerGuard
from stepup.integrations.http import (
    FOR_GOOD,
    HttpResponse,
    RequestInfo,
    token_unreachable_response,
)
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth, ReauthUnavailable, UnavailableReason
from stepup.testing import SettableClock
from stepup.tokens import AccessToken


def _document() -> dict[str, Any]:
    return {"keys": [KEY.as_dict(private=False)]}


async def _async_fetch() -> dict[str, Any]:
    return _document()


def _validator(fetch: Any, clock: SettableClock) -> AccessTokenValidator:
    return AccessTokenValidator(issuer=ISSUER, audience=AUDIENCE, fetch_jwks=fetch, clock=clock)


def _request(token: str) -> RequestInfo:
    return RequestInfo("DELETE", "/workspaces/prod", authorization=f"Bearer {token}")


# An async fetcher on the sync path ----------------------------------------------------


def _no_coroutine_left_unawaited(call: Any) -> None:
    """``call()`` raises ConfigurationError naming the fix, and leaves no coroutine that
    was never awaited behind it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigurationError, match="fetch_jwks is async: use avalidate"):
            call()
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


@pytest.mark.parametrize(
    "fetch",
    [_async_fetch, lambda: _async_fetch()],
    ids=["async_def", "returns_a_coroutine"],
)
def test_validate_refuses_an_async_fetcher_as_a_configuration_error(fetch: Any) -> None:
    clock = SettableClock(T0)
    check = _validator(fetch, clock)
    _no_coroutine_left_unawaited(lambda: check.validate(sign()))
    # Not a failed fetch: the next call says the same, never "unavailable"...
    _no_coroutine_left_unawaited(lambda: check.validate(sign()))
    # ...and no refetch_interval was used up: the async path fetches at once.
    token = asyncio.run(check.avalidate(sign()))
    assert token.subject == "alice"


def test_keys_the_async_path_fetched_still_serve_validate() -> None:
    clock = SettableClock(T0)
    check = _validator(_async_fetch, clock)
    assert asyncio.run(check.avalidate(sign())).subject == "alice"
    assert check.validate(sign()).subject == "alice"
    clock.set(T0 + 3600)  # the keys aged out: validate would have to fetch them itself
    _no_coroutine_left_unawaited(lambda: check.validate(sign(exp=T0 + 7200)))


def test_a_kid_the_client_made_up_is_a_401_not_a_500() -> None:
    """A token the loaded keys do not verify asks for a refetch, which the sync path
    cannot make with an async fetcher: it is judged by the keys it has (invalid_token),
    whatever the client puts in its header."""
    from joserfc import jws

    from stepup.tokens import InvalidTokenError, TokenFault

    clock = SettableClock(T0)
    check = _validator(_async_fetch, clock)
    assert asyncio.run(check.avalidate(sign())).subject == "alice"
    forged = sign().split(".")
    header = {"alg": "RS256", "typ": "at+jwt", "kid": "made-up"}
    forged[0] = jws.serialize_compact(header, b"{}", KEY).split(".")[0]
    clock.advance(120)  # past refetch_interval: the unknown kid would be refetched
    with pytest.raises(InvalidTokenError) as info:
        check.validate(".".join(forged))
    assert info.value.fault is TokenFault.UNKNOWN_KEY
    assert check.validate(sign()).subject == "alice"  # the keys still serve


def test_bearer_guard_check_raises_it_too_not_a_503() -> None:
    clock = SettableClock(T0)
    guard = BearerGuard(
        Reauth(MemoryStore(), Policy({"w.read": Rule(Sensitivity.NONE)}), clock=clock),
        _validator(_async_fetch, clock),
    )
    _no_coroutine_left_unawaited(lambda: guard.check(_request(sign()), "w.read"))
    answer = asyncio.run(
        BearerGuard(
            AsyncReauth(MemoryStore(), Policy({"w.read": Rule(Sensitivity.NONE)}), clock=clock),
            _validator(_async_fetch, clock),
        ).acheck(_request(sign()), "w.read")
    )
    assert isinstance(answer, AccessToken)


# A refusal for good is no step-up challenge ---------------------------------------------


BOUND = Policy({"w.destroy": Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True)})


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_bound_rule_answers_a_token_without_the_step_up_error(asynchronous: bool) -> None:
    clock = SettableClock(T0)
    check = _validator(_document, clock)
    if asynchronous:
        guard = BearerGuard(AsyncReauth(MemoryStore(), BOUND, clock=clock), check)
        answer = asyncio.run(guard.acheck(_request(sign()), "w.destroy"))
    else:
        guard = BearerGuard(Reauth(MemoryStore(), BOUND, clock=clock), check)
        answer = guard.check(_request(sign()), "w.destroy")
    assert isinstance(answer, HttpResponse)
    assert answer.status == 403
    header = answer.headers["WWW-Authenticate"]
    assert "insufficient_user_authentication" not in header
    scheme, params = parse_challenge(header)
    assert scheme == "Bearer"
    assert params == {"error_description": "No access token can confirm this action"}
    body = json.loads(answer.body)
    assert (body["error"], body["reason"]) == ("reauth_unreachable", "transaction_bound")


@pytest.mark.parametrize("reason", sorted(FOR_GOOD))
def test_no_refusal_for_good_asks_for_a_new_authorization(reason: UnavailableReason) -> None:
    answer = token_unreachable_response(ReauthUnavailable("w.destroy", reason, ""), _request("abc"))
    assert answer.status == 403
    scheme, params = parse_challenge(answer.headers["WWW-Authenticate"])
    assert scheme == "Bearer"
    assert "error" not in params
    assert params["error_description"]
    assert json.loads(answer.body)["error"] == "reauth_unreachable"
