"""RFC 9470 end to end against the real oidc-provider: JWT access tokens (RFC 9068) for a
resource (RFC 8707) that carry acr, amr and auth_time; a FastAPI API guarded with
``require_token``; the client follows the challenge (acr_values, max_age) with a new
authorization and is allowed with the new token. Bad tokens each get the right answer."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import RSAKey

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider
from idp.oidc.useragent import UserAgent
from stepup.adapters.idp.oidc import (
    AccessTokenValidator,
    AsyncIntrospector,
    Introspector,
    async_http_jwks_fetcher,
    http_jwks_fetcher,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.bearer import BearerGuard
from stepup.integrations.fastapi import require_token
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth
from stepup.testing import SettableClock
from stepup.tokens import AccessToken, InvalidTokenError, TokenFault, TokenUnavailableError

API, OTHER_API, OPAQUE_API = (
    "https://api.stepup.test",
    "https://other.stepup.test",
    "https://opaque.stepup.test",
)
ACR_PWD, ACR_MFA = "urn:stepup:pwd", "urn:stepup:mfa"
LEVELS = Levels(
    (
        Level("password", acr=(ACR_PWD,), methods=(("pwd",),)),
        Level("mfa", acr=(ACR_MFA,), methods=(("pwd", "otp"),)),
    )
)
POLICY = Policy(
    {
        "workspace.read": Rule(Sensitivity.NONE),
        "workspace.delete": Rule(Sensitivity.CRITICAL, lifetime=300.0, level="mfa"),
        "billing.view": Rule(Sensitivity.SENSITIVE, lifetime=300.0),
    },
    levels=LEVELS,
)
SIGNING_KEY = RSAKey.generate_key(
    2048, parameters={"kid": "rs-key-1", "use": "sig", "alg": "RS256"}, private=True
)
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


@pytest.fixture(scope="module")
def api_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    folder = tmp_path_factory.mktemp("oidc-provider-resources")
    key_file = folder / "signing.jwk"
    key_file.write_text(json.dumps(SIGNING_KEY.as_dict(private=True)))
    env = {"STEPUP_OIDC_RESOURCES": "1", "STEPUP_OIDC_SIGNING_JWK": str(key_file)}
    started = launch_provider(folder / "provider.log", extra_env=env)
    yield started
    started.stop()


@pytest.fixture
def agent() -> Iterator[UserAgent]:
    browser = UserAgent(REDIRECT_URI)
    yield browser
    browser.close()


class CountingFetch:
    def __init__(self, fetch: Any) -> None:
        self.fetch, self.calls = fetch, 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.fetch()


@pytest.fixture
def jwks_fetch(api_provider: Provider, http: httpx.Client) -> CountingFetch:
    metadata = http.get(f"{api_provider.issuer}/.well-known/openid-configuration").json()
    return CountingFetch(http_jwks_fetcher(metadata["jwks_uri"], http))


@pytest.fixture
def api(api_provider: Provider, clock: SettableClock, jwks_fetch: CountingFetch) -> TestClient:
    validator = AccessTokenValidator(
        issuer=api_provider.issuer, audience=API, fetch_jwks=jwks_fetch, clock=clock
    )
    guard = BearerGuard(AsyncReauth(MemoryStore(), POLICY, clock=clock), validator)
    app = FastAPI()
    delete_token = Depends(require_token(guard, "workspace.delete"))
    billing_token = Depends(require_token(guard, "billing.view"))
    read_token = Depends(require_token(guard, "workspace.read"))

    @app.delete("/workspaces/{name}")
    async def delete(name: str, token: AccessToken = delete_token) -> dict[str, str]:
        return {"deleted": name, "by": token.subject, "acr": token.acr or ""}

    @app.get("/billing")
    async def billing(token: AccessToken = billing_token) -> dict[str, str]:
        return {"by": token.subject}

    @app.get("/workspaces")
    async def read(token: AccessToken = read_token) -> dict[str, str]:
        return {"by": token.subject}

    return TestClient(app)


def authorize(
    agent: UserAgent,
    provider: Provider,
    *,
    resource: str = API,
    acr_values: str | None = None,
    max_age: str | None = None,
    otp: str | None = None,
    age: int = 0,
) -> str:
    """The client's side: an authorization code flow with PKCE for ``resource``; the
    access token."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "client_id": "stepup-rp",
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid api:write",
        "resource": resource,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    if acr_values is not None:
        params["acr_values"] = acr_values
    if max_age is not None:
        params["max_age"] = max_age
    login, password = ALICE
    answer = agent.authorize(
        f"{provider.issuer}/auth?{urlencode(params)}",
        login=login,
        password=password,
        otp=otp,
        extra={"age": str(age)},
    )
    assert "code" in answer, answer
    response = httpx.post(
        f"{provider.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "resource": resource,
        },
        auth=("stepup-rp", "stepup-rp-secret"),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def challenge_of(response: httpx.Response) -> dict[str, str]:
    header = response.headers["www-authenticate"]
    assert header.startswith("Bearer ")
    return {m[0]: m[1] or m[2] for m in _PARAM.findall(header[7:])}


