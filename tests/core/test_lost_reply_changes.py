"""A tenant PATCH, a passkey removal or a removal of two-factor whose store answer was
lost, not its write (a
reply that never came, a store's later step that failed), is what happened: the change
is announced by its event (issue 3: actor, tenant, old and new value) and a removed
factor revokes every earlier re-authentication (docs/totp.md, ASVS 5.0 section 7.4.3).
Both raised the outage with the change stored, no event and the grants standing, and
the admin's or user's retry found nothing left to change, so no event ever came. When
the write did not land, or the store cannot say, the outage stands.

The lost reply is modelled by a wrapper that performs the call and then raises, on
every store the contract suite covers, through the sync and the async API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stepup.errors import StoreUnavailableError
from stepup.events import (
    EventBus,
    PasskeyRemoved,
    StepupEvent,
    TenantAttributeChanged,
    TenantFlagChanged,
    TwoFactorRemoved,
)
from stepup.passkeys import AsyncPasskeys, Passkeys, RelyingParty
from stepup.records import Grant, Passkey, Tenant
from stepup.tenants import AsyncTenantSettings, TenantSettings
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, RemovedFactors, TwoFactor
from store_kinds import STORE_KINDS, open_store

T0 = 1_700_000_000.0
FLAG = "sensitive_actions_reauth"
RP = RelyingParty(id="example.com", name="Example", origins=("https://app.example.com",))
KEY = Passkey("alice", "cred-1", "key", "Laptop", created_at=T0)


class LostReply:
    """``store`` with one call (``lose``) that runs, or not (``lands``), and then fails
    as a lost reply does (the first, or the one after ``spare`` calls of it answered);
    the calls named in ``then_failing`` fail after it (``ALL``: every call). Its methods
    are coroutines when ``asynchronous``, as an async store's are."""

    ALL = frozenset({"*"})

    def __init__(self, store: Any, *, asynchronous: bool) -> None:
        self.store, self.asynchronous = store, asynchronous
        self.lose: str | None = None
        self.spare = 0
        self.lands = True
        self.then_failing: frozenset[str] = frozenset()
        self.failing: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)

        def call(*args: Any) -> Any:
            if name in self.failing or self.failing is self.ALL:
                raise StoreUnavailableError(f"{name}: connection refused")
            if name != self.lose:
                return method(*args)
            if self.spare:
                self.spare -= 1
                return method(*args)
            self.lose = None
            if self.lands:
                method(*args)
            self.failing = self.then_failing
            raise StoreUnavailableError(f"{name}: connection closed")

        if not self.asynchronous:
            return call

        async def acall(*args: Any) -> Any:
            await asyncio.sleep(0)
            return call(*args)

        return acall


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def asynchronous(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _call(asynchronous: bool, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = method(*args, **kwargs)
    return asyncio.run(result) if asynchronous else result


# tenant PATCH ------------------------------------------------------------------------

OFF = {"data": {"type": "tenant", "id": "t", "attributes": {"feature_flags": {FLAG: False}}}}


def _settings(store: Any, asynchronous: bool, events: list[StepupEvent]) -> Any:
    settings = AsyncTenantSettings if asynchronous else TenantSettings
    clock = SettableClock(T0)
    return settings(store, attributes={"plan": str}, clock=clock, events=EventBus(events.append))


def _flag_off(settings: Any, asynchronous: bool, body: Any = OFF) -> Any:
    return _call(
        asynchronous, settings.patch, "t", body, actor_id="admin", actor_is_tenant_admin=True
    )


def test_a_stored_patch_whose_answer_was_lost_emits_its_events(
    store: Any, asynchronous: bool
) -> None:
    store.put_tenant(Tenant("t", {"plan": "gold", "feature_flags": {FLAG: True}}))
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    settings = _settings(lossy, asynchronous, events)
    body = {
        "data": {
            "type": "tenant",
            "attributes": {"plan": "silver", "feature_flags": {FLAG: False}},
        }
    }
    lossy.lose = "patch_tenant"
    tenant = _flag_off(settings, asynchronous, body)
    assert tenant.flag(FLAG) is False
    assert tenant.attributes["plan"] == "silver"
    flags = [
        (e.actor_id, e.tenant_id, e.flag, e.old, e.new)
        for e in events
        if isinstance(e, TenantFlagChanged)
    ]
    assert flags == [("admin", "t", FLAG, True, False)]
    attributes = [
        (e.attribute, e.old, e.new) for e in events if isinstance(e, TenantAttributeChanged)
    ]
    assert attributes == [("plan", "gold", "silver")]


def test_a_patch_that_did_not_land_is_the_outage(store: Any, asynchronous: bool) -> None:
    store.put_tenant(Tenant("t", {"feature_flags": {FLAG: True}}))
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    settings = _settings(lossy, asynchronous, events)
    lossy.lose, lossy.lands = "patch_tenant", False
    with pytest.raises(StoreUnavailableError):
        _flag_off(settings, asynchronous)
    assert events == []
    assert store.get_tenant("t").flag(FLAG) is True


def test_a_patch_the_store_cannot_confirm_is_the_outage(store: Any, asynchronous: bool) -> None:
    store.put_tenant(Tenant("t", {"feature_flags": {FLAG: True}}))
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    settings = _settings(lossy, asynchronous, events)
    lossy.lose, lossy.then_failing = "patch_tenant", LostReply.ALL
    with pytest.raises(StoreUnavailableError):
        _flag_off(settings, asynchronous)
    assert events == []


def test_another_write_in_between_is_not_taken_for_this_patch(
    store: Any, asynchronous: bool
) -> None:
    """The stored tenant is not what this patch makes of the tenant read before it:
    another admin's value, so nothing says this patch landed."""
    store.put_tenant(Tenant("t", {"plan": "gold", "feature_flags": {FLAG: True}}))
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    settings = _settings(lossy, asynchronous, events)

    class Meanwhile:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def patch_tenant(self, tenant_id: str, attributes: Any, flags: Any) -> Any:
            store.patch_tenant(tenant_id, {"plan": "bronze"}, {})  # the other admin
            return store.patch_tenant(tenant_id, attributes, flags)

    lossy.store = Meanwhile(store)
    lossy.lose = "patch_tenant"
    with pytest.raises(StoreUnavailableError):
        _flag_off(settings, asynchronous)
    assert events == []


# passkey removal ---------------------------------------------------------------------


def _passkeys(store: Any, asynchronous: bool, events: list[StepupEvent]) -> Any:
    kind = AsyncPasskeys if asynchronous else Passkeys
    return kind(store, RP, clock=SettableClock(T0), events=EventBus(events.append))


def _with_passkey_and_grant(store: Any) -> None:
    assert store.add_passkey(KEY, 10)
    store.put_grant(Grant("alice", "s1", frozenset({"pwd", "phr"}), T0), T0 + 600)


def _remove(passkeys: Any, asynchronous: bool) -> Any:
    return _call(asynchronous, passkeys.remove, "alice", KEY.credential_id, removed_by="alice")


def test_a_removal_whose_answer_was_lost_is_announced_and_revokes(
    store: Any, asynchronous: bool
) -> None:
    _with_passkey_and_grant(store)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose = "remove_passkey"
    assert _remove(_passkeys(lossy, asynchronous, events), asynchronous) is True
    removed = [
        (e.user_id, e.credential_id, e.removed_by) for e in events if isinstance(e, PasskeyRemoved)
    ]
    assert removed == [("alice", KEY.credential_id, "alice")]
    assert store.list_passkeys("alice") == ()
    assert store.get_grant("alice", "s1") is None  # earlier re-authentications gone


def test_a_removal_that_did_not_land_is_the_outage(store: Any, asynchronous: bool) -> None:
    _with_passkey_and_grant(store)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose, lossy.lands = "remove_passkey", False
    with pytest.raises(StoreUnavailableError):
        _remove(_passkeys(lossy, asynchronous, events), asynchronous)
    assert events == []
    assert [p.credential_id for p in store.list_passkeys("alice")] == [KEY.credential_id]


@pytest.mark.parametrize("revocable", [False, True], ids=["store-down", "list-down"])
def test_a_removal_the_store_cannot_confirm_is_the_outage_that_revokes(
    store: Any, asynchronous: bool, revocable: bool
) -> None:
    """Perhaps removed: earlier re-authentications are revoked as far as the store
    takes it (a factor may be gone), with no event for a removal nobody saw."""
    _with_passkey_and_grant(store)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose = "remove_passkey"
    lossy.then_failing = frozenset({"list_passkeys"}) if revocable else LostReply.ALL
    with pytest.raises(StoreUnavailableError):
        _remove(_passkeys(lossy, asynchronous, events), asynchronous)
    assert not [e for e in events if isinstance(e, PasskeyRemoved)]
    assert (store.get_grant("alice", "s1") is None) is revocable


def test_an_unknown_passkey_is_not_found_before_any_write(store: Any, asynchronous: bool) -> None:
    """Never there, so a lost answer could not be taken for its removal: not found."""
    _with_passkey_and_grant(store)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose = "remove_passkey"
    passkeys = _passkeys(lossy, asynchronous, events)
    assert _call(asynchronous, passkeys.remove, "alice", "cred-2", removed_by="alice") is False
    assert events == []
    assert lossy.lose == "remove_passkey"  # not asked


# removal of two-factor ------------------------------------------------------------------

KEYS = (KEY, Passkey("alice", "cred-2", "key", "Phone", created_at=T0))


def _enrolled_with_grant(store: Any, passkeys: tuple[Passkey, ...] = ()) -> None:
    """Alice with a confirmed authenticator app, ``passkeys`` and a re-authentication."""
    clock = SettableClock(T0)
    tf = TwoFactor(store, clock=clock, issuer="Acme")
    totp = TOTP(tf.begin_enrolment("alice", "alice@example.com").secret)
    assert tf.confirm_enrolment("alice", totp.at(clock())).ok
    for passkey in passkeys:
        assert store.add_passkey(passkey, 10)
    store.put_grant(Grant("alice", "s1", frozenset({"pwd", "otp"}), T0), T0 + 600)


def _remove_2fa(store: Any, asynchronous: bool, events: list[StepupEvent], **how: Any) -> Any:
    kind = AsyncTwoFactor if asynchronous else TwoFactor
    tf = kind(store, clock=SettableClock(T0), issuer="Acme", events=EventBus(events.append))
    return _call(asynchronous, tf.remove, "alice", **how)


def _reset(store: Any, asynchronous: bool, events: list[StepupEvent]) -> Any:
    """An admin's removal: the authenticator apps, the recovery codes and the passkeys."""
    how = {"actor_id": "admin", "actor_has_full_access": True, "with_passkeys": True}
    return _remove_2fa(store, asynchronous, events, **how)


def _announced(events: list[StepupEvent]) -> tuple[list[str], list[str]]:
    """Who removed two-factor, and which passkeys were announced removed."""
    return (
        [e.removed_by for e in events if isinstance(e, TwoFactorRemoved)],
        [e.credential_id for e in events if isinstance(e, PasskeyRemoved)],
    )


def test_a_2fa_removal_whose_answer_was_lost_is_announced_and_revokes(
    store: Any, asynchronous: bool
) -> None:
    _enrolled_with_grant(store)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose = "delete_credential"
    removed = _remove_2fa(lossy, asynchronous, events, actor_id="alice")
    assert removed == RemovedFactors(totp=True, passkeys=0)
    assert _announced(events) == (["alice"], [])
    assert store.get_credential("alice") is None
    assert store.get_grant("alice", "s1") is None  # earlier re-authentications gone


def test_a_2fa_removal_that_did_not_land_is_the_outage(store: Any, asynchronous: bool) -> None:
    _enrolled_with_grant(store)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose, lossy.lands = "delete_credential", False
    with pytest.raises(StoreUnavailableError):
        _remove_2fa(lossy, asynchronous, events, actor_id="alice")
    assert events == []
    assert store.get_credential("alice") is not None
    assert store.get_grant("alice", "s1") is not None  # nothing changed


@pytest.mark.parametrize("revocable", [False, True], ids=["store-down", "read-down"])
def test_a_2fa_removal_the_store_cannot_confirm_is_the_outage_that_revokes(
    store: Any, asynchronous: bool, revocable: bool
) -> None:
    _enrolled_with_grant(store)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose = "delete_credential"
    lossy.then_failing = frozenset({"get_credential"}) if revocable else LostReply.ALL
    with pytest.raises(StoreUnavailableError):
        _remove_2fa(lossy, asynchronous, events, actor_id="alice")
    assert events == []
    assert (store.get_grant("alice", "s1") is None) is revocable


@pytest.mark.parametrize(
    ("lose", "spare"),
    [("delete_credential", 0), ("remove_passkey", 0), ("remove_passkey", 1)],
    ids=["credential", "first-passkey", "later-passkey"],
)
def test_a_reset_whose_answer_was_lost_is_announced_and_revokes(
    store: Any, asynchronous: bool, lose: str, spare: int
) -> None:
    _enrolled_with_grant(store, KEYS)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose, lossy.spare = lose, spare
    assert _reset(lossy, asynchronous, events) == RemovedFactors(totp=True, passkeys=2)
    assert _announced(events) == (["admin"], ["cred-1", "cred-2"])
    assert store.get_credential("alice") is None
    assert store.list_passkeys("alice") == ()
    assert store.get_grant("alice", "s1") is None


@pytest.mark.parametrize("spare", [0, 1], ids=["first-passkey", "later-passkey"])
def test_a_reset_cut_short_announces_and_revokes_what_it_removed(
    store: Any, asynchronous: bool, spare: int
) -> None:
    """A passkey still stored after its removal failed: the outage is the answer, but the
    authenticator app (and the passkeys before it) went, so they are announced and every
    earlier re-authentication revoked; the retry removes the rest."""
    _enrolled_with_grant(store, KEYS)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose, lossy.spare, lossy.lands = "remove_passkey", spare, False
    with pytest.raises(StoreUnavailableError):
        _reset(lossy, asynchronous, events)
    gone = [key.credential_id for key in KEYS[:spare]]
    assert _announced(events) == (["admin"], gone)
    assert store.get_credential("alice") is None
    assert store.get_grant("alice", "s1") is None
    events.clear()
    assert _reset(lossy, asynchronous, events) == RemovedFactors(totp=False, passkeys=2 - spare)
    assert _announced(events) == (["admin"], [key.credential_id for key in KEYS[spare:]])
    assert store.list_passkeys("alice") == ()


def test_a_reset_of_passkeys_cut_short_announces_them_and_revokes(
    store: Any, asynchronous: bool
) -> None:
    """No authenticator app, and the second passkey's removal failed: the first is
    announced and earlier re-authentications revoked, but two-factor is not removed."""
    for key in KEYS:
        assert store.add_passkey(key, 10)
    store.put_grant(Grant("alice", "s1", frozenset({"pwd", "phr"}), T0), T0 + 600)
    lossy, events = LostReply(store, asynchronous=asynchronous), list[StepupEvent]()
    lossy.lose, lossy.spare, lossy.lands = "remove_passkey", 1, False
    with pytest.raises(StoreUnavailableError):
        _reset(lossy, asynchronous, events)
    assert _announced(events) == ([], ["cred-1"])
    assert store.get_grant("alice", "s1") is None
