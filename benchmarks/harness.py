"""A tiny benchmark harness: two callables, alternated in one process, median and IQR.

Alternating rounds (and swapping which goes first) spreads machine noise evenly over
both sides, and timing with the thread's CPU clock (not the wall clock) leaves out
the time other processes hold the CPU, so the ratio stays meaningful on a busy laptop
or a shared CI runner. Pass ``timer=time.perf_counter_ns`` for wall-clock time.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Comparison", "Stats", "compare", "format_row", "header"]


@dataclass(frozen=True)
class Stats:
    """Seconds per call over the measured rounds."""

    name: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def iqr(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q3 - q1


@dataclass(frozen=True)
class Comparison:
    label: str
    ours: Stats
    theirs: Stats

    @property
    def ratio(self) -> float:
        """How many times faster ``ours`` is than ``theirs`` (median over median)."""
        return self.theirs.median / self.ours.median


Timer = Callable[[], int]


def _batch(fn: Callable[[], object], inner: int, timer: Timer) -> float:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = timer()
        for _ in range(inner):
            fn()
        elapsed = timer() - start
    finally:
        if was_enabled:
            gc.enable()
    return elapsed / inner / 1e9


def compare(
    label: str,
    ours: tuple[str, Callable[[], object]],
    theirs: tuple[str, Callable[[], object]],
    *,
    rounds: int = 30,
    inner: int = 2000,
    warmup: int = 3,
    before_round: Callable[[], None] | None = None,
    timer: Timer = time.thread_time_ns,
) -> Comparison:
    """Run both callables ``inner`` times per round, alternating, for ``rounds`` rounds.

    ``before_round`` runs untimed before each round (e.g. to refresh a time-based code);
    ``timer`` returns nanoseconds (default: this thread's CPU time).
    """
    samples: dict[str, list[float]] = {ours[0]: [], theirs[0]: []}
    for round_ in range(warmup + rounds):
        order = (ours, theirs) if round_ % 2 == 0 else (theirs, ours)
        for name, fn in order:
            if before_round is not None:
                before_round()
            per_call = _batch(fn, inner, timer)
            if round_ >= warmup:
                samples[name].append(per_call)
    return Comparison(
        label, Stats(ours[0], tuple(samples[ours[0]])), Stats(theirs[0], tuple(samples[theirs[0]]))
    )


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:8.2f}"


def header() -> str:
    return (
        f"{'benchmark':<44} {'ours µs':>8} {'IQR':>8} {'theirs µs':>9} {'IQR':>8} {'speed-up':>8}\n"
        + "-" * 92
    )


def format_row(result: Comparison) -> str:
    return (
        f"{result.label:<44} {_us(result.ours.median)} {_us(result.ours.iqr)} "
        f"{_us(result.theirs.median):>9} {_us(result.theirs.iqr)} {result.ratio:7.2f}x"
    )
