"""Helpers for the password tests: real hashers and stores with a twist, both twins."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from argon2 import Parameters, PasswordHasher, extract_parameters

from stepup.adapters.idp.password import (
    CHEAPEST,
    AsyncPasswordReauth,
    PasswordReauth,
    PasswordResult,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import EventBus, StepupEvent
from stepup.records import Attempt, ThrottleState
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.throttle import ThrottlePolicy

#: CHEAPEST with two passes: "newer" parameters for rehash tests, still instant.
CHEAP_NEWER: Parameters = replace(CHEAPEST, time_cost=2)

Verify = Callable[[Subject | str, object, str | None], PasswordResult]


class CountingHasher(PasswordHasher):
    """A real argon2 hasher that also records which hashes it verified."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verified: list[Parameters] = []
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.verified.append(extract_parameters(str(hash)))
        return super().verify(hash, password)


class BrokenStore(MemoryStore):
    """A memory store whose named methods fail like a lost connection."""

    def __init__(self, *failing: str) -> None:
        super().__init__()
        self.failing = set(failing)

    def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        if "throttle_charge" in self.failing:
            raise ConnectionError("store down")
        return super().throttle_charge(key, now, throttle)

    def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        if "throttle_refund" in self.failing:
            raise ConnectionError("store down")
        super().throttle_refund(key, charge, at)


class AsyncAttempts:
    """The attempt methods of a memory store as coroutines: a genuinely async store."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    async def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        await asyncio.sleep(0)  # yield to the loop, as a network store would
        return self.inner.throttle_charge(key, now, throttle)

    async def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        await asyncio.sleep(0)
        self.inner.throttle_refund(key, charge, at)

    async def throttle_state(self, key: str) -> ThrottleState:
        return self.inner.throttle_state(key)


class Recorder:
    def __init__(self) -> None:
        self.events: list[StepupEvent] = []
        self.bus = EventBus(self.events.append)

    def names(self) -> list[str]:
        return [e.name for e in self.events]


class Twin:
    """Builds the sync or the async re-authenticator and calls it synchronously."""

    def __init__(self, kind: str, clock: SettableClock, recorder: Recorder) -> None:
        self.kind = kind
        self.clock = clock
        self.recorder = recorder

    def build(
        self,
        *,
        store: MemoryStore | None = None,
        hasher: PasswordHasher | None = None,
        throttle: ThrottlePolicy | None = None,
        **extra: Any,
    ) -> Verify:
        """``extra``: more PasswordReauth options (verifiers, dummy_hash, on_upgrade)."""
        store = store if store is not None else MemoryStore()
        hasher = hasher or PasswordHasher.from_parameters(CHEAPEST)
        options: dict[str, Any] = {
            "hasher": hasher,
            "clock": self.clock,
            "throttle": throttle,
            "events": self.recorder.bus,
            **extra,
        }
        if self.kind == "sync":
            return PasswordReauth(store, **options).verify
        reauth = AsyncPasswordReauth(AsyncAttempts(store), **options)

        def verify(who: Subject | str, password: object, stored: str | None) -> PasswordResult:
            return asyncio.run(reauth.verify(who, password, stored))

        return verify


def all_text(items: Iterable[object]) -> str:
    """Every repr and str, for "no secret anywhere" checks."""
    return "\n".join(f"{item!r} {item}" for item in items)
