"""``stepup policy show``: the effective action table, as the app would build it."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    policy = subparsers.add_parser(
        "policy",
        help="the re-authentication policy",
        description="Inspect the policy that maps actions to sensitivity and lifetime.",
    )
    commands = policy.add_subparsers(
        title="policy commands", metavar="COMMAND", dest="policy_command"
    )
    commands.required = True
    show = commands.add_parser(
        "show",
        help="print the effective action table",
        description=(
            "Print the effective table as the integrations build it: the default catalog "
            "and the actions of stepup's own views (2fa.recovery.regenerate, "
            "2fa.device.add, tenant.settings.update; passkey.add and passkey.remove "
            "come only with passkeys configured), extended or overridden by --file, with "
            "the lifetime from SENSITIVE_ACTION_AUTH_LIFETIME (default 6h), and for each "
            "action the ways to re-authenticate, strongest first."
        ),
    )
    show.add_argument("--file", metavar="TOML", help="a policy TOML file to apply")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from ..policy import LIFETIME_ENV, Policy, format_duration, with_own_view_rules

    # As the integrations build it: the seed's catalog and the actions of stepup's own
    # views (recovery codes, tenant settings, another authenticator app), then the file.
    policy = with_own_view_rules(Policy.default())
    if args.file:
        policy = policy.load_toml(args.file)
    rows = policy.table()
    if args.json:  # JSON escapes control characters itself
        shown = {
            "lifetime_seconds": policy.lifetime,
            "passkeys": policy.passkeys,
            "levels": policy.levels.table() if policy.levels is not None else [],
            "actions": rows,
        }
        print(json.dumps(shown, indent=2))
        return 0
    print(
        f"default lifetime ({LIFETIME_ENV}): {format_duration(policy.lifetime)}"
        f" ({policy.lifetime:g} s)"
    )
    print(
        "alternatives: strongest first; the strongest the user has enrolled is offered"
        + (" (passkeys on: a passkey first)" if policy.passkeys else "")
    )
    if policy.levels is not None:  # the `level` column is shown only then
        print(
            "level: the minimum level of assurance (it or a stronger one); only alternatives"
            " that reach it are listed and offered"
        )
    print("bound: a re-authentication counts once, for one action on one target")
    if policy.levels is not None:
        print("levels of assurance, weakest first (each proved by any of its methods):")
        for level in policy.levels.table():
            shown = {key: _printable(value) for key, value in level.items()}
            print(
                f"  {shown['level']}: methods {shown['methods']}; acr {shown['acr']};"
                f" saml {shown['saml']}"
            )
    columns = [
        "action",
        "sensitivity",
        "lifetime",
        "methods",
        "second factor",
        "api keys",
        "condition",
        "alternatives",
        *(["level"] if policy.levels is not None else []),
        "bound",
    ]
    rows = [{c: _printable(row[c]) for c in columns} for row in rows]
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    return 0


def _printable(text: object) -> str:
    """A cell as the terminal may show it: as it is when every character is printable,
    else quoted with the rest escaped (``'x\\x1b[2J'``), so that an action name or a
    description from the policy file can never move the cursor or recolour the screen."""
    shown = str(text)
    return shown if shown.isprintable() else repr(shown)
