"""A ``--listener`` target for the operator command tests: records every event."""

from __future__ import annotations

from stepup.events import StepupEvent

EVENTS: list[StepupEvent] = []


def record(event: StepupEvent) -> None:
    EVENTS.append(event)
