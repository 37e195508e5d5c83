"""Issue 12, items 2 and 9 in the core: the tenant settings action applies whatever the
flag says, factor changes revoke every grant of the user, and a grant recorded at a
renewed session id leaves the old id with nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError, StoreUnavailableError
from stepup.policy import TENANT_SETTINGS_UPDATE, Policy
from stepup.reauth import AsyncReauth, Reauth, ReauthRequired
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor

ALICE_1 = Subject("alice", "session-1")
ALICE_2 = Subject("alice", "session-2")
BOB = Subject("bob", "session-b")


def _store(flag: bool) -> MemoryStore:
    store = MemoryStore()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": flag}}))
    return store


@pytest.mark.parametrize("flag", [False, True])
def test_tenant_settings_update_needs_a_fresh_grant_whatever_the_flag(flag: bool) -> None:
    clock = SettableClock()
    reauth = Reauth(_store(flag), Policy.default(environ={}), clock=clock)
    decision = reauth.check(ALICE_1, TENANT_SETTINGS_UPDATE, "t1")
    assert isinstance(decision, ReauthRequired)
    assert decision.methods == ("pwd",)
    reauth.record(ALICE_1, ["pwd"])
    assert reauth.check(ALICE_1, TENANT_SETTINGS_UPDATE, "t1").ok
    # Another session of the same admin does not benefit, and the grant runs out.
    assert not reauth.check(ALICE_2, TENANT_SETTINGS_UPDATE, "t1").ok
    clock.advance(6 * 3600)
    assert not reauth.check(ALICE_1, TENANT_SETTINGS_UPDATE, "t1").ok


@pytest.mark.parametrize("flag", [False, True])
def test_tenant_settings_update_without_a_tenant_record_is_still_guarded(flag: bool) -> None:
    reauth = Reauth(MemoryStore(), Policy.default(environ={}), clock=SettableClock())
    assert not reauth.check(ALICE_1, TENANT_SETTINGS_UPDATE, "no-such-tenant").ok


def test_tenant_settings_update_is_guarded_on_the_async_path_too() -> None:
    reauth = AsyncReauth(_store(False), Policy.default(environ={}), clock=SettableClock())
    decision = asyncio.run(reauth.check(ALICE_1, TENANT_SETTINGS_UPDATE, "t1"))
    assert isinstance(decision, ReauthRequired)


# A renewed session id --------------------------------------------------------------


def test_a_grant_recorded_at_a_renewed_id_leaves_the_old_id_without_one() -> None:
    store = _store(True)
    reauth = Reauth(store, Policy.default(environ={}), clock=SettableClock())
    reauth.record(ALICE_1, ["pwd"])  # an earlier grant of the old id
    grant = reauth.record(ALICE_2, ["pwd"], renewed_from=ALICE_1.session_id)
    assert grant.session_id == ALICE_2.session_id
    assert store.get_grant("alice", ALICE_1.session_id) is None
    assert reauth.check(ALICE_2, "api_key.read", "t1").ok
    assert not reauth.check(ALICE_1, "api_key.read", "t1").ok


def test_a_renewed_id_keeps_the_earlier_proofs_of_a_two_step_re_authentication() -> None:
    clock = SettableClock()
    reauth = Reauth(_store(True), Policy.default(environ={}), clock=clock)
    first = reauth.record(ALICE_1, ["oidc"])
    clock.advance(30)
    merged = reauth.record(ALICE_2, ["otp"], renewed_from=ALICE_1.session_id)
    assert merged.methods == {"oidc", "otp"}
    assert merged.authenticated_at == first.authenticated_at


def test_renewing_to_the_same_id_is_refused() -> None:
    reauth = Reauth(_store(True), Policy.default(environ={}), clock=SettableClock())
    with pytest.raises(MalformedInputError):
        reauth.record(ALICE_1, ["pwd"], renewed_from=ALICE_1.session_id)


class _MoveFails(MemoryStore):
    def replace_grant(self, *args: Any) -> bool:
        raise ConnectionError("down")


def test_a_merge_whose_move_fails_leaves_the_old_id_without_a_grant() -> None:
    """The merged grant moves to the renewed id in one store step (``replace_grant``);
    when that step fails, the record fails, and the old id keeps no grant either."""
    store, clock = _MoveFails(), SettableClock()
    store.put_tenant(Tenant("t1", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, Policy.default(environ={}), clock=clock)
    reauth.record(ALICE_1, ["oidc"])
    clock.advance(30)
    with pytest.raises(StoreUnavailableError):
        reauth.record(ALICE_2, ["otp"], renewed_from=ALICE_1.session_id)
    assert store.get_grant("alice", ALICE_1.session_id) is None
    assert store.get_grant("alice", ALICE_2.session_id) is None


# Factor changes revoke every grant of the user ----------------------------------------


def _enrolled(tf: TwoFactor, clock: SettableClock) -> tuple[TOTP, tuple[str, ...]]:
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    totp = TOTP(enrolment.secret)
    confirmation = tf.confirm_enrolment("alice", totp.at(clock()))
    assert confirmation.ok
    return totp, confirmation.recovery_codes


def _grants_everywhere(reauth: Reauth) -> None:
    for subject in (ALICE_1, ALICE_2, BOB):
        reauth.record(subject, ["pwd"])
        assert reauth.check(subject, "api_key.read", "t1").ok


def _alice_has_no_grant(reauth: Reauth) -> None:
    assert not reauth.check(ALICE_1, "api_key.read", "t1").ok
    assert not reauth.check(ALICE_2, "api_key.read", "t1").ok
    assert reauth.check(BOB, "api_key.read", "t1").ok  # nobody else is touched


def _services(store: MemoryStore | None = None) -> tuple[TwoFactor, Reauth, SettableClock]:
    store = store if store is not None else _store(True)
    clock = SettableClock()
    return (
        TwoFactor(store, clock=clock),
        Reauth(store, Policy.default(environ={}), clock=clock),
        clock,
    )


def test_confirming_an_enrolment_revokes_every_grant_of_the_user() -> None:
    tf, reauth, clock = _services()
    _grants_everywhere(reauth)
    _enrolled(tf, clock)
    _alice_has_no_grant(reauth)


def test_a_refused_confirmation_revokes_nothing() -> None:
    tf, reauth, clock = _services()
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    right = TOTP(enrolment.secret).at(clock())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    _grants_everywhere(reauth)
    assert not tf.confirm_enrolment("alice", wrong).ok
    assert reauth.check(ALICE_1, "api_key.read", "t1").ok


def test_regenerating_recovery_codes_revokes_every_grant_of_the_user() -> None:
    tf, reauth, clock = _services()
    _enrolled(tf, clock)
    _grants_everywhere(reauth)
    tf.regenerate_recovery_codes("alice")
    _alice_has_no_grant(reauth)


@pytest.mark.parametrize("actor", ["alice", "admin"])
def test_removing_two_factor_revokes_every_grant_of_the_user(actor: str) -> None:
    tf, reauth, clock = _services()
    _enrolled(tf, clock)
    _grants_everywhere(reauth)
    tf.remove("alice", actor_id=actor, actor_has_full_access=actor == "admin")
    _alice_has_no_grant(reauth)


def test_async_factor_changes_revoke_too() -> None:
    store = _store(True)
    clock = SettableClock()
    tf = AsyncTwoFactor(store, clock=clock)
    reauth = Reauth(store, Policy.default(environ={}), clock=clock)

    async def journey(step: Callable[[], Any]) -> None:
        _grants_everywhere(reauth)
        await step()
        _alice_has_no_grant(reauth)

    async def enrol() -> None:
        enrolment = await tf.begin_enrolment("alice", "alice")
        assert (await tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock()))).ok

    asyncio.run(journey(enrol))
    asyncio.run(journey(lambda: tf.regenerate_recovery_codes("alice")))
    asyncio.run(journey(lambda: tf.remove("alice", actor_id="alice")))


class _RevokeFails(MemoryStore):
    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        raise ConnectionError("down")


def test_a_revocation_that_fails_is_not_reported_as_success() -> None:
    store = _RevokeFails()
    clock = SettableClock()
    tf = TwoFactor(store, clock=clock)
    enrolment = tf.begin_enrolment("alice", "alice")
    with pytest.raises(StoreUnavailableError):
        tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock()))


# Only True is yes, in the core too (issue 12, item 6) ------------------------------------


@pytest.mark.parametrize("answer", ["false", "0", 1, "True", object()])
def test_the_core_takes_only_true_as_an_admins_yes(answer: object) -> None:
    from stepup.errors import PermissionDeniedError
    from stepup.tenants import TenantSettings

    store = _store(False)
    body = b'{"data": {"type": "tenant", "attributes": {}}}'
    with pytest.raises(PermissionDeniedError):
        TenantSettings(store).patch("t1", body, actor_id="alice", actor_is_tenant_admin=answer)  # type: ignore[arg-type]
    tf, _, clock = _services(store)
    _enrolled(tf, clock)
    with pytest.raises(PermissionDeniedError):
        tf.remove("alice", actor_id="admin", actor_has_full_access=answer)  # type: ignore[arg-type]
    assert tf.is_enrolled("alice")
