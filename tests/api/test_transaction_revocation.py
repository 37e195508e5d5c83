"""A transaction proof (a re-authentication that confirmed one action on one target) is
revoked with the session's grants: a password change, a sign-out, a factor change and
a session renewal each void every proof recorded before them, on every store. A proof
recorded after the revocation does not bring back one recorded before it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed, Reauth, ReauthRequired
from stepup.records import Tenant
from stepup.sealing import SecretBox
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.transactions import transaction_digest
from stepup.twofactor import TwoFactor
from store_kinds import STORE_KINDS, open_store

ACTION = "workspace.delete"
POLICY = Policy({ACTION: Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True)})
PROD_EU = transaction_digest(ACTION, {"workspace": "prod-eu"})
PROD_US = transaction_digest(ACTION, {"workspace": "prod-us"})
BOX = SecretBox({"k1": b"k" * 32}, current="k1")


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as opened:
        yield opened


def _reauth(store: Any, clock: SettableClock) -> Reauth:
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    return Reauth(store, POLICY, clock=clock)


def _user() -> Subject:
    return Subject(f"alice-{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}")


def _spends(reauth: Reauth, subject: Subject, digest: str = PROD_EU) -> bool:
    decision = reauth.check(subject, ACTION, "t", transaction=digest)
    assert isinstance(decision, Allowed | ReauthRequired), decision
    return decision.ok


def _password_changed(reauth: Reauth, store: Any, subject: Subject, clock: Any) -> None:
    reauth.password_changed(subject.user_id)


def _signed_out(reauth: Reauth, store: Any, subject: Subject, clock: Any) -> None:
    reauth.sign_out(subject)


def _two_factor_turned_on(reauth: Reauth, store: Any, subject: Subject, clock: Any) -> None:
    tf = TwoFactor(store, clock=clock, box=BOX)
    enrolment = tf.begin_enrolment(subject.user_id, "alice@example.com")
    assert tf.confirm_enrolment(subject.user_id, TOTP(enrolment.secret).at(clock())).ok


REVOCATIONS: dict[str, Callable[[Reauth, Any, Subject, Any], None]] = {
    "password changed": _password_changed,
    "signed out": _signed_out,
    "factors changed": _two_factor_turned_on,
}


@pytest.mark.parametrize("revoke", REVOCATIONS.values(), ids=REVOCATIONS.keys())
def test_a_revocation_voids_the_proofs_recorded_before_it(
    store: Any, revoke: Callable[[Reauth, Any, Subject, Any], None]
) -> None:
    clock = SettableClock(1_700_000_000.0)
    reauth = _reauth(store, clock)
    alice = _user()
    reauth.record(alice, ["pwd"], transaction=PROD_EU)
    clock.advance(1)
    revoke(reauth, store, alice, clock)
    assert not _spends(reauth, alice)


def test_a_later_proof_does_not_bring_back_an_earlier_one(store: Any) -> None:
    clock = SettableClock(1_700_000_000.0)
    reauth = _reauth(store, clock)
    alice = _user()
    reauth.record(alice, ["pwd"], transaction=PROD_EU)  # what a thief's copy would spend
    clock.advance(1)
    reauth.password_changed(alice.user_id)
    clock.advance(1)
    reauth.record(alice, ["pwd"], transaction=PROD_US)  # the owner confirms another
    assert not _spends(reauth, alice, PROD_EU)
    assert _spends(reauth, alice, PROD_US)


def test_proofs_survive_what_revokes_nothing_of_theirs(store: Any) -> None:
    """Several proofs in one session stand together; another session's sign-out and a
    renewal of another session leave them alone."""
    clock = SettableClock(1_700_000_000.0)
    reauth = _reauth(store, clock)
    alice = _user()
    other = Subject(alice.user_id, f"{alice.session_id}-other")
    reauth.record(alice, ["pwd"], transaction=PROD_EU)
    clock.advance(5)
    reauth.record(alice, ["pwd"], transaction=PROD_US)
    reauth.record(other, ["pwd"])
    reauth.sign_out(other)
    assert _spends(reauth, alice, PROD_US)
    assert _spends(reauth, alice, PROD_EU)
    assert not _spends(reauth, alice, PROD_EU)  # spent: once only


def test_a_renewed_session_leaves_the_old_ids_proofs_void(store: Any) -> None:
    clock = SettableClock(1_700_000_000.0)
    reauth = _reauth(store, clock)
    alice = _user()
    reauth.record(alice, ["pwd"], transaction=PROD_EU)
    clock.advance(1)
    renewed = Subject(alice.user_id, f"{alice.session_id}-renewed")
    reauth.record(renewed, ["pwd"], renewed_from=alice.session_id)
    assert not _spends(reauth, alice)  # a copy of the session from before the renewal


class RevokeAfterAnchorRead:
    """The store, with a password change run right after the record reads the anchor,
    before it writes: the revocation races the record."""

    def __init__(self, inner: Any, reauth: Reauth, user_id: str) -> None:
        self.inner, self.reauth, self.user_id = inner, reauth, user_id
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if name != "get_grant":
            return found

        def read(user_id: str, session_id: str) -> Any:
            answer = found(user_id, session_id)
            if session_id.endswith("#tx-anchor") and not self.raced:
                self.raced = True
                self.reauth.password_changed(self.user_id)
            return answer

        return read


def test_a_revocation_racing_a_record_voids_the_earlier_proofs(store: Any) -> None:
    clock = SettableClock(1_700_000_000.0)
    plain = _reauth(store, clock)
    alice = _user()
    plain.record(alice, ["pwd"], transaction=PROD_EU)  # what a stolen copy would spend
    racing = RevokeAfterAnchorRead(store, plain, alice.user_id)
    Reauth(racing, POLICY, clock=clock).record(alice, ["pwd"], transaction=PROD_US)
    assert racing.raced
    assert not _spends(plain, alice, PROD_EU)


def test_no_clock_is_compared_a_revocation_in_the_same_tick_counts(store: Any) -> None:
    """A coarse clock (or a second server's clock behind this one's): record, revoke and
    record again at one reading of the clock; the first proof is still void."""
    clock = SettableClock(1_700_000_000.0)
    reauth = _reauth(store, clock)
    alice = _user()
    reauth.record(alice, ["pwd"], transaction=PROD_EU)
    reauth.password_changed(alice.user_id)
    clock.set(clock() - 30)  # the next request lands on a server whose clock is behind
    reauth.record(alice, ["pwd"], transaction=PROD_US)
    assert not _spends(reauth, alice, PROD_EU)
    assert _spends(reauth, alice, PROD_US)


def test_the_anchor_is_no_grant_for_anything() -> None:
    """Read as a grant (a session id that ends like one), the anchor satisfies no rule."""
    clock = SettableClock(1_700_000_000.0)
    store = MemoryStore()
    reauth = _reauth(store, clock)
    alice = _user()
    reauth.record(alice, ["pwd"], transaction=PROD_EU)
    lookalike = Subject(alice.user_id, alice.session_id + "#tx-anchor")
    plain = Reauth(store, Policy.default(environ={}), clock=clock)
    assert not plain.check(lookalike, "api_key.read", "t").ok


def test_confirming_a_transaction_with_a_renewed_session_keeps_the_sessions_grant(
    store: Any,
) -> None:
    """Confirming one action renews the session id; the session's ordinary grant moved
    with it as it was (its time, never fresher), where it was thrown away, so the next
    ordinary sensitive action asked again within its lifetime."""
    clock = SettableClock(1_700_000_000)
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    policy = Policy(
        {
            ACTION: Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True),
            "api_key.read": Rule(Sensitivity.SENSITIVE, lifetime=3600.0),
        }
    )
    reauth = Reauth(store, policy, clock=clock)
    before = _user()
    reauth.record(before, ["pwd"])
    first = clock()
    clock.advance(600)
    after = Subject(before.user_id, f"{before.session_id}-renewed")
    reauth.record(after, ["pwd"], transaction=PROD_EU, renewed_from=before.session_id)
    allowed = reauth.check(after, "api_key.read", "t")
    assert isinstance(allowed, Allowed)
    assert allowed.valid_until == first + 3600.0  # the old proof's time, not the new one's
    assert not reauth.check(before, "api_key.read", "t").ok  # the old id keeps nothing
    assert _spends(reauth, after)
    assert not _spends(reauth, after)  # the proof is still single-use
    clock.advance(3000)  # the carried grant ends when it would have
    assert not reauth.check(after, "api_key.read", "t").ok
