"""Identifiers no store can hold (a NUL, which PostgreSQL refuses; a lone surrogate,
which no driver can encode; control characters; an overlong or empty id) get the
answer for an unknown one, or a typed MalformedInputError, before any store call:
never "store unavailable" (503) for bad input, and nothing changes. Checked on the
memory store and on SQLite, PostgreSQL and Redis, where the store itself would fail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError, NotEnrolledError
from stepup.ids import MAX_ID_LENGTH, is_well_formed_id
from stepup.passkeys import AsyncPasskeys, PasskeyReason, Passkeys, RelyingParty
from stepup.reauth import FEATURE_FLAG, AsyncReauth, Reauth
from stepup.records import Grant
from stepup.sealing import SecretBox
from stepup.subject import Subject
from stepup.tenants import AsyncTenantSettings, TenantNotFoundError, TenantSettings
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from store_kinds import STORE_KINDS, open_store

ORIGIN = "https://app.example.com"
RP = RelyingParty(id="example.com", name="Example", origins=(ORIGIN,))
BOX = SecretBox({"k1": b"k" * 32}, current="k1")
FLAG_ON = {"data": {"type": "tenant", "attributes": {"feature_flags": {FEATURE_FLAG: True}}}}

#: What a store cannot hold, or an id must not be: one such character among ordinary
#: text, an overlong id, or nothing.
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=12)
_BAD_CHAR = st.sampled_from(["\x00", "\ud800", "\udbff", "\udfff", "\x01", "\n", "\x7f", "\x9f"])
_WITH_BAD_CHAR = st.tuples(_TEXT, _BAD_CHAR | st.characters(categories=["Cc", "Cs"]), _TEXT).map(
    "".join
)
MALFORMED = st.one_of(
    _WITH_BAD_CHAR,
    st.integers(MAX_ID_LENGTH + 1, 4 * MAX_ID_LENGTH).map(lambda n: "u" * n),
    st.just(""),
)
#: A passkey's id is base64url (unpadded, at most 1364 characters); anything else.
NOT_BASE64URL = st.one_of(
    _WITH_BAD_CHAR,
    st.integers(1365, 4 * MAX_ID_LENGTH).map(lambda n: "u" * n),
    st.sampled_from(["", "abc=", "a+b/", "a b", "\u00e9t\u00e9", "a.b"]),
)


class Recording:
    """The store, with every call the code under test makes written down."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.inner, name)


