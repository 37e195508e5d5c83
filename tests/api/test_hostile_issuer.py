"""A hostile or broken issuer behind real HTTP (a local server scripted per test): the
RFC 7662 introspection client and the JWKS fetchers refuse every answer that is not
plainly an active bearer token for this resource, fail closed (unavailable) on every
error, read no more than a bounded answer and never echo the token or the secret."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import httpx
import pytest

from stepup.adapters.idp.oidc import (
    AccessTokenValidator,
    AsyncIntrospector,
    Introspector,
    async_http_jwks_fetcher,
    http_jwks_fetcher,
)
from stepup.adapters.idp.oidc.resource import MAX_INTROSPECTION_BYTES, MAX_JWKS_BYTES
from stepup.errors import ConfigurationError
from stepup.testing import SettableClock
from stepup.tokens import InvalidTokenError, TokenFault, TokenUnavailableError

T0 = 1_700_000_000
AUDIENCE = "https://api.example"
SECRET = "rs-secret-never-shown"
TOKEN = "opaque-token-value-never-shown"


class Issuer:
    """What the issuer answers next: (status, body bytes, extra headers), or a callable
    for a misbehaving connection. Records the requests it saw."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b"{}"
        self.headers: dict[str, str] = {}
        self.hang = threading.Event()  # set: answer; clear: keep the client waiting
        self.hang.set()
        self.drop = False
        self.undeclared = False  # True: no Content-Length, the body ends when it closes
        self.seen: list[dict[str, Any]] = []

    def answer(self, data: Any, status: int = 200, **headers: str) -> None:
        self.status = status
        self.body = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.headers = headers


@pytest.fixture
def issuer() -> Iterator[tuple[Issuer, str]]:
    script = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode()) if length else {}
            script.seen.append(
                {"path": self.path, "form": form, "auth": self.headers.get("Authorization")}
            )
            if not script.hang.wait(timeout=5):
                return
            if script.drop:
                self.connection.close()
                return
            self.send_response(script.status)
            for name, value in script.headers.items():
                self.send_header(name, value)
            if "Content-Length" not in script.headers and not script.undeclared:
                self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

        do_GET = _reply  # noqa: N815 (the name http.server calls)
        do_POST = _reply  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        script.hang.set()
        server.shutdown()
        server.server_close()


def active(**changes: Any) -> dict[str, Any]:
    answer = {
        "active": True,
        "iss": "https://idp.example",
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": T0 + 600,
        "iat": T0 - 5,
        "auth_time": T0 - 30,
        "acr": "urn:mfa",
        "token_type": "Bearer",
        "client_id": "app",
    }
    answer.update(changes)
    return {k: v for k, v in answer.items() if v is not None}


def introspector(url: str, http: Any, cls: Any = Introspector, **settings: Any) -> Any:
    return cls(
        http=http,
        endpoint=f"{url}/introspect",
        client_id="rs",
        client_secret=SECRET,
        issuer="https://idp.example",
        audience=AUDIENCE,
        clock=SettableClock(T0),
        **settings,
    )


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def test_an_active_token_is_read_and_the_request_is_proper(
    issuer: tuple[Issuer, str], http: httpx.Client
) -> None:
    script, url = issuer
    script.answer(active())
    read = introspector(url, http).introspect(TOKEN)
    assert (read.subject, read.acr, read.auth_time) == ("alice", "urn:mfa", T0 - 30)
    sent = script.seen[-1]
    assert sent["form"] == {"token": [TOKEN], "token_type_hint": ["access_token"]}
    assert sent["auth"].startswith("Basic ")


@pytest.mark.parametrize(
    "answer",
    [
        {"active": False},
        {"active": "true"},
        {"active": 1},
        {"active": "True"},
        {"active": None},
        {},
        active(active=False),
        active(active="true"),
        active(active=[True]),
    ],
)
def test_anything_but_active_true_is_inactive(
    answer: dict[str, Any], issuer: tuple[Issuer, str], http: httpx.Client
) -> None:
    script, url = issuer
    script.answer(answer)
    with pytest.raises(InvalidTokenError) as caught:
        introspector(url, http).introspect(TOKEN)
    assert caught.value.fault is TokenFault.INACTIVE


