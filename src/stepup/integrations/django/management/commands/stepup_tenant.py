"""``manage.py stepup_tenant ID [--create] [--name NAME]``: show a tenant, or create it.

stepup keeps one record per tenant (its ``feature_flags`` and attributes) in the
project's store. The tenant settings endpoint changes a tenant that exists and answers
404 for one that does not, so a project creates its tenants first: here, or in code
with ``request.stepup.tenant_settings.ensure(tenant_id)`` (or
``TenantSettings(store).ensure``). A new tenant has ``sensitive_actions_reauth`` off.

A store that cannot answer (the database is unreachable) or a refused id is one line,
``stepup: error: ...``, with status 2, as ``stepup operator`` answers it.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Final

from django.core.management.base import BaseCommand, CommandError, CommandParser

from .....errors import StepupError
from .....reauth import FEATURE_FLAG
from ...services import get_stepup

_EXIT_ERROR: Final = 2  # as `stepup operator` exits on a store error


class Command(BaseCommand):  # type: ignore[misc]
    help = (
        "Show a stepup tenant's settings, or create the tenant (flag off) with --create. "
        "Creating one that exists changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant_id", help="the tenant's id, as TENANT_LOADER returns it")
        parser.add_argument(
            "--create", action="store_true", help="create it if it does not exist yet"
        )
        parser.add_argument("--name", help="a display name stored with a new tenant")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant_id = str(options["tenant_id"]).strip()
        if not tenant_id:
            raise CommandError("the tenant id must not be empty")
        stepup = get_stepup()
        try:
            existing = stepup.store.get_tenant(tenant_id)
            if existing is None and not options["create"]:
                raise CommandError(
                    f"no tenant {tenant_id!r}: create it with "
                    f"python manage.py stepup_tenant {tenant_id} --create"
                )
            attributes = {"name": options["name"]} if options.get("name") else None
            tenant = (
                stepup.tenant_settings.ensure(tenant_id, attributes)
                if existing is None
                else existing
            )
        except StepupError as exc:  # the store could not answer, or said why
            print(f"stepup: error: {exc}", file=sys.stderr)
            raise SystemExit(_EXIT_ERROR) from None
        created = existing is None
        state = "on" if tenant.flag(FEATURE_FLAG) else "off"
        self.stdout.write(
            f"tenant {tenant_id!r}{' created' if created else ''}: {FEATURE_FLAG} is {state}"
        )
        others = {k: v for k, v in tenant.attributes.items() if k != "feature_flags"}
        if others:
            self.stdout.write(f"attributes: {json.dumps(others, sort_keys=True)}")
