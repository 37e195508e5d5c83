"""Time, injected: the core never reads the wall clock on its own."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "system_clock"]


class Clock(Protocol):
    """Anything that returns the current Unix time in seconds."""

    def __call__(self) -> float: ...


#: The real clock; tests pass :class:`stepup.testing.SettableClock` instead. It is
#: ``time.time`` itself, not a function around it: every decision reads it.
system_clock: Clock = time.time
