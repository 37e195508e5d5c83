"""``manage.py stepup_purge``: delete expired throttle state, grants and challenges.

Run it from cron (daily is plenty): expired rows are already ignored, this only
reclaims the space. Only the ORM store keeps rows that need purging.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...services import get_stepup
from ...store import DjangoStore


class Command(BaseCommand):  # type: ignore[misc]
    help = "Delete expired stepup throttle state, grants and challenges (ORM store)."

    def handle(self, *args: Any, **options: Any) -> None:
        stepup = get_stepup()
        if not isinstance(stepup.store, DjangoStore):
            raise CommandError("STEPUP['STORE'] is not the ORM store: nothing to purge here")
        deleted = stepup.store.purge_expired(stepup.clock())
        self.stdout.write(f"deleted {deleted} expired rows")
