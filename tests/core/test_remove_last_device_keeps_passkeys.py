"""Removing one TOTP device is never the reset: when it is the user's last one, TOTP
two-factor goes (the credential and its recovery codes, as the user's own ``remove``)
and the passkeys stay, whoever removes it (the user, an admin with full access, the
operator command, which is the admin's path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import NotEnrolledError
from stepup.records import Grant, Passkey
from stepup.signin import second_factors
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import RemovedFactors, TwoFactor


@pytest.fixture
def tf(make_two_factor: Callable[..., Any]) -> Any:
    return make_two_factor()


def enrol(tf: Any, clock: SettableClock, user_id: str) -> tuple[str, tuple[str, ...]]:
    enrolment = tf.begin_enrolment(user_id, f"{user_id}@example.com")
    confirmation = tf.confirm_enrolment(user_id, TOTP(enrolment.secret).at(clock()))
    assert confirmation.ok
    clock.advance(30)
    return enrolment.device_id, confirmation.recovery_codes


def add_passkey(store: MemoryStore, user_id: str, credential_id: str) -> None:
    assert store.add_passkey(Passkey(user_id, credential_id, "data", "Key"), 10)


@pytest.mark.parametrize(
    ("actor", "full_access"),
    [("admin", True), ("operator:root", True), ("alice", False)],
    ids=["admin", "operator", "the-user"],
)
def test_removing_the_last_device_keeps_the_passkeys(
    tf: Any, store: MemoryStore, clock: SettableClock, recorder: Any, actor: str, full_access: bool
) -> None:
    device_id, codes = enrol(tf, clock, "alice")
    add_passkey(store, "alice", "cred-1")
    add_passkey(store, "alice", "cred-2")
    store.put_grant(Grant("alice", "s1", frozenset({"pwd"}), clock()), clock() + 3600)
    recorder.events.clear()
    tf.remove_device("alice", device_id, actor_id=actor, actor_has_full_access=full_access)
    assert sorted(p.credential_id for p in store.list_passkeys("alice")) == ["cred-1", "cred-2"]
    assert not tf.is_enrolled("alice")
    assert store.get_credential("alice") is None  # the recovery codes went with it
    with pytest.raises(NotEnrolledError):
        tf.use_recovery_code("alice", codes[0])
    assert store.get_grant("alice", "s1") is None  # a factor changed: every grant goes
    assert recorder.names() == ["TwoFactorRemoved"]  # no PasskeyRemoved
    assert recorder.events[-1].removed_by == actor
    on = object()  # passkeys on: a sign-in still asks for the passkey
    assert second_factors(TwoFactor(store), on, "alice").required  # type: ignore[arg-type]


def test_after_the_last_device_the_admins_reset_still_takes_the_passkeys(
    tf: Any, store: MemoryStore, clock: SettableClock
) -> None:
    device_id, _ = enrol(tf, clock, "alice")
    add_passkey(store, "alice", "cred-1")
    tf.remove_device("alice", device_id, actor_id="admin", actor_has_full_access=True)
    removed = tf.remove("alice", actor_id="admin", actor_has_full_access=True)
    assert removed == RemovedFactors(totp=False, passkeys=1)
    assert store.list_passkeys("alice") == ()
