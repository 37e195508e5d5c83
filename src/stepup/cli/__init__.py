"""The ``stepup`` command line.

Each subcommand group is a module in this package with a ``register(subparsers)``
function that adds its parser and sets ``handler`` (``args -> exit status``) as a
default. Modules are found by name, so adding ``policy.py`` or ``demo.py`` needs no
change here; keep heavy imports inside handlers so ``stepup --help`` stays fast. Every
parser is an :class:`ArgumentParser`, whose usage errors never echo a value given (a
store URL, a secret).

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
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, NoReturn

from .. import __version__
from ..errors import StepupError

__all__ = ["ArgumentParser", "build_parser", "interrupted_message", "main", "redact_usage_error"]

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2
#: 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: what a shell reports for a writer whose reader went away.
EXIT_BROKEN_PIPE = 141


#: What a usage error shows instead of a value that was given.
HIDDEN: Final = "<hidden>"
#: The password of a URL's userinfo (``postgresql://user:PASSWORD@host``).
_URL_PASSWORD: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*):[^\s/?#@]*@")
#: An option's name as typed (``--isuer``): shown, a mistyped name is the point of the
#: error, and no secret or URL looks like one.
_OPTION: Final = re.compile(r"--?[A-Za-z][A-Za-z0-9_-]*")
#: The parser whose parse is under way (the top one: a subcommand's parser runs inside
#: it) and the arguments it was given, for :meth:`ArgumentParser.error`.
_PARSING: ContextVar[tuple[argparse.ArgumentParser, list[str]] | None] = ContextVar(
    "stepup_cli_parsing", default=None
)


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse`` parser whose usage errors never echo a value that was given:
    argparse quotes it ("invalid choice: 'postgresql://app:pw@db/app'", "unrecognized
    arguments: SECRET"), and a value may be a store URL with its password or a TOTP
    secret. Each value that is not a command, an option's name or one of an option's
    choices shows as :data:`HIDDEN` (:func:`redact_usage_error`). Subcommands'
    parsers are of this class too (``add_subparsers`` makes them of the parent's)."""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        with self._parsing(args):  # its "unrecognized arguments" come after the parse
            parsed: argparse.Namespace = super().parse_args(args, namespace)
        return parsed

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        with self._parsing(args):
            return super().parse_known_args(args, namespace)

    @contextmanager
    def _parsing(self, args: Sequence[str] | None) -> Iterator[None]:
        """Note this parser and ``args`` for :meth:`error`, unless a parse is already
        under way (a subcommand's parser runs inside the top one's)."""
        if _PARSING.get() is not None:
            yield
            return
        token = _PARSING.set((self, list(sys.argv[1:] if args is None else args)))
        try:
            yield
        finally:
            _PARSING.reset(token)

    def error(self, message: str) -> NoReturn:
        top, given = _PARSING.get() or (self, sys.argv[1:])
        super().error(redact_usage_error(message, given, _names(top)))


def _names(parser: argparse.ArgumentParser) -> set[str]:
    """Every command name, option name and option choice under ``parser``."""
    names: set[str] = set()
    for action in parser._actions:  # argparse keeps no public list of them
        names.update(action.option_strings)
        if isinstance(action.choices, dict):  # a subcommand: name -> its parser
            for name, subparser in action.choices.items():
                names.add(name)
                if isinstance(subparser, argparse.ArgumentParser):
                    names |= _names(subparser)
        elif action.choices is not None:
            names.update(str(choice) for choice in action.choices)
    return names


def redact_usage_error(message: str, given: Sequence[str], names: set[str]) -> str:
    """``message``, an argparse usage error about the arguments ``given``, with each
    value among them that is not one of ``names`` (nor shaped like an option's name)
    replaced by :data:`HIDDEN`, where argparse puts one: quoted (``invalid choice:
    'VALUE'``, ``invalid int value: 'VALUE'``, ``ignored explicit argument 'VALUE'``,
    and the type checks' own messages), or bare in ``unrecognized arguments: ...`` and
    ``ambiguous option: ...``; ``--name=VALUE`` keeps its name. A choice refused is
    hidden whatever it is (``--digits 7`` reaches argparse as the number 7). Last, the
    password of any URL left in it is hidden too."""
    hidden: set[str] = set()
    for argument in given:
        name, equals, value = argument.partition("=")
        if equals and _OPTION.fullmatch(name):
            hidden.add(value)
        elif not _is_shown(argument, names):
            hidden.add(argument)
    hidden.discard("")
    for value in sorted(hidden, key=len, reverse=True):  # a value inside another last
        message = message.replace(repr(value), HIDDEN)
    for head in ("unrecognized arguments: ", "unexpected option string: "):
        if message.startswith(head):
            words = message[len(head) :].split(" ")
            message = head + " ".join(_shown_word(word, names) for word in words)
    ambiguous = re.fullmatch(r"(ambiguous option: )(.*)( could match .*)", message, re.S)
    if ambiguous is not None:
        start, typed, end = ambiguous.groups()
        message = start + _shown_word(typed, names) + end
    # A value a type made into something else (``--digits 7``: the int 7, no quotes).
    message = re.sub(
        r"(invalid choice: )(.*?)( \(choose from )",
        lambda m: m[1] + (m[2] if m[2] == HIDDEN else HIDDEN) + m[3],
        message,
        count=1,
        flags=re.S,
    )
    # Wherever else a long value stands on its own (an argparse of the future; a short
    # one could be a word of the message itself), and any URL's password.
    for value in sorted((v for v in hidden if len(v) >= 8), key=len, reverse=True):
        message = re.sub(rf"(?<!\S){re.escape(value)}(?!\S)", HIDDEN, message)
    return _URL_PASSWORD.sub(rf"\1:{HIDDEN}@", message)


def _is_shown(argument: str, names: set[str]) -> bool:
    return argument in names or _OPTION.fullmatch(argument) is not None


def _shown_word(word: str, names: set[str]) -> str:
    """One argument as a usage error may show it."""
    name, equals, _ = word.partition("=")
    if equals and _OPTION.fullmatch(name):
        return f"{name}={HIDDEN}"
    return word if _is_shown(word, names) else HIDDEN


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
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
        print(interrupted_message(args), file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


def interrupted_message(args: argparse.Namespace) -> str:
    """What Ctrl-C changed: nothing before a change was confirmed (at the prompt)."""
    if getattr(args, "confirmed", False):
        return "stepup: interrupted: the change may have been made in part"
    return "stepup: interrupted: nothing changed"


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
