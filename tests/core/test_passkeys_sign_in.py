"""A passkey as the second factor at sign-in, at the protocol level: every refusal.

The pending sign-in is the user plus the integration's random id for it; a challenge
issued for one pending sign-in is worth nothing for another, for a re-authentication,
twice, or late, and only a passkey registered to that user passes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepup.adapters.storage import MemoryStore
from stepup.assurance import DEFAULT_LEVELS
from stepup.errors import MalformedInputError, StoreUnavailableError
from stepup.events import EventBus, StepupEvent, Throttled
from stepup.passkeys import (
    MAX_PAYLOAD_BYTES,
    AsyncPasskeys,
    PasskeyReason,
    PasskeyRejected,
    Passkeys,
    PasskeySignInRejected,
    PasskeySignInVerified,
    PasskeyVerified,
    RelyingParty,
)
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Reauth, SignInCounted
from stepup.records import Tenant
from stepup.signin import SecondFactors, asecond_factors, second_factors
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.throttle import ThrottlePolicy
from stepup.twofactor import AsyncTwoFactor, Channel, TwoFactor

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
PENDING = "pending-sign-in-0123456789abcdef"
OTHER_PENDING = "pending-sign-in-fedcba9876543210"


class Harness:
    def __init__(self) -> None:
        self.clock = SettableClock(1_700_000_000.25)
        self.events: list[StepupEvent] = []
        self.store = MemoryStore()
        self.passkeys = Passkeys(
            self.store,
            RP,
            clock=self.clock,
            events=EventBus(self.events.append),
            throttle=ThrottlePolicy(free_failures=2, base_delay=30.0, max_delay=3600.0),
        )

    def register(self, user_id: str = "alice", **kwargs: Any) -> SoftAuthenticator:
        kwargs.setdefault("counter", 5)
        key = SoftAuthenticator(origin=ORIGIN, **kwargs)
        subject = Subject(user_id, f"session-{user_id}")
        options = self.passkeys.begin_registration(subject, user_id)
        assert self.passkeys.finish_registration(subject, key.create(options), "Key")
        return key

    def begin(self, user_id: str = "alice", pending: str = PENDING) -> dict[str, Any]:
        options = self.passkeys.begin_sign_in(user_id, pending)
        assert options is not None
        return options

    def finish(self, answer: Any, user_id: str = "alice", pending: str = PENDING) -> Any:
        return self.passkeys.finish_sign_in(user_id, pending, answer)


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_passkey_passes_as_the_second_factor(h: Harness) -> None:
    key = h.register()
    options = h.begin()
    # User verification is preferred, not required: the password was the first factor.
    assert options["publicKey"]["userVerification"] == "preferred"
    result = h.finish(key.get(options))
    assert result.reason is PasskeyReason.OK
    assert result.sign_in_methods(("pwd",)) == ("hwk", "mfa", "phr", "pwd", "user")
    assert h.passkeys.registered("alice")[0].sign_count == 6
    verified = [e for e in h.events if isinstance(e, PasskeySignInVerified)]
    assert [(e.user_id, e.credential_id) for e in verified] == [
        ("alice", result.passkey.credential_id)
    ]
    assert not [e for e in h.events if isinstance(e, PasskeyVerified)]


def test_without_user_verification_it_still_is_a_second_factor(h: Harness) -> None:
    key = h.register()
    key.user_verified = False
    result = h.finish(key.get(h.begin()))
    assert result
    assert result.sign_in_methods(("pwd",)) == ("hwk", "mfa", "phr", "pwd")


def test_sign_in_counts_satisfies_phishing_resistance_and_mfa(h: Harness) -> None:
    """pwd + the passkey's proof, recorded at sign-in, meets a rule that accepts only a
    passkey and a rule that asks for the phishing-resistant level."""
    key = h.register()
    result = h.finish(key.get(h.begin()))
    policy = Policy(
        {
            "delete": Rule(Sensitivity.CRITICAL, lifetime=300, accept=(("phr",),)),
            "export": Rule(Sensitivity.SENSITIVE, lifetime=300, level="phishing_resistant"),
            "rotate": Rule(Sensitivity.SENSITIVE, lifetime=300, level="mfa"),
        },
        levels=DEFAULT_LEVELS,
    ).with_sign_in_counts()
    h.store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(h.store, policy, clock=h.clock)
    subject = Subject("alice", "new-session")
    outcome = reauth.record_sign_in(subject, result.sign_in_methods(("pwd",)))
    assert isinstance(outcome, SignInCounted)
    for action in ("delete", "export", "rotate"):
        assert reauth.check(subject, action, "t1").ok, action
    # A password alone does not.
    other = Subject("alice", "password-only")
    assert reauth.record_sign_in(other, ("pwd",)).ok
    assert not reauth.check(other, "delete", "t1").ok
    assert not reauth.check(other, "export", "t1").ok


def test_no_passkey_means_no_options(h: Harness) -> None:
    assert h.passkeys.begin_sign_in("alice", PENDING) is None


def test_another_users_credential_is_refused(h: Harness) -> None:
    """GHSA-f66q-9rf6-8795: Bob's passkey never completes Alice's sign-in."""
    h.register("alice")
    bobs = h.register("bob")
    options = h.begin("alice")
    bobs.user_handle = None  # even without a user handle to give it away
    result = h.finish(bobs.get(options), "alice")
    assert result.reason is PasskeyReason.UNKNOWN_CREDENTIAL
    assert [e.reason for e in h.events if isinstance(e, PasskeySignInRejected)] == [
        "unknown_credential"
    ]


def test_challenge_from_another_pending_sign_in_is_refused(h: Harness) -> None:
    key = h.register()
    options = h.begin(pending=OTHER_PENDING)
    assert h.finish(key.get(options)).reason is PasskeyReason.CHALLENGE


def test_challenge_of_another_user_is_refused(h: Harness) -> None:
    """Alice's pending sign-in's challenge, answered under Bob's name."""
    h.register("alice")
    bobs = h.register("bob")
    options = h.begin("alice")
    assert h.finish(bobs.get(options), "bob").reason is PasskeyReason.CHALLENGE


