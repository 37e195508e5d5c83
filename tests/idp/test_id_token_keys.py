"""The OIDC re-authentication's ID-token keys over their whole life: first fetch, refetch
on an unknown ``kid``, ``jwks_refresh_interval`` and ``jwks_max_key_age``, against JWKS
documents a provider (or whatever stands in front of it) may really serve. One unreadable
entry is left out; a document with no usable key, or one the parser chokes on, is a
failed fetch; a failed fetch is ``ProviderUnavailableError`` inside the flow and an
``unavailable`` outcome at the callback (never an untyped exception, never a 500), and
never keeps keys alive past ``jwks_max_key_age``.

The provider is an ``httpx.MockTransport``: discovery, a JWKS endpoint whose answer each
test chooses, and a token endpoint minting ID tokens with the key the test chooses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey

from stepup._flow import run
from stepup.adapters.idp.oidc import (
    AsyncOIDCReauth,
    OIDCOutcome,
    OIDCProviderConfig,
    OIDCReason,
    OIDCReauth,
    ProviderUnavailableError,
    flows,
)
from stepup.adapters.idp.oidc.protocol import HttpResponse, ProviderMetadata, parse_jwks
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

T0 = 1_800_000_000
ISSUER = "http://127.0.0.1:9/op"
CLIENT = "stepup-rp"
#: The defaults (the same as the access-token validator's), which these tests rely on.
MAX_KEY_AGE, REFRESH = 3600.0, 60.0
ALICE = Subject(
    "alice", "s1", Identity(LoginMethod.OIDC, issuer=ISSUER, subject="sub-alice", provider="op")
)
K1 = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
K2 = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig", "alg": "RS256"})
EC = ECKey.generate_key("P-256", parameters={"kid": "e1"})
ED = OKPKey.generate_key("Ed25519", parameters={"kid": "d1"})
METADATA = ProviderMetadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/auth",
    token_endpoint=f"{ISSUER}/token",
    jwks_uri=f"{ISSUER}/jwks",
)


def public(key: Any, **changes: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), **changes}


#: Entries the JOSE library cannot import: joserfc 1.8 raises KeyError for an empty
#: curve name, which is neither a JoseError nor a ValueError.
ODD_EC = public(EC, kid="odd-ec", crv="")
ODD_OKP = public(ED, kid="odd-ed", crv="")
#: JSON nested deeper than the parser can follow: json.loads raises RecursionError.
TOO_DEEP = b'{"keys": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"


def keys_body(*entries: Any) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


def answer(outcome: str) -> httpx.Response | Exception:
    """What the JWKS endpoint answers: a good set, a good set with unreadable entries, a
    set with no usable key, a document the parser chokes on, an error status, or a
    failed request."""
    bodies = {
        "k1": keys_body(public(K1)),
        "k2": keys_body(public(K2)),
        "k1+odd": keys_body(ODD_EC, public(K1), ODD_OKP),
        "k2+odd": keys_body(ODD_OKP, public(K2), ODD_EC),
        "odd": keys_body(ODD_EC, ODD_OKP),
        "empty": keys_body(),
        "deep": TOO_DEEP,
    }
    if outcome in bodies:
        return httpx.Response(200, content=bodies[outcome])
    if outcome == "http500":
        return httpx.Response(500)
    if outcome == "refused":
        return httpx.ConnectError("connection refused")
    assert outcome == "oserror"
    return OSError("no route to host")  # not an httpx error: the client passes it on


#: Which keys each outcome publishes (None: the fetch fails).
PUBLISHES: dict[str, frozenset[str] | None] = {
    "k1": frozenset({"k1"}),
    "k2": frozenset({"k2"}),
    "k1+odd": frozenset({"k1"}),
    "k2+odd": frozenset({"k2"}),
    "odd": None,
    "empty": None,
    "deep": None,
    "http500": None,
    "refused": None,
    "oserror": None,
}
FAILING = sorted(outcome for outcome, keys in PUBLISHES.items() if keys is None)


@dataclass
class Provider:
    """Discovery, keys and a token endpoint; records when the keys were fetched."""

    clock: SettableClock
    outcome: str = "k1"
    signer: Any = field(default_factory=lambda: K1)
    nonce: str = ""
    jwks: Callable[[], httpx.Response | Exception] | None = None
    fetches: list[tuple[float, str]] = field(default_factory=list)

    def _jwks(self) -> httpx.Response:
        self.fetches.append((self.clock(), self.outcome))
        reply = self.jwks() if self.jwks is not None else answer(self.outcome)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _token(self) -> httpx.Response:
        now = int(self.clock())
        claims = {
            "iss": ISSUER,
            "sub": "sub-alice",
            "aud": CLIENT,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "nonce": self.nonce,
        }
        header = {"alg": "RS256", "kid": self.signer.kid}
        token = jwt.encode(header, claims, self.signer, algorithms=["RS256"])
        return httpx.Response(200, json={"id_token": token, "token_type": "Bearer"})

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": METADATA.authorization_endpoint,
                    "token_endpoint": METADATA.token_endpoint,
                    "jwks_uri": METADATA.jwks_uri,
                },
            )
        if path.endswith("/jwks"):
            return self._jwks()
        if path.endswith("/token"):
            return self._token()
        return httpx.Response(404)


def config(**changes: Any) -> OIDCProviderConfig:
    return OIDCProviderConfig(
        issuer=ISSUER,
        client_id=CLIENT,
        client_secret="client-secret-value",
        redirect_uri="http://127.0.0.1:9/rp/callback",
        name="op",
        **changes,
    )


def reauth_at(provider: Provider) -> OIDCReauth:
    http = httpx.Client(transport=httpx.MockTransport(provider.handle))
    return OIDCReauth(config(), MemoryStore(), http=http, clock=provider.clock)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def trip(oidc: OIDCReauth, provider: Provider, signer: Any = K1) -> OIDCOutcome:
    """One re-authentication, answered with an ID token signed by ``signer``."""
    sent = query(oidc.start(ALICE, return_to="/"))
    provider.nonce, provider.signer = sent["nonce"], signer
    return oidc.complete(ALICE, {"state": sent["state"], "code": "code-1"})


def verdict(outcome: OIDCOutcome) -> tuple[OIDCReason, str]:
    return outcome.reason, outcome.detail


OK = (OIDCReason.OK, "")
UNKNOWN_KEY = (OIDCReason.INVALID_TOKEN, "unknown_key")
UNAVAILABLE = (OIDCReason.UNAVAILABLE, "provider")


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


@pytest.fixture
def provider(clock: SettableClock) -> Provider:
    return Provider(clock)


# one entry at a time -------------------------------------------------------------------


@pytest.mark.parametrize("odd", [ODD_EC, ODD_OKP, public(EC, crv="P-999"), public(ED, crv="Ed99")])
def test_an_entry_the_jose_library_cannot_import_is_left_out(odd: dict[str, Any]) -> None:
    keys = parse_jwks(HttpResponse(200, keys_body(odd, public(K1), odd)))
    assert [key.kid for key in keys] == ["k1"]


@pytest.mark.parametrize("error", [KeyError, IndexError, AttributeError, RuntimeError])
def test_any_error_importing_an_entry_leaves_only_that_entry_out(
    error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the JOSE library raises on an entry, now or in a later version."""
    real = JWKRegistry.import_key

    def import_key(data: Any, *args: Any, **kwargs: Any) -> Any:
        if data.get("kid") == "bad":
            raise error("n")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(JWKRegistry, "import_key", import_key)
    keys = parse_jwks(HttpResponse(200, keys_body(public(K2, kid="bad"), public(K1))))
    assert [key.kid for key in keys] == ["k1"]
    with pytest.raises(ProviderUnavailableError, match="no usable signing key"):
        parse_jwks(HttpResponse(200, keys_body(public(K2, kid="bad"))))


