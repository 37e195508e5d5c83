"""Read a TOML configuration file, turning every failure into one clear error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigurationError


def read_toml(path: str | Path) -> dict[str, Any]:
    """The file's table; a :class:`ConfigurationError` naming the file if it cannot be
    read or parsed (the parser's message gives a position, never the file's content)."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"{source}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML ({exc})") from None
