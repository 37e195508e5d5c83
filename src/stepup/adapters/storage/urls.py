"""Store URLs as a person may see them, and the reasons a store could not be opened.

Errors meant for the person starting an app (:class:`~stepup.errors.StoreConfigurationError`)
name the store's URL without its password, what was being done and the driver's
reason. The driver's message is cleaned first: any URL in it is shown the same way,
and a known password is cut out wherever it appears.
"""

from __future__ import annotations

import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from ...errors import StepupError, StoreConfigurationError

__all__ = [
    "REDIS_CLUSTER_SCHEMES",
    "driver_reason",
    "safe_url",
    "split_redis_cluster_url",
    "sqlite_file_problem",
    "startup_error",
]

_URL_IN_TEXT: Final = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_MAX_REASON: Final = 300
#: The schemes that name a Redis Cluster by any node's address, and the plain scheme
#: redis-py takes for each (a store URL says "cluster" itself, wherever one is given).
REDIS_CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def split_redis_cluster_url(url: str) -> tuple[str, bool]:
    """``url`` as redis-py takes it, and whether it names a Redis Cluster:
    ``redis+cluster://host:7000`` is ``("redis://host:7000", True)``; any other URL is
    itself and ``False``."""
    scheme, separator, rest = url.partition("://")
    plain = REDIS_CLUSTER_SCHEMES.get(scheme.lower()) if separator else None
    if plain is None:
        return url, False
    return f"{plain}://{rest}", True


def safe_url(url: object) -> str:
    """``url`` with no password and no query string (which can hold one too)."""
    render = getattr(url, "render_as_string", None)  # a SQLAlchemy URL: str() hides nothing
    text = str(render()) if callable(render) else str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "the store URL (not shown: it does not parse)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if port is not None:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _clean(text: str, secrets: tuple[str, ...]) -> str:
    text = _URL_IN_TEXT.sub(lambda match: safe_url(match.group(0)), text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def driver_reason(exc: BaseException, *, password: str | None = None) -> str:
    """The driver's own words for ``exc`` (under stepup's wrapper, and under SQLAlchemy's
    wrapper the driver's error itself), on one line, with its type:
    ``database "app" does not exist (OperationalError)``."""
    inner: BaseException = exc
    while isinstance(inner, StepupError) and inner.__cause__ is not None:
        inner = inner.__cause__
    orig = getattr(inner, "orig", None)  # sqlalchemy.exc.DBAPIError wraps the driver's
    if isinstance(orig, BaseException):
        inner = orig
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    # SQLAlchemy adds a "Background on this error" link; drop it and the SQL echo.
    lines = [ln for ln in lines if not ln.startswith(("(Background on", "[SQL:"))]
    message = _clean("; ".join(lines), (password,) if password else ())
    if len(message) > _MAX_REASON:
        message = message[: _MAX_REASON - 1] + "…"
    return f"{message} ({type(inner).__name__})" if message else type(inner).__name__


def sqlite_file_problem(path: Path) -> str | None:
    """What makes ``path`` unusable as a SQLite database, before SQLite says something
    vaguer ("unable to open database file"); ``None`` if nothing is known to be wrong."""
    if path.is_dir():
        return "is a directory"
    folder = path.parent
    if not path.exists():
        if folder.exists() and not folder.is_dir():
            return f"{folder} is not a directory"
        return None
    if not os.access(path, os.R_OK):
        return "is not readable by this user"
    if _not_a_database(path):
        return "is not a SQLite database (some other file is there)"
    if not os.access(path, os.W_OK):
        return "is not writable by this user"
    return None


def _not_a_database(path: Path) -> bool:
    """Does SQLite itself refuse ``path`` as a database? Asked of SQLite, never by
    opening the file here: closing any descriptor of a file drops every POSIX lock this
    process holds on it, the locks of its open SQLite connections included, and another
    process may then take the live WAL for a stale one and writes are lost
    (sqlite.org/howtocorrupt.html, section 2.2). SQLite's own connections share the
    process's locks on the file and keep them. Any other trouble (a WAL file it may not
    create, a lock) is for the store's own connection to report."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB
    except (sqlite3.Error, OSError, ValueError):
        return False
    return False


def startup_error(
    url: object, operation: str, exc: BaseException, *, password: str | None = None
) -> StoreConfigurationError:
    """The person-facing error for a store that could not ``operation`` at start-up."""
    return StoreConfigurationError(safe_url(url), operation, driver_reason(exc, password=password))
