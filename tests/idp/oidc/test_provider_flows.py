"""OIDC re-authentication against a real OpenID provider, driven through its login form."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import RSAKey

from idp.oidc.harness import (
    ALICE,
    MALLORY,
    REDIRECT_URI,
    Provider,
    free_port,
    launch_provider,
    make_config,
)
from idp.oidc.harness import oidc_subject as subject_of
from idp.oidc.useragent import UserAgent, edit_query, query_of
from stepup.adapters.idp.oidc import (
    OIDCOutcome,
    OIDCProviderConfig,
    OIDCReason,
    OIDCReauth,
    ProviderUnavailableError,
    WrongProviderError,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.records import Challenge
from stepup.redirects import UnsafeRedirectError
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from stepup.transactions import transaction_digest

pytestmark = pytest.mark.oidc


def peek(store: MemoryStore, state: str) -> Challenge:
    """Read a pending challenge the way an attacker with store access could (then put it back)."""
    challenge = store.take_challenge(state, 0.0)
    assert challenge is not None
    store.put_challenge(challenge)
    return challenge


def tamper(store: MemoryStore, state: str, **data: str) -> None:
    challenge = store.take_challenge(state, 0.0)
    assert challenge is not None
    store.put_challenge(replace(challenge, data={**challenge.data, **data}))


def sign_in(
    reauth: OIDCReauth, subject: Subject, agent: UserAgent, who: tuple[str, str]
) -> OIDCOutcome:
    """One complete, honest re-authentication."""
    url = reauth.start(subject, return_to="/settings/keys", action="api_key.read")
    login, password = who
    return reauth.complete(subject, agent.authorize(url, login=login, password=password))


# the request ------------------------------------------------------------------------------


def test_authorization_request_forces_a_fresh_login_with_pkce_and_a_stored_challenge(
    reauth: OIDCReauth, alice: Subject, store: MemoryStore, clock: SettableClock
) -> None:
    url = reauth.start(alice, return_to="/settings/keys", action="api_key.read")
    query = query_of(url)
    assert url.startswith(f"{reauth.config.issuer}/auth?")
    assert query["prompt"] == "login"
    assert query["max_age"] == "0"
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["client_id"] == "stepup-rp"
    assert query["redirect_uri"] == REDIRECT_URI
    assert "openid" in query["scope"].split()
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43
    assert query["state"] != query["nonce"]
    challenge = peek(store, query["state"])
    assert (challenge.user_id, challenge.session_id) == (alice.user_id, alice.session_id)
    assert challenge.issued_at == clock()
    assert challenge.expires_at == clock() + 2 * reauth.config.challenge_ttl  # kept: a late
    assert (
        challenge.data["deadline"] == clock() + reauth.config.challenge_ttl
    )  # answer is `expired`
    assert challenge.data["nonce"] == query["nonce"]
    assert challenge.data["verifier"] not in url
    assert challenge.data["return_to"] == "/settings/keys"
    assert "acr_values" not in query


def test_every_start_draws_new_state_nonce_and_verifier(reauth: OIDCReauth, alice: Subject) -> None:
    urls = [query_of(reauth.start(alice, return_to="/")) for _ in range(5)]
    for name in ("state", "nonce", "code_challenge"):
        assert len({q[name] for q in urls}) == 5


def test_only_a_session_of_this_provider_may_start(
    reauth: OIDCReauth, provider: Provider, store: MemoryStore
) -> None:
    password_user = Subject("u1", "s1")
    other_op = Subject(
        "u1", "s1", Identity(LoginMethod.OIDC, issuer="https://other.example", subject="alice")
    )
    saml_user = Subject(
        "u1", "s1", Identity(LoginMethod.SAML, issuer=provider.issuer, subject="alice")
    )
    no_sub = Subject("u1", "s1", Identity(LoginMethod.OIDC, issuer=provider.issuer))
    for subject in (password_user, other_op, saml_user, no_sub):
        with pytest.raises(WrongProviderError):
            reauth.start(subject, return_to="/")
    assert store.take_challenge("anything", 0.0) is None


EU = transaction_digest("workspace.destroy", {"workspace": "prod-eu"})
US = transaction_digest("workspace.destroy", {"workspace": "prod-us"})


def test_each_trip_hands_back_its_own_transaction(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    """Two trips in one session (two tabs): each outcome carries the digest its own start
    was given, whichever started last."""
    eu = reauth.start(alice, return_to="/", action="workspace.destroy", transaction=EU)
    us = reauth.start(alice, return_to="/", action="workspace.destroy", transaction=US)
    assert peek(store, query_of(eu)["state"]).data["transaction"] == EU
    first = reauth.complete(alice, agent.authorize(eu, login=ALICE[0], password=ALICE[1]))
    assert (first.reason, first.action, first.transaction) == (
        OIDCReason.OK,
        "workspace.destroy",
        EU,
    )
    second = reauth.complete(alice, agent.authorize(us, login=ALICE[0], password=ALICE[1]))
    assert (second.reason, second.transaction) == (OIDCReason.OK, US)
    plain = sign_in(reauth, alice, agent, ALICE)
    assert (plain.reason, plain.transaction) == (OIDCReason.OK, "")


def test_a_challenge_stored_before_transactions_reads_as_none(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    url = reauth.start(alice, return_to="/", action="workspace.destroy", transaction=EU)
    state = query_of(url)["state"]
    challenge = store.take_challenge(state, 0.0)
    assert challenge is not None
    old = {k: v for k, v in challenge.data.items() if k != "transaction"}
    store.put_challenge(replace(challenge, data=old))
    outcome = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert (outcome.reason, outcome.transaction) == (OIDCReason.OK, "")


def test_a_tampered_stored_transaction_is_no_challenge_of_ours(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    url = reauth.start(alice, return_to="/", action="workspace.destroy", transaction=EU)
    tamper(store, query_of(url)["state"], transaction="not a digest")
    outcome = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert (outcome.reason, outcome.transaction) == (OIDCReason.UNKNOWN_STATE, "")


@pytest.mark.parametrize("bad", ["abc", EU.upper(), EU + "0", " " + EU, 42, None])
def test_a_malformed_transaction_is_refused_at_start(
    reauth: OIDCReauth, alice: Subject, bad: object
) -> None:
    with pytest.raises(MalformedInputError, match="transaction"):
        reauth.start(alice, return_to="/", action="workspace.destroy", transaction=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/x", "/\\evil"])
def test_a_return_location_off_the_site_is_refused_at_start(
    reauth: OIDCReauth, alice: Subject, target: str
) -> None:
    with pytest.raises(UnsafeRedirectError):
        reauth.start(alice, return_to=target)


# the answer -------------------------------------------------------------------------------


def test_happy_path_gives_a_grant_worthy_outcome(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, clock: SettableClock
) -> None:
    issued_at = clock()
    url = reauth.start(alice, return_to="/settings/keys", action="api_key.read")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    assert agent.login_forms == 1
    assert params["iss"] == reauth.config.issuer  # RFC 9207
    outcome = reauth.complete(alice, params)
    assert outcome.reason is OIDCReason.OK, outcome
    assert outcome.ok
    assert bool(outcome)
    assert outcome.method == "oidc"
    assert outcome.auth_time is not None
    assert outcome.auth_time >= issued_at
    assert outcome.return_to == "/settings/keys"
    assert outcome.action == "api_key.read"
    text = repr(outcome)
    assert params["code"] not in text
    assert params["state"] not in text


def test_a_provider_answering_from_its_old_session_is_stale(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, clock: SettableClock
) -> None:
    """The user agent strips prompt and max_age, so the provider skips the login and
    reports the earlier one: that login predates the challenge and proves nothing now."""
    first = sign_in(reauth, alice, agent, ALICE)
    assert first.ok
    assert first.auth_time is not None
    # A while later (more than the allowed skew), a sensitive action needs a re-auth.
    clock.set(first.auth_time + reauth.config.max_skew + 2)
    url = edit_query(reauth.start(alice, return_to="/"), strip=("prompt", "max_age"))
    params = agent.authorize(url)  # no login given: the provider must not ask
    assert agent.login_forms == 1
    outcome = reauth.complete(alice, params)
    assert outcome.reason is OIDCReason.STALE_AUTH_TIME
    assert outcome.auth_time == first.auth_time
    assert not outcome


def test_a_login_within_the_skew_of_the_challenge_is_fresh(
    provider: Provider,
    store: MemoryStore,
    http: httpx.Client,
    clock: SettableClock,
    alice: Subject,
    agent: UserAgent,
) -> None:
    """The skew is the only slack: the same stale answer passes when it fits in it."""
    reauth = OIDCReauth(make_config(provider, max_skew=120), store, http=http, clock=clock)
    first = sign_in(reauth, alice, agent, ALICE)
    assert first.ok
    assert first.auth_time is not None
    clock.set(first.auth_time + 60)
    url = edit_query(reauth.start(alice, return_to="/"), strip=("prompt", "max_age"))
    assert reauth.complete(alice, agent.authorize(url)).reason is OIDCReason.OK


def _iat_safe_now() -> float:
    """The "now" for a token the provider issues in the next ``complete``: its ``iat`` is
    the provider's real time in whole seconds, taken after this returns, so the real
    time would be before it whenever the exchange crosses a second boundary (a CI run
    failed so, at x.998 s). The start of the next whole second is never before it (for
    an exchange shorter than a second) and never more than a second ahead of it."""
    return float(math.floor(time.time()) + 1)


@pytest.mark.parametrize(
    ("after_login", "expected"),
    [
        (0.0, OIDCReason.OK),
        (0.5, OIDCReason.OK),  # the same whole second as auth_time, just after it
        (0.999, OIDCReason.OK),
        (1.0, OIDCReason.STALE_AUTH_TIME),  # auth_time is the second before the challenge
        (1.5, OIDCReason.STALE_AUTH_TIME),
    ],
)
def test_whole_second_auth_time_is_compared_at_its_resolution_at_skew_0(
    provider: Provider,
    store: MemoryStore,
    http: httpx.Client,
    clock: SettableClock,
    alice: Subject,
    agent: UserAgent,
    after_login: float,
    expected: OIDCReason,
) -> None:
    """auth_time is whole seconds: a challenge made at a fraction of the login's second is
    answered by a login at that second, which is not before the challenge."""
    reauth = OIDCReauth(make_config(provider, max_skew=0), store, http=http, clock=clock)
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    clock.set(_iat_safe_now())  # with no skew, the token must not be from after "now"
    first = reauth.complete(alice, params)
    assert first.ok, first
    assert first.auth_time is not None
    clock.set(first.auth_time + after_login)  # the challenge's start time
    url = edit_query(reauth.start(alice, return_to="/"), strip=("prompt", "max_age"))
    params = agent.authorize(url)  # the provider answers from the login at first.auth_time
    clock.set(_iat_safe_now())  # the answer arrives now (its iat: the provider's real time)
    outcome = reauth.complete(alice, params)
    assert outcome.reason is expected, outcome
    assert outcome.auth_time == first.auth_time


def test_no_auth_time_is_never_replaced_by_iat(
    provider: Provider,
    store: MemoryStore,
    http: httpx.Client,
    clock: SettableClock,
    alice: Subject,
    agent: UserAgent,
) -> None:
    """A client registered without require_auth_time, and a request stripped of max_age
    and prompt: the provider leaves auth_time out, and iat (fresh) must not stand in."""
    config = make_config(
        provider, client_id="stepup-rp-plain", client_secret="stepup-rp-plain-secret"
    )
    reauth = OIDCReauth(config, store, http=http, clock=clock)
    url = edit_query(reauth.start(alice, return_to="/"), strip=("prompt", "max_age"))
    outcome = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert outcome.reason is OIDCReason.MISSING_AUTH_TIME
    assert outcome.auth_time is None


def test_someone_else_logging_in_is_the_wrong_subject(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent
) -> None:
    """Mallory, holding alice's session, re-authenticates as herself (with alice's e-mail
    address on her account): iss + sub decide, never the e-mail."""
    outcome = sign_in(reauth, alice, agent, MALLORY)
    assert outcome.reason is OIDCReason.WRONG_SUBJECT
    assert not outcome.ok


def test_a_replayed_state_is_unknown(reauth: OIDCReauth, alice: Subject, agent: UserAgent) -> None:
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    assert reauth.complete(alice, params).ok
    again = reauth.complete(alice, params)
    assert again.reason is OIDCReason.UNKNOWN_STATE
    assert again.return_to is None


def test_a_failed_answer_still_consumes_the_state(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent
) -> None:
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    assert reauth.complete(alice, params | {"code": "forged"}).reason is OIDCReason.TOKEN_ERROR
    assert reauth.complete(alice, params).reason is OIDCReason.UNKNOWN_STATE


def test_unknown_or_missing_state(reauth: OIDCReauth, alice: Subject) -> None:
    assert reauth.complete(alice, {"code": "x", "state": "nope"}).reason is OIDCReason.UNKNOWN_STATE
    assert reauth.complete(alice, {"code": "x"}).reason is OIDCReason.UNKNOWN_STATE
    assert reauth.complete(alice, {}).reason is OIDCReason.UNKNOWN_STATE


def test_another_sessions_state_is_unknown_and_burnt(
    reauth: OIDCReauth, alice: Subject, provider: Provider, agent: UserAgent
) -> None:
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    other_session = subject_of(provider, "alice", session_id="s2")
    other_user = subject_of(provider, "alice", user="someone-else")
    assert reauth.complete(other_session, params).reason is OIDCReason.UNKNOWN_STATE
    # Fail closed: a state shown to the wrong session is gone for the right one too.
    assert reauth.complete(alice, params).reason is OIDCReason.UNKNOWN_STATE
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    assert reauth.complete(other_user, params).reason is OIDCReason.UNKNOWN_STATE


def test_a_wrong_nonce_is_an_invalid_token(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    url = reauth.start(alice, return_to="/")
    tamper(store, query_of(url)["state"], nonce="another-nonce")
    outcome = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert outcome.reason is OIDCReason.INVALID_TOKEN
    assert outcome.detail == "nonce"


def test_the_code_only_works_with_its_pkce_verifier(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    url = reauth.start(alice, return_to="/")
    tamper(store, query_of(url)["state"], verifier="x" * 43)
    outcome = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert outcome.reason is OIDCReason.TOKEN_ERROR
    assert outcome.error == "invalid_grant"


def test_the_user_cancelling_is_a_provider_error(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent
) -> None:
    url = reauth.start(alice, return_to="/back")
    outcome = reauth.complete(alice, agent.authorize(url, cancel=True))
    assert outcome.reason is OIDCReason.PROVIDER_ERROR
    assert outcome.error == "access_denied"
    assert outcome.return_to == "/back"


def test_prompt_none_without_a_provider_session_is_login_required(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent
) -> None:
    url = edit_query(reauth.start(alice, return_to="/"), strip=("max_age",), put={"prompt": "none"})
    outcome = reauth.complete(alice, agent.authorize(url))
    assert outcome.reason is OIDCReason.PROVIDER_ERROR
    assert outcome.error == "login_required"
    assert agent.login_forms == 0


def test_a_provider_error_code_is_not_echoed_verbatim(reauth: OIDCReauth, alice: Subject) -> None:
    state = query_of(reauth.start(alice, return_to="/"))["state"]
    outcome = reauth.complete(
        alice, {"state": state, "error": "<script>alert(1)</script>", "iss": reauth.config.issuer}
    )
    assert outcome.reason is OIDCReason.PROVIDER_ERROR
    assert outcome.error == "invalid_error_code"


def test_an_expired_challenge_is_expired_and_consumed(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, clock: SettableClock
) -> None:
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    clock.advance(reauth.config.challenge_ttl)
    assert reauth.complete(alice, params).reason is OIDCReason.EXPIRED
    assert reauth.complete(alice, params).reason is OIDCReason.UNKNOWN_STATE


def test_an_answer_from_another_issuer_is_refused(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent
) -> None:
    """RFC 9207: the provider names itself in the answer; a mixed-up answer is refused."""
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    outcome = reauth.complete(alice, params | {"iss": "https://attacker.example"})
    assert (outcome.reason, outcome.detail) == (OIDCReason.INVALID_TOKEN, "iss_parameter")
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    del params["iss"]
    outcome = reauth.complete(alice, params)
    assert (outcome.reason, outcome.detail) == (OIDCReason.INVALID_TOKEN, "iss_parameter")


def test_a_requested_acr_must_be_met(reauth: OIDCReauth, alice: Subject, agent: UserAgent) -> None:
    url = reauth.start(alice, return_to="/", acr_values=["urn:stepup:mfa"])
    assert query_of(url)["acr_values"] == "urn:stepup:mfa"
    outcome = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert outcome.reason is OIDCReason.ACR_NOT_MET
    assert outcome.acr == "urn:stepup:pwd"
    url = reauth.start(alice, return_to="/", acr_values=["urn:stepup:mfa"])
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1], otp="123456")
    outcome = reauth.complete(alice, params)
    assert outcome.reason is OIDCReason.OK
    assert outcome.acr == "urn:stepup:mfa"


def test_configured_acr_values_apply_to_every_start(
    provider: Provider,
    store: MemoryStore,
    http: httpx.Client,
    clock: SettableClock,
    alice: Subject,
    agent: UserAgent,
) -> None:
    config = make_config(provider, acr_values=("urn:stepup:mfa",))
    reauth = OIDCReauth(config, store, http=http, clock=clock)
    outcome = sign_in(reauth, alice, agent, ALICE)
    assert outcome.reason is OIDCReason.ACR_NOT_MET


def test_private_key_jwt_client(
    provider: Provider,
    store: MemoryStore,
    http: httpx.Client,
    clock: SettableClock,
    alice: Subject,
    agent: UserAgent,
    client_key: RSAKey,
) -> None:
    config = make_config(
        provider,
        client_id="stepup-rp-jwt",
        client_secret=None,
        private_key=client_key.as_dict(private=True),
    )
    assert config.token_auth_method == "private_key_jwt"
    reauth = OIDCReauth(config, store, http=http, clock=clock)
    assert sign_in(reauth, alice, agent, ALICE).reason is OIDCReason.OK
    wrong_key = RSAKey.generate_key(2048, parameters={"kid": "stepup-rp-jwt-1"}, private=True)
    config = replace(config, private_key=wrong_key.as_dict(private=True))
    impostor = OIDCReauth(config, store, http=http, clock=clock)
    outcome = sign_in(impostor, alice, agent, ALICE)
    assert (outcome.reason, outcome.error) == (OIDCReason.TOKEN_ERROR, "invalid_client")


def test_wrong_client_secret_is_a_token_error(
    provider: Provider,
    store: MemoryStore,
    http: httpx.Client,
    clock: SettableClock,
    alice: Subject,
    agent: UserAgent,
) -> None:
    reauth = OIDCReauth(make_config(provider, client_secret="wrong"), store, http=http, clock=clock)
    outcome = sign_in(reauth, alice, agent, ALICE)
    assert (outcome.reason, outcome.error) == (OIDCReason.TOKEN_ERROR, "invalid_client")


def test_a_session_whose_identity_changed_meanwhile_is_the_wrong_subject(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, provider: Provider
) -> None:
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    switched = replace(alice, identity=Identity(LoginMethod.PASSWORD))
    outcome = reauth.complete(switched, params)
    assert (outcome.reason, outcome.detail) == (OIDCReason.WRONG_SUBJECT, "session")
    url = reauth.start(alice, return_to="/")
    params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    other_sub = replace(alice, identity=replace(alice.identity, subject="mallory"))
    assert reauth.complete(other_sub, params).reason is OIDCReason.WRONG_SUBJECT


_callback_value = st.one_of(st.text(max_size=60), st.sampled_from(["", "a" * 5000]))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    forged=st.dictionaries(
        st.sampled_from(["code", "iss", "error", "session_state", "id_token"]),
        _callback_value,
        max_size=4,
    )
)
def test_no_forged_callback_is_ever_accepted(
    reauth: OIDCReauth, alice: Subject, forged: dict[str, str]
) -> None:
    """A genuine state with anything else made up: the provider never issued this code."""
    state = query_of(reauth.start(alice, return_to="/"))["state"]
    outcome = reauth.complete(alice, {"state": state, **forged})
    assert not outcome.ok
    assert outcome.reason in {
        OIDCReason.PROVIDER_ERROR,
        OIDCReason.TOKEN_ERROR,
        OIDCReason.INVALID_TOKEN,
    }
    assert reauth.complete(alice, {"state": state, **forged}).reason is OIDCReason.UNKNOWN_STATE


# keys and outages -------------------------------------------------------------------------


def test_keys_are_refetched_once_when_the_token_names_an_unknown_one(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, clock: SettableClock
) -> None:
    """A provider that rotated its keys: the cached set lacks the token's ``kid``."""
    assert sign_in(reauth, alice, agent, ALICE).ok
    stale = (RSAKey.generate_key(2048, parameters={"kid": "retired"}, private=False),)
    reauth._cache.keys = stale
    reauth._cache.keys_at = clock() - reauth.config.jwks_refresh_interval
    assert sign_in(reauth, alice, agent, ALICE).ok
    assert [k.kid for k in reauth._cache.keys] == ["test-key-1"]
    # Refetches are rate-limited: right after one, an unknown kid is simply refused.
    reauth._cache.keys, reauth._cache.keys_at = stale, clock()
    outcome = sign_in(reauth, alice, agent, ALICE)
    assert (outcome.reason, outcome.detail) == (OIDCReason.INVALID_TOKEN, "unknown_key")


