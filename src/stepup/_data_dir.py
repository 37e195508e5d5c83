"""Where stepup keeps its files by default, without importing anything heavy (the CLI
asks it on every command)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir"]


def data_dir() -> Path:
    """``$XDG_DATA_HOME/stepup``, else ``~/.local/share/stepup``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stepup"