def call(
    api: TestClient, token: str, method: str = "DELETE", path: str = "/workspaces/prod"
) -> httpx.Response:
    return api.request(method, path, headers={"Authorization": f"Bearer {token}"})


def test_the_token_carries_acr_and_auth_time(
    api_provider: Provider, agent: UserAgent, clock: SettableClock
) -> None:
    token = authorize(agent, api_provider, otp="123456")
    header = jws.extract_compact(token.encode()).headers()
    assert header["typ"] == "at+jwt"
    claims = json.loads(jws.extract_compact(token.encode()).payload)
    assert claims["aud"] == API
    assert claims["acr"] == ACR_MFA
    assert claims["amr"] == ["pwd", "otp"]
    assert abs(claims["auth_time"] - clock()) < 60


def test_a_lower_acr_is_challenged_and_the_client_steps_up(
    api_provider: Provider, agent: UserAgent, api: TestClient
) -> None:
    token = authorize(agent, api_provider)  # password only: urn:stepup:pwd
    assert call(api, token, "GET", "/workspaces").status_code == 200
    refused = call(api, token)
    assert refused.status_code == 401
    challenge = challenge_of(refused)
    assert challenge["error"] == "insufficient_user_authentication"
    assert challenge["acr_values"] == ACR_MFA
    assert "max_age" not in challenge  # recent enough: only the level is missing
    logins = agent.login_forms
    stepped_up = authorize(agent, api_provider, acr_values=challenge["acr_values"], otp="123456")
    assert agent.login_forms == logins + 1  # the provider asked again
    allowed = call(api, stepped_up)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"deleted": "prod", "by": "alice", "acr": ACR_MFA}


def test_a_stale_auth_time_is_challenged_with_max_age(
    api_provider: Provider, agent: UserAgent, api: TestClient
) -> None:
    token = authorize(agent, api_provider, otp="123456", age=400)  # signed in 400 s ago
    refused = call(api, token, "GET", "/billing")
    assert refused.status_code == 401
    challenge = challenge_of(refused)
    assert challenge["error"] == "insufficient_user_authentication"
    assert challenge["max_age"] == "300"
    assert "acr_values" not in challenge
    logins = agent.login_forms
    renewed = authorize(agent, api_provider, max_age=challenge["max_age"], otp="123456")
    assert agent.login_forms == logins + 1  # max_age made the provider ask again
    assert call(api, renewed, "GET", "/billing").status_code == 200


def test_stale_and_too_weak_gets_both(
    api_provider: Provider, agent: UserAgent, api: TestClient
) -> None:
    token = authorize(agent, api_provider, age=400)
    challenge = challenge_of(call(api, token))
    assert (challenge["acr_values"], challenge["max_age"]) == (ACR_MFA, "300")
    renewed = authorize(
        agent,
        api_provider,
        acr_values=challenge["acr_values"],
        max_age=challenge["max_age"],
        otp="123456",
    )
    assert call(api, renewed).status_code == 200


def _invalid(response: httpx.Response) -> str:
    assert response.status_code == 401
    challenge = challenge_of(response)
    assert challenge["error"] == "invalid_token"
    return challenge.get("error_description", "")


def test_a_token_for_another_audience_is_invalid(
    api_provider: Provider, agent: UserAgent, api: TestClient
) -> None:
    token = authorize(agent, api_provider, resource=OTHER_API, otp="123456")
    assert "not meant for this resource" in _invalid(call(api, token))


def _forge(payload: dict[str, Any], key: Any = SIGNING_KEY, **header: Any) -> str:
    head = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **header}
    head = {k: v for k, v in head.items() if v is not None}
    return jws.serialize_compact(head, json.dumps(payload).encode(), key, algorithms=[head["alg"]])


