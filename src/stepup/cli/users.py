"""``stepup users``: check a config-file users TOML before deploying it."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from ..config_users import ConfigUsers
from ..errors import ConfigurationError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    users = subparsers.add_parser(
        "users",
        help="config-file users",
        description="Users whose OTP secrets are defined in a TOML file.",
    )
    commands = users.add_subparsers(title="users commands", metavar="COMMAND", dest="users_command")
    commands.required = True
    check = commands.add_parser(
        "check",
        help="validate a users TOML file",
        description=(
            "Load FILE exactly as the app would and report how many users it defines. "
            "Secrets are never printed."
        ),
    )
    check.add_argument("file", metavar="FILE", help="path to the users TOML file")
    check.add_argument("--list", action="store_true", help="also list user ids and TOTP parameters")
    check.set_defaults(handler=_check)


class _Warnings(logging.Handler):
    """Keeps what the ``stepup`` logger warns of while the file loads."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _check(args: argparse.Namespace) -> int:
    warnings = _Warnings()
    logger = logging.getLogger("stepup")
    logger.addHandler(warnings)
    try:
        users: ConfigUsers | None = ConfigUsers.load(args.file)
    except ConfigurationError as exc:
        users, problem = None, str(exc)
    finally:
        logger.removeHandler(warnings)
    for message in warnings.messages:  # e.g. a file its group or others may read
        print(f"warning: {message}", file=sys.stderr)
    if users is None:
        print(f"invalid: {problem}", file=sys.stderr)
        return 1
    if len(users) == 0:
        print(
            f'{args.file}: no users found (each user is a [users."<id>"] table)',
            file=sys.stderr,
        )
        return 1
    print(f"{args.file}: {len(users)} user(s), all valid")
    if args.list:
        for user_id in users.user_ids():
            user = users.get(user_id)
            assert user is not None
            totp = user.totp
            shown = json.dumps(user_id, ensure_ascii=True)  # an id cannot move the cursor
            print(f"  {shown}: {totp.digits} digits, {totp.period} s, {totp.algorithm}")
    return 0
