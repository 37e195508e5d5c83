"""Provider settings are checked at start-up, and nothing secret shows in a repr."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import RSAKey

from stepup.adapters.idp.oidc import (
    ClientAuth,
    OIDCOutcome,
    OIDCProviderConfig,
    OIDCReason,
    OIDCReauth,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError

SECRET = "very-secret-client-password"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)


def config(**changes: Any) -> OIDCProviderConfig:
    settings: dict[str, Any] = {
        "issuer": "https://op.example",
        "client_id": "app",
        "client_secret": SECRET,
        "redirect_uri": "https://app.example/oidc/callback",
    }
    return OIDCProviderConfig(**(settings | changes))


def test_defaults() -> None:
    c = config()
    assert c.token_auth_method is ClientAuth.CLIENT_SECRET_BASIC
    assert (c.max_skew, c.challenge_ttl, c.scopes, c.acr_values) == (60.0, 600.0, ("openid",), ())
    assert c.discovery_url == "https://op.example/.well-known/openid-configuration"
    assert config(issuer="https://op.example/tenant/").discovery_url == (
        "https://op.example/tenant/.well-known/openid-configuration"
    )


def test_the_client_authentication_follows_the_credentials() -> None:
    assert config(client_secret=None).token_auth_method is ClientAuth.NONE
    pk = config(client_secret=None, private_key=KEY.as_dict(private=True))
    assert pk.token_auth_method is ClientAuth.PRIVATE_KEY_JWT
    post = config(auth_method=ClientAuth.CLIENT_SECRET_POST)
    assert post.token_auth_method is ClientAuth.CLIENT_SECRET_POST


@pytest.mark.parametrize(
    "changes",
    [
        {"issuer": "http://op.example"},
        {"issuer": "op.example"},
        {"issuer": ""},
        {"issuer": "https://op.example/#x"},
        {"issuer": "https://op.example/?tenant=1"},
        {"issuer": "https://user:pw@op.example"},
        {"issuer": "http://localhost.op.example"},
        {"issuer": "http://[::1].op.example"},
        {"issuer": "http://127.0.0.1:99999"},
        {"redirect_uri": "http://127.0.0.1@app.example/cb"},
        {"redirect_uri": "http://app.example/cb"},
        {"redirect_uri": "/cb"},
        {"client_id": ""},
        {"client_secret": ""},
        {"scopes": ("email",)},
        {"scopes": "openid email"},
        {"scopes": ("openid", "two words")},
        {"acr_values": ("a b",)},
        {"acr_values": "urn:x"},
        {"max_skew": -1},
        {"max_skew": 301},
        {"max_skew": True},
        {"max_skew": "60"},
        {"challenge_ttl": 0},
        {"challenge_ttl": 86400},
        {"id_token_algorithms": ("HS256",)},
        {"id_token_algorithms": ("none",)},
        {"id_token_algorithms": ()},
        {"private_key": KEY.as_dict(private=True)},  # with a secret too: ambiguous
        {"client_secret": None, "private_key": KEY.as_dict(private=False)},
        {"client_secret": None, "private_key": {"kty": "RSA", "n": "AQAB"}},
        {"client_secret": None, "auth_method": ClientAuth.CLIENT_SECRET_BASIC},
        {"auth_method": ClientAuth.PRIVATE_KEY_JWT},
        {
            "client_secret": None,
            "private_key": KEY.as_dict(private=True),
            "private_key_alg": "HS256",
        },
    ],
)
def test_bad_settings_fail_at_start_up(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        config(**changes)
    assert SECRET not in str(caught.value)
    assert str(KEY.as_dict(private=True)["d"]) not in str(caught.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_is_allowed_on_loopback_only(host: str) -> None:
    c = config(issuer=f"http://{host}:8080", redirect_uri=f"http://{host}:9000/cb")
    assert c.issuer.startswith("http://")


def test_no_secret_in_any_repr() -> None:
    c = config(client_secret=None, private_key=KEY.as_dict(private=True))
    with_secret = config()
    reauth = OIDCReauth(with_secret, MemoryStore())
    reauth.close()
    private_d = str(KEY.as_dict(private=True)["d"])
    for text in (repr(c), str(c), repr(with_secret), repr(reauth)):
        assert SECRET not in text
        assert private_d not in text


def test_an_outcome_is_true_only_when_ok() -> None:
    assert OIDCOutcome(OIDCReason.OK)
    for reason in OIDCReason:
        outcome = OIDCOutcome(reason)
        assert outcome.ok is (reason is OIDCReason.OK)
        assert bool(outcome) is outcome.ok
        assert outcome.method == "oidc"