@pytest.fixture(scope="module", params=STORE_KINDS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    with open_store(request.param, tmp_path_factory.mktemp("ids")) as opened:
        yield opened


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def _enrolled(store: Any, clock: SettableClock) -> tuple[str, TwoFactor]:
    user = _user()
    tf = TwoFactor(store, clock=clock, box=BOX, issuer="Acme")
    enrolment = tf.begin_enrolment(user, f"{user}@example.com")
    assert tf.confirm_enrolment(user, TOTP(enrolment.secret).at(clock())).ok
    store.put_grant(Grant(user, "s1", frozenset({"otp"}), clock()), clock() + 3600)
    return user, tf


def test_the_check_names_what_it_refuses() -> None:
    assert is_well_formed_id("alice@example.com")
    assert is_well_formed_id("x" * MAX_ID_LENGTH)
    assert is_well_formed_id("\u00e9\U0001f600 tenant")
    for bad in ("", "a\x00b", "a\ud800b", "\udfff", "a\tb", "a\x7f", "a\x85", "x" * 1025):
        assert not is_well_formed_id(bad), repr(bad)
    for not_text in (None, 1, b"alice", ["alice"]):
        assert not is_well_formed_id(not_text)


# 1. an admin removes a user's 2FA, the user id from the URL path ----------------------


def test_removing_2fa_of_a_malformed_user_is_not_enrolled_and_touches_no_store(
    store: Any,
) -> None:
    clock = SettableClock(1_700_000_000.0)
    alice, _ = _enrolled(store, clock)
    recording = Recording(store)
    tf = TwoFactor(recording, clock=clock, box=BOX, issuer="Acme")

    @settings(max_examples=60)
    @given(bad=MALFORMED)
    def check(bad: str) -> None:
        recording.calls.clear()
        with pytest.raises(NotEnrolledError):
            tf.remove(bad, actor_id="admin", actor_has_full_access=True)
        assert recording.calls == []

    check()
    assert tf.is_enrolled(alice)
    assert store.get_grant(alice, "s1") is not None


def test_removing_2fa_of_a_malformed_user_async() -> None:
    import asyncio

    recording = Recording(MemoryStore())
    tf = AsyncTwoFactor(recording, box=BOX)
    with pytest.raises(NotEnrolledError):
        asyncio.run(tf.remove("a\x00b", actor_id="admin", actor_has_full_access=True))
    assert recording.calls == []


# 2. passkey rename and remove with a credential id from the request --------------------


def _with_passkey(store: Any, clock: SettableClock) -> tuple[str, str]:
    user = _user()
    subject = Subject(user, "s1")
    passkeys = Passkeys(store, RP, clock=clock)
    options = passkeys.begin_registration(subject, user)
    created = SoftAuthenticator(origin=ORIGIN).create(options)
    result = passkeys.finish_registration(subject, created, "Key")
    assert result.reason is PasskeyReason.OK
    assert result.passkey is not None
    store.put_grant(Grant(user, "s1", frozenset({"phr"}), clock()), clock() + 3600)
    return user, result.passkey.credential_id


def test_a_passkey_id_that_is_not_base64url_is_not_found_and_touches_no_store(
    store: Any,
) -> None:
    clock = SettableClock(1_700_000_000.25)
    alice, credential_id = _with_passkey(store, clock)
    before = Passkeys(store, RP, clock=clock).registered(alice)
    recording = Recording(store)
    passkeys = Passkeys(recording, RP, clock=clock)

    @settings(max_examples=60)
    @given(bad=NOT_BASE64URL, owner=st.sampled_from(["alice-owner", "malformed-owner"]))
    def check(bad: str, owner: str) -> None:
        user = alice if owner == "alice-owner" else "a\x00b"
        recording.calls.clear()
        assert passkeys.remove(user, bad, removed_by=user) is False
        assert passkeys.rename(user, bad, "Renamed") is False
        assert recording.calls == []

    check()
    for user in ("a\x00b", "a\ud800b", ""):  # a malformed user, a well-formed id
        recording.calls.clear()
        assert passkeys.remove(user, credential_id, removed_by="x") is False
        assert passkeys.rename(user, credential_id, "Renamed") is False
        assert recording.calls == []
    assert Passkeys(store, RP, clock=clock).registered(alice) == before
    assert store.get_grant(alice, "s1") is not None
    # A well-formed id still reaches the store: renaming one works as before.
    assert passkeys.rename(alice, credential_id, "Renamed") is True


def test_a_passkey_name_that_is_not_text_is_still_refused_first() -> None:
    passkeys = Passkeys(MemoryStore(), RP)
    with pytest.raises(MalformedInputError):
        passkeys.rename("alice", "a\x00b", 5)  # type: ignore[arg-type]


def test_a_malformed_passkey_id_async() -> None:
    import asyncio

    recording = Recording(MemoryStore())
    passkeys = AsyncPasskeys(recording, RP)
    assert asyncio.run(passkeys.remove("alice", "a\ud800b", removed_by="alice")) is False
    assert asyncio.run(passkeys.rename("alice", "a\x00b", "x")) is False
    assert recording.calls == []


# 3. tenant PATCH (404) and ensure (MalformedInputError) --------------------------------


def test_a_malformed_tenant_id_is_no_such_tenant_or_malformed_and_touches_no_store(
    store: Any,
) -> None:
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    TenantSettings(store).ensure(tenant)
    before = store.get_tenant(tenant)
    recording = Recording(store)
    settings_ = TenantSettings(recording)

    @settings(max_examples=60)
    @given(bad=MALFORMED)
    def check(bad: str) -> None:
        recording.calls.clear()
        with pytest.raises(TenantNotFoundError) as caught:
            settings_.patch(bad, FLAG_ON, actor_id="admin", actor_is_tenant_admin=True)
        assert caught.value.status == 404
        with pytest.raises(MalformedInputError):
            settings_.ensure(bad)
        assert recording.calls == []

    check()
    assert store.get_tenant(tenant) == before


def test_a_malformed_tenant_id_after_the_body_and_permission_checks() -> None:
    """The same order as for an unknown tenant: 403 first, then a bad body's 400."""
    from stepup.errors import PermissionDeniedError
    from stepup.tenants import TenantPatchError

    settings_ = TenantSettings(MemoryStore())
    with pytest.raises(PermissionDeniedError):
        settings_.patch("a\x00b", FLAG_ON, actor_id="x", actor_is_tenant_admin=False)
    with pytest.raises(TenantPatchError):
        settings_.patch("a\x00b", b"[]", actor_id="x", actor_is_tenant_admin=True)


def test_a_malformed_tenant_id_async() -> None:
    import asyncio

    recording = Recording(MemoryStore())
    settings_ = AsyncTenantSettings(recording)
    with pytest.raises(TenantNotFoundError):
        asyncio.run(settings_.patch("a\x00", FLAG_ON, actor_id="a", actor_is_tenant_admin=True))
    with pytest.raises(MalformedInputError):
        asyncio.run(settings_.ensure("a\ud800"))
    assert recording.calls == []


# 4. an account name (or issuer) no Key URI can hold ------------------------------------

#: An account name with a character no Key URI can carry (or an overlong one).
BAD_ACCOUNTS = MALFORMED.filter(lambda a: a != "")


def test_a_malformed_account_name_writes_nothing(store: Any) -> None:
    clock = SettableClock(1_700_000_000.0)
    alice, _ = _enrolled(store, clock)
    devices = TwoFactor(store, clock=clock, box=BOX).devices(alice)
    recording = Recording(store)
    tf = TwoFactor(recording, clock=clock, box=BOX, issuer="Acme")

    @settings(max_examples=40)
    @given(bad=BAD_ACCOUNTS)
    def check(bad: str) -> None:
        newcomer = _user()
        recording.calls.clear()
        with pytest.raises(MalformedInputError):
            tf.begin_enrolment(newcomer, bad)
        with pytest.raises(MalformedInputError):
            tf.begin_device(alice, bad)
        assert recording.calls == []
        assert store.get_credential(newcomer) is None

    check()
    assert tf.devices(alice) == devices
    assert tf.pending_device(alice, "alice@example.com") is None


@pytest.mark.parametrize("issuer", ["Ac\ud800me", "Ac\x00me", "Acme\n"])
def test_a_malformed_issuer_writes_nothing(issuer: str) -> None:
    """Refused when the TwoFactor is built (no enrolment could use it), before any call."""
    from stepup.errors import ConfigurationError

    store = MemoryStore()
    recording = Recording(store)
    with pytest.raises(ConfigurationError, match="issuer"):
        TwoFactor(recording, box=BOX, issuer=issuer)
    assert recording.calls == []
    assert store.get_credential("bob") is None


def test_a_good_account_name_still_enrols(store: Any) -> None:
    """Unicode that UTF-8 can carry is not malformed: it is percent-encoded."""
    tf = TwoFactor(store, box=BOX, issuer="Acme")
    user = _user()
    enrolment = tf.begin_enrolment(user, "j\u00fcrgen \U0001f600@example.com")
    assert "j%C3%BCrgen%20%F0%9F%98%80%40example.com" in enrolment.uri


# 5. ids the app itself passes: a subject its loader built, a user id it names --------

#: (what is called, with the malformed id in the place named).
_SUBJECT_FIELDS = ("user_id", "session_id")


def _calls_taking_an_app_id(
    store: Any, clock: SettableClock, bad: str, field: str
) -> list[tuple[str, Any]]:
    """Every entry point whose id comes from the app's code, each given ``bad``."""
    reauth = Reauth(store, clock=clock)
    tf = TwoFactor(store, clock=clock, box=BOX, issuer="Acme")
    passkeys = Passkeys(store, RP, clock=clock)
    subject = Subject(bad, "s1") if field == "user_id" else Subject("alice", bad)
    calls: list[tuple[str, Any]] = [
        ("Reauth.record", lambda: reauth.record(subject, ["pwd"])),
        ("Reauth.record_sign_in", lambda: reauth.record_sign_in(subject, ["pwd"])),
        ("Reauth.offer", lambda: reauth.offer(subject, "")),
        ("Reauth.sign_out", lambda: reauth.sign_out(subject)),
        ("Passkeys.begin_registration", lambda: passkeys.begin_registration(subject, "a")),
        ("Passkeys.begin_authentication", lambda: passkeys.begin_authentication(subject)),
    ]
    if field == "session_id":
        return calls
    return [
        *calls,
        ("Reauth.password_changed", lambda: reauth.password_changed(bad)),
        ("Passkeys.registered", lambda: passkeys.registered(bad)),
        ("TwoFactor.is_enrolled", lambda: tf.is_enrolled(bad)),
        ("TwoFactor.begin_enrolment", lambda: tf.begin_enrolment(bad, "a@example.com")),
        ("TwoFactor.pending_enrolment", lambda: tf.pending_enrolment(bad, "a@example.com")),
        ("TwoFactor.confirm_enrolment", lambda: tf.confirm_enrolment(bad, "123456")),
        ("TwoFactor.verify", lambda: tf.verify(bad, "123456")),
        ("TwoFactor.use_recovery_code", lambda: tf.use_recovery_code(bad, "abcd-efgh")),
        ("TwoFactor.regenerate_recovery_codes", lambda: tf.regenerate_recovery_codes(bad)),
        ("TwoFactor.legacy_recovery_codes", lambda: tf.legacy_recovery_codes(bad)),
        ("TwoFactor.reseal", lambda: tf.reseal(bad)),
        ("TwoFactor.devices", lambda: tf.devices(bad)),
        ("TwoFactor.begin_device", lambda: tf.begin_device(bad, "a@example.com")),
        ("TwoFactor.pending_device", lambda: tf.pending_device(bad, "a@example.com")),
        ("TwoFactor.confirm_device", lambda: tf.confirm_device(bad, "123456")),
        ("TwoFactor.rename_device", lambda: tf.rename_device(bad, "d1", "Phone")),
    ]


def test_a_malformed_id_from_the_app_is_a_typed_input_error_before_any_store(
    store: Any,
) -> None:
    """On PostgreSQL these were a store failure ("unavailable", a 503) for what is the
    app's bad input; now every store gives the same typed error, naming the field."""
    clock = SettableClock(1_700_000_000.0)
    alice, _ = _enrolled(store, clock)
    recording = Recording(store)

    @settings(max_examples=25)
    @given(bad=MALFORMED, field=st.sampled_from(_SUBJECT_FIELDS))
    def check(bad: str, field: str) -> None:
        for name, call in _calls_taking_an_app_id(recording, clock, bad, field):
            recording.calls.clear()
            with pytest.raises(MalformedInputError) as caught:
                call()
            assert field in str(caught.value), name
            assert bad not in str(caught.value) or bad == "", name  # never echoed
            assert recording.calls == [], name

    check()
    assert TwoFactor(store, clock=clock, box=BOX).is_enrolled(alice)
    assert store.get_grant(alice, "s1") is not None


def test_an_admin_removing_a_device_of_a_malformed_user_is_no_such_device() -> None:
    """Like removing all of a malformed user's 2FA (section 1): the unknown answer."""
    from stepup.errors import UnknownDeviceError

    recording = Recording(MemoryStore())
    tf = TwoFactor(recording, box=BOX)
    with pytest.raises(UnknownDeviceError):
        tf.remove_device("a\x00b", "d1", actor_id="admin", actor_has_full_access=True)
    assert recording.calls == []


def test_a_malformed_id_from_the_app_async() -> None:
    import asyncio

    recording = Recording(MemoryStore())
    reauth = AsyncReauth(recording)
    tf = AsyncTwoFactor(recording, box=BOX)
    recording.calls.clear()
    for call in (
        lambda: reauth.record(Subject("a\x00", "s1"), ["pwd"]),
        lambda: reauth.sign_out(Subject("alice", "s\ud800")),
        lambda: reauth.password_changed(""),
        lambda: tf.verify("a\x01", "123456"),
        lambda: tf.is_enrolled("u" * (MAX_ID_LENGTH + 1)),
    ):
        with pytest.raises(MalformedInputError):
            asyncio.run(call())
    assert recording.calls == []


def test_a_well_formed_unusual_id_still_reaches_the_store(store: Any) -> None:
    """The check refuses only what no store can hold: emoji, accents and the longest
    id are ordinary ids."""
    clock = SettableClock(1_700_000_000.0)
    reauth = Reauth(store, clock=clock)
    for user in ("j\u00fcrgen \U0001f600", "u" * MAX_ID_LENGTH, "{tag}:x"):
        subject = Subject(user, f"s-{uuid.uuid4().hex[:6]}")
        reauth.record(subject, ["pwd"])
        assert store.get_grant(user, subject.session_id) is not None
        assert reauth.sign_out(subject) == 1
        assert store.get_grant(user, subject.session_id) is None


def test_a_passkey_sign_in_for_a_malformed_user_is_refused_before_any_store(store: Any) -> None:
    """begin_sign_in refused it; finish_sign_in (and the other finishes) went on to the
    store: a challenge answer on one store, a 503 on PostgreSQL."""
    recording = Recording(store)
    passkeys = Passkeys(recording, RP)
    pending = "p" * 16
    for user in ("a\x00b", "a\ud800b", "u" * (MAX_ID_LENGTH + 1)):
        recording.calls.clear()
        with pytest.raises(MalformedInputError):
            passkeys.finish_sign_in(user, pending, {"id": "x"})
        with pytest.raises(MalformedInputError):
            passkeys.finish_authentication(Subject(user, "s1"), {"id": "x"})
        with pytest.raises(MalformedInputError):
            passkeys.finish_registration(Subject(user, "s1"), {"id": "x"}, "Key")
        assert recording.calls == []
    with pytest.raises(MalformedInputError):
        passkeys.finish_sign_in("alice", "\x00" * 16, {"id": "x"})


@pytest.mark.parametrize(
    "settings",
    [
        {"max_passkeys_per_user": 2**63},
        {"max_passkeys_per_user": True},
        {"max_passkeys_per_user": 0},
        {"max_passkeys_per_user": 2.0},
        {"challenge_ttl": float("nan")},
        {"challenge_ttl": float("inf")},
        {"challenge_ttl": "300"},
    ],
    ids=repr,
)
def test_a_passkey_setting_no_store_can_hold_stops_at_start_up(settings: Any) -> None:
    from stepup.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        RelyingParty(id="example.com", name="Example", origins=(ORIGIN,), **settings)
