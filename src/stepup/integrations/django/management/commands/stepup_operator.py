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
        # Before the command, as `stepup operator` takes them (Django's parser sees them
        # first); after it, they reach the operator command itself and count over these.
        parser.add_argument("--store", metavar="URL", help="another store than the project's")
        parser.add_argument("--prefix", help="that store's table or key prefix")
        parser.add_argument(
            "operator_args",
            nargs=argparse.REMAINDER,
            metavar="COMMAND ...",
            help="an operator command and its arguments, as `stepup operator` takes them",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stepup = get_stepup()
        before = [
            argument
            for name in ("store", "prefix")
            if options.get(name) is not None
            for argument in (f"--{name}", options[name])
        ]
        status = run_operator(
            [*before, *options["operator_args"]],
            prog="manage.py stepup_operator",
            store=stepup.store,
            listeners=(stepup.events.emit,),
            box=stepup.two_factor.box,
        )
        if status:
            raise SystemExit(status)