@pytest.mark.parametrize(
    "entries",
    [
        [ODD_EC, ODD_OKP],
        [],
        [public(OKPKey.generate_key("X25519"))],  # key agreement, not signatures
        [public(K1, key_ops=["sign"])],  # a public key that may not verify
        [OctKey.generate_key(256).as_dict()],  # symmetric: never the provider's signature
        [public(K1, use="enc")],
    ],
)
def test_a_set_without_a_usable_signing_key_is_the_provider_unavailable(
    entries: list[Any],
) -> None:
    """Beside an entry the JOSE library cannot import: still the typed error."""
    with pytest.raises(ProviderUnavailableError, match="no usable signing key"):
        parse_jwks(HttpResponse(200, keys_body(*entries, ODD_OKP)))


def test_a_document_too_deep_to_parse_is_the_provider_unavailable() -> None:
    with pytest.raises(ProviderUnavailableError, match="not JSON"):
        parse_jwks(HttpResponse(200, TOO_DEEP))


def test_the_good_key_still_verifies_beside_an_entry_that_cannot_be_imported(
    provider: Provider,
) -> None:
    """The review's case: a good RSA key and an OKP key with ``"crv": ""``."""
    provider.outcome = "k1+odd"
    oidc = reauth_at(provider)
    assert verdict(trip(oidc, provider)) == OK
    assert verdict(trip(oidc, provider, K2)) == UNKNOWN_KEY  # not published: refused


