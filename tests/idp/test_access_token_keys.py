"""The access-token validator's keys over their whole life: first fetch, refetch on an
unknown ``kid``, the refetch interval and ``max_key_age``, against JWKS documents an
issuer (or whatever stands in front of it) may really serve. One unreadable entry is
left out; a document with no usable key, or one the parser chokes on, is a failed
fetch; a failed fetch is ``TokenUnavailableError`` (never an untyped exception) and
never keeps keys alive past ``max_key_age``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from stepup.adapters.idp.oidc import AccessTokenValidator
from stepup.adapters.idp.oidc.access_token import parse_jwks_document
from stepup.testing import SettableClock
from stepup.tokens import AccessToken, InvalidTokenError, TokenFault, TokenUnavailableError

T0 = 1_700_000_000
ISSUER, AUDIENCE = "https://idp.example", "https://api.example"
K1 = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
K2 = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig", "alg": "RS256"})
EC = ECKey.generate_key("P-256", parameters={"kid": "e1"})
ED = OKPKey.generate_key("Ed25519", parameters={"kid": "d1"})
MAX_KEY_AGE, REFETCH = 600.0, 60.0


def public(key: Any, **changes: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), **changes}


#: Entries the JOSE library cannot import: joserfc 1.8 raises KeyError for an empty
#: curve name, which is neither a JoseError nor a ValueError.
ODD_EC = public(EC, kid="odd-ec", crv="")
ODD_OKP = public(ED, kid="odd-ed", crv="")


class Exploding(list[Any]):
    """A ``keys`` list that cannot be read: stands for whatever a parser never foresaw."""

    def __iter__(self) -> Iterator[Any]:
        raise KeyError("")


def document(outcome: str) -> Any:
    """What the issuer serves: a good set, a good set with an unreadable entry, a set
    with no usable key, a document the parser chokes on, or an error."""
    return {
        "k1": {"keys": [public(K1)]},
        "k2": {"keys": [public(K2)]},
        "k1+odd": {"keys": [ODD_EC, public(K1), ODD_OKP]},
        "k2+odd": {"keys": [ODD_OKP, public(K2), ODD_EC]},
        "odd": {"keys": [ODD_EC, ODD_OKP]},
        "empty": {"keys": []},
        "explode": {"keys": Exploding([public(K1)])},
        "down": OSError("jwks endpoint down"),
    }[outcome]


#: Which keys each outcome publishes (None: the fetch fails).
PUBLISHES: dict[str, frozenset[str] | None] = {
    "k1": frozenset({"k1"}),
    "k2": frozenset({"k2"}),
    "k1+odd": frozenset({"k1"}),
    "k2+odd": frozenset({"k2"}),
    "odd": None,
    "empty": None,
    "explode": None,
    "down": None,
}


@dataclass
class Issuer:
    """The JWKS endpoint: answers with ``outcome`` and records when it was asked."""

    clock: SettableClock
    outcome: str = "k1"
    fetches: list[tuple[float, str]] = field(default_factory=list)

    def __call__(self) -> Any:
        self.fetches.append((self.clock(), self.outcome))
        answer = document(self.outcome)
        if isinstance(answer, Exception):
            raise answer
        return answer


def token(key: Any = K1, **changes: Any) -> str:
    payload = {"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "exp": T0 + 10**6, "iat": T0}
    payload.update(changes)
    header = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid}
    return jws.serialize_compact(header, json.dumps(payload).encode(), key)


def validator(fetch: Any, clock: SettableClock) -> AccessTokenValidator:
    return AccessTokenValidator(
        issuer=ISSUER,
        audience=AUDIENCE,
        fetch_jwks=fetch,
        clock=clock,
        refetch_interval=REFETCH,
        max_key_age=MAX_KEY_AGE,
    )


def unavailable(check: AccessTokenValidator, value: str) -> TokenUnavailableError:
    with pytest.raises(TokenUnavailableError) as caught:
        check.validate(value)
    return caught.value


def fault_of(check: AccessTokenValidator, value: str) -> TokenFault:
    with pytest.raises(InvalidTokenError) as caught:
        check.validate(value)
    return caught.value.fault


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


# one entry at a time -------------------------------------------------------------------


@pytest.mark.parametrize("odd", [ODD_EC, ODD_OKP, public(EC, crv="P-999"), public(ED, crv=[])])
def test_an_entry_the_jose_library_cannot_import_is_left_out(odd: dict[str, Any]) -> None:
    keys = parse_jwks_document({"keys": [odd, public(K1), odd]})
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
    keys = parse_jwks_document({"keys": [public(K2, kid="bad"), public(K1)]})
    assert [key.kid for key in keys] == ["k1"]
    with pytest.raises(TokenUnavailableError):
        parse_jwks_document({"keys": [public(K2, kid="bad")]})


@pytest.mark.parametrize("outcome", ["odd", "empty", "explode"])
def test_a_set_without_a_usable_key_is_a_failed_fetch(outcome: str, clock: SettableClock) -> None:
    """First fetch: unavailable (503) with the cause named, retried only after the
    refetch interval, then accepted once the issuer serves a good set."""
    issuer = Issuer(clock, outcome)
    check = validator(issuer, clock)
    good = token()
    errors = [unavailable(check, good) for _ in range(3)]
    assert len(issuer.fetches) == 1  # the back-off holds for a broken set too
    cause = "KeyError" if outcome == "explode" else "no usable signing key"
    assert cause in str(errors[0])
    for error in errors:
        text = f"{error} {error!r}"
        assert good not in text
        for part in good.split("."):
            assert part not in text
        assert K1.as_dict()["n"] not in text
        assert ED.as_dict()["x"] not in text
    clock.advance(REFETCH)
    issuer.outcome = "k1+odd"
    assert check.validate(good).subject == "alice"
    assert len(issuer.fetches) == 2


def test_a_withdrawn_key_stops_verifying_although_one_entry_is_odd(clock: SettableClock) -> None:
    """The review's case: after max_key_age the issuer serves its new key and an entry
    the JOSE library cannot import. The new key is used, the withdrawn one never again."""
    issuer = Issuer(clock, "k1")
    check = validator(issuer, clock)
    old = token()
    assert check.validate(old).subject == "alice"
    issuer.outcome = "k2+odd"
    clock.advance(MAX_KEY_AGE)
    for _ in range(3):
        assert fault_of(check, old) is TokenFault.UNKNOWN_KEY
        clock.advance(REFETCH + 1)
    assert check.validate(token(K2)).subject == "alice"


@pytest.mark.parametrize("outcome", ["odd", "empty", "explode", "down"])
def test_old_keys_never_outlive_max_key_age_after_a_failed_refetch(
    outcome: str, clock: SettableClock
) -> None:
    issuer = Issuer(clock, "k1")
    check = validator(issuer, clock)
    old = token()
    assert check.validate(old).subject == "alice"
    issuer.outcome = outcome
    clock.advance(MAX_KEY_AGE - 1)
    assert check.validate(old).subject == "alice"  # still within max_key_age
    clock.advance(1)
    for _ in range(3):  # the attempt, then the back-off: unavailable throughout
        for _ in range(3):
            unavailable(check, old)
            clock.advance(REFETCH / 4)
        clock.advance(REFETCH)
    assert [when - T0 for when, _ in issuer.fetches] == [0, 600, 705, 810]
    issuer.outcome = "k2"
    assert fault_of(check, old) is TokenFault.UNKNOWN_KEY
    assert check.validate(token(K2)).subject == "alice"


@pytest.mark.parametrize("outcome", ["odd", "explode", "down"])
def test_a_failed_refetch_for_an_unknown_kid_keeps_the_keys_only_for_their_age(
    outcome: str, clock: SettableClock
) -> None:
    """An unknown kid makes one refetch; when it fails, that request is unavailable, the
    cached keys serve out their age, and no longer: the failed fetch made them no younger."""
    issuer = Issuer(clock, "k1")
    check = validator(issuer, clock)
    old = token()
    assert check.validate(old).subject == "alice"
    issuer.outcome = outcome
    clock.advance(300)
    unavailable(check, token(K2))
    assert check.validate(old).subject == "alice"
    assert fault_of(check, token(K2)) is TokenFault.UNKNOWN_KEY  # no second refetch yet
    clock.advance(MAX_KEY_AGE - 300)
    unavailable(check, old)
    assert len(issuer.fetches) == 3


# concurrent requests ---------------------------------------------------------------------


async def test_old_keys_serve_a_fetch_in_flight_for_one_refetch_interval_at_most(
    clock: SettableClock,
) -> None:
    """While one request awaits the refetch, others use the old keys, but only up to
    max_key_age + refetch_interval; when the fetch fails, nothing is accepted."""
    gates: list[tuple[asyncio.Event, asyncio.Event]] = []  # (started, released)
    outcome = "k1"

    async def fetch() -> Any:
        if gates:
            started, released = gates[-1]
            started.set()
            await released.wait()
        answer = document(outcome)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def fetching() -> asyncio.Future[AccessToken]:
        """A request that has started a fetch and now awaits the issuer."""
        gates.append((asyncio.Event(), asyncio.Event()))
        request = asyncio.ensure_future(check.avalidate(old))
        await gates[-1][0].wait()
        return request

    check = validator(fetch, clock)
    old = token()
    assert (await check.avalidate(old)).subject == "alice"
    outcome = "explode"
    clock.advance(MAX_KEY_AGE)
    first = await fetching()
    clock.advance(REFETCH - 1)
    assert (await check.avalidate(old)).subject == "alice"  # meanwhile
    clock.advance(1)
    second = await fetching()  # the interval has passed: it fetches too
    clock.advance(1)
    with pytest.raises(TokenUnavailableError):  # older than max_key_age + refetch_interval
        await check.avalidate(old)
    for _, released in gates:
        released.set()
    for request in (first, second):
        with pytest.raises(TokenUnavailableError):
            await request
    with pytest.raises(TokenUnavailableError):  # both failed, and no new attempt yet
        await check.avalidate(old)


# the whole life, against a model -------------------------------------------------------

OUTCOMES = sorted(PUBLISHES)
ADVANCES = [0.0, 1.0, 30.0, 59.0, 60.0, 61.0, 299.0, 599.0, 600.0, 601.0, 3600.0]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ADVANCES), st.sampled_from(OUTCOMES), st.sampled_from(["k1", "k2"])
        ),
        min_size=1,
        max_size=25,
    )
)
def test_the_key_lifecycle_against_a_model(steps: list[tuple[float, str, str]]) -> None:
    """Each step moves the clock, sets what the issuer would answer, and presents a
    token signed with k1 or k2. What the validator answers must follow from the fetches
    it made: accepted only with a key the last successful fetch published, less than
    max_key_age ago; unavailable whenever that fetch is missing or too old; fetches at
    least refetch_interval apart; nothing but the typed answers."""
    clock = SettableClock(T0)
    issuer = Issuer(clock)
    check = validator(issuer, clock)
    signed = {"k1": token(K1), "k2": token(K2)}
    for advance, outcome, kid in steps:
        clock.advance(advance)
        issuer.outcome = outcome
        before = len(issuer.fetches)
        try:
            answer: object = check.validate(signed[kid])
        except (InvalidTokenError, TokenUnavailableError) as exc:
            answer = exc
        now = clock()
        times = [when for when, _ in issuer.fetches]
        assert all(b - a >= REFETCH for a, b in pairwise(times))
        successes = [(w, PUBLISHES[o]) for w, o in issuer.fetches if PUBLISHES[o] is not None]
        fetched_now = issuer.fetches[before:]
        if not successes or now - successes[-1][0] >= MAX_KEY_AGE:
            assert isinstance(answer, TokenUnavailableError), answer
            continue
        published = successes[-1][1]
        assert published is not None
        if kid in published:
            assert isinstance(answer, AccessToken), answer
        elif fetched_now and PUBLISHES[fetched_now[-1][1]] is None:
            assert isinstance(answer, TokenUnavailableError), answer
        else:
            assert isinstance(answer, InvalidTokenError), answer
            assert answer.fault is TokenFault.UNKNOWN_KEY


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
        float("nan"),
        float("inf"),
        "",
        "x",
        "\udc80",
        "A" * 400,
        "AQAB",
        "P-256",
        "Ed25519",
        "X25519",
        "RSA",
        "EC",
        "OKP",
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
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | ODD_VALUES,
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


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_jwks_document_gives_a_token_or_a_typed_error(data: Any) -> None:
    """Wrong types everywhere, missing members, empty strings, huge numbers: the parser
    returns public keys or TokenUnavailableError, and the validator a token (only when
    the real key is published) or its typed errors."""
    try:
        keys = parse_jwks_document(data)
    except TokenUnavailableError:
        keys = ()
    assert all(not key.is_private for key in keys)
    clock = SettableClock(T0)
    check = validator(lambda: data, clock)
    for _ in range(2):  # the first fetch, then the cached (or failed) state
        try:
            answer = check.validate(token())
        except (InvalidTokenError, TokenUnavailableError):
            continue
        assert answer.subject == "alice"
        entries = data["keys"]
        assert any(isinstance(e, dict) and e.get("n") == K1.as_dict()["n"] for e in entries)


# what is logged -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("outcome", "cause"), [("down", "OSError"), ("empty", "jwks: no usable")])
def test_a_failed_fetch_is_logged_once_as_the_issuers_not_the_stores(
    clock: SettableClock, caplog: pytest.LogCaptureFixture, mode: str, outcome: str, cause: str
) -> None:
    """The issuer's keys failing is no store outage: one WARNING on ``stepup.tokens``
    naming the cause (a stepup error's message, else the exception's type, whose own
    message may carry a URL), nothing on ``stepup.store``."""
    check = validator(Issuer(clock, outcome), clock)
    validate = check.validate if mode == "sync" else lambda t: asyncio.run(check.avalidate(t))
    with caplog.at_level("DEBUG", "stepup"), pytest.raises(TokenUnavailableError) as caught:
        validate(token())
    assert cause in str(caught.value)
    lines = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert [name for name, _, _ in lines] == ["stepup.tokens"]
    assert lines[0][1] == "WARNING"
    assert cause in lines[0][2]
    assert "jwks endpoint down" not in lines[0][2]


# a new key under an old kid -----------------------------------------------------------

K1_REPLACED = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})


def test_a_new_key_under_the_old_kid_is_fetched_once_and_verifies(clock: SettableClock) -> None:
    """An issuer that puts a new key under an old kid: one refetch finds it. A forged
    signature under a known kid spends the same once-per-refetch_interval budget as a
    forged kid, and nothing more: the issuer is never hammered."""
    published: dict[str, Any] = {"keys": [public(K1)]}
    fetches: list[float] = []

    def fetch() -> Any:
        fetches.append(clock())
        return published

    check = validator(fetch, clock)
    assert check.validate(token(K1)).subject == "alice"
    published = {"keys": [public(K1_REPLACED)]}
    clock.advance(REFETCH)
    assert check.validate(token(K1_REPLACED)).subject == "alice"
    assert len(fetches) == 2
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
    assert fault_of(check, token(forger)) is TokenFault.SIGNATURE
    assert fault_of(check, token(forger)) is TokenFault.SIGNATURE
    assert len(fetches) == 2  # within refetch_interval: no refetch