@pytest.mark.parametrize(
    ("answer", "fault"),
    [
        (active(exp=None), TokenFault.MALFORMED),
        (active(exp="1700000600"), TokenFault.MALFORMED),
        (active(exp=T0 - 31), TokenFault.EXPIRED),
        (active(aud="https://other"), TokenFault.AUDIENCE),
        (active(aud=None), TokenFault.AUDIENCE),
        (active(iss="https://evil.example"), TokenFault.ISSUER),
        (active(iss="https://idp.example/"), TokenFault.ISSUER),
        (active(token_type="refresh_token"), TokenFault.TYPE),
        (active(token_type="DPoP"), TokenFault.TYPE),
        (active(token_type=1), TokenFault.TYPE),
        (active(cnf={"jkt": "abc"}), TokenFault.SENDER_CONSTRAINED),
        (active(sub=None), TokenFault.MALFORMED),
        (active(acr=["urn:mfa"]), TokenFault.MALFORMED),
        (active(amr="pwd"), TokenFault.MALFORMED),
        (active(auth_time=T0 + 3600), TokenFault.ISSUED_AT),
        (active(nbf=T0 + 3600), TokenFault.NOT_BEFORE),
    ],
)
def test_the_claims_of_an_active_answer_are_checked(
    answer: dict[str, Any], fault: TokenFault, issuer: tuple[Issuer, str], http: httpx.Client
) -> None:
    script, url = issuer
    script.answer(answer)
    with pytest.raises(InvalidTokenError) as caught:
        introspector(url, http).introspect(TOKEN)
    assert caught.value.fault is fault


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"active": true}'),
        (401, b'{"error": "invalid_client"}'),
        (302, b""),
        (200, b"<html>maintenance</html>"),
        (200, b"[]"),
        (200, b'"active"'),
        (200, b'{"active": true, "active": false}'),  # which one? neither
        (200, b'{"active": true, "exp": NaN}'),
        (200, b"\xff\xfe"),
        (200, b""),
    ],
)
def test_a_broken_answer_is_unavailable_never_allowed(
    status: int, body: bytes, issuer: tuple[Issuer, str], http: httpx.Client
) -> None:
    script, url = issuer
    script.answer(body, status)
    with pytest.raises(TokenUnavailableError) as caught:
        introspector(url, http).introspect(TOKEN)
    assert TOKEN not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_huge_answer_is_refused_unread(issuer: tuple[Issuer, str], http: httpx.Client) -> None:
    script, url = issuer
    script.answer(active(padding="x" * MAX_INTROSPECTION_BYTES))
    with pytest.raises(TokenUnavailableError, match="too large"):
        introspector(url, http).introspect(TOKEN)
    # a length it does not declare: read only up to the bound
    script.answer(active(padding="x" * MAX_INTROSPECTION_BYTES), **{"Content-Length": "10"})
    with pytest.raises(TokenUnavailableError):
        introspector(url, http).introspect(TOKEN)


def test_timeouts_and_dropped_connections_are_unavailable(
    issuer: tuple[Issuer, str], http: httpx.Client
) -> None:
    script, url = issuer
    script.answer(active())
    script.hang.clear()  # the issuer never answers in time
    with pytest.raises(TokenUnavailableError, match="Timeout"):
        introspector(url, http, timeout=0.2).introspect(TOKEN)
    script.hang.set()
    script.drop = True
    with pytest.raises(TokenUnavailableError):
        introspector(url, http).introspect(TOKEN)
    with pytest.raises(TokenUnavailableError):  # nobody listens there
        introspector("http://127.0.0.1:9", http).introspect(TOKEN)


async def test_async_introspection_refuses_alike(issuer: tuple[Issuer, str]) -> None:
    script, url = issuer
    async with httpx.AsyncClient() as client:
        script.answer(active())
        assert (await introspector(url, client, AsyncIntrospector).introspect(TOKEN)).acr
        script.answer({"active": "true"})
        with pytest.raises(InvalidTokenError):
            await introspector(url, client, AsyncIntrospector).introspect(TOKEN)
        script.answer(active(padding="x" * MAX_INTROSPECTION_BYTES))
        with pytest.raises(TokenUnavailableError):
            await introspector(url, client, AsyncIntrospector).introspect(TOKEN)
        script.answer(b"nope", 503)
        with pytest.raises(TokenUnavailableError):
            await introspector(url, client, AsyncIntrospector).introspect(TOKEN)


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_an_answer_of_undeclared_length_is_read_only_up_to_the_bound(
    asynchronous: bool, issuer: tuple[Issuer, str]
) -> None:
    """No Content-Length (the body ends when the issuer closes): the reader stops at the
    chunk that takes it over the bound, sync and async alike; under it, the answer counts."""
    script, url = issuer
    script.undeclared = True
    async with httpx.AsyncClient() as aclient:
        with httpx.Client() as client:
            if asynchronous:
                introspect = introspector(url, aclient, AsyncIntrospector).introspect
                fetch = async_http_jwks_fetcher(f"{url}/jwks", aclient)
            else:
                introspect = introspector(url, client).introspect
                fetch = http_jwks_fetcher(f"{url}/jwks", client)

            async def answer(call: Any, *args: Any) -> Any:
                result = call(*args)
                return await result if asynchronous else result

            script.answer(active(padding="x" * 1000))
            assert (await answer(introspect, TOKEN)).acr == "urn:mfa"
            script.answer(active(padding="x" * MAX_INTROSPECTION_BYTES))
            with pytest.raises(TokenUnavailableError, match="introspection: answer too large"):
                await answer(introspect, TOKEN)
            script.answer({"keys": [], "pad": "x" * (MAX_JWKS_BYTES - 100)})
            assert (await answer(fetch))["keys"] == []
            script.answer({"keys": [], "pad": "x" * MAX_JWKS_BYTES})
            with pytest.raises(TokenUnavailableError, match="jwks: answer too large"):
                await answer(fetch)


