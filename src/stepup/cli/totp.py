"""``stepup totp``: make a secret, print a code, check a user's code and clock."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from ..clock import system_clock
from ..totp import (
    ALGORITHMS,
    MIN_SECRET_BITS,
    TOTP,
    decode_secret,
    generate_secret,
    normalize_code,
    qr_text,
)

__all__ = ["register"]

MAX_WINDOW = 100
#: The latest --at: 9999-12-31T00:00:00Z. Every time printed (the time itself, and the
#: start of a step at most MAX_WINDOW steps of 300 s later) is then a year <= 9999,
#: which ISO 8601 and Python's datetime can write.
MAX_AT = 253_402_214_400


def register(subparsers: Any) -> None:
    totp = subparsers.add_parser(
        "totp", help="TOTP secrets and codes", description="TOTP secrets and codes (RFC 6238)."
    )
    commands = totp.add_subparsers(title="totp commands", metavar="COMMAND", dest="totp_command")
    commands.required = True

    new = commands.add_parser(
        "new",
        help="make a secret, its otpauth URI and a QR code",
        description="Generate a 160-bit secret and print it, its otpauth:// URI and a QR code.",
    )
    new.add_argument("--issuer", required=True, help="who issues it, e.g. Acme")
    new.add_argument("--account", required=True, help="whose it is, e.g. alice@example.com")
    _parameters(new)
    new.add_argument("--no-qr", action="store_true", help="leave out the terminal QR code")
    new.set_defaults(handler=_new)

    code = commands.add_parser(
        "code",
        help="print the code for a secret",
        description="Print the code for SECRET now, or at --at.",
    )
    _secret(code)
    code.add_argument("--at", type=_unix_time, help="Unix time to use instead of now")
    _parameters(code)
    code.set_defaults(handler=_code)

    verify = commands.add_parser(
        "verify",
        help="check a code and report the device's clock offset",
        description=(
            "Check CODE against SECRET within --window steps either side of now (or --at) and "
            "report the matched offset in steps: how far the user's device clock is off. "
            "Nothing is stored, so this does not burn the code."
        ),
    )
    _secret(verify)
    verify.add_argument("code", metavar="CODE", help="the code the user sees")
    verify.add_argument(
        "--window",
        type=_window,
        default=1,
        help=f"steps to search either side (0 to {MAX_WINDOW}, default 1)",
    )
    verify.add_argument("--at", type=_unix_time, help="Unix time to use instead of now")
    _parameters(verify)
    verify.set_defaults(handler=_verify)


def _secret(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "secret",
        metavar="SECRET",
        help="base32 secret, or - to read it from standard input (keeps it out of ps and history)",
    )


def _parameters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--digits", type=int, choices=(6, 8), default=6, help="default 6")
    parser.add_argument("--period", type=_period, default=30, help="seconds per step, default 30")
    parser.add_argument(
        "--algorithm", choices=tuple(ALGORITHMS), default="SHA1", help="default SHA1"
    )


def _unix_time(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a Unix time: {text!r}") from None
    if not 0 <= value <= MAX_AT:
        raise argparse.ArgumentTypeError(f"a Unix time must be from 0 to {MAX_AT} ({_iso(MAX_AT)})")
    return value


def _period(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 300:
        raise argparse.ArgumentTypeError("the period is a whole number of seconds from 1 to 300")
    return int(text)


def _window(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > MAX_WINDOW:
        raise argparse.ArgumentTypeError(f"the window is a whole number from 0 to {MAX_WINDOW}")
    return int(text)


def _iso(unix: float) -> str:
    """ISO 8601 in UTC, to the second: ``2026-12-03T08:40:00Z``."""
    moment = datetime.fromtimestamp(int(unix), tz=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _totp(args: argparse.Namespace, secret: str) -> TOTP:
    """The TOTP of a secret given to ``code`` or ``verify``: diagnostics of a secret that
    exists, so one of 80 to 127 bits (enrolled elsewhere) still works, with a note."""
    totp = TOTP(secret, digits=args.digits, period=args.period, algorithm=args.algorithm)
    bits = len(decode_secret(secret)) * 8
    if bits < MIN_SECRET_BITS:
        print(
            f"note: this secret holds {bits} bits, fewer than the {MIN_SECRET_BITS} RFC 4226"
            " asks for (stepup totp new makes 160; a users file refuses it)",
            file=sys.stderr,
        )
    return totp


def _read_secret(args: argparse.Namespace) -> str:
    given: str = args.secret
    return sys.stdin.readline().strip() if given == "-" else given


def _new(args: argparse.Namespace) -> int:
    totp = _totp(args, generate_secret())
    uri = totp.provisioning_uri(args.account, args.issuer)
    print(f"secret: {totp.secret}")
    print(f"uri:    {uri}")
    if not args.no_qr:
        qr = qr_text(uri)
        if _can_write(qr, sys.stdout):
            print()
            print(qr, end="")
        else:  # ascii, say (PYTHONIOENCODING, LANG=C on an old system): no half blocks
            encoding = getattr(sys.stdout, "encoding", None) or "?"
            print(
                f"note: no QR code: standard output's encoding ({encoding}) cannot show it;"
                " give the app the secret or the uri above instead",
                file=sys.stderr,
            )
    return 0


def _can_write(text: str, stream: Any) -> bool:
    """Can ``stream`` write ``text`` as it is? Strictly: an encoder that would replace
    the QR code's half blocks with ``?`` makes a code no app can scan."""
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _code(args: argparse.Namespace) -> int:
    totp = _totp(args, _read_secret(args))
    print(totp.at(system_clock() if args.at is None else args.at))
    return 0


def _verify(args: argparse.Namespace) -> int:
    totp = _totp(args, _read_secret(args))
    code = normalize_code(args.code, totp.digits)
    if code is None:
        print(
            f"stepup: error: malformed code: expected {totp.digits} ASCII digits "
            "(spaces and one hyphen may separate them)",
            file=sys.stderr,
        )
        return 2
    now = system_clock() if args.at is None else args.at
    step = totp.match(code, now, args.window)
    if step is None:
        print(f"no match within {args.window} step(s) of {_iso(now)} ({totp.period} s steps)")
        return 1
    offset = step - totp.step(now)
    if offset == 0:
        clock = "the device clock agrees with this one"
    else:
        direction = "ahead" if offset > 0 else "behind"
        clock = f"the device clock is about {abs(offset) * totp.period} s {direction}"
    print(
        f"match: step {step} (from {_iso(step * totp.period)}), offset {offset:+d} step(s): {clock}"
    )
    return 0
