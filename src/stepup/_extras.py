"""An integration or adapter imported without its extra says which extra to install.

Without it, ``import stepup.integrations.flask`` in an environment with only Flask fails
naming whatever the first import three modules down misses (``fido2``, for passkeys the
app may never turn on). Wrapped in :func:`needs_extra`, the package's imports fail with
a ``ModuleNotFoundError`` that names the package and its extra, chained from the
original, with ``name`` still the missing module (so ``except ImportError`` and code
reading ``exc.name`` work as before). Nothing is imported that was not before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec

__all__ = ["needs_extra", "require_installed"]


@contextmanager
def needs_extra(package: str, extra: str) -> Iterator[None]:
    """Inside the block, a third-party module that cannot be found is ``extra``'s to bring:
    ``package needs the extra extra: pip install 'stepup-auth[extra]'``. A missing
    ``stepup`` module is not an extra's (a broken install, or a bug) and passes unchanged."""
    try:
        yield
    except ModuleNotFoundError as missing:
        if missing.name is None or missing.name.partition(".")[0] == "stepup":
            raise
        raise ModuleNotFoundError(
            f"{package} needs the {extra} extra: pip install 'stepup-auth[{extra}]'",
            name=missing.name,
        ) from missing


def require_installed(*modules: str) -> None:
    """Raise ``ModuleNotFoundError`` (as an import would) for the first of ``modules`` that
    is not installed, without importing any (for a package that imports on first use;
    call it inside :func:`needs_extra`). Top-level names only: finding one runs no code."""
    for module in modules:
        if find_spec(module) is None:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)
