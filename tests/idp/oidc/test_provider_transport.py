"""What stepup sends to a provider goes only where the provider's https document says.

- A redirect is never followed, whatever the app's ``httpx`` client is set to do: a
  307 from a token or introspection endpoint would send the form again (the code, the
  PKCE verifier, the client's secret, the token) to the redirect's target.
- An https issuer's endpoints are https: a discovery document served over https that
  names a loopback ``http`` token endpoint would have the code and the client's secret
  sent in clear to whatever local process holds that port.
"""

from __future__ import annotations

import json

import httpx
import pytest

from stepup.adapters.idp.oidc import OIDCProviderConfig, OIDCReauth
from stepup.adapters.idp.oidc.outcome import ProviderUnavailableError
from stepup.adapters.idp.oidc.protocol import HttpResponse, parse_discovery
from stepup.adapters.idp.oidc.resource import Introspector, http_jwks_fetcher
from stepup.adapters.storage.memory import MemoryStore
from stepup.subject import Identity, LoginMethod, Subject
from stepup.tokens import TokenUnavailableError

ISSUER = "https://op.example"
ELSEWHERE = "https://collector.example/steal"


class Recorder:
    """A transport that answers every request to the provider with a 307 elsewhere."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        if str(request.url).startswith(ELSEWHERE):
            return httpx.Response(200, json={"active": True, "keys": []})
        return httpx.Response(307, headers={"Location": ELSEWHERE})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def http(recorder: Recorder) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(recorder), follow_redirects=True)


def test_introspection_never_follows_a_redirect(http: httpx.Client, recorder: Recorder) -> None:
    introspector = Introspector(
        http=http,
        endpoint=f"{ISSUER}/introspect",
        client_id="api",
        client_secret="s3cret",
        issuer=ISSUER,
        audience="api",
    )
    with pytest.raises(TokenUnavailableError):
        introspector.introspect("opaque-token")
    assert recorder.urls == [f"{ISSUER}/introspect"]


def test_the_key_fetch_never_follows_a_redirect(http: httpx.Client, recorder: Recorder) -> None:
    with pytest.raises(TokenUnavailableError):
        http_jwks_fetcher(f"{ISSUER}/jwks", http)()
    assert recorder.urls == [f"{ISSUER}/jwks"]


def test_the_reauthentication_client_never_follows_a_redirect(
    http: httpx.Client, recorder: Recorder
) -> None:
    config = OIDCProviderConfig(
        issuer=ISSUER, client_id="app", redirect_uri="https://app.example/callback"
    )
    subject = Subject("u-alice", "s1", Identity(LoginMethod.OIDC, ISSUER, "alice", "op"))
    with pytest.raises(ProviderUnavailableError):
        OIDCReauth(config, MemoryStore(), http=http).start(subject, return_to="/")
    assert recorder.urls == [f"{ISSUER}/.well-known/openid-configuration"]


def _document(**endpoints: str) -> HttpResponse:
    body = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        **endpoints,
    }
    return HttpResponse(200, json.dumps(body).encode())


@pytest.mark.parametrize("name", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
@pytest.mark.parametrize("url", ["http://127.0.0.1:9999/x", "http://localhost/x", "HTTP://[::1]/x"])
def test_an_https_issuer_names_no_http_endpoint(name: str, url: str) -> None:
    config = OIDCProviderConfig(issuer=ISSUER, client_id="app", redirect_uri="https://a.example/cb")
    with pytest.raises(ProviderUnavailableError, match=name) as raised:
        parse_discovery(config, _document(**{name: url}))
    assert raised.value.misconfigured


def test_an_https_issuer_with_https_endpoints_is_read() -> None:
    config = OIDCProviderConfig(issuer=ISSUER, client_id="app", redirect_uri="https://a.example/cb")
    assert parse_discovery(config, _document()).token_endpoint == f"{ISSUER}/token"


def test_a_loopback_http_issuer_keeps_its_loopback_endpoints() -> None:
    issuer = "http://127.0.0.1:8080"
    config = OIDCProviderConfig(issuer=issuer, client_id="app", redirect_uri="http://127.0.0.1/cb")
    body = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
    }
    metadata = parse_discovery(config, HttpResponse(200, json.dumps(body).encode()))
    assert metadata.token_endpoint == f"{issuer}/token"
