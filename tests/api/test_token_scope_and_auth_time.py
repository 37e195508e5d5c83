"""The claims a JWT access token and an introspection answer share (``claims_to_token``):

- ``scope`` is RFC 6749 section 3.3 syntax, ``scope-token *( SP scope-token )``, or the
  token is malformed: a scope split on any other whitespace (a no-break space, a unit
  separator, a tab) was read as more scopes than the issuer granted;
- ``auth_time`` later than ``iat`` (beyond the leeway) is refused: no honest issuer
  stamps an authentication after the token it issued.

The endpoint's own scope list (``required_scope``) uses the same definition.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.tokens_support import AUDIENCE, ISSUER, T0, guard, sign
from stepup.adapters.idp.oidc import Introspector
from stepup.errors import ConfigurationError
from stepup.integrations.bearer import required_scope
from stepup.integrations.http import RequestInfo
from stepup.testing import SettableClock
from stepup.tokens import AccessToken, InvalidTokenError, TokenFault, scope_tokens

LEEWAY = 30  # the validator's and the introspector's default

SCOPE_CHARS = "".join(map(chr, [0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)]))
scope_token = st.text(alphabet=SCOPE_CHARS, min_size=1, max_size=12)
# Whitespace and separators str.split() splits on, but RFC 6749 does not.
NOT_SP = ["\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"]
NOT_SP += ["\u00a0", "\u1680", "\u2000", "\u2009", "\u2028", "\u2029", "\u202f", "\u3000"]


def introspect(answer: dict[str, Any]) -> AccessToken:
    """What an ``Introspector`` makes of this answer from the issuer's endpoint."""

    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(answer).encode())

    return Introspector(
        http=httpx.Client(transport=httpx.MockTransport(endpoint)),
        endpoint="https://idp.example/introspect",
        client_id="api",
        client_secret="secret",
        issuer=ISSUER,
        audience=AUDIENCE,
        clock=SettableClock(T0),
    ).introspect("opaque")


def active(**changes: Any) -> dict[str, Any]:
    answer = {"active": True, "sub": "alice", "aud": AUDIENCE, "exp": T0 + 600}
    answer |= {"auth_time": T0 - 30, "acr": "urn:mfa", **changes}
    return {k: v for k, v in answer.items() if v is not None}


def write_allowed(token: str) -> int | str:
    """The guard's status for ``token`` on an endpoint that requires ``write``."""
    request = RequestInfo(method="POST", path="/x", authorization=f"Bearer {token}")
    answer = guard(SettableClock(T0)).check(request, "workspace.read", scope="write")
    return answer.status if not isinstance(answer, AccessToken) else "allowed"


def refused(read: Any, fault: TokenFault) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        read()
    assert caught.value.fault is fault


# scope ---------------------------------------------------------------------------


@pytest.mark.parametrize("separator", NOT_SP)
def test_a_scope_joined_by_other_whitespace_grants_nothing(separator: str) -> None:
    """The one scope ``read<sep>write`` is no ``write``: refused as malformed."""
    assert write_allowed(sign(scope=f"read{separator}write")) == 401
    assert write_allowed(sign(scope="read write")) == "allowed"
    refused(lambda: introspect(active(scope=f"read{separator}write")), TokenFault.MALFORMED)


@pytest.mark.parametrize("scope", [" write", "write ", "read  write", '"write"', "w\\x", "wé"])
def test_a_scope_off_the_grammar_is_malformed(scope: str) -> None:
    assert write_allowed(sign(scope=scope)) == 401
    refused(lambda: introspect(active(scope=scope)), TokenFault.MALFORMED)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scope_token, min_size=1, max_size=5))
def test_scope_tokens_joined_by_single_spaces_are_read_as_they_are(tokens: list[str]) -> None:
    assert introspect(active(scope=" ".join(tokens))).scope == tuple(tokens)


@settings(max_examples=200)
@given(st.lists(scope_token, min_size=2, max_size=4), st.sampled_from(NOT_SP), st.data())
def test_any_other_separator_anywhere_is_malformed(
    tokens: list[str], separator: str, data: st.DataObject
) -> None:
    where = data.draw(st.integers(1, len(tokens) - 1))
    scope = " ".join(tokens[:where]) + separator + " ".join(tokens[where:])
    assert scope_tokens(scope) is None
    refused(lambda: introspect(active(scope=scope)), TokenFault.MALFORMED)


def test_no_scope_and_an_empty_scope_grant_nothing() -> None:
    assert introspect(active()).scope == ()
    assert introspect(active(scope="")).scope == ()


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=20), st.text(alphabet=SCOPE_CHARS + " \t\u00a0", max_size=20)))
def test_the_endpoint_and_the_token_share_one_syntax(scope: str) -> None:
    """What an endpoint may require is exactly what a token may grant."""
    granted = scope_tokens(scope)
    try:
        required: tuple[str, ...] | None = required_scope(scope)
    except ConfigurationError:
        required = None
    assert required == (None if granted is None else tuple(dict.fromkeys(granted)))


# auth_time after iat ----------------------------------------------------------------


def test_an_authentication_after_the_token_was_issued_is_refused() -> None:
    assert write_allowed(sign(scope="write", iat=T0 - 100, auth_time=T0 - 100 + LEEWAY)) == (
        "allowed"
    )
    assert write_allowed(sign(scope="write", iat=T0 - 100, auth_time=T0 - 99 + LEEWAY)) == 401
    late = active(iat=T0 - 500, auth_time=T0)
    refused(lambda: introspect(late), TokenFault.ISSUED_AT)
    assert introspect(active(iat=T0 - 500, auth_time=T0 - 500 + LEEWAY)).auth_time == (
        T0 - 500 + LEEWAY
    )


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 3000), st.integers(-3000, 3000))
def test_auth_time_is_checked_against_iat_only_when_both_are_there(
    age: int, auth_offset: int
) -> None:
    iat, auth_time = T0 - age, T0 - age + auth_offset
    in_future = auth_time > T0 + LEEWAY
    after_iat = auth_offset > LEEWAY
    if in_future or after_iat:
        refused(lambda: introspect(active(iat=iat, auth_time=auth_time)), TokenFault.ISSUED_AT)
    else:
        assert introspect(active(iat=iat, auth_time=auth_time)).auth_time == auth_time
    # Without iat (RFC 7662 makes it optional) only the future is refused.
    if in_future:
        refused(lambda: introspect(active(auth_time=auth_time)), TokenFault.ISSUED_AT)
    else:
        assert introspect(active(auth_time=auth_time)).auth_time == auth_time
