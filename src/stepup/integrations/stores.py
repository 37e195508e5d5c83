"""A store from a URL setting, the same way in every framework that takes one (Flask's
``STEPUP_STORE``, Django's ``STEPUP["STORE"]``).

``memory://``, ``sqlite:///path``, ``postgresql+psycopg://...``, ``redis://...`` or, for a
Redis Cluster, ``redis+cluster://...`` (any node's address; ``rediss+cluster://`` with
TLS). Every
problem is a :class:`~stepup.errors.ConfigurationError` that names the setting and the
cause (a missing extra, an unsupported scheme), never the URL (it can carry a password);
the SQL and Redis stores name the URL without its password, the operation and the
driver's reason when they cannot open it.
"""

from __future__ import annotations

from typing import Final

from ..adapters.storage.base import Store
from ..errors import ConfigurationError

__all__ = ["STORE_URLS", "store_from_url"]

#: The URL forms a setting accepts, for messages.
STORE_URLS: Final = (
    "memory://, sqlite:///..., postgresql+psycopg://..., redis://... or redis+cluster://..."
)


def store_from_url(
    url: str, *, setting: str, create_schema: bool, accepted: str = STORE_URLS
) -> Store:
    """The store ``url`` names; ``setting`` is how the app spells the setting and
    ``accepted`` what else it may hold, both for messages. With ``create_schema`` (the
    start-up step) a SQL store creates its tables and a Redis store checks that it
    answers, so an unreachable one stops the app at start-up, named."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if url.strip() == "memory://":
        from ..adapters.storage.memory import MemoryStore

        return MemoryStore()
    if scheme.startswith(("sqlite", "postgresql", "postgres")):
        try:
            from ..adapters.storage.sql import SQLStore
        except ImportError:
            raise ConfigurationError(
                f"{setting} is a SQL URL: install the extra with pip install 'stepup-auth[sql]'"
                " (PostgreSQL: 'stepup-auth[postgres]' and a psycopg build)"
            ) from None
        try:
            store = SQLStore(url)
        except ModuleNotFoundError as exc:  # SQLAlchemy imports the URL's driver here
            raise ConfigurationError(_missing_driver(setting, scheme, exc.name)) from None
        if create_schema:
            store.create_schema()
        return store
    if scheme in {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}:
        try:
            from ..adapters.storage.redis import RedisStore
        except ImportError:
            raise ConfigurationError(
                f"{setting} is a Redis URL: install the extra with pip install 'stepup-auth[redis]'"
            ) from None
        redis_store = RedisStore(url)  # redis+cluster:// is a cluster client
        if create_schema:  # the start-up step: say now, naming the host, if Redis is away
            redis_store.check()
        return redis_store
    if not scheme:
        raise ConfigurationError(f"{setting} is not a store URL (use {accepted})")
    raise ConfigurationError(f"{setting}: unsupported scheme {scheme[:20]!r} (use {accepted})")


def _missing_driver(setting: str, scheme: str, module: str | None) -> str:
    """Name what to install when SQLAlchemy cannot import a SQL URL's driver."""
    driver = (module or "its driver").partition(".")[0]
    if scheme.startswith(("postgresql", "postgres")) and driver.startswith("psycopg"):
        return (
            f"{setting} is a PostgreSQL URL, and its driver {driver} is not installed:"
            " pip install 'stepup-auth[postgres]' (and \"psycopg[binary]\" where the system"
            " has no libpq)"
        )
    return f"{setting} names a SQL driver that is not installed ({driver}): install it"
