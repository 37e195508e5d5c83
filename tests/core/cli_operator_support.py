"""A ``--listener`` target for the operator command tests: records every event."""

from __future__ import annotations

from stepup.events import StepupEvent

EVENTS: list[StepupEvent] = []


def record(event: StepupEvent) -> None:
    EVENTS.append(event)


def fail(event: StepupEvent) -> None:
    """An audit log that is down: its message must never reach the terminal."""
    raise OSError(f"audit database is down (secret-in-message, {event.name})")
