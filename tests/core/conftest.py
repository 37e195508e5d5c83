"""Fixtures for the TOTP core tests: clock, stores, an event recorder, sync/async drivers."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.events import EventBus, StepupEvent
from stepup.testing import SettableClock
from stepup.twofactor import AsyncTwoFactor, TwoFactor

T0 = 1_699_999_980.0  # a step boundary (T0 / 30 is whole), so T0 + 0..29 is one step


class YieldingStore:
    """The memory store behind ``async def`` methods that first yield to the event loop.

    Every task then reaches the store call before any claim is settled, which is the
    interleaving a networked async store produces; the decision still happens in the
    real (locked) memory store.
    """

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        async def call(*args: Any) -> Any:
            await asyncio.sleep(0)
            return method(*args)

        return call


class FailingStore:
    """A store in an outage: every method raises what a driver would raise."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            self.calls.append(name)
            raise ConnectionError("connection refused (redis://user:pw@10.0.0.1)")

        return call


class Recorder:
    """Collects every event an :class:`EventBus` emits."""

    def __init__(self) -> None:
        self.events: list[StepupEvent] = []

    def __call__(self, event: StepupEvent) -> None:
        self.events.append(event)

    def names(self) -> list[str]:
        return [event.name for event in self.events]

    def of(self, kind: type[StepupEvent]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


class Synced:
    """Calls a sync or an async service the same way, so one test covers both."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(attr(*args, **kwargs))

        return call


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(T0)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def events(recorder: Recorder) -> EventBus:
    return EventBus(recorder)


@pytest.fixture
def failing_store() -> FailingStore:
    return FailingStore()


@pytest.fixture
def yielding_store() -> Callable[[MemoryStore], YieldingStore]:
    return YieldingStore


@pytest.fixture
def synced() -> Callable[[Any], Synced]:
    return Synced


@pytest.fixture(params=["sync", "async"])
def make_two_factor(
    request: pytest.FixtureRequest,
    store: MemoryStore,
    clock: SettableClock,
    events: EventBus,
    synced: Callable[[Any], Synced],
    yielding_store: Callable[[MemoryStore], YieldingStore],
) -> Callable[..., Any]:
    """Build the TwoFactor under test over ``store`` with the test's clock and events,
    once sync and once async (over an ``async def`` store), with any other options."""

    def build(**kwargs: Any) -> Any:
        options = {"clock": clock, "events": events, **kwargs}
        if request.param == "sync":
            return synced(TwoFactor(store, **options))
        return synced(AsyncTwoFactor(yielding_store(store), **options))

    return build
