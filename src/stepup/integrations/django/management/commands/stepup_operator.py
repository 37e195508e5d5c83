"""``manage.py stepup_operator COMMAND ...``: the operator commands on the project's store.

The same commands as ``stepup operator`` (see docs/cli.md): ``totp-devices``,
``remove-2fa``, ``revoke-grants``, ``reseal`` and ``tenant show`` / ``tenant set-flag``,
with the same confirmation (or ``--yes``), output and exit status, but against the
store ``settings.STEPUP`` configures (the ORM store by default, which no store URL
reaches). Each event also goes to the project's event bus, so the ``stepup`` signals
fire as on the web path; ``reseal`` uses the project's ``ENCRYPTION_KEYS``. A user
command that finds nothing adds a line saying that ``USER_ID`` is the user's primary
key, with the key of the user whose name was given instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any, Final

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from .....cli.operator import run_operator
from ...services import get_stepup

#: The operator commands that take a USER_ID, and the options that take a value.
_USER_COMMANDS: Final = frozenset({"totp-devices", "remove-2fa", "revoke-grants"})
_VALUED: Final = frozenset({"--store", "--prefix", "--actor", "--listener", "--device"})
_EXIT_NO: Final = 1


class Command(BaseCommand):  # type: ignore[misc]
    help = (
        "Support tasks on the project's stepup store: totp-devices, remove-2fa, "
        "revoke-grants, reseal, tenant show/set-flag (`manage.py stepup_operator "
        "COMMAND --help` for each). USER_ID is the user's primary key."
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
        argv = [*before, *options["operator_args"]]
        status = run_operator(
            argv,
            prog="manage.py stepup_operator",
            store=stepup.store,
            listeners=(stepup.events.emit,),
            box=stepup.two_factor.box,
        )
        user_id = _user_id_argument(argv)
        if status == _EXIT_NO and user_id is not None:
            print(_primary_key_hint(user_id), file=sys.stderr)
        if status:
            raise SystemExit(status)


def _positionals(args: list[str]) -> Iterator[str]:
    """The arguments that are neither options nor an option's value."""
    rest = iter(args)
    for arg in rest:
        if arg in _VALUED:
            next(rest, None)
        elif not arg.startswith("-"):
            yield arg


def _user_id_argument(args: list[str]) -> str | None:
    """The USER_ID given to a command that takes one (``None`` for the others)."""
    positionals = _positionals(args)
    if next(positionals, None) not in _USER_COMMANDS:
        return None
    return next(positionals, None)


def _primary_key_hint(user_id: str) -> str:
    """Stepup knows a Django user by ``str(user.pk)``: say so, and which key a user name
    that was given instead belongs to."""
    hint = "manage.py stepup_operator: USER_ID is the user's primary key (user.pk)"
    model = get_user_model()
    try:
        named = model._default_manager.filter(**{model.USERNAME_FIELD: user_id}).first()
    except (DatabaseError, ValueError):
        named = None
    if named is None or str(named.pk) == user_id:
        return hint
    return f"{hint}, and {user_id!r} is the user name of the user whose primary key is {named.pk}"
