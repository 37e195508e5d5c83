"""Removing 2FA when a user lost their devices: an admin's (or an operator's) removal is
the reset, so it removes every second factor a sign-in asks for, passkeys included; the
user's own removal turns off the authenticator apps and recovery codes and leaves their
passkeys to the passkeys page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import NotEnrolledError, PermissionDeniedError
from stepup.events import EventBus, PasskeyRemoved, TwoFactorRemoved
from stepup.records import Grant, Passkey
from stepup.signin import second_factors
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import RemovedFactors, TwoFactor


@pytest.fixture
def tf(make_two_factor: Callable[..., Any]) -> Any:
    return make_two_factor()


def enrol(tf: Any, clock: SettableClock, user_id: str) -> None:
    enrolment = tf.begin_enrolment(user_id, f"{user_id}@example.com")
    assert tf.confirm_enrolment(user_id, TOTP(enrolment.secret).at(clock())).ok


def add_passkey(store: MemoryStore, user_id: str, credential_id: str) -> None:
    assert store.add_passkey(Passkey(user_id, credential_id, "data", "Key"), 10)


def test_an_admins_removal_takes_the_passkeys_too(
    tf: Any, store: MemoryStore, clock: SettableClock, events: EventBus
) -> None:
    seen: list[object] = []
    events.subscribe(seen.append)
    enrol(tf, clock, "alice")
    add_passkey(store, "alice", "cred-1")
    add_passkey(store, "alice", "cred-2")
    add_passkey(store, "bob", "cred-b")
    store.put_grant(Grant("alice", "s1", frozenset({"pwd"}), clock()), clock() + 3600)
    removed = tf.remove("alice", actor_id="admin", actor_has_full_access=True)
    assert removed == RemovedFactors(totp=True, passkeys=2)
    assert store.get_credential("alice") is None
    assert store.list_passkeys("alice") == ()
    assert [p.credential_id for p in store.list_passkeys("bob")] == ["cred-b"]
    assert store.get_grant("alice", "s1") is None  # a factor changed: every grant goes
    assert sorted(e.credential_id for e in seen if isinstance(e, PasskeyRemoved)) == [
        "cred-1",
        "cred-2",
    ]
    assert [e.removed_by for e in seen if isinstance(e, TwoFactorRemoved)] == ["admin"]


def test_a_user_whose_only_second_factor_is_a_passkey_can_be_reset(
    tf: Any, store: MemoryStore
) -> None:
    add_passkey(store, "carol", "cred-c")
    with pytest.raises(NotEnrolledError):  # her own removal: apps and codes, she has none
        tf.remove("carol", actor_id="carol")
    assert len(store.list_passkeys("carol")) == 1
    removed = tf.remove("carol", actor_id="admin", actor_has_full_access=True)
    assert removed == RemovedFactors(totp=False, passkeys=1)
    assert store.list_passkeys("carol") == ()
    with pytest.raises(NotEnrolledError):
        tf.remove("carol", actor_id="admin", actor_has_full_access=True)


def test_the_users_own_removal_keeps_their_passkeys(
    tf: Any, store: MemoryStore, clock: SettableClock
) -> None:
    enrol(tf, clock, "alice")
    add_passkey(store, "alice", "cred-1")
    assert tf.remove("alice", actor_id="alice") == RemovedFactors(totp=True, passkeys=0)
    assert len(store.list_passkeys("alice")) == 1


def test_without_full_access_nothing_is_removed(tf: Any, store: MemoryStore) -> None:
    add_passkey(store, "carol", "cred-c")
    for answer in (False, "true", 1):
        with pytest.raises(PermissionDeniedError):
            tf.remove("carol", actor_id="mallory", actor_has_full_access=answer)
    assert len(store.list_passkeys("carol")) == 1


def test_after_an_admins_removal_a_sign_in_asks_for_no_second_factor(
    tf: Any, store: MemoryStore, clock: SettableClock
) -> None:
    enrol(tf, clock, "alice")
    add_passkey(store, "alice", "cred-1")
    on = object()  # passkeys on (only whether they are is read here)
    assert second_factors(TwoFactor(store), on, "alice").required  # type: ignore[arg-type]
    tf.remove("alice", actor_id="admin", actor_has_full_access=True)
    assert not second_factors(TwoFactor(store), on, "alice").required  # type: ignore[arg-type]


def test_a_reset_asked_for_explicitly_needs_full_access(tf: Any, store: MemoryStore) -> None:
    add_passkey(store, "carol", "cred-c")
    with pytest.raises(PermissionDeniedError):
        tf.remove("carol", actor_id="carol", with_passkeys=True)
    assert len(store.list_passkeys("carol")) == 1
    removed = tf.remove("carol", actor_id="carol", actor_has_full_access=True, with_passkeys=True)
    assert removed == RemovedFactors(totp=False, passkeys=1)


def test_an_admin_may_keep_the_passkeys(tf: Any, store: MemoryStore, clock: SettableClock) -> None:
    enrol(tf, clock, "alice")
    add_passkey(store, "alice", "cred-1")
    removed = tf.remove("alice", actor_id="admin", actor_has_full_access=True, with_passkeys=False)
    assert removed == RemovedFactors(totp=True, passkeys=0)
    assert len(store.list_passkeys("alice")) == 1