def test_reauth_challenge_cannot_be_spent_at_sign_in_nor_back(h: Harness) -> None:
    key = h.register()
    # A re-authentication challenge of a session whose id equals the binding: still no.
    session = Subject("alice", "sign-in:" + PENDING)
    reauth_options = h.passkeys.begin_authentication(session)
    assert reauth_options is not None
    assert h.finish(key.get(reauth_options)).reason is PasskeyReason.CHALLENGE
    sign_in_options = h.begin()
    answer = key.get(sign_in_options)
    assert h.passkeys.finish_authentication(session, answer).reason is PasskeyReason.CHALLENGE


def test_replayed_challenge_is_refused(h: Harness) -> None:
    key = h.register()
    options = h.begin()
    assert h.finish(key.get(options))
    assert h.finish(key.get(options)).reason is PasskeyReason.CHALLENGE


def test_expired_challenge_is_refused(h: Harness) -> None:
    key = h.register()
    options = h.begin()
    h.clock.advance(RP.challenge_ttl)
    assert h.finish(key.get(options)).reason is PasskeyReason.CHALLENGE


@pytest.mark.parametrize(
    "bend",
    [
        lambda k: setattr(k, "origin", "https://evil.example"),
        lambda k: setattr(k, "rp_id", "evil.example"),
    ],
    ids=["other-origin", "other-rp-id"],
)
def test_wrong_origin_or_rp_id_is_refused(h: Harness, bend: Any) -> None:
    key = h.register()
    options = h.begin()
    bend(key)
    assert h.finish(key.get(options)).reason is PasskeyReason.INVALID
    assert h.passkeys.registered("alice")[0].sign_count == 5  # nothing changed


@pytest.mark.parametrize(
    "payload",
    ["", "null", "[]", "{}", "[" * 100_000, "x" * (MAX_PAYLOAD_BYTES + 1)],
    ids=["empty", "null", "list", "object", "nested", "oversized"],
)
def test_malformed_payload_is_refused_and_changes_nothing(h: Harness, payload: str) -> None:
    key = h.register()
    h.begin()
    challenges = dict(h.store._challenges)
    result = h.finish(payload)
    assert result.reason is PasskeyReason.MALFORMED
    assert h.store._challenges == challenges  # the challenge is still there
    # and it costs nothing: no attempt was charged
    assert h.store.throttle_state("passkey-sign-in:alice").failures == 0
    assert key.credential_id


def test_attempts_are_throttled_like_the_code_step(h: Harness) -> None:
    key = h.register()
    h.register("bob")
    for _ in range(3):  # two free failures, the third starts a block
        bobs_answer = SoftAuthenticator(origin=ORIGIN).get(h.begin())
        assert h.finish(bobs_answer).reason is PasskeyReason.UNKNOWN_CREDENTIAL
    options = h.begin()
    result = h.finish(key.get(options))
    assert result.reason is PasskeyReason.THROTTLED
    assert result.retry_at == h.clock() + 30.0
    assert any(isinstance(e, Throttled) and e.user_id == "alice" for e in h.events)
    h.clock.advance(30.0)
    assert h.finish(key.get(h.begin()))


