"""Beginning an enrolment races its confirmation: the enrolment page opened again (a
reload, a second tab) while the first enrolment is being confirmed, or two first
enrolments in flight (a double-submitted "Turn on"). The competing call runs between
``begin_enrolment``'s credential read and its write, on every store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import AlreadyEnrolledError, StoreUnavailableError
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from store_kinds import STORE_KINDS, open_store

T0 = 1_699_999_980.0
BOX = SecretBox({"k1": bytes(range(32))}, current="k1")


class AfterRead:
    """A store whose next ``get_credential``, once armed, runs ``compete`` after the
    read returned and before the caller goes on to its write."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.compete: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name != "get_credential":
            return method

        def call(*args: Any) -> Any:
            found = method(*args)
            if self.compete is not None:
                hook, self.compete = self.compete, None
                hook()
            return found

        return call


@pytest.fixture(params=STORE_KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as store:
        yield store


def test_a_confirmation_between_the_read_and_the_write_is_kept(backend: Any) -> None:
    clock = SettableClock(T0)
    racing = AfterRead(backend)
    reload = TwoFactor(racing, clock=clock, box=BOX)
    other = TwoFactor(backend, clock=clock, box=BOX)  # the request confirming
    phone = TOTP(other.begin_enrolment("bob", "bob@example.com").secret)
    confirmations: list[Any] = []
    racing.compete = lambda: confirmations.append(other.confirm_enrolment("bob", phone.at(clock())))

    with pytest.raises(AlreadyEnrolledError):
        reload.begin_enrolment("bob", "bob@example.com")

    assert racing.compete is None  # it ran, inside begin_enrolment
    [confirmation] = confirmations
    assert confirmation.ok
    assert other.is_enrolled("bob")
    clock.advance(30)
    assert other.verify("bob", phone.at(clock())).ok
    assert other.use_recovery_code("bob", confirmation.recovery_codes[0]).ok


def test_another_begin_between_the_read_and_the_write_is_replaced(backend: Any) -> None:
    """Two reloads: the later write wins, and the enrolment stays pending."""
    clock = SettableClock(T0)
    racing = AfterRead(backend)
    reload = TwoFactor(racing, clock=clock, box=BOX)
    other = TwoFactor(backend, clock=clock, box=BOX)
    other.begin_enrolment("bob", "bob@example.com")

    def begin_elsewhere() -> None:
        other.begin_enrolment("bob", "bob@example.com")

    racing.compete = begin_elsewhere

    mine = reload.begin_enrolment("bob", "bob@example.com")

    assert racing.compete is None
    assert not other.is_enrolled("bob")
    assert other.confirm_enrolment("bob", TOTP(mine.secret).at(clock())).ok


def test_a_first_enrolment_confirmed_between_the_read_and_the_write_is_kept(
    backend: Any,
) -> None:
    """Nothing stored yet: tab B begins and is confirmed (its recovery codes shown)
    while tab A's first write is on its way. A's write must not turn 2FA off."""
    clock = SettableClock(T0)
    racing = AfterRead(backend)
    tab_a = TwoFactor(racing, clock=clock, box=BOX)
    tab_b = TwoFactor(backend, clock=clock, box=BOX)
    confirmations: list[Any] = []

    def begin_and_confirm_in_tab_b() -> None:
        phone = TOTP(tab_b.begin_enrolment("bob", "bob@example.com").secret)
        confirmations.append(tab_b.confirm_enrolment("bob", phone.at(clock())))

    racing.compete = begin_and_confirm_in_tab_b

    with pytest.raises(AlreadyEnrolledError):
        tab_a.begin_enrolment("bob", "bob@example.com")

    assert racing.compete is None
    [confirmation] = confirmations
    assert confirmation.ok
    assert tab_b.is_enrolled("bob")
    assert tab_b.use_recovery_code("bob", confirmation.recovery_codes[0]).ok


def test_a_first_enrolment_begun_between_the_read_and_the_write_is_replaced(
    backend: Any,
) -> None:
    """Nothing stored yet, and tab B only begins: tab A's enrolment replaces B's pending
    one (read again, compare-and-set), so A's QR code is the one that confirms."""
    clock = SettableClock(T0)
    racing = AfterRead(backend)
    tab_a = TwoFactor(racing, clock=clock, box=BOX)
    tab_b = TwoFactor(backend, clock=clock, box=BOX)
    theirs: list[Any] = []
    racing.compete = lambda: theirs.append(tab_b.begin_enrolment("bob", "bob@example.com"))

    mine = tab_a.begin_enrolment("bob", "bob@example.com")

    assert racing.compete is None
    assert not tab_b.is_enrolled("bob")
    assert not tab_b.confirm_enrolment("bob", TOTP(theirs[0].secret).at(clock())).ok
    assert tab_b.confirm_enrolment("bob", TOTP(mine.secret).at(clock())).ok


class BeforeReplace:
    """A store whose next ``replace_credential``, once armed, runs ``compete`` first:
    between the caller's read of the credential and its compare-and-set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.compete: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def replace_credential(self, credential: Any, expected_version: int) -> bool:
        if self.compete is not None:
            hook, self.compete = self.compete, None
            hook()
        return bool(self.inner.replace_credential(credential, expected_version))


def test_a_verify_racing_a_removal_and_a_new_enrolment_never_brings_the_old_phone_back(
    backend: Any,
) -> None:
    """A verify with the old phone read the credential and is about to record its last
    use; meanwhile an admin removes 2FA (the phone was stolen) and the user enrols and
    confirms a new phone, which brings the new credential through as many writes. The
    verify's stale write must not land on the new credential: the removed phone's
    secret and recovery codes would be back."""
    clock = SettableClock(T0)
    racing = BeforeReplace(backend)
    verifier = TwoFactor(racing, clock=clock, box=BOX)
    admin = TwoFactor(backend, clock=clock, box=BOX)
    old_phone = TOTP(admin.begin_enrolment("bob", "bob@example.com").secret)
    old_codes = admin.confirm_enrolment("bob", old_phone.at(clock())).recovery_codes
    clock.advance(90_000)  # a day later: the next verify records its last use
    new: list[Any] = []

    def remove_and_enrol_a_new_phone() -> None:
        admin.remove("bob", actor_id="admin", actor_has_full_access=True)
        new_phone = TOTP(admin.begin_enrolment("bob", "bob@example.com").secret)
        clock.advance(60)
        new.append((new_phone, admin.confirm_enrolment("bob", new_phone.at(clock()))))

    racing.compete = remove_and_enrol_a_new_phone

    assert verifier.verify("bob", old_phone.at(clock())).ok  # in flight before the removal

    assert racing.compete is None  # it ran, inside verify's last-used write
    [(new_phone, confirmation)] = new
    assert confirmation.ok
    enrolled = backend.get_credential("bob")
    assert enrolled is not None
    assert [d.last_used_at for d in enrolled.totp_devices] == [None]  # the stale write lost
    clock.advance(120)
    assert not admin.verify("bob", old_phone.at(clock())).ok
    assert not admin.use_recovery_code("bob", old_codes[0]).ok
    assert admin.verify("bob", new_phone.at(clock())).ok
    assert admin.use_recovery_code("bob", confirmation.recovery_codes[0]).ok


class WithoutAdd:
    """A store written before ``add_credential``: everything else is there."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "add_credential":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_a_store_without_add_credential_fails_loudly(clock: SettableClock) -> None:
    """A third-party store that lacks the insert-if-absent is never written around:
    the first enrolment fails closed, naming the missing call, and stores nothing."""
    store = MemoryStore()
    two_factor = TwoFactor(WithoutAdd(store), clock=clock, box=BOX)

    with pytest.raises(StoreUnavailableError, match=r"add_credential failed \(AttributeError\)"):
        two_factor.begin_enrolment("bob", "bob@example.com")

    assert store.get_credential("bob") is None


def test_the_race_on_the_async_service(
    clock: SettableClock, yielding_store: Callable[[Any], Any], synced: Callable[[Any], Any]
) -> None:
    store = MemoryStore()
    racing = AfterRead(store)
    reload = synced(AsyncTwoFactor(yielding_store(racing), clock=clock, box=BOX))
    other = TwoFactor(store, clock=clock, box=BOX)
    phone = TOTP(other.begin_enrolment("bob", "bob@example.com").secret)

    def confirm() -> None:
        assert other.confirm_enrolment("bob", phone.at(clock())).ok

    racing.compete = confirm

    with pytest.raises(AlreadyEnrolledError):
        reload.begin_enrolment("bob", "bob@example.com")

    assert racing.compete is None
    assert other.is_enrolled("bob")


def test_the_first_enrolment_race_on_the_async_service(
    clock: SettableClock, yielding_store: Callable[[Any], Any], synced: Callable[[Any], Any]
) -> None:
    store = MemoryStore()
    racing = AfterRead(store)
    tab_a = synced(AsyncTwoFactor(yielding_store(racing), clock=clock, box=BOX))
    tab_b = TwoFactor(store, clock=clock, box=BOX)

    def begin_and_confirm_in_tab_b() -> None:
        phone = TOTP(tab_b.begin_enrolment("bob", "bob@example.com").secret)
        assert tab_b.confirm_enrolment("bob", phone.at(clock())).ok

    racing.compete = begin_and_confirm_in_tab_b

    with pytest.raises(AlreadyEnrolledError):
        tab_a.begin_enrolment("bob", "bob@example.com")

    assert racing.compete is None
    assert tab_b.is_enrolled("bob")
