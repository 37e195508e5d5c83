"""The ``stepup`` command line.

Each subcommand group is a module in this package with a ``register(subparsers)``
function that adds its parser and sets ``handler`` (``args -> exit status``) as a
default. Modules are found by name, so adding ``policy.py`` or ``demo.py`` needs no
change here; keep heavy imports inside handlers so ``stepup --help`` stays fast.

Exit status: 0 success, 1 the check said no (code did not match, file invalid,
nothing to change), 2 bad input (unknown options, malformed secret or code, a store
that cannot be reached), 3 an operator change was made but a ``--listener`` failed,
130 interrupted (Ctrl-C, as a shell reports SIGINT), 141 the reader of our output went
away (``| head``), as a shell reports a process killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import StepupError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2
#: 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: what a shell reports for a writer whose reader went away.
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stepup",
        description=(
            "Step-up authentication tools: TOTP secrets and codes, config checks, and "
            "operator commands against a store."
        ),
    )
    parser.add_argument("--version", action="version", version=f"stepup {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already reported
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        status: int = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except StepupError as exc:
        print(f"stepup: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        from .operator import interrupted_message

        print(interrupted_message(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


def _silence_stdout() -> None:
    """The reader is gone (``stepup policy show | head``): that is not an error, so no
    traceback. Point stdout at /dev/null so the interpreter's final flush of what is
    still buffered cannot fail again (the recipe in Python's ``signal`` docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (an in-memory stdout)
        pass
