"""How every framework ends a re-authentication (``ConfirmedReauth``): the grant goes to
the subject under the renewed session id, the old id keeps none, and the one transaction
it confirmed stops waiting in the session while the others wait on. The same helper
serves a sync ``Reauth`` and an ``AsyncReauth``."""

from __future__ import annotations

from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.transaction import (
    ConfirmedReauth,
    Transaction,
    note_transaction,
    pending_transaction,
)
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AsyncReauth, Reauth
from stepup.records import Grant, Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.transactions import transaction_digest

T0 = 1_700_000_000.0
ACTION = "workspace.delete"
POLICY = Policy({ACTION: Rule(Sensitivity.CRITICAL, lifetime=300.0, bind_transaction=True)})
PROD_EU = transaction_digest(ACTION, {"workspace": "prod-eu"})
PROD_US = transaction_digest(ACTION, {"workspace": "prod-us"})
BEFORE = Subject("alice", "old-id")
AFTER = Subject("alice", "new-id")


def _session() -> dict[str, Any]:
    session: dict[str, Any] = {}
    for name, digest in (("prod-eu", PROD_EU), ("prod-us", PROD_US)):
        wanted = Transaction({"workspace": name}, "Delete workspace %(workspace)s")
        note_transaction(session, BEFORE.session_id, ACTION, wanted, digest, T0)
    return session


def _store() -> MemoryStore:
    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    return store


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_the_grant_follows_the_new_id_and_the_confirmed_transaction_is_forgotten(
    asynchronous: bool,
) -> None:
    clock = SettableClock(T0 + 10)
    store = _store()
    session = _session()
    confirmed = ConfirmedReauth.after_renewal(
        BEFORE, AFTER, ["pwd", "otp"], at=T0 + 5, transaction=PROD_EU
    )
    assert (confirmed.subject, confirmed.renewed_from) == (AFTER, "old-id")

    if asynchronous:
        areauth = AsyncReauth(store, POLICY, clock=clock)
        grant = await confirmed.record(areauth)
    else:
        grant = confirmed.record(Reauth(store, POLICY, clock=clock))
    assert isinstance(grant, Grant)
    assert (grant.session_id, grant.authenticated_at) == ("new-id", T0 + 5)
    assert confirmed.done(session) == (AFTER, "old-id")

    reauth = Reauth(store, POLICY, clock=clock)
    assert reauth.check(AFTER, ACTION, "t", transaction=PROD_EU).ok
    assert not reauth.check(BEFORE, ACTION, "t", transaction=PROD_EU).ok  # old id: none
    assert not reauth.check(AFTER, ACTION, "t", transaction=PROD_US).ok  # one target
    assert pending_transaction(session, "old-id", ACTION, PROD_EU, T0 + 10) is None
    assert pending_transaction(session, "old-id", ACTION, PROD_US, T0 + 10) is not None


def test_without_a_transaction_or_a_session_nothing_is_forgotten() -> None:
    session = _session()
    unbound = ConfirmedReauth.after_renewal(BEFORE, AFTER, ["pwd"])
    assert unbound.done(session) == (AFTER, "old-id")
    assert pending_transaction(session, "old-id", ACTION, PROD_EU, T0) is not None
    bound = ConfirmedReauth.after_renewal(BEFORE, AFTER, ["pwd"], transaction=PROD_EU)
    assert bound.done(None) == (AFTER, "old-id")  # an app without a session


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (None, (BEFORE, None)),  # nobody loaded after the renewal: the grant stays put
        (Subject("mallory", "new-id"), (BEFORE, None)),  # someone else: never theirs
        (BEFORE, (BEFORE, None)),  # the app keeps its own session ids
    ],
)
def test_whom_the_grant_is_for(after: Subject | None, expected: tuple[Subject, None]) -> None:
    confirmed = ConfirmedReauth.after_renewal(BEFORE, after, ("pwd",))
    assert (confirmed.subject, confirmed.renewed_from) == expected
    grant = confirmed.record(Reauth(_store(), POLICY, clock=SettableClock(T0)))
    assert (grant.user_id, grant.session_id, grant.methods) == ("alice", "old-id", {"pwd"})