def test_an_unreachable_provider_at_start_raises(
    store: MemoryStore, http: httpx.Client, clock: SettableClock
) -> None:

    issuer = f"http://127.0.0.1:{free_port()}"
    config = OIDCProviderConfig(
        issuer=issuer, client_id="c", client_secret="s3cr3t-value", redirect_uri=REDIRECT_URI
    )
    reauth = OIDCReauth(config, store, http=http, clock=clock)
    subject = Subject("u", "s", Identity(LoginMethod.OIDC, issuer=issuer, subject="alice"))
    with pytest.raises(ProviderUnavailableError) as caught:
        reauth.start(subject, return_to="/")
    assert "s3cr3t-value" not in str(caught.value)


def test_a_provider_that_goes_away_mid_flow_is_unavailable(
    tmp_path: pytest.TempPathFactory,
    store: MemoryStore,
    http: httpx.Client,
    clock: SettableClock,
    agent: UserAgent,
) -> None:
    ephemeral = launch_provider(tmp_path / "provider.log")  # type: ignore[operator]
    try:
        reauth = OIDCReauth(make_config(ephemeral), store, http=http, clock=clock)
        subject = subject_of(ephemeral, "alice")
        url = reauth.start(subject, return_to="/")
        params = agent.authorize(url, login=ALICE[0], password=ALICE[1])
    finally:
        ephemeral.stop()
    outcome = reauth.complete(subject, params)
    assert (outcome.reason, outcome.detail) == (OIDCReason.UNAVAILABLE, "provider")
    assert reauth.complete(subject, params).reason is OIDCReason.UNKNOWN_STATE


