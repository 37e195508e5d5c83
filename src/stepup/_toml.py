"""Read a TOML configuration file, turning every failure into one clear error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigurationError


def read_toml(path: str | Path) -> dict[str, Any]:
    """The file's table; a :class:`ConfigurationError` naming the file if it cannot be
    read, is not UTF-8 (TOML's encoding) or cannot be parsed, hostile input included
    (nested too deeply, an integer too long to convert): the message gives a position or
    the cause, never the file's content."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigurationError(
            f"{source}: not UTF-8, as TOML must be (byte {exc.start}, line {line})"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML ({exc})") from None
    except RecursionError:
        # tomllib parses arrays and inline tables recursively: a file nested a thousand
        # levels deep exhausts the stack (no configuration is ever nested like that).
        raise ConfigurationError(f"{source}: not valid TOML (nested too deeply)") from None
    except ValueError as exc:
        # What tomllib lets through on hostile input besides its own error: an integer
        # of more digits than Python converts ("Exceeds the limit (4300 digits) ...").
        # The message gives a count, never the file's content.
        raise ConfigurationError(f"{source}: not valid TOML ({exc})") from None
