"""The app's hooks may answer directly or with an awaitable: the guard awaits exactly the
answers that can be awaited, whatever their type (a ``Subject`` or ``str`` subclass too)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.starlette import Stepup
from stepup.integrations.starlette._util import is_awaitable
from stepup.reauth import Allowed, AllowReason, ReauthRequired
from stepup.subject import Subject

TENANT = "acme"


class AwaitableSubject(Subject):
    """A subject class that is also awaitable (odd, but the guard must not skip it)."""

    def __await__(self) -> Generator[Any, None, Subject]:
        yield from ()
        return Subject("from-await", "s1")


class AwaitableTenant(str):
    def __await__(self) -> Generator[Any, None, str]:
        yield from ()
        return TENANT


async def _coroutine(value: Any) -> Any:
    return value


answers = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.builds(Subject, st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)),
    st.integers(),
    st.just(AwaitableSubject("u", "s")),
    st.just(AwaitableTenant("t")),
)


@given(answers)
def test_is_awaitable_agrees_with_inspect(value: Any) -> None:
    assert is_awaitable(value) is inspect.isawaitable(value)


def test_a_coroutine_answer_is_awaitable() -> None:
    coroutine = _coroutine(None)
    try:
        assert is_awaitable(coroutine)
    finally:
        coroutine.close()


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": []})


Loader = Callable[[Request], Any]


def _check(subject_loader: Loader, tenant_loader: Loader, granted: Subject) -> Any:
    store = MemoryStore()
    stepup = Stepup(
        store=store,
        secret_key="hook-answers-secret-0123456789",
        subject_loader=subject_loader,
        tenant_loader=tenant_loader,
    )

    async def decide() -> Any:
        await stepup.tenants.ensure(TENANT, {"feature_flags": {"sensitive_actions_reauth": True}})
        await stepup.reauth.record(granted, ["pwd"])
        return await stepup.check(_request(), "api_key.read")

    return anyio.run(decide)


@pytest.mark.parametrize("tenant_answer", ["plain", "coroutine", "awaitable str"])
@pytest.mark.parametrize("subject_answer", ["plain", "coroutine"])
def test_the_guard_uses_each_kind_of_answer(subject_answer: str, tenant_answer: str) -> None:
    granted = Subject("bob", "s1")
    subject_loaders: dict[str, Loader] = {
        "plain": lambda request: granted,
        "coroutine": lambda request: _coroutine(granted),
    }
    tenant_loaders: dict[str, Loader] = {
        "plain": lambda request: TENANT,
        "coroutine": lambda request: _coroutine(TENANT),
        # Not the tenant's own name until awaited: a guard that skipped the await would
        # read a tenant without the flag and allow for the wrong reason.
        "awaitable str": lambda request: AwaitableTenant("elsewhere"),
    }
    decision = _check(subject_loaders[subject_answer], tenant_loaders[tenant_answer], granted)
    assert isinstance(decision, Allowed)
    assert decision.reason is AllowReason.FRESH_GRANT


def test_an_awaitable_subject_is_awaited() -> None:
    # The loader answers a Subject subclass that awaits to another user, who has no
    # grant: only a guard that awaited it asks for a re-authentication.
    grant_holder = AwaitableSubject("u", "s")
    decision = _check(lambda request: grant_holder, lambda request: TENANT, Subject("u", "s"))
    assert isinstance(decision, ReauthRequired)
