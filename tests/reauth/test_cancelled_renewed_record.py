"""A record at a renewed session id that is cut short while a store call is in flight
(an async request cancelled: a timeout, a client gone; or a sync one interrupted by a
``BaseException``, as gevent's ``Timeout`` is) leaves the old id no grant: the move of
the session's grant (``replace_grant``) or the write after it never finished, and the
old id's grant is revoked before the cancellation is raised, as for a store outage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth
from stepup.records import Tenant
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
#: (the call the record is cut short in, the transaction recorded): a merge's move, the
#: write of a grant with nothing to merge, a transaction's carry of the session's grant
#: to the new id, and the writes after that carry (the session's transaction epoch, the
#: proof), which must not leave the carried grant behind either.
CUT_SHORT = [
    pytest.param("replace_grant", None, id="merge-move"),
    pytest.param("put_grant", None, id="grant-alone"),
    pytest.param("replace_grant", DIGEST, id="transaction-carry"),
    pytest.param("put_grant", DIGEST, id="transaction-epoch"),
    pytest.param("put_challenge", DIGEST, id="transaction-proof"),
]


def _first_proofs(cut_short_in: str, transaction: str | None) -> list[str]:
    """The session's first proofs: a code, which the password then joins (a merge), or
    for a plain ``put_grant`` a password, which the second one does not add to."""
    return ["pwd"] if (cut_short_in, transaction) == ("put_grant", None) else ["otp"]


class _Interrupted(BaseException):
    """What a sync server's timeout raises inside a call (gevent's ``Timeout`` is a
    ``BaseException``)."""


class _StuckAt(MemoryStore):
    """An async store whose first call of ``stuck`` (once ``armed``) never returns by
    itself: it says it has started, then waits for the caller to be cancelled."""

    def __init__(self, stuck: str) -> None:
        super().__init__()
        self.stuck, self.armed = stuck, False
        self.started = asyncio.Event()

    def __getattribute__(self, name: str) -> Any:
        method = object.__getattribute__(self, name)
        if name.startswith("_") or not callable(method):
            return method

        async def call(*args: Any) -> Any:
            if name == self.stuck and self.armed:
                self.armed = False
                self.started.set()
                await asyncio.Event().wait()  # never set: only a cancellation ends it
            return method(*args)

        return call


class _InterruptedAt(MemoryStore):
    """A sync store whose first call of ``failing`` (once ``armed``) is interrupted."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing, self.armed = failing, False

    def __getattribute__(self, name: str) -> Any:
        if name == object.__getattribute__(self, "failing") and object.__getattribute__(
            self, "armed"
        ):
            self.armed = False
            raise _Interrupted
        return object.__getattribute__(self, name)


@pytest.mark.parametrize(("stuck", "transaction"), CUT_SHORT)
def test_a_cancelled_async_record_leaves_the_old_id_no_grant(
    stuck: str, transaction: str | None
) -> None:
    async def scenario() -> MemoryStore:
        store = _StuckAt(stuck)
        await store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
        clock = SettableClock()
        reauth = AsyncReauth(store, POLICY, clock=clock)
        await reauth.record(OLD, _first_proofs(stuck, transaction))
        clock.advance(5)
        store.armed = True
        record = asyncio.ensure_future(
            reauth.record(NEW, ["pwd"], renewed_from=OLD.session_id, transaction=transaction)
        )
        await store.started.wait()
        record.cancel()
        with pytest.raises(asyncio.CancelledError):
            await record
        return store

    store = asyncio.run(scenario())
    assert MemoryStore.get_grant(store, "alice", OLD.session_id) is None
    assert MemoryStore.get_grant(store, "alice", NEW.session_id) is None


@pytest.mark.parametrize(("failing", "transaction"), CUT_SHORT)
def test_an_interrupted_sync_record_leaves_the_old_id_no_grant(
    failing: str, transaction: str | None
) -> None:
    store = _InterruptedAt(failing)
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    clock = SettableClock()
    reauth = Reauth(store, POLICY, clock=clock)
    reauth.record(OLD, _first_proofs(failing, transaction))
    clock.advance(5)
    store.armed = True
    with pytest.raises(_Interrupted):
        reauth.record(NEW, ["pwd"], renewed_from=OLD.session_id, transaction=transaction)
    assert not store.armed, f"{failing} was never called"
    assert store.get_grant("alice", OLD.session_id) is None
    assert store.get_grant("alice", NEW.session_id) is None


def test_a_cancelled_record_in_the_same_session_changes_nothing_else() -> None:
    """Without a renewed id there is nothing to put right: the cancellation is raised as
    it is, and the session keeps the grant it had (the merge never happened)."""

    async def scenario() -> tuple[MemoryStore, Any]:
        store = _StuckAt("replace_grant")
        clock = SettableClock()
        reauth = AsyncReauth(store, POLICY, clock=clock)
        before = await reauth.record(OLD, ["otp"])
        clock.advance(5)
        store.armed = True
        record = asyncio.ensure_future(reauth.record(OLD, ["pwd"]))
        await store.started.wait()
        record.cancel()
        with pytest.raises(asyncio.CancelledError):
            await record
        return store, before

    store, before = asyncio.run(scenario())
    assert MemoryStore.get_grant(store, "alice", OLD.session_id) == before
