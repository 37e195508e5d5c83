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
            "Print the effective table: the default catalog, extended or overridden by "
            "--file, with the lifetime from SENSITIVE_ACTION_AUTH_LIFETIME (default 6h)."
        ),
    )
    show.add_argument("--file", metavar="TOML", help="a policy TOML file to apply")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from ..policy import Policy, format_duration

    policy = Policy.default()
    if args.file:
        policy = policy.load_toml(args.file)
    rows = policy.table()
    if args.json:
        print(json.dumps({"lifetime_seconds": policy.lifetime, "actions": rows}, indent=2))
        return 0
    print(f"installation lifetime: {format_duration(policy.lifetime)} ({policy.lifetime:g} s)")
    columns = [
        "action",
        "sensitivity",
        "lifetime",
        "methods",
        "second factor",
        "api keys",
        "condition",
    ]
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    print("  ".join("-" * widths[c] for c in columns))
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    return 0