# failed fetches ----------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", FAILING)
def test_a_failed_first_fetch_is_unavailable_and_backs_off(
    outcome: str, provider: Provider, clock: SettableClock
) -> None:
    """No usable key, an unparsable document, an error status, a failed request: the
    callback is ``unavailable`` (no exception), retried only after the refresh
    interval, and accepted once the provider serves a good set."""
    provider.outcome = outcome
    oidc = reauth_at(provider)
    for _ in range(3):
        assert verdict(trip(oidc, provider)) == UNAVAILABLE
        clock.advance(REFRESH / 4)
    assert len(provider.fetches) == 1  # the back-off holds for a broken set too
    clock.advance(REFRESH)
    provider.outcome = "k1+odd"
    assert verdict(trip(oidc, provider)) == OK
    assert len(provider.fetches) == 2


@pytest.mark.parametrize(
    ("outcome", "cause"),
    [
        ("odd", "no usable signing key"),
        ("empty", "no usable signing key"),
        ("deep", "not JSON"),
        ("http500", "HTTP 500"),
        ("oserror", "OSError"),
    ],
)
def test_the_unavailable_error_names_the_cause_and_no_key_material(
    outcome: str, cause: str, provider: Provider
) -> None:
    provider.outcome = outcome
    http = httpx.Client(transport=httpx.MockTransport(provider.handle))
    effects = _Http(http)
    with pytest.raises(ProviderUnavailableError) as caught:
        run(flows._current_keys(config(), flows.ProviderCache(), METADATA, T0), effects)
    text = f"{caught.value} {caught.value!r}"
    assert cause in text
    for secret in (K1.as_dict()["n"], ED.as_dict()["x"], "client-secret-value", "route"):
        assert secret not in text


