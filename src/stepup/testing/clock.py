"""A clock tests can set and advance: freeze time, never sleep."""

from __future__ import annotations

import threading

__all__ = ["SettableClock"]


class SettableClock:
    """Callable like :func:`stepup.clock.system_clock`; thread-safe."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def __repr__(self) -> str:
        return f"SettableClock({self._now!r})"

    def set(self, now: float) -> None:
        with self._lock:
            self._now = float(now)

    def advance(self, seconds: float) -> float:
        """Move forward (or back, with a negative number); returns the new time."""
        with self._lock:
            self._now += seconds
            return self._now
