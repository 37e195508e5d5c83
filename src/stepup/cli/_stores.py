"""Opening an existing store from a URL for the operator commands, and listing the
users with a TOTP credential (what re-sealing every secret needs).

An operator command never creates anything: a SQLite path that does not exist, or a
database without stepup's tables, is refused with the URL (no password) and the cause,
instead of being created empty and reported as "no such user". Nor does it act on part
of the users: a ``redis://`` URL of a node of a Redis Cluster (which would list and
change that node's users only) is refused, naming ``redis+cluster://``.

The commands run synchronously, so an async driver's URL (an app's ``STEPUP_STORE`` for
``AsyncSQLStore``) opens the same database through the sync driver: ``postgresql+asyncpg``
and ``postgresql+psycopg_async`` through psycopg, ``sqlite+aiosqlite`` through sqlite3.
Redis URLs are the same for both.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from ..adapters.storage.base import Store
from ..adapters.storage.redis_keys import untagged
from ..errors import ConfigurationError, StoreConfigurationError

__all__ = ["STORE_ENV", "credential_user_ids", "open_store"]

#: Where the store URL comes from when ``--store`` is not given (keeps a password out
#: of ``ps`` and the shell history).
STORE_ENV = "STEPUP_STORE"

_SQL = ("sqlite", "postgresql", "postgres")
#: An async driver's URL scheme, and the sync driver the commands open the same
#: database with (its module, when that is not in the standard library).
_SYNC_DRIVERS: dict[str, tuple[str, str | None]] = {
    "postgresql+asyncpg": ("postgresql+psycopg", "psycopg"),
    "postgresql+psycopg_async": ("postgresql+psycopg", "psycopg"),
    "sqlite+aiosqlite": ("sqlite", None),
}
_REDIS = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def open_store(url: str | None, *, prefix: str | None = None) -> Store:
    """The store at ``url`` (SQL or Redis), checked to answer and to hold stepup's data.

    Raises :class:`ConfigurationError` (a bad or unsupported URL, a missing extra) or
    :class:`StoreConfigurationError` (the store cannot be reached or is not stepup's),
    both naming the cause without the URL's password."""
    if not url:
        raise ConfigurationError(f"no store given: pass --store URL or set {STORE_ENV}")
    scheme = _scheme(url)
    base = scheme.partition("+")[0]
    if base in _SQL:
        return _open_sql(url, prefix)
    if scheme in _REDIS:
        return _open_redis(url, prefix)
    problem = f"unsupported store URL scheme {scheme[:20]!r}" if scheme else "not a store URL"
    raise ConfigurationError(
        f"{problem}: use sqlite:///PATH, postgresql://USER@HOST/DATABASE, redis://HOST:PORT/DB"
        " or redis+cluster://HOST:PORT"
    )


def _open_sql(url: str, prefix: str | None) -> Store:
    try:
        from sqlalchemy import inspect
        from sqlalchemy.engine import make_url

        from ..adapters.storage.sql import SQLStore
        from ..adapters.storage.urls import safe_url, sqlite_file_problem, startup_error
    except ImportError:
        raise ConfigurationError(
            "a SQL store needs the extra: pip install 'stepup-auth[sql]'"
            " (and 'stepup-auth[postgres]' for PostgreSQL)"
        ) from None
    if _scheme(url).partition("+")[0] == "postgres":  # the old name some hosts hand out
        url = "postgresql" + url[len("postgres") :]
    url = _sync_url(url, make_url)
    if _scheme(url) == "sqlite" or _scheme(url).startswith("sqlite+"):
        _check_sqlite_path(url, make_url, sqlite_file_problem, safe_url)
    options: dict[str, Any] = {} if prefix is None else {"prefix": prefix}
    try:
        store = SQLStore(url, **options)
    except ImportError as exc:  # the driver (psycopg) is missing
        raise ConfigurationError(
            f"the database driver {exc.name or ''} is not installed:"
            " pip install 'stepup-auth[postgres]' psycopg[binary]"
        ) from None
    password = _password(url)
    try:
        with store.engine.connect() as connection:
            found = inspect(connection).has_table(f"{store.prefix}credentials")
    except Exception as exc:
        store.close()
        raise startup_error(url, "connect to the database", exc, password=password) from exc
    if not found:
        store.close()
        raise StoreConfigurationError(
            safe_url(url),
            "find stepup's tables",
            f"no table {store.prefix}credentials (wrong database, or --prefix?)",
        )
    return store


def _sync_url(url: str, make_url: Any) -> str:
    """``url``, or for an async driver the same database's URL with the sync driver
    (asyncpg's ``ssl`` query parameter becoming psycopg's ``sslmode``); an async driver
    whose sync one is not installed is refused, naming what to install."""
    sync = _SYNC_DRIVERS.get(_scheme(url))
    if sync is None:
        return url
    scheme, module = sync
    if module is not None and importlib.util.find_spec(module) is None:
        raise ConfigurationError(
            f"{_scheme(url)}:// names an async driver; the operator commands open the same"
            f" database with the sync driver {module}, which is not installed:"
            " pip install 'stepup-auth[postgres]' 'psycopg[binary]'"
        )
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigurationError("not a valid database URL") from None
    query = dict(parsed.query)
    if parsed.drivername == "postgresql+asyncpg":
        for name in _ASYNCPG_ONLY:  # the pool's and statements' settings: libpq has none
            query.pop(name, None)
        if "ssl" in query and "sslmode" not in query:
            ssl = query.pop("ssl")
            if not isinstance(ssl, str):  # ?ssl=disable&ssl=require
                raise ConfigurationError("the URL gives ssl more than once")
            query["sslmode"] = ssl
    return str(parsed.set(drivername=scheme, query=query).render_as_string(hide_password=False))


#: asyncpg's connect arguments a URL may carry that libpq does not know (SQLAlchemy's
#: pgbouncer advice, ``prepared_statement_cache_size=0``, among them): the sync driver
#: opening the same database leaves them out.
_ASYNCPG_ONLY: Final = (
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
    "statement_cache_size",
    "max_cached_statement_lifetime",
    "max_cacheable_statement_size",
    "command_timeout",
    "timeout",
    "direct_tls",
    "server_settings",
)


def _password(url: str) -> str | None:
    """The URL's password, to keep out of messages; a URL that does not split (an
    unclosed ``[``) is refused without its text, which may hold that password."""
    try:
        return urlsplit(url).password
    except ValueError:
        raise ConfigurationError("not a valid database URL") from None


def _check_sqlite_path(url: str, make_url: Any, problem_of: Any, safe_url: Any) -> None:
    try:
        database = make_url(url).database
    except Exception:
        raise ConfigurationError("not a valid database URL") from None
    if not database or database == ":memory:":
        return  # the store refuses these with its own message
    path = Path(database)
    if not path.exists():
        raise StoreConfigurationError(
            safe_url(url),
            "open the SQLite database",
            f"no such file {str(path.resolve())!r} (operator commands never create one)",
        )
    problem = problem_of(path)
    if problem is not None:
        raise StoreConfigurationError(safe_url(url), "open the SQLite database", problem)


def _open_redis(url: str, prefix: str | None) -> Store:
    try:
        from ..adapters.storage.redis import RedisStore
    except ImportError:
        raise ConfigurationError(
            "a Redis store needs the extra: pip install 'stepup-auth[redis]'"
        ) from None
    store = RedisStore(url) if prefix is None else RedisStore(url, prefix=prefix)
    try:
        store.check()  # also refuses a redis:// URL of a cluster node (one node's users)
    except BaseException:
        store.close()
        raise
    return store


def credential_user_ids(store: Store) -> Iterator[str]:
    """Every user id with a stored TOTP credential, in no promised order (a store of
    the app's own may list them itself: ``credential_user_ids()``)."""
    listed = getattr(store, "credential_user_ids", None)
    if callable(listed):
        yield from (str(user_id) for user_id in listed())
        return
    engine = getattr(store, "engine", None)
    if engine is not None:
        yield from _sql_user_ids(store, engine)
        return
    client = getattr(store, "client", None)
    keys = getattr(store, "keys", None)
    if client is not None and keys is not None:
        yield from _redis_user_ids(client, keys.prefix)
        return
    raise ConfigurationError(f"cannot list the credentials of a {type(store).__name__}")


def _sql_user_ids(store: Store, engine: Any) -> Iterator[str]:
    from sqlalchemy import column, select, table

    credentials = table(f"{getattr(store, 'prefix', '')}credentials", column("user_id"))
    with engine.connect() as connection:
        rows = connection.execute(select(credentials.c.user_id).order_by(credentials.c.user_id))
        user_ids = [str(row[0]) for row in rows]
    yield from user_ids


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _redis_user_ids(client: Any, prefix: str) -> Iterator[str]:
    head = f"{prefix}cred:" + "{"
    for raw in client.scan_iter(match=_glob_escape(head) + "*", count=500):
        key = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        if not key.startswith(head) or not key.endswith("}"):
            continue
        yield untagged(key[len(head) : -1])


def env_url() -> str | None:
    """The store URL from :data:`STORE_ENV`, if set."""
    return os.environ.get(STORE_ENV) or None
