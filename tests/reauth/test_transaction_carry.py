"""A transaction recorded at a renewed session id carries the session's grant to the
new id with ``replace_grant`` (the race with a revocation is the store contract's
``test_a_revocation_between_a_transactions_read_and_carry_stands``). Whichever write
fails, nothing is granted anywhere: not the proof, not the carried grant, and the old
id keeps nothing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import Allowed, Reauth
from stepup.records import Grant, Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.transactions import transaction_digest

OLD, NEW = Subject("alice", "session-1"), Subject("alice", "session-2")
POLICY = Policy(
    {
        "billing.export": Rule(Sensitivity.CRITICAL, lifetime=300.0, second_factor=True),
        "payments.send": Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True),
    }
)
DIGEST = transaction_digest("payments.send", {"to": "x"}, tenant_id="t1")


class _FailsAt(MemoryStore):
    """Fails the first call of ``failing`` once ``down`` is set (by the test), then
    works again."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing, self.down = failing, False

    def __getattribute__(self, name: str) -> Any:
        if name == object.__getattribute__(self, "failing") and object.__getattribute__(
            self, "down"
        ):
            self.down = False
            raise StoreUnavailableError(f"{name}: the store is down")
        return object.__getattribute__(self, name)


def _signed_in(store: MemoryStore) -> Reauth:
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    reauth = Reauth(store, POLICY, clock=clock)
    reauth.record(OLD, ["otp", "pwd"])
    clock.advance(5)
    return reauth


def test_the_grant_moves_to_the_new_id_as_it_was() -> None:
    store = MemoryStore()
    reauth = _signed_in(store)
    before = store.get_grant("alice", OLD.session_id)
    reauth.record(NEW, ["pwd"], renewed_from=OLD.session_id, transaction=DIGEST)
    assert before is not None
    assert store.get_grant("alice", NEW.session_id) == replace(before, session_id=NEW.session_id)
    assert store.get_grant("alice", OLD.session_id) is None
    assert isinstance(reauth.check(NEW, "billing.export", "t1"), Allowed)
    assert isinstance(reauth.check(NEW, "payments.send", "t1", transaction=DIGEST), Allowed)


@pytest.mark.parametrize("failing", ["replace_grant", "put_grant", "put_challenge"])
def test_a_failed_write_grants_nothing_anywhere(failing: str) -> None:
    """``replace_grant`` is the carry, ``put_grant`` the session's transaction epoch
    (after the carry), ``put_challenge`` the proof: the record fails, and neither id
    holds a grant nor does the payment count."""
    store = _FailsAt(failing)
    reauth = _signed_in(store)
    store.down = True
    with pytest.raises(StoreUnavailableError):
        reauth.record(NEW, ["pwd"], renewed_from=OLD.session_id, transaction=DIGEST)
    assert not store.down, f"{failing} was never called"
    assert store.get_grant("alice", OLD.session_id) is None
    assert store.get_grant("alice", NEW.session_id) is None
    assert not reauth.check(NEW, "payments.send", "t1", transaction=DIGEST).ok


def test_a_grant_replaced_before_the_carry_is_revoked_not_carried() -> None:
    """Another record rewrote the old id's grant after this one read it: the grant read
    is gone, so nothing is carried, and the old id keeps nothing either."""
    store = MemoryStore()
    reauth = _signed_in(store)

    class Replaced:
        def replace_grant(self, *args: Any) -> bool:
            now = reauth.clock()
            store.put_grant(Grant("alice", OLD.session_id, frozenset({"pwd"}), now), now + 300)
            return store.replace_grant(*args)

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    late = Reauth(Replaced(), POLICY, clock=reauth.clock)
    late.record(NEW, ["pwd"], renewed_from=OLD.session_id, transaction=DIGEST)
    assert store.get_grant("alice", OLD.session_id) is None
    assert store.get_grant("alice", NEW.session_id) is None
    assert isinstance(reauth.check(NEW, "payments.send", "t1", transaction=DIGEST), Allowed)