def test_forged_variants_of_a_real_token_are_invalid(
    api_provider: Provider,
    agent: UserAgent,
    api: TestClient,
    clock: SettableClock,
    jwks_fetch: CountingFetch,
) -> None:
    real = authorize(agent, api_provider, otp="123456")
    assert call(api, real).status_code == 200
    claims = json.loads(jws.extract_compact(real.encode()).payload)
    # the provider's own key, so only the named check can fail
    assert call(api, _forge(claims)).status_code == 200
    _invalid(call(api, _forge(claims, typ="JWT")))
    _invalid(call(api, _forge(claims, typ=None)))
    stranger = RSAKey.generate_key(2048, parameters={"kid": "unknown-kid"}, private=True)
    fetched = jwks_fetch.calls
    _invalid(call(api, _forge(claims, stranger)))
    _invalid(call(api, _forge(claims, stranger)))
    assert jwks_fetch.calls <= fetched + 1  # one refetch at most
    head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _invalid(call(api, f"{head}.{body}."))
    _invalid(call(api, _forge({**claims, "iss": "https://evil.test"})))
    clock.advance(claims["exp"] - clock() + 31)
    assert "expired" in _invalid(call(api, real))


def test_no_token_is_a_plain_bearer_challenge(api: TestClient) -> None:
    response = api.delete("/workspaces/prod")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_async_validation_against_the_provider(
    api_provider: Provider, agent: UserAgent, clock: SettableClock
) -> None:
    token = authorize(agent, api_provider, otp="123456")
    async with httpx.AsyncClient(timeout=10) as http:
        fetch = async_http_jwks_fetcher(f"{api_provider.issuer}/jwks", http)
        validator = AccessTokenValidator(
            issuer=api_provider.issuer, audience=API, fetch_jwks=fetch, clock=clock
        )
        validated = await validator.avalidate(token)
    assert (validated.subject, validated.acr) == ("alice", ACR_MFA)
    decision = Reauth(MemoryStore(), POLICY, clock=clock).check_token(validated, "workspace.delete")
    assert decision.ok


def _introspector(
    provider: Provider, clock: SettableClock, http: Any, cls: Any = Introspector
) -> Any:
    return cls(
        http=http,
        endpoint=f"{provider.issuer}/token/introspection",
        client_id="stepup-api",
        client_secret="stepup-api-secret",
        issuer=provider.issuer,
        audience=OPAQUE_API,
        clock=clock,
    )


def test_opaque_tokens_through_introspection(
    api_provider: Provider, agent: UserAgent, clock: SettableClock, http: httpx.Client
) -> None:
    token = authorize(agent, api_provider, resource=OPAQUE_API)
    assert token.count(".") == 0  # opaque
    introspector = _introspector(api_provider, clock, http)
    read = introspector.introspect(token)
    assert (read.subject, read.acr, read.audience) == ("alice", ACR_PWD, (OPAQUE_API,))
    assert read.auth_time is not None
    reauth = Reauth(MemoryStore(), POLICY, clock=clock)
    decision = reauth.check_token(read, "workspace.delete")
    assert not decision.ok
    assert decision.level == "mfa"  # type: ignore[union-attr]
    with pytest.raises(InvalidTokenError) as caught:
        introspector.introspect(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert caught.value.fault is TokenFault.INACTIVE
    wrong_secret = Introspector(
        http=http,
        endpoint=f"{api_provider.issuer}/token/introspection",
        client_id="stepup-api",
        client_secret="not-the-secret",
        issuer=api_provider.issuer,
        audience=OPAQUE_API,
        clock=clock,
    )
    with pytest.raises(TokenUnavailableError) as failed:
        wrong_secret.introspect(token)  # the endpoint refuses the resource server: fail closed
    assert "not-the-secret" not in str(failed.value)
    assert token not in str(failed.value)


async def test_async_introspection(
    api_provider: Provider, agent: UserAgent, clock: SettableClock
) -> None:
    token = authorize(agent, api_provider, resource=OPAQUE_API, otp="123456")
    async with httpx.AsyncClient(timeout=10) as http:
        read = await _introspector(api_provider, clock, http, AsyncIntrospector).introspect(token)
    assert read.acr == ACR_MFA


def test_nothing_secret_in_reprs(
    api_provider: Provider, clock: SettableClock, http: httpx.Client
) -> None:
    assert "stepup-api-secret" not in repr(_introspector(api_provider, clock, http))
    assert Path(__file__).name  # the module is collected with the provider tests