def test_each_trip_hands_back_its_own_suspended_form(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    """Two trips in one session (two tabs), each for a form the guard suspended: each
    outcome carries the token its own start was given, whichever started last."""
    first_url = reauth.start(alice, return_to="/", action="api_key.regenerate", resume="tab-a")
    second_url = reauth.start(alice, return_to="/", action="api_key.regenerate", resume="tab-b")
    assert peek(store, query_of(first_url)["state"]).data["resume"] == "tab-a"
    first = reauth.complete(alice, agent.authorize(first_url, login=ALICE[0], password=ALICE[1]))
    assert (first.reason, first.resume) == (OIDCReason.OK, "tab-a")
    assert "tab-a" not in repr(first)
    second = reauth.complete(alice, agent.authorize(second_url, login=ALICE[0], password=ALICE[1]))
    assert (second.reason, second.resume) == (OIDCReason.OK, "tab-b")
    plain = sign_in(reauth, alice, agent, ALICE)
    assert (plain.reason, plain.resume) == (OIDCReason.OK, "")


def test_a_challenge_stored_before_resume_tokens_reads_as_none(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    url = reauth.start(alice, return_to="/", action="api_key.regenerate", resume="tab-a")
    state = query_of(url)["state"]
    challenge = store.take_challenge(state, 0.0)
    assert challenge is not None
    old = {k: v for k, v in challenge.data.items() if k != "resume"}
    store.put_challenge(replace(challenge, data=old))
    outcome = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert (outcome.reason, outcome.resume) == (OIDCReason.OK, "")


def test_a_tampered_stored_resume_token_is_no_challenge_of_ours(
    reauth: OIDCReauth, alice: Subject, agent: UserAgent, store: MemoryStore
) -> None:
    url = reauth.start(alice, return_to="/", action="api_key.regenerate", resume="tab-a")
    tamper(store, query_of(url)["state"], resume="not a token")
    outcome = reauth.complete(alice, agent.authorize(url, login=ALICE[0], password=ALICE[1]))
    assert (outcome.reason, outcome.resume) == (OIDCReason.UNKNOWN_STATE, "")


@pytest.mark.parametrize("bad", ["a b", "x" * 65, "tok/../x", "é", 42, None])
def test_a_malformed_resume_token_is_refused_at_start(
    reauth: OIDCReauth, alice: Subject, bad: object
) -> None:
    with pytest.raises(MalformedInputError, match="resume"):
        reauth.start(alice, return_to="/", action="api_key.regenerate", resume=bad)  # type: ignore[arg-type]
