"""What a callback may carry, and what a provider may sign, never makes ``complete`` raise
or take away anything it does not own:

- a ``state`` that cannot name an OIDC trip (too long for the store, not text, another
  kind of challenge's id) is ``unknown_state`` before the store is asked: a resume,
  passkey or transaction challenge whose id reaches the callback is left as it was;
- a signed ID token with a lone-surrogate nonce, acr or amr, or nested deeper than JSON
  can be read, is ``invalid_token``;
- the code proved at the start dates the grant when it is older than ``auth_time``;
- a provider failure is one line on ``stepup.oidc`` (a misconfiguration at ERROR),
  never a store outage on ``stepup.store``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import RSAKey

from idp.oidc.harness import ALICE
from idp.oidc.useragent import UserAgent, query_of
from stepup.adapters.idp.oidc import (
    AsyncOIDCReauth,
    OIDCProviderConfig,
    OIDCReason,
    OIDCReauth,
    ProviderUnavailableError,
)
from stepup.adapters.storage.base import MAX_KEY_LENGTH
from stepup.adapters.storage.memory import MemoryStore
from stepup.records import Challenge
from stepup.resume import PREFIX as RESUME_PREFIX
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

ISS = "https://op.example"
NOW = 1_800_000_000.0
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
ALICE_SUBJECT = Subject(
    "u", "s1", Identity(LoginMethod.OIDC, issuer=ISS, subject="alice", provider="p")
)


class MockProvider:
    """An OP on ``httpx.MockTransport`` whose token endpoint signs whatever payload the
    test makes of the honest claims (``make``), with the OP's own published key."""

    def __init__(self) -> None:
        self.make: Callable[[dict[str, Any]], bytes] = lambda c: json.dumps(c).encode()
        self.claims: dict[str, Any] = {}
        self.discovery: dict[str, Any] = {
            "issuer": ISS,
            "authorization_endpoint": ISS + "/auth",
            "token_endpoint": ISS + "/token",
            "jwks_uri": ISS + "/jwks",
        }
        self.down = False
        self.token_status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused to https://user:pw@op.example")
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery)
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [KEY.as_dict(private=False)]})
        if path == "/token" and self.token_status != 200:
            return httpx.Response(self.token_status, text="trace: code=secret-code")
        if path == "/token":
            token = jws.serialize_compact(
                {"alg": "RS256", "kid": "k1"}, self.make(self.claims), KEY
            )
            return httpx.Response(200, json={"id_token": token, "token_type": "Bearer"})
        return httpx.Response(404)


@pytest.fixture
def op() -> MockProvider:
    return MockProvider()


@pytest.fixture
def mock_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def mock_clock() -> SettableClock:
    return SettableClock(NOW)


@pytest.fixture
def mocked(
    op: MockProvider, mock_store: MemoryStore, mock_clock: SettableClock
) -> Iterator[OIDCReauth]:
    config = OIDCProviderConfig(
        issuer=ISS, client_id="rp", client_secret="s", redirect_uri="https://app.example/cb",
        name="corp-op",
    )  # fmt: skip
    with httpx.Client(transport=httpx.MockTransport(op)) as http:
        yield OIDCReauth(config, mock_store, http=http, clock=mock_clock)


def _trip(reauth: OIDCReauth, op: MockProvider, at: float, **start: Any) -> str:
    """Start a trip; the OP will answer it with an honest token logged in at ``at``."""
    url = reauth.start(ALICE_SUBJECT, return_to="/x", action="a", **start)
    query = query_of(url)
    op.claims = {
        "iss": ISS, "sub": "alice", "aud": "rp", "exp": at + 60, "iat": at, "auth_time": at,
        "nonce": query["nonce"],
    }  # fmt: skip
    return query["state"]


