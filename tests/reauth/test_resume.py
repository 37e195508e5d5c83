"""stepup.resume: a form POST kept for after the re-authentication, in real stores."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.views import EARLIER_IDS, earlier_session_ids, note_renewal
from stepup.records import Challenge
from stepup.resume import (
    MAX_BYTES,
    PREFIX,
    AsyncSuspensions,
    NotResumed,
    NotSuspended,
    Resumed,
    Suspended,
    SuspendReason,
    Suspensions,
    is_resume_token,
    is_secret_field,
)
from stepup.subject import Subject
from stepup.testing import SettableClock
from support import POSTGRES_URL, REDIS_URL, need, port_open

ALICE = Subject("alice", "s1")
FIELDS = [("name", "Alice"), ("tag", "a"), ("tag", "b"), ("note", "line 1\nline 2 <&>")]


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "redis":
        from stepup.adapters.storage.redis import RedisStore

        need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
        with RedisStore(REDIS_URL, prefix=f"stepup-test-{uuid.uuid4().hex[:12]}:") as redis:
            yield redis
        return
    if request.param == "postgres":
        from stepup.adapters.storage.sql import SQLStore

        need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
        pg = SQLStore(POSTGRES_URL, prefix=f"t{uuid.uuid4().hex[:12]}_")
        pg.create_schema()
        try:
            yield pg
        finally:
            pg.drop_schema()
            pg.close()
        return
    from stepup.adapters.storage.sql import SQLStore

    sql = SQLStore.sqlite(tmp_path / "resume.sqlite3")
    yield sql
    sql.close()


def suspend(s: Suspensions, **overrides: Any) -> Any:
    args: dict[str, Any] = {
        "subject": ALICE,
        "action": "user.update",
        "method": "POST",
        "path": "/profile?tab=1",
        "fields": [*FIELDS, ("csrf_token", "old-token")],
        "drop": ("csrf_token",),
    }
    args.update(overrides)
    return s.suspend(
        args.pop("subject"),
        args.pop("action"),
        args.pop("method"),
        args.pop("path"),
        args.pop("fields"),
        **args,
    )


def test_kept_and_given_back_once_to_the_same_user_session_and_action(
    store: Any, clock: SettableClock
) -> None:
    s = Suspensions(store, clock=clock)
    outcome = suspend(s)
    assert isinstance(outcome, Suspended)
    resumed = s.resume(ALICE, outcome.token, "user.update")
    assert isinstance(resumed, Resumed)
    request = resumed.request
    assert (request.method, request.path, request.action) == (
        "POST",
        "/profile?tab=1",
        "user.update",
    )
    assert request.fields == tuple(FIELDS)  # order and repeated names kept; the token dropped
    assert "Alice" not in repr(request)  # values stay out of reprs
    assert s.resume(ALICE, outcome.token, "user.update") == NotResumed(SuspendReason.UNKNOWN)


@pytest.mark.parametrize(
    ("subject", "action", "reason"),
    [
        (Subject("bob", "s1"), "user.update", SuspendReason.OTHER_USER),
        (Subject("alice", "s2"), "user.update", SuspendReason.OTHER_SESSION),
        (ALICE, "api_key.read", SuspendReason.OTHER_ACTION),
    ],
)
def test_never_given_to_another_user_session_or_action_and_then_gone(
    store: Any, clock: SettableClock, subject: Subject, action: str, reason: SuspendReason
) -> None:
    s = Suspensions(store, clock=clock)
    token = suspend(s).token
    assert s.resume(subject, token, action) == NotResumed(reason)
    # Shown to the wrong party once is used up: the owner cannot have it either.
    assert s.resume(ALICE, token, "user.update") == NotResumed(SuspendReason.UNKNOWN)


def test_the_session_it_was_renewed_from_counts_as_the_same(
    store: Any, clock: SettableClock
) -> None:
    s = Suspensions(store, clock=clock)
    token = suspend(s).token
    renewed = Subject("alice", "s1-new")
    assert isinstance(s.resume(renewed, token, "user.update", renewed_from="s1"), Resumed)


def test_an_earlier_id_of_the_same_session_counts_only_when_named(
    store: Any, clock: SettableClock
) -> None:
    """Another tab re-authenticated first and renewed the id twice since this form was
    kept: the session's earlier ids, named by the integration, still count; nothing else."""
    s = Suspensions(store, clock=clock)
    now = Subject("alice", "s3")
    kept = suspend(s).token
    assert isinstance(s.resume(now, kept, "user.update", earlier=("s2", "s1")), Resumed)
    other = suspend(s).token
    assert s.resume(now, other, "user.update", earlier=("s2", "", "s0")) == NotResumed(
        SuspendReason.OTHER_SESSION
    )


def test_a_session_remembers_its_earlier_ids_until_its_id_changes_another_way() -> None:
    session: dict[str, Any] = {}
    assert earlier_session_ids(session, "s1") == ()
    note_renewal(session, "s2", "s1")
    note_renewal(session, "s3", "s2")
    assert earlier_session_ids(session, "s3") == ("s2", "s1")
    assert earlier_session_ids(session, "s2") == ()  # only for the id it was noted for
    assert earlier_session_ids(session, "") == ()
    for n in range(4, 20):
        note_renewal(session, f"s{n}", f"s{n - 1}")
    assert earlier_session_ids(session, "s19") == tuple(f"s{n}" for n in range(18, 10, -1))
    note_renewal(session, "t2", "t1")  # a sign-in in between: the chain starts over
    assert earlier_session_ids(session, "t2") == ("t1",)
    session[EARLIER_IDS] = {"sid": "t2", "earlier": "t1"}  # mangled: nothing
    assert earlier_session_ids(session, "t2") == ()