def test_success_takes_back_only_its_own_charge(h: Harness) -> None:
    key = h.register()
    bad = SoftAuthenticator(origin=ORIGIN).get(h.begin())
    assert not h.finish(bad)
    assert h.finish(key.get(h.begin()))
    assert h.store.throttle_state("passkey-sign-in:alice").failures == 1


def test_store_failure_fails_closed(h: Harness) -> None:
    key = h.register()
    options = h.begin()

    def broken(*_: Any) -> Any:
        raise ConnectionError("postgresql://user:secret@db/x")

    h.store.take_challenge = broken
    result = h.finish(key.get(options))
    assert result.reason is PasskeyReason.UNAVAILABLE
    assert not result
    assert [e.reason for e in h.events if isinstance(e, PasskeySignInRejected)] == ["unavailable"]


@pytest.mark.parametrize(("user_id", "pending"), [("", PENDING), ("alice", ""), ("alice", "short")])
def test_a_pending_sign_in_needs_a_user_and_a_random_id(
    h: Harness, user_id: str, pending: str
) -> None:
    with pytest.raises(MalformedInputError):
        h.passkeys.begin_sign_in(user_id, pending)
    with pytest.raises(MalformedInputError):
        h.passkeys.finish_sign_in(user_id, pending, "{}")


def test_nothing_secret_in_events_or_results(h: Harness) -> None:
    key = h.register()
    options = h.begin()
    result = h.finish(key.get(options))
    h.finish(key.get(options))
    challenge = options["publicKey"]["challenge"]
    for thing in [*h.events, result]:
        assert challenge not in repr(thing)
        assert PENDING not in repr(thing)
        assert "credential_data=" not in repr(thing)
    assert not [e for e in h.events if isinstance(e, PasskeyRejected)]


async def test_async_sign_in_shares_the_flow() -> None:
    clock = SettableClock(1_700_000_000.0)
    store = MemoryStore()
    passkeys = AsyncPasskeys(store, RP, clock=clock)
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    subject = Subject("alice", "s")
    assert await passkeys.finish_registration(
        subject, key.create(await passkeys.begin_registration(subject, "alice"))
    )
    options = await passkeys.begin_sign_in("alice", PENDING)
    assert options is not None
    assert await passkeys.finish_sign_in("alice", PENDING, key.get(options))
    again = await passkeys.finish_sign_in("alice", PENDING, json.dumps(key.get(options)))
    assert again.reason is PasskeyReason.CHALLENGE
    two_factor = AsyncTwoFactor(store, clock=clock)
    assert await asecond_factors(two_factor, passkeys, "alice") == SecondFactors(passkeys=1)


# which second factors a user has --------------------------------------------------------


def test_second_factors_totp_or_passkey(h: Harness) -> None:
    two_factor = TwoFactor(h.store, clock=h.clock)
    assert not second_factors(two_factor, h.passkeys, "alice")
    h.register("alice")
    found = second_factors(two_factor, h.passkeys, "alice")
    assert found == SecondFactors(totp=False, passkeys=1, recovery=False)
    assert found.required
    # TOTP too: the code form and recovery codes join the passkey.
    enrolment = two_factor.begin_enrolment("alice", "alice")
    from stepup.totp import TOTP

    assert two_factor.confirm_enrolment("alice", TOTP(enrolment.secret).at(h.clock()))
    assert second_factors(two_factor, h.passkeys, "alice") == SecondFactors(True, 1, True)
    # Passkeys off: only TOTP counts.
    assert second_factors(two_factor, None, "alice") == SecondFactors(True, 0, True)


@pytest.mark.parametrize("channel", [Channel.API, Channel.API_KEY, Channel.MESSAGE_INJECTION])
def test_second_factors_only_on_the_web_channel(h: Harness, channel: Channel) -> None:
    h.register("alice")
    two_factor = TwoFactor(h.store, clock=h.clock)
    assert second_factors(two_factor, h.passkeys, "alice", channel) == SecondFactors()


def test_second_factors_fail_closed(h: Harness) -> None:
    two_factor = TwoFactor(h.store, clock=h.clock)

    def broken(*_: Any) -> Any:
        raise ConnectionError("down")

    h.store.list_passkeys = broken
    with pytest.raises(StoreUnavailableError):
        second_factors(two_factor, h.passkeys, "alice")