# the state ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        "A" * (MAX_KEY_LENGTH + 1),  # over the store's key limit, under the adapter's 4096
        "A" * 4096,
        "oidc:" + "A" * 4000,
        "a\x00b",
        "\ud800" * 43,
        "oidc:" + "é" * 43,
        "resume:" + "A" * 36,
    ],
)
def test_a_state_that_cannot_be_a_trip_is_unknown_before_the_store(
    mocked: OIDCReauth, state: str
) -> None:
    outcome = mocked.complete(ALICE_SUBJECT, {"state": state, "code": "c"})
    assert (outcome.reason, outcome.detail) == (OIDCReason.UNKNOWN_STATE, "")


async def test_the_async_client_refuses_it_too(op: MockProvider) -> None:
    config = OIDCProviderConfig(
        issuer=ISS, client_id="rp", client_secret="s", redirect_uri="https://app.example/cb"
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(op)) as http:
        reauth = AsyncOIDCReauth(config, MemoryStore(), http=http)
        outcome = await reauth.complete(ALICE_SUBJECT, {"state": "A" * 3000, "code": "c"})
    assert outcome.reason is OIDCReason.UNKNOWN_STATE


def _other_challenge(challenge_id: str, data: dict[str, Any]) -> Challenge:
    return Challenge(challenge_id, "u", "s1", NOW, NOW + 600, data)


@pytest.mark.parametrize(
    "challenge_id",
    [
        RESUME_PREFIX + "tab-a",  # a suspended form: its token travels as ?resume=
        RESUME_PREFIX + "A" * 43,
        "webauthn:" + "B" * 43,  # a passkey ceremony
        "tx:" + "c" * 64,  # a transaction proof
        "_" + "d" * 40,  # a SAML request
    ],
)
def test_a_callback_leaves_every_other_kind_of_challenge_alone(
    mocked: OIDCReauth, mock_store: MemoryStore, challenge_id: str
) -> None:
    """A cross-site navigation to the callback carrying another challenge's id is
    ``unknown_state`` and takes nothing: the resume challenge (or passkey ceremony, or
    transaction proof, or SAML request) is still there for its owner."""
    kept = _other_challenge(challenge_id, {"kind": "other"})
    mock_store.put_challenge(kept)
    outcome = mocked.complete(ALICE_SUBJECT, {"state": challenge_id, "code": "c"})
    assert outcome.reason is OIDCReason.UNKNOWN_STATE
    assert mock_store.take_challenge(challenge_id, NOW) == kept


def test_trips_carry_the_oidc_prefix_and_old_bare_states_still_complete(
    mocked: OIDCReauth, op: MockProvider, mock_store: MemoryStore
) -> None:
    """New trips' states are ``oidc:`` + 256 bits; a trip stored before the prefix (a
    bare 43-character state) still completes until it expires."""
    state = _trip(mocked, op, NOW)
    assert state.startswith("oidc:")
    assert len(state) == 5 + 43
    assert mocked.complete(ALICE_SUBJECT, {"state": state, "code": "c"}).ok

    state = _trip(mocked, op, NOW)
    taken = mock_store.take_challenge(state, 0.0)
    assert taken is not None
    bare = state.removeprefix("oidc:")
    mock_store.put_challenge(replace(taken, challenge_id=bare))
    assert mocked.complete(ALICE_SUBJECT, {"state": bare, "code": "c"}).ok