def test_an_unforeseen_error_reading_the_keys_is_typed_and_named(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parser that raises something nobody foresaw (here with key material in its
    message): ``unavailable`` at the callback, the error's type (only) in the message."""

    def choke(response: HttpResponse) -> Any:
        raise LookupError(K1.as_dict()["n"])

    monkeypatch.setattr(flows, "parse_jwks", choke)
    assert verdict(trip(reauth_at(provider), provider)) == UNAVAILABLE
    http = httpx.Client(transport=httpx.MockTransport(provider.handle))
    with pytest.raises(ProviderUnavailableError) as caught:
        run(flows._current_keys(config(), flows.ProviderCache(), METADATA, T0), _Http(http))
    assert "LookupError" in str(caught.value)
    assert K1.as_dict()["n"] not in f"{caught.value} {caught.value!r}"
    assert caught.value.__cause__ is None  # not chained: tracebacks would print it


class _Http:
    """The flow's one effect, over a sync httpx client."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http

    def http(self, request: Any) -> HttpResponse:
        response = self._http.request(request.method, request.url, headers=request.headers)
        return HttpResponse(response.status_code, response.content)


# max_key_age -------------------------------------------------------------------------------


def test_a_withdrawn_key_stops_verifying_after_max_key_age(
    provider: Provider, clock: SettableClock
) -> None:
    """The provider withdraws k1 and publishes k2 (beside entries the JOSE library cannot
    import). Tokens signed with k1 keep verifying for the rest of the cached keys'
    ``jwks_max_key_age``, and never after."""
    oidc = reauth_at(provider)
    assert verdict(trip(oidc, provider)) == OK
    provider.outcome = "k2+odd"
    clock.advance(MAX_KEY_AGE - 1)
    assert verdict(trip(oidc, provider)) == OK  # still within max_key_age
    clock.advance(1)
    for _ in range(3):
        assert verdict(trip(oidc, provider)) == UNKNOWN_KEY
        clock.advance(REFRESH + 1)
    assert verdict(trip(oidc, provider, K2)) == OK
    assert [when - T0 for when, _ in provider.fetches] == [0, 3600, 3661, 3722]


@pytest.mark.parametrize("outcome", FAILING)
def test_old_keys_never_outlive_max_key_age_after_a_failed_refresh(
    outcome: str, provider: Provider, clock: SettableClock
) -> None:
    """The keys are due and the provider cannot give new ones: nothing verifies with
    the old keys (``unavailable``, fail closed) until a fetch succeeds."""
    oidc = reauth_at(provider)
    assert verdict(trip(oidc, provider)) == OK
    provider.outcome = outcome
    clock.advance(MAX_KEY_AGE)
    for _ in range(3):  # the attempt, then the back-off: unavailable throughout
        for _ in range(3):
            assert verdict(trip(oidc, provider)) == UNAVAILABLE
            clock.advance(REFRESH / 4)
        clock.advance(REFRESH)
    assert [when - T0 for when, _ in provider.fetches] == [0, 3600, 3705, 3810]
    provider.outcome = "k2"
    assert verdict(trip(oidc, provider)) == UNKNOWN_KEY
    assert verdict(trip(oidc, provider, K2)) == OK


@pytest.mark.parametrize("outcome", ["odd", "deep", "oserror"])
def test_a_failed_refresh_for_an_unknown_kid_keeps_the_keys_only_for_their_age(
    outcome: str, provider: Provider, clock: SettableClock
) -> None:
    """An unknown kid makes one refresh; when it fails, that callback is unavailable, the
    cached keys serve out their age, and no longer: the failed fetch made them no younger."""
    oidc = reauth_at(provider)
    assert verdict(trip(oidc, provider)) == OK
    provider.outcome = outcome
    clock.advance(300)
    assert verdict(trip(oidc, provider, K2)) == UNAVAILABLE
    assert verdict(trip(oidc, provider)) == OK
    assert verdict(trip(oidc, provider, K2)) == UNKNOWN_KEY  # no second refresh yet
    clock.advance(MAX_KEY_AGE - 300)
    assert verdict(trip(oidc, provider)) == UNAVAILABLE
    assert len(provider.fetches) == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"jwks_max_key_age": 30.0}, "at least jwks_refresh_interval"),
        ({"jwks_max_key_age": 0}, "jwks_max_key_age"),
        ({"jwks_max_key_age": 8 * 86400}, "jwks_max_key_age"),
        ({"jwks_max_key_age": True}, "jwks_max_key_age"),
        ({"jwks_max_key_age": "1h"}, "jwks_max_key_age"),
    ],
)
def test_max_key_age_is_checked_when_the_config_is_built(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        config(**changes)


def test_max_key_age_defaults_to_an_hour_like_the_access_tokens() -> None:
    built = config()
    assert (built.jwks_refresh_interval, built.jwks_max_key_age) == (REFRESH, MAX_KEY_AGE)
    assert config(jwks_max_key_age=REFRESH).jwks_max_key_age == REFRESH


# concurrent callbacks ------------------------------------------------------------------------


async def test_old_keys_serve_a_fetch_in_flight_for_one_refresh_interval_at_most(
    clock: SettableClock,
) -> None:
    """While one callback awaits the refresh, others use the old keys, but only up to
    max_key_age + refresh_interval; when the fetch fails, nothing is accepted."""
    provider = Provider(clock)
    gates: list[tuple[asyncio.Event, asyncio.Event]] = []  # (started, released)

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/jwks") and gates:
            started, released = gates[-1]
            started.set()
            await released.wait()
        return provider.handle(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    oidc = AsyncOIDCReauth(config(), MemoryStore(), http=http, clock=clock)

    async def atrip() -> OIDCOutcome:
        sent = query(await oidc.start(ALICE, return_to="/"))
        provider.nonce = sent["nonce"]
        return await oidc.complete(ALICE, {"state": sent["state"], "code": "code-1"})

    async def fetching() -> asyncio.Future[OIDCOutcome]:
        """A callback that has started a refresh and now awaits the provider."""
        started = asyncio.Event()
        gates.append((started, asyncio.Event()))
        callback = asyncio.ensure_future(atrip())
        for _ in range(1000):  # let the callback run up to its fetch (no time passes)
            if started.is_set() or callback.done():
                break
            await asyncio.sleep(0)
        assert started.is_set(), "the callback did not refresh the keys"
        return callback

    assert verdict(await atrip()) == OK
    provider.outcome = "deep"
    clock.advance(MAX_KEY_AGE)
    first = await fetching()
    clock.advance(REFRESH - 1)
    assert verdict(await atrip()) == OK  # meanwhile
    clock.advance(1)
    second = await fetching()  # the interval has passed: it fetches too
    clock.advance(1)
    assert verdict(await atrip()) == UNAVAILABLE  # older than max_key_age + interval
    for _, released in gates:
        released.set()
    for callback in (first, second):
        assert verdict(await callback) == UNAVAILABLE
    assert verdict(await atrip()) == UNAVAILABLE  # both failed, and no new attempt yet
    await http.aclose()


# the whole life, against a model -------------------------------------------------------------

OUTCOMES = sorted(PUBLISHES)
ADVANCES = [0.0, 1.0, 30.0, 59.0, 60.0, 61.0, 600.0, 1799.0, 3599.0, 3600.0, 3601.0, 7200.0]
SIGNERS = {"k1": K1, "k2": K2}


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ADVANCES), st.sampled_from(OUTCOMES), st.sampled_from(["k1", "k2"])
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_key_lifecycle_against_a_model(steps: list[tuple[float, str, str]]) -> None:
    """Each step moves the clock, sets what the JWKS endpoint answers, and completes a
    trip with an ID token signed by k1 or k2. The outcome must follow from the fetches
    made: ``ok`` only with a key the last successful fetch published, less than
    max_key_age ago; ``unavailable`` whenever that fetch is missing or too old; fetches
    at least the refresh interval apart; no exception."""
    clock = SettableClock(T0)
    provider = Provider(clock)
    oidc = reauth_at(provider)
    for advance, outcome, kid in steps:
        clock.advance(advance)
        provider.outcome = outcome
        before = len(provider.fetches)
        got = verdict(trip(oidc, provider, SIGNERS[kid]))
        now = clock()
        times = [when for when, _ in provider.fetches]
        assert all(b - a >= REFRESH for a, b in pairwise(times))
        successes = [(w, PUBLISHES[o]) for w, o in provider.fetches if PUBLISHES[o] is not None]
        fetched_now = provider.fetches[before:]
        if not successes or now - successes[-1][0] >= MAX_KEY_AGE:
            assert got == UNAVAILABLE
            continue
        published = successes[-1][1]
        assert published is not None
        if kid in published:
            assert got == OK
        elif fetched_now and PUBLISHES[fetched_now[-1][1]] is None:
            assert got == UNAVAILABLE
        else:
            assert got == UNKNOWN_KEY


# arbitrary documents ---------------------------------------------------------------------

MEMBERS = ["kty", "kid", "use", "alg", "key_ops", "crv", "x", "y", "n", "e", "d", "k", "oth"]
ODD_VALUES = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        2**64,
        10**400,
        1e308,
        "",
        "x",
        "A" * 400,
        "AQAB",
        "k1",
        "P-256",
        "Ed25519",
        "X25519",
        "RSA",
        "EC",
        "OKP",
        "oct",
        "sig",
        "enc",
        "RS256",
        "HS256",
        [],
        {},
        ["verify"],
        ["sign"],
        {"a": 1},
    ]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | ODD_VALUES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(MEMBERS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
REAL_ENTRIES = [
    public(K1),
    public(K2),
    public(EC),
    public(ED),
    public(ECKey.generate_key("P-384")),
    public(OKPKey.generate_key("X25519")),
    K1.as_dict(private=True),
    OctKey.generate_key(256).as_dict(),
]


@st.composite
def mutated_entries(draw: st.DrawFn) -> Any:
    """A real key with some members replaced by anything, or removed."""
    entry = dict(draw(st.sampled_from(REAL_ENTRIES)))
    for name in draw(st.lists(st.sampled_from(MEMBERS), max_size=3, unique=True)):
        if draw(st.booleans()):
            entry[name] = draw(ODD_VALUES | json_values)
        else:
            entry.pop(name, None)
    return entry


entries = st.sampled_from(REAL_ENTRIES) | mutated_entries() | json_values
documents = (
    st.builds(lambda keys: {"keys": keys}, st.lists(entries, max_size=6))
    | st.dictionaries(st.sampled_from(["keys", "kty"]) | st.text(max_size=4), json_values)
    | json_values
)


def _k1_published(data: Any) -> bool:
    keys = data.get("keys") if isinstance(data, dict) else None
    return isinstance(keys, list) and any(
        isinstance(e, dict) and e.get("n") == K1.as_dict()["n"] for e in keys
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_jwks_document_gives_keys_or_the_typed_error(data: Any) -> None:
    """Wrong types everywhere, missing members, empty strings, huge numbers: the parser
    returns public keys or ProviderUnavailableError, and nothing else."""
    try:
        keys = parse_jwks(HttpResponse(200, json.dumps(data).encode()))
    except ProviderUnavailableError:
        return
    assert keys
    assert all(not key.is_private for key in keys)
    assert all(key.key_type in ("RSA", "EC", "OKP") for key in keys)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
@example({"keys": [ODD_OKP, public(K1)]})
@example({"keys": [ODD_EC]})
def test_any_jwks_document_gives_a_callback_an_outcome(data: Any) -> None:
    """The same documents at the callback: an outcome every time, ``ok`` only when the
    real key is published, twice (the first fetch, then the cached or failed state)."""
    clock = SettableClock(T0)
    provider = Provider(clock, jwks=lambda: httpx.Response(200, json=data))
    oidc = reauth_at(provider)
    for _ in range(2):
        outcome = trip(oidc, provider)
        assert outcome.reason in {OIDCReason.OK, OIDCReason.INVALID_TOKEN, OIDCReason.UNAVAILABLE}
        if outcome.ok:
            assert _k1_published(data)


def test_a_short_rsa_key_is_no_signing_key() -> None:
    """RSA under 2048 bits signs nothing here, as for access tokens."""
    weak = RSAKey.generate_key(1024, parameters={"kid": "weak", "use": "sig"})
    keys = parse_jwks(HttpResponse(200, keys_body(public(weak), public(K1))))
    assert [key.kid for key in keys] == ["k1"]
    with pytest.raises(ProviderUnavailableError):
        parse_jwks(HttpResponse(200, keys_body(public(weak))))


# a new key under an old kid -----------------------------------------------------------

#: The provider's new key, published under the old key's ``kid`` (OIDC Core 10.1.1 asks
#: for a new kid; not every provider obliges).
K1_REPLACED = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})


def test_a_new_key_under_the_old_kid_is_fetched_once_and_verifies(
    provider: Provider, clock: SettableClock
) -> None:
    oidc = reauth_at(provider)
    assert verdict(trip(oidc, provider, K1)) == OK
    provider.jwks = lambda: httpx.Response(200, content=keys_body(public(K1_REPLACED)))
    clock.advance(REFRESH)
    fetched = len(provider.fetches)
    assert verdict(trip(oidc, provider, K1_REPLACED)) == OK
    assert len(provider.fetches) == fetched + 1
    # A forged signature under that kid spends the refresh budget and nothing else.
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
    assert verdict(trip(oidc, provider, forger)) == (OIDCReason.INVALID_TOKEN, "signature")
    assert verdict(trip(oidc, provider, forger)) == (OIDCReason.INVALID_TOKEN, "signature")
    assert len(provider.fetches) == fetched + 1  # within jwks_refresh_interval: no refetch


def test_a_fetch_cancelled_in_flight_is_no_attempt() -> None:
    """A request that goes away while the keys are fetched (its task cancelled, the
    flow closed at the fetch) made the fetch count as an attempt: every callback within
    ``jwks_refresh_interval`` then found no keys and none in flight, ``unavailable``
    for a minute. The provider never answered: the next request fetches."""
    cache = flows.ProviderCache()
    cancelled = flows._current_keys(config(), cache, METADATA, T0)
    effect, _ = next(cancelled)
    assert effect == "http"  # waiting for the provider's answer
    cancelled.close()  # what cancelling the awaiting task does to the flow
    assert cache.keys_fetching is None
    assert cache.keys_tried_at is None
    retried = flows._current_keys(config(), cache, METADATA, T0 + 1)
    assert next(retried)[0] == "http"  # fetched again, not refused
    retried.close()
    failed = flows._current_keys(config(), cache, METADATA, T0 + 2)
    next(failed)
    with pytest.raises(ProviderUnavailableError):
        failed.send(ProviderUnavailableError("jwks: down"))
    assert cache.keys_tried_at == T0 + 2  # a failure the provider gave still counts
    with pytest.raises(ProviderUnavailableError):
        run(flows._current_keys(config(), cache, METADATA, T0 + 3), _Http(lambda r: None))
