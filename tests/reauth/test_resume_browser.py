"""stepup.resume: a kept form is bound to the browser that sent it.

A copy of the session cookie is enough to make the guard keep a form under the owner's
session; the binding value lives in a cookie of the browser that sent it, and only a
browser presenting it again resumes the form. The store keeps a digest, never the value."""

from __future__ import annotations

import asyncio
import json

from hypothesis import given
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.resume import (
    AsyncSuspensions,
    NotResumed,
    Resumed,
    Suspended,
    SuspendReason,
    Suspensions,
    browser_digest,
)
from stepup.subject import Subject
from stepup.testing import SettableClock

ALICE = Subject("alice", "s1")
BINDING = "b" * 43
values = st.text(min_size=1, max_size=64)


def _kept(s: Suspensions, browser: str | None) -> str:
    outcome = s.suspend(ALICE, "user.update", "POST", "/p", [("name", "x")], browser=browser)
    assert isinstance(outcome, Suspended)
    return outcome.token


def test_only_the_browser_that_sent_it_resumes_it() -> None:
    s = Suspensions(MemoryStore(), clock=SettableClock())
    assert isinstance(s.resume(ALICE, _kept(s, BINDING), "user.update", browser=BINDING), Resumed)
    other = s.resume(ALICE, _kept(s, BINDING), "user.update", browser="c" * 43)
    assert other == NotResumed(SuspendReason.OTHER_BROWSER)


@given(kept=values, presented=st.one_of(st.none(), st.just(""), values))
def test_a_bound_form_needs_the_same_non_empty_value(kept: str, presented: str | None) -> None:
    s = Suspensions(MemoryStore(), clock=SettableClock())
    token = _kept(s, kept)
    outcome = s.resume(ALICE, token, "user.update", browser=presented)
    assert isinstance(outcome, Resumed) == (presented == kept)
    if presented != kept:
        assert outcome == NotResumed(SuspendReason.OTHER_BROWSER)
    # Taken either way: the form is gone for the right browser too.
    assert s.resume(ALICE, token, "user.update", browser=kept) == NotResumed(SuspendReason.UNKNOWN)


@given(presented=st.one_of(st.just(""), values))
def test_a_form_kept_without_a_binding_never_resumes_for_a_caller_that_binds(
    presented: str,
) -> None:
    """A form kept before browsers were bound (or by a caller that binds nothing) is
    refused where the integration binds: fail closed."""
    s = Suspensions(MemoryStore(), clock=SettableClock())
    outcome = s.resume(ALICE, _kept(s, None), "user.update", browser=presented)
    assert outcome == NotResumed(SuspendReason.OTHER_BROWSER)


def test_a_caller_that_binds_nothing_resumes_only_unbound_forms() -> None:
    s = Suspensions(MemoryStore(), clock=SettableClock())
    assert isinstance(s.resume(ALICE, _kept(s, None), "user.update"), Resumed)
    bound = s.resume(ALICE, _kept(s, BINDING), "user.update")
    assert bound == NotResumed(SuspendReason.OTHER_BROWSER)


def test_the_store_keeps_a_digest_not_the_value() -> None:
    store = MemoryStore()
    s = Suspensions(store, clock=SettableClock())
    _kept(s, BINDING)
    kept = json.dumps([c.data for c in store._challenges.values()])  # type: ignore[attr-defined]
    assert BINDING not in kept
    assert browser_digest(BINDING) in kept


def test_the_checks_before_it_still_come_first() -> None:
    """Another session's form is refused as that (the binding is not even looked at)."""
    s = Suspensions(MemoryStore(), clock=SettableClock())
    token = _kept(s, BINDING)
    other = s.resume(Subject("alice", "s2"), token, "user.update", browser="c" * 43)
    assert other == NotResumed(SuspendReason.OTHER_SESSION)


def test_async_suspensions_bind_the_same_way() -> None:
    async def journey() -> tuple[object, object]:
        s = AsyncSuspensions(MemoryStore(), clock=SettableClock())
        kept = await s.suspend(ALICE, "user.update", "POST", "/p", [("n", "x")], browser=BINDING)
        again = await s.suspend(ALICE, "user.update", "POST", "/p", [("n", "x")], browser=BINDING)
        assert isinstance(kept, Suspended)
        assert isinstance(again, Suspended)
        mine = await s.resume(ALICE, kept.token, "user.update", browser=BINDING)
        theirs = await s.resume(ALICE, again.token, "user.update", browser="")
        return mine, theirs

    mine, theirs = asyncio.run(journey())
    assert isinstance(mine, Resumed)
    assert theirs == NotResumed(SuspendReason.OTHER_BROWSER)
