"""The audit log: stepup's events and the app's own, written to ``demo_audit``.

EventBus listeners are plain calls made inside a request, so the listener only
queues the event; a task writes the queue off the request's path, and the audit
page waits for it before reading. Events carry no secrets; session ids are left out
too (they name a live session).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Final

from ..clock import Clock
from ..events import StepupEvent
from .data import AuditEntry, DemoData

__all__ = ["AuditLog"]

logger = logging.getLogger("stepup.demo.audit")
_LEFT_OUT: Final = frozenset({"at", "session_id"})


def _who(details: dict[str, Any]) -> str:
    for key in ("user_id", "actor_id"):
        value = details.get(key)
        if isinstance(value, str):
            return value
    return ""


class AuditLog:
    def __init__(self, data: DemoData, clock: Clock) -> None:
        self.data = data
        self.clock = clock
        self._pending: list[AuditEntry] = []
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, event: StepupEvent) -> None:
        """The EventBus listener."""
        details = {
            f.name: getattr(event, f.name)
            for f in dataclasses.fields(event)
            if f.name not in _LEFT_OUT
        }
        self._queue(AuditEntry(event.at, "stepup", event.name, _who(details), details))

    def app_event(self, name: str, user_id: str, **details: Any) -> None:
        """Something the app did (signed in, deleted a workspace); never pass secrets."""
        self._queue(AuditEntry(self.clock(), "app", name, user_id, details))

    def _queue(self, entry: AuditEntry) -> None:
        self._pending.append(entry)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the server (a script): flush() writes it later
            return
        task = loop.create_task(self.flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Write everything queued so far (the audit page calls this before reading)."""
        async with self._lock:
            entries, self._pending = self._pending, []
            if not entries:
                return
            try:
                await self.data.add_audit(entries)
            except Exception:
                self._pending[:0] = entries  # try again with the next flush
                logger.exception("demo audit log: could not write %d entries", len(entries))