@pytest.mark.parametrize("value", ["", "x" * (16 * 1024 + 1), None, 7])
def test_a_token_that_cannot_be_one_is_not_sent(
    value: Any, issuer: tuple[Issuer, str], http: httpx.Client
) -> None:
    script, url = issuer
    with pytest.raises(InvalidTokenError):
        introspector(url, http).introspect(value)
    assert script.seen == []


def test_settings_are_checked(http: httpx.Client) -> None:
    for endpoint in ("http://idp.example/introspect", "ftp://x", "", "file:///etc/passwd"):
        with pytest.raises(ConfigurationError):
            introspector(endpoint, http)
    for timeout in (0, -1, 61, True):
        with pytest.raises(ConfigurationError):
            introspector("https://idp.example", http, timeout=timeout)
    for uri in ("http://idp.example/jwks", "javascript:x"):
        with pytest.raises(ConfigurationError):
            http_jwks_fetcher(uri, http)
    assert SECRET not in repr(introspector("https://idp.example", http))


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost.attacker.example/x",
        "http://127.0.0.1.nip.io/x",
        "http://127.0.0.1@attacker.example/x",
        "http://localhostx/x",
        "http://[::1].attacker.example/x",
        "http://127.0.0.1:99999/x",
        "https://user:password@idp.example/x",
    ],
)
def test_only_a_parsed_loopback_host_may_be_plain_http(url: str, http: httpx.Client) -> None:
    """A prefix match took these hosts for loopback, and sent the client secret (and took
    the JWKS) over plain http to another machine."""
    with pytest.raises(ConfigurationError):
        introspector(url.removesuffix("/x"), http)
    with pytest.raises(ConfigurationError):
        http_jwks_fetcher(url, http)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.2"])
def test_loopback_hosts_may_be_plain_http(host: str, http: httpx.Client) -> None:
    assert introspector(f"http://{host}:8080", http).endpoint.startswith(f"http://{host}")
    http_jwks_fetcher(f"http://{host}:8080/jwks?v=1", http)


def test_client_credentials_are_form_encoded_before_basic(
    issuer: tuple[Issuer, str], http: httpx.Client
) -> None:
    """RFC 7662 2.1 and RFC 6749 2.3.1: a client id that is a URL (its ``:``) and a
    secret with ``%`` and ``+`` reach a conforming server as they are."""
    script, url = issuer
    script.answer(active())
    client_id, secret = "https://api.example:8443", "s%2B+:/ é"
    Introspector(
        http=http,
        endpoint=f"{url}/introspect",
        client_id=client_id,
        client_secret=secret,
        issuer="https://idp.example",
        audience=AUDIENCE,
        clock=SettableClock(T0),
    ).introspect(TOKEN)
    scheme, _, encoded = script.seen[-1]["auth"].partition(" ")
    assert scheme == "Basic"
    sent_id, _, sent_secret = base64.b64decode(encoded).decode().partition(":")
    assert (unquote_plus(sent_id), unquote_plus(sent_secret)) == (client_id, secret)


def test_jwks_fetch_failures_are_unavailable(
    issuer: tuple[Issuer, str], http: httpx.Client
) -> None:
    script, url = issuer
    fetch = http_jwks_fetcher(f"{url}/jwks", http)
    clock = SettableClock(T0)
    for status, body in ((500, b"{}"), (200, b"not json"), (200, b'{"keys": "x"}')):
        script.answer(body, status)
        validator = AccessTokenValidator(
            issuer="https://idp.example", audience=AUDIENCE, fetch_jwks=fetch, clock=clock
        )
        with pytest.raises(TokenUnavailableError):
            validator.validate("eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.e30.c2ln")
    script.answer({"keys": [], "pad": "x" * MAX_JWKS_BYTES})
    with pytest.raises(TokenUnavailableError, match="too large"):
        fetch()


async def test_async_jwks_fetch_is_bounded(issuer: tuple[Issuer, str]) -> None:
    script, url = issuer
    async with httpx.AsyncClient() as client:
        fetch = async_http_jwks_fetcher(f"{url}/jwks", client)
        script.answer({"keys": [{"kty": "RSA"}]})
        assert (await fetch())["keys"] == [{"kty": "RSA"}]
        script.answer({"keys": [], "pad": "x" * MAX_JWKS_BYTES})
        with pytest.raises(TokenUnavailableError):
            await fetch()
