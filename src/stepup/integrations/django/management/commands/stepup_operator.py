"""``manage.py stepup_operator COMMAND ...``: the operator commands on the project's store.

The same commands as ``stepup operator`` (see docs/cli.md): ``totp-devices``,
``remove-2fa``, ``revoke-grants``, ``reseal`` and ``tenant show`` / ``tenant set-flag``,
with the same confirmation (or ``--yes``), output and exit status, but against the
store ``settings.STEPUP`` configures (the ORM store by default, which no store URL
reaches). Each event also goes to the project's event bus, so the ``stepup`` signals
fire as on the web path; ``reseal`` uses the project's ``ENCRYPTION_KEYS``.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from .....cli.operator import run_operator
from ...services import get_stepup


class Command(BaseCommand):  # type: ignore[misc]
    help = (
        "Support tasks on the project's stepup store: totp-devices, remove-2fa, "
        "revoke-grants, reseal, tenant show/set-flag (`manage.py stepup_operator "
        "COMMAND --help` for each)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "operator_args",
            nargs=argparse.REMAINDER,
            metavar="COMMAND ...",
            help="an operator command and its arguments, as `stepup operator` takes them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stepup = get_stepup()
        status = run_operator(
            list(options["operator_args"]),
            prog="manage.py stepup_operator",
            store=stepup.store,
            listeners=(stepup.events.emit,),
            box=stepup.two_factor.box,
        )
        if status:
            raise SystemExit(status)