def test_it_expires_after_ten_minutes(store: Any, clock: SettableClock) -> None:
    s = Suspensions(store, clock=clock)
    token = suspend(s).token
    clock.advance(600)
    assert s.resume(ALICE, token, "user.update") == NotResumed(SuspendReason.UNKNOWN)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"method": "PUT"}, SuspendReason.NOT_A_FORM),
        ({"is_form": False}, SuspendReason.NOT_A_FORM),
        ({"has_files": True}, SuspendReason.FILES),
        ({"path": "https://evil.example/x"}, SuspendReason.UNSAFE_PATH),
        ({"path": "//evil.example/x"}, SuspendReason.UNSAFE_PATH),
        ({"fields": [("new_password", "hunter2")]}, SuspendReason.SECRET_FIELD),
        ({"fields": [("otp", "123456")]}, SuspendReason.SECRET_FIELD),
        ({"fields": [("body", "x" * MAX_BYTES)]}, SuspendReason.TOO_LARGE),
    ],
)
def test_what_is_never_kept(
    store: Any, clock: SettableClock, overrides: dict[str, Any], reason: SuspendReason
) -> None:
    outcome = suspend(Suspensions(store, clock=clock), **overrides)
    assert outcome == NotSuspended(reason)


def test_exactly_the_size_cap_is_kept(clock: SettableClock) -> None:
    s = Suspensions(MemoryStore(), clock=clock)
    assert isinstance(suspend(s, fields=[("b", "x" * (MAX_BYTES - 1))]), Suspended)
    assert suspend(s, fields=[("b", "x" * MAX_BYTES)]) == NotSuspended(SuspendReason.TOO_LARGE)
    assert suspend(s, fields=[("b", "é" * (MAX_BYTES // 2))]) == NotSuspended(
        SuspendReason.TOO_LARGE
    )  # bytes, not characters


def test_secret_field_names() -> None:
    for name in (
        "password",
        "new_password",
        "Password2",
        "client_secret",
        "otp",
        "totp-code",
        "pin",
    ):
        assert is_secret_field(name), name
    for name in ("footprint", "name", "topic", "description", "csrf_token"):
        assert not is_secret_field(name), name


def test_a_suspended_request_is_an_ordinary_challenge_under_its_prefix(
    clock: SettableClock,
) -> None:
    store = MemoryStore()
    token = suspend(Suspensions(store, clock=clock)).token
    taken = store.take_challenge(PREFIX + token, clock())
    assert isinstance(taken, Challenge)
    assert (taken.user_id, taken.session_id, taken.expires_at) == ("alice", "s1", clock() + 600)
    assert "old-token" not in repr(taken.data)  # the CSRF token is never kept


@pytest.mark.parametrize("token", ["", None, 7, "x" * 65, "é", "a b", "a/b", "a\nb"])
def test_odd_tokens_resume_nothing(clock: SettableClock, token: object) -> None:
    s = Suspensions(MemoryStore(), clock=clock)
    assert not is_resume_token(token)
    assert s.resume(ALICE, token, "user.update") == NotResumed(SuspendReason.UNKNOWN)


def test_every_kept_token_has_the_shape_an_sso_trip_carries(clock: SettableClock) -> None:
    """An SSO adapter stores the token with its trip only if ``is_resume_token`` says so."""
    s = Suspensions(MemoryStore(), clock=clock)
    for _ in range(50):
        kept = s.suspend(ALICE, "user.update", "POST", "/profile", [("name", "x")])
        assert isinstance(kept, Suspended)
        assert is_resume_token(kept.token)


class DownStore(MemoryStore):
    def put_challenge(self, challenge: Challenge) -> None:
        raise ConnectionError("redis://u:secret@host")

    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        raise ConnectionError("redis://u:secret@host")


def test_a_store_failure_keeps_nothing_and_resumes_nothing(clock: SettableClock) -> None:
    s = Suspensions(DownStore(), clock=clock)
    assert suspend(s) == NotSuspended(SuspendReason.UNAVAILABLE)
    assert s.resume(ALICE, "abc", "user.update") == NotResumed(SuspendReason.UNAVAILABLE)


field_names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20
)


@settings(max_examples=60)
@given(st.lists(st.tuples(field_names, st.text(max_size=200)), max_size=15))
def test_any_form_comes_back_as_it_was_sent_or_is_refused_whole(
    fields: list[tuple[str, str]],
) -> None:
    clock = SettableClock()
    s = Suspensions(MemoryStore(), clock=clock)
    outcome = suspend(s, fields=fields, drop=())
    if any(is_secret_field(name) for name, _ in fields):
        assert outcome == NotSuspended(SuspendReason.SECRET_FIELD)
        return
    assert isinstance(outcome, Suspended)
    resumed = s.resume(ALICE, outcome.token, "user.update")
    assert isinstance(resumed, Resumed)
    assert resumed.request.fields == tuple(fields)


def test_async_suspensions_in_the_async_sql_store(tmp_path: Any) -> None:
    from stepup.adapters.storage.sql import AsyncSQLStore

    clock = SettableClock()

    async def go() -> Any:
        store = AsyncSQLStore(f"sqlite+aiosqlite:///{tmp_path}/a.sqlite3")
        await store.create_schema()
        try:
            s = AsyncSuspensions(store, clock=clock)
            outcome = await s.suspend(ALICE, "user.update", "POST", "/p", FIELDS)
            assert isinstance(outcome, Suspended)
            first = await s.resume(ALICE, outcome.token, "user.update")
            second = await s.resume(ALICE, outcome.token, "user.update")
            return first, second
        finally:
            await store.aclose()

    first, second = asyncio.run(go())
    assert isinstance(first, Resumed)
    assert first.request.fields == tuple(FIELDS)
    assert second == NotResumed(SuspendReason.UNKNOWN)