@pytest.mark.oidc
def test_a_resume_challenge_survives_a_callback_with_its_id_at_a_real_provider(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    challenge_id = RESUME_PREFIX + "tab-a"
    kept = Challenge(challenge_id, alice.user_id, alice.session_id, 0.0, 9e9, {"kind": "x"})
    store.put_challenge(kept)
    url = reauth.start(alice, return_to="/x")
    forged = reauth.complete(alice, {"state": challenge_id, "code": "x"})
    assert forged.reason is OIDCReason.UNKNOWN_STATE
    honest = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert honest.ok
    assert store.take_challenge(challenge_id, 1.0) == kept


# what the provider signs -------------------------------------------------------------------


def _nested(claims: dict[str, Any]) -> bytes:
    return json.dumps(claims).encode()[:-1] + b',"x":' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.mark.parametrize(
    ("make", "detail"),
    [
        (lambda c: json.dumps({**c, "nonce": "\ud800"}).encode(), "nonce"),
        (lambda c: json.dumps({**c, "nonce": ["x"]}).encode(), "nonce"),
        (_nested, "malformed"),
        (lambda c: json.dumps({**c, "acr": "\udfff"}).encode(), "malformed"),
        (lambda c: json.dumps(c).encode()[:-1] + b', "sub": "mallory"}', "malformed"),
    ],
    ids=["surrogate-nonce", "list-nonce", "nested-5000", "surrogate-acr", "repeated-sub"],
)
def test_a_signed_token_the_adapter_cannot_read_is_invalid_never_an_exception(
    mocked: OIDCReauth,
    op: MockProvider,
    make: Callable[[dict[str, Any]], bytes],
    detail: str,
) -> None:
    state = _trip(mocked, op, NOW)
    op.make = make
    outcome = mocked.complete(ALICE_SUBJECT, {"state": state, "code": "c"})
    assert (outcome.reason, outcome.detail) == (OIDCReason.INVALID_TOKEN, detail)


def test_an_amr_entry_that_is_no_text_is_left_out(mocked: OIDCReauth, op: MockProvider) -> None:
    state = _trip(mocked, op, NOW)
    op.make = lambda c: json.dumps({**c, "amr": ["pwd", "\ud800", 3]}).encode()
    outcome = mocked.complete(ALICE_SUBJECT, {"state": state, "code": "c"})
    assert (outcome.reason, outcome.amr) == (OIDCReason.OK, ("pwd",))


@pytest.mark.parametrize("code", ["\ud800", "a\nb", "caf\u00e9"])
def test_a_code_that_is_not_printable_ascii_is_no_code(
    mocked: OIDCReauth, op: MockProvider, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 6749's code is ``1*VSCHAR``: another one never reaches the token endpoint
    (where encoding it would fail, and read as an outage)."""
    state = _trip(mocked, op, NOW)
    with caplog.at_level(logging.DEBUG, logger="stepup"):
        outcome = mocked.complete(ALICE_SUBJECT, {"state": state, "code": code})
    assert (outcome.reason, outcome.detail) == (OIDCReason.PROVIDER_ERROR, "no_code")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# the code's time ---------------------------------------------------------------------------


def test_the_code_proved_at_the_start_dates_the_grant_when_older(
    mocked: OIDCReauth, op: MockProvider, mock_clock: SettableClock
) -> None:
    """The person took 470 s at the provider: ``auth_time`` is T0+470, but the code was
    typed at T0, so the grant is dated T0 (never fresher than its parts)."""
    state = _trip(mocked, op, NOW + 470, otp_proved=True)
    mock_clock.advance(470)
    outcome = mocked.complete(ALICE_SUBJECT, {"state": state, "code": "c"})
    assert outcome.ok
    assert outcome.otp_proved
    assert (outcome.auth_time, outcome.otp_proved_at, outcome.authenticated_at) == (
        NOW + 470,
        NOW,
        NOW,
    )

    plain = _trip(mocked, op, NOW + 480)
    outcome = mocked.complete(ALICE_SUBJECT, {"state": plain, "code": "c"})
    assert (outcome.otp_proved, outcome.otp_proved_at) == (False, None)
    assert outcome.authenticated_at == outcome.auth_time == NOW + 480


def test_a_trip_stored_with_the_old_bool_reads_as_proved_at_its_start(
    mocked: OIDCReauth, op: MockProvider, mock_store: MemoryStore, mock_clock: SettableClock
) -> None:
    """An earlier version stored only ``otp_proved: true``, set by the start request that
    checked the code: that is read as proved at the trip's issue time."""
    state = _trip(mocked, op, NOW + 300, otp_proved=True)
    taken = mock_store.take_challenge(state, 0.0)
    assert taken is not None
    old = {k: v for k, v in taken.data.items() if k != "otp_proved_at"}
    assert old["otp_proved"] is True
    mock_store.put_challenge(replace(taken, data=old))
    mock_clock.advance(300)
    outcome = mocked.complete(ALICE_SUBJECT, {"state": state, "code": "c"})
    assert (outcome.ok, outcome.otp_proved, outcome.authenticated_at) == (True, True, NOW)


@pytest.mark.parametrize("bad", ["soon", True, float("nan"), float("inf"), [1]])
def test_a_tampered_stored_proof_time_is_no_challenge_of_ours(
    mocked: OIDCReauth, op: MockProvider, mock_store: MemoryStore, bad: object
) -> None:
    state = _trip(mocked, op, NOW, otp_proved=True)
    taken = mock_store.take_challenge(state, 0.0)
    assert taken is not None
    mock_store.put_challenge(replace(taken, data={**taken.data, "otp_proved_at": bad}))
    outcome = mocked.complete(ALICE_SUBJECT, {"state": state, "code": "c"})
    assert (outcome.reason, outcome.otp_proved) == (OIDCReason.UNKNOWN_STATE, False)


# what is logged ----------------------------------------------------------------------------


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    return [(r.name, r.levelno, r.getMessage()) for r in caplog.records]


def test_an_unreachable_provider_is_one_warning_on_its_own_logger(
    mocked: OIDCReauth, op: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    op.down = True
    with caplog.at_level(logging.DEBUG, logger="stepup"), pytest.raises(ProviderUnavailableError):
        mocked.start(ALICE_SUBJECT, return_to="/x")
    assert _lines(caplog) == [
        (
            "stepup.oidc",
            logging.WARNING,
            "OIDC provider corp-op unavailable: ProviderUnavailableError: discovery: ConnectError",
        )
    ]
    assert "pw@" not in caplog.text


def test_a_discovery_document_naming_another_issuer_is_an_error(
    mocked: OIDCReauth, op: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    op.discovery["issuer"] = "https://other.example"
    with caplog.at_level(logging.DEBUG, logger="stepup"), pytest.raises(ProviderUnavailableError):
        mocked.start(ALICE_SUBJECT, return_to="/x")
    assert _lines(caplog) == [
        (
            "stepup.oidc",
            logging.ERROR,
            "OIDC provider corp-op misconfigured: ProviderUnavailableError: "
            "discovery: the document's issuer is not the configured one",
        )
    ]


def test_a_failing_token_endpoint_is_logged_once_naming_the_step(
    mocked: OIDCReauth, op: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    state = _trip(mocked, op, NOW)
    op.token_status = 500
    with caplog.at_level(logging.DEBUG, logger="stepup"):
        outcome = mocked.complete(ALICE_SUBJECT, {"state": state, "code": "secret-code"})
    assert (outcome.reason, outcome.detail) == (OIDCReason.UNAVAILABLE, "provider")
    assert _lines(caplog) == [
        (
            "stepup.oidc",
            logging.WARNING,
            "OIDC provider corp-op unavailable: ProviderUnavailableError: "
            "token: the provider answered HTTP 500",
        )
    ]
    assert "secret-code" not in caplog.text
    assert state not in caplog.text


def test_the_store_failing_is_still_the_stores_line(
    op: MockProvider, caplog: pytest.LogCaptureFixture
) -> None:
    class Down(MemoryStore):
        def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
            raise OSError("down")

    config = OIDCProviderConfig(
        issuer=ISS, client_id="rp", client_secret="s", redirect_uri="https://app.example/cb"
    )
    with httpx.Client(transport=httpx.MockTransport(op)) as http:
        reauth = OIDCReauth(config, Down(), http=http)
        with caplog.at_level(logging.DEBUG, logger="stepup"):
            outcome = reauth.complete(ALICE_SUBJECT, {"state": "oidc:" + "s" * 43, "code": "c"})
    assert (outcome.reason, outcome.detail) == (OIDCReason.UNAVAILABLE, "store")
    assert [(name, level) for name, level, _ in _lines(caplog)] == [
        ("stepup.store", logging.WARNING)
    ]
