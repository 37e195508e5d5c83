"""The integrators' kit: a settable clock, hypothesis strategies, the store contract suite."""

from .clock import SettableClock

__all__ = ["SettableClock"]
