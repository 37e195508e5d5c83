"""The Redis store: one server or a Redis Cluster, sync or async, on redis-py.

Every method is one round trip: one command that is atomic on its own, or one Lua
script (``EVALSHA``, falling back to ``EVAL`` the first time a server lacks it); only
``patch_tenant`` is a read and a compare-and-set script (see :meth:`.RedisOps.patch_tenant`),
and ``add_passkey`` / ``remove_passkey`` touch two slots, one after the other (see
:meth:`.RedisOps.add_passkey`).
``batch`` answers several independent reads in one round trip (a pipeline), which
is how a re-authentication check reads the tenant and the grant together. On a plain
(not cluster) client, sync or async, batches (and, on a client the store built, single
commands too) go out on one pooled connection without redis-py's per-command
machinery: the same bytes for less client CPU (:func:`_on_one_connection` and its
async twin).
What is sent and how replies are read lives in :mod:`.redis_ops`, shared by
:class:`RedisStore` and :class:`AsyncRedisStore`; this module only executes it.

Fail closed: any Redis or socket error becomes :class:`StoreUnavailableError`,
whose message names the operation and the error type, never the URL or password.
The next call simply tries again. See ``docs/storage-redis.md``.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from functools import partial
from types import TracebackType
from typing import Any, ClassVar, Protocol, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

from ..._extras import needs_extra

with needs_extra(__name__, "redis"):
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.asyncio.retry
    import redis.cluster
    import redis.retry
    from redis.backoff import NoBackoff
    from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError

from ...errors import ConfigurationError, StoreConfigurationError, StoreUnavailableError
from ...records import Attempt, Challenge, Credential, Grant, Passkey, Tenant, ThrottleState
from ...throttle import ThrottlePolicy
from .base import BATCHABLE_READS
from .redis_cluster_node import acluster_enabled, cluster_enabled
from .redis_keys import DEFAULT_PREFIX, RedisKeys
from .redis_ops import Op, RedisOps, Steps
from .urls import split_redis_cluster_url, startup_error

__all__ = ["AsyncRedisStore", "RedisStore"]

T = TypeVar("T")

#: Default socket timeouts (seconds) for clients the store builds from a URL: an
#: unreachable or stuck Redis answers "unavailable" this fast instead of hanging.
TIMEOUT = 2.0

_FAILURES = (RedisError, RedisClusterException, OSError, UnicodeError)
#: The async store also fails closed on a client used from another event loop than its
#: connections' (redis.asyncio raises ``RuntimeError``: "Event loop is closed", "attached
#: to a different loop"), which only a client passed in can meet.
_ASYNC_FAILURES = (*_FAILURES, RuntimeError)
#: Reads that ``batch`` can pipeline: single commands, never scripts or writes.
_BATCHABLE = BATCHABLE_READS | {"list_passkeys"}
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)


class SyncRedis(Protocol):
    """What the sync store needs: ``redis.Redis`` or ``redis.cluster.RedisCluster``."""

    def execute_command(self, *args: Any) -> Any: ...


class AsyncRedis(Protocol):
    """What the async store needs: ``redis.asyncio.Redis`` or its ``RedisCluster``."""

    async def execute_command(self, *args: Any) -> Any: ...


def _unavailable(op: Op[Any], exc: BaseException) -> StoreUnavailableError:
    # The type name only: driver messages may carry host names or URLs.
    return StoreUnavailableError(f"Redis store: {op.name} failed ({type(exc).__name__})")


def _direct_pool(client: Any) -> Any | None:
    """The pool of a plain (not cluster) redis-py client, sync or async, that hands out
    connections without a command name (redis-py 5.3 on), so a batch can go out on one
    connection as cheaply as one command; ``None`` means: use a pipeline instead."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or not isinstance(client, redis.Redis | redis.asyncio.Redis):
        return None
    try:
        wanted = inspect.signature(pool.get_connection).parameters.get("command_name")
    except (TypeError, ValueError):
        return None
    if wanted is not None and wanted.default is inspect.Parameter.empty:
        return None
    return pool


def _on_one_connection(pool: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` in one write on one pooled connection and read every reply: a
    pipeline without its per-call bookkeeping.

    An error reply (``ResponseError``, ``NOSCRIPT`` among them) is a whole reply: the
    rest are still read, then the first error is raised, and the connection stays in
    step. Anything else (socket error, timeout, interruption) may leave replies
    unread, so the connection is closed before it goes back: no caller ever reads
    another's reply."""
    connection = pool.get_connection()
    try:
        connection.send_packed_command(_packed(connection, commands))
        replies = []
        error: ResponseError | None = None
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except ResponseError as exc:
                error = error or exc
                replies.append(None)
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
    if error is not None:
        raise error
    return replies


async def _on_one_connection_async(pool: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """:func:`_on_one_connection` on an async pool. A cancelled call closes its
    connection too: its replies may still be on the way.

    The replies share one deadline, the connection's socket timeout, instead of one
    each: redis.asyncio arms and cancels an event-loop timer per reply it reads, which
    cost a batch of two about a tenth of its client CPU. A deadline passed is a
    ``TimeoutError``, and the connection is closed as for any failure."""
    connection = await pool.get_connection()
    try:
        await connection.send_packed_command(_packed(connection, commands))
        replies = []
        error: ResponseError | None = None
        async with asyncio.timeout(getattr(connection, "socket_timeout", None)):
            for _ in commands:
                try:
                    replies.append(await connection.read_response(timeout=math.inf))
                except ResponseError as exc:
                    error = error or exc
                    replies.append(None)
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)
    if error is not None:
        raise error
    return replies


def _packed(connection: Any, commands: list[tuple[Any, ...]]) -> list[bytes]:
    """``commands`` (each a one-word command name, then its arguments) in the Redis
    protocol, every argument through the connection's own encoder: the very bytes
    redis-py's ``pack_commands`` sends, at a fraction of its cost (it also splits
    multi-word names and chunks large values, which the store's commands never need).
    A connection without an encoder packs them itself."""
    encoder = getattr(connection, "encoder", None)
    if encoder is None:
        packed: list[bytes] = connection.pack_commands(commands)
        return packed
    encode, encoding, errors = encoder.encode, encoder.encoding, encoder.encoding_errors
    parts = []
    for command in commands:
        name = command[0].encode()  # a one-word name, always UTF-8 (as redis-py does)
        parts.append(b"*%d\r\n$%d\r\n%b\r\n" % (len(command), len(name), name))
        for arg in command[1:]:
            # a str is what the encoder would make of it, minus its type tests
            data = arg.encode(encoding, errors) if type(arg) is str else encode(arg)
            parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return [b"".join(parts)]


def _batch_op(ops: Sequence[Op[Any]]) -> Op[None]:
    """A stand-in naming a whole batch, for error messages."""
    return Op(f"batch({','.join(op.name for op in ops)})", (), lambda reply: None)


def _decoded(op: Op[T], reply: Any) -> T:
    try:
        return op.decode(reply)
    except _UNREADABLE as exc:
        raise StoreUnavailableError(f"Redis store: {op.name} read data it cannot decode") from exc


#: What may follow ``host:port`` in a redis:// or rediss:// URL: nothing, or a database
#: number (redis-py reads ``/l3`` or ``/13x`` as no database and connects to 0).
_DATABASE_PART = re.compile(r"/?[0-9]*")


def _check_database_part(url: str) -> None:
    """Refuse a database part redis-py would not read as the one the URL seems to name:
    not a number, or a number that a ``?db=`` option overrides (redis-py takes the
    option: ``/0?db=6`` is database 6). The message never quotes the URL."""
    try:
        parts = urlsplit(split_redis_cluster_url(url)[0])
    except ValueError:  # "Invalid IPv6 URL": its message is the URL's text
        raise ConfigurationError("invalid Redis URL (not shown: it may hold a password)") from None
    if parts.scheme.lower() not in ("redis", "rediss"):
        return
    if not _DATABASE_PART.fullmatch(parts.path):
        raise ConfigurationError("the database part of a Redis URL must be a number")
    # The options as redis-py reads them (keys decoded, a blank value ignored).
    if parts.path.strip("/") and "db" in parse_qs(parts.query):
        raise ConfigurationError(
            "a Redis URL names its database twice, in its path and as ?db=: give only one"
        )


#: A URL option redis-py takes only when it connects (``?foo=bar``): the message never
#: quotes the URL, which may hold a password.
_BAD_OPTION = "invalid Redis URL option (the URL is not shown: it may hold a password)"


def _from_url(build: Callable[[], T], url: str = "") -> T:
    _check_database_part(url)
    try:
        return build()
    except (ValueError, TypeError):
        # Raised without the cause: the message could quote the URL and its password.
        raise ConfigurationError("invalid Redis URL (not shown: it may hold a password)") from None
    except _FAILURES as exc:  # a cluster client asks a node for the slots at once
        raise startup_error(url, "connect to Redis", exc) from exc


def _cluster_node_error(where: str) -> StoreConfigurationError:
    return StoreConfigurationError(
        where,
        "use the Redis store",
        "the server is a node of a Redis Cluster, and a redis:// URL reaches that node's"
        " keys only: give any node's address as redis+cluster://HOST:PORT"
        " (rediss+cluster:// for TLS)",
    )


def _where(client: Any) -> str:
    """Where a redis-py client connects, as a URL without password (for errors); a
    cluster client as ``redis+cluster://`` (``rediss+cluster://``) and the node its URL
    named (its first startup node, known before the client has loaded the cluster's
    layout); a client of neither kind as ``a <type> client``."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict):
        if kwargs.get("path"):
            return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
        tls = "SSL" in getattr(getattr(pool, "connection_class", None), "__name__", "")
        user = f"{kwargs['username']}@" if kwargs.get("username") else ""
        scheme = "rediss" if tls else "redis"
        host = f"[{kwargs.get('host')}]" if ":" in str(kwargs.get("host")) else kwargs.get("host")
        return f"{scheme}://{user}{host}:{kwargs.get('port')}/{kwargs.get('db', 0)}"
    nodes = getattr(client, "nodes_manager", None)
    # The nodes it was given (redis-py keeps them as it got them; its nodes manager's
    # copy moves a failed node to the end), else its default node.
    startup = getattr(client, "startup_nodes", None) or getattr(nodes, "startup_nodes", None)
    if isinstance(startup, dict):
        startup = list(startup.values())
    node = startup[0] if isinstance(startup, list) and startup else None
    if node is None:
        node = getattr(client, "get_default_node", lambda: None)()
    if node is None:
        return f"a {type(client).__name__} client"
    options = getattr(nodes, "connection_kwargs", None)
    options = options if isinstance(options, dict) else {}
    connection_class = getattr(options.get("connection_class"), "__name__", "")
    scheme = "rediss" if options.get("ssl") or "SSL" in connection_class else "redis"
    user = f"{options['username']}@" if options.get("username") else ""
    host = str(getattr(node, "host", "?"))
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}+cluster://{user}{host}:{getattr(node, 'port', '?')}"


class _RedisBase:
    #: The methods :meth:`RedisStore.batch` answers (flows read it as ``store.batchable``).
    batchable: frozenset[str] = _BATCHABLE
    #: Each operation is one command or Lua script (the contract's forced race cases have
    #: no read of this store's own to interleave; its thread cases test it).
    atomic_operations: ClassVar[bool] = True

    def __init__(self, client: Any, prefix: str, owned: bool) -> None:
        self.keys = RedisKeys(prefix)
        self._ops = RedisOps(self.keys)
        self._client = client
        self._owned = owned

    def _batch_ops(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Op[Any]]:
        ops = []
        for method, args in calls:
            if method not in _BATCHABLE:
                raise ValueError(f"{method} cannot be batched")
            # Only decision code batches a tenant read: it may share the decoded one.
            if method == "get_tenant":
                ops.append(self._ops.tenant_for_decision(*args))
            else:
                ops.append(getattr(self._ops, method)(*args))
        return ops

    @property
    def client(self) -> Any:
        """The redis-py client in use (for health checks and tests; not for stepup's keys)."""
        return self._client

    def __repr__(self) -> str:
        # The client's own repr names hosts; ours names only its type.
        client = type(self._client).__name__
        return f"{type(self).__name__}(prefix={self.keys.prefix!r}, client={client})"


class RedisStore(_RedisBase):
    """Implements :class:`stepup.adapters.storage.base.Store` on a sync redis-py client.

    Pass a URL (``redis://[:password@]host:6379/0``; for a Redis Cluster any node's,
    as ``redis+cluster://host:7000`` or ``rediss+cluster://`` or with ``cluster=True``)
    or a ready ``redis.Redis`` / ``redis.cluster.RedisCluster``.
    A client built from a URL gets ``timeout``-second socket timeouts, no command
    retries (a lost reply must not count a failure twice), and is closed by
    :meth:`close`; a client you pass stays yours to configure and close.
    """

    def __init__(
        self,
        client_or_url: str | SyncRedis,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        timeout: float = TIMEOUT,
    ) -> None:
        if isinstance(client_or_url, str):
            url, named = split_redis_cluster_url(client_or_url)
            client = _from_url(lambda: _sync_client(url, cluster or named, timeout), client_or_url)
            super().__init__(client, prefix, True)
        else:
            super().__init__(client_or_url, prefix, False)
        self._pool = _direct_pool(self._client)
        # A client built here has no retries, cache or other per-command options, so
        # single commands can take the batch's direct path too; a client passed in is
        # used through execute_command, with whatever its owner configured.
        self._single = self._pool if self._owned else None

    def _send(self, command: tuple[Any, ...]) -> Any:
        if self._single is not None:
            return _on_one_connection(self._single, [command])[0]
        return self._client.execute_command(*command)

    def _run(self, op: Op[T]) -> T:
        try:
            try:
                reply = self._send(op.command)
            except NoScriptError:
                if op.fallback is None:
                    raise
                reply = self._send(op.fallback)
        except _FAILURES as exc:
            raise _unavailable(op, exc) from exc
        return _decoded(op, reply)

    def _steps(self, steps: Steps[T]) -> T:
        """Run an operation of several round trips, one op at a time."""
        try:
            op = next(steps)
            while True:
                op = steps.send(self._run(op))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> tuple[Any, ...]:
        """Answer several reads (``get_tenant``, ``get_grant``, ``get_credential``,
        ``throttle_state``, ``list_passkeys``: ``(method, args)`` pairs; see
        :attr:`batchable`) in one round trip, each answer as
        the method alone would give it. A pipeline, not a transaction: the reads are
        independent. A client without ``pipeline()`` gets them one by one. For decision
        code: a tenant read here is shared with other checks, read-only;
        :meth:`get_tenant` gives a caller its own."""
        ops = self._batch_ops(calls)
        pipeline: Any = getattr(self._client, "pipeline", None)
        if self._pool is None and pipeline is None:
            return tuple(self._run(op) for op in ops)
        try:
            if self._pool is not None:
                replies = _on_one_connection(self._pool, [op.command for op in ops])
            else:
                pipe = pipeline(transaction=False)
                for op in ops:
                    pipe.execute_command(*op.command)
                replies = pipe.execute()
        except _FAILURES as exc:
            raise _unavailable(_batch_op(ops), exc) from exc
        return tuple(_decoded(op, reply) for op, reply in zip(ops, replies, strict=True))

    def check(self) -> None:
        """A start-up check that Redis answers (``PING``) and, for a one-server client,
        that it is no node of a Redis Cluster (it would see that node's keys only:
        :mod:`~stepup.adapters.storage.redis_cluster_node`); on failure a
        :class:`~stepup.errors.StoreConfigurationError` naming where (no password) and
        the reason. Calls after start-up fail closed as usual."""
        try:
            self._client.execute_command("PING")
            on_a_node = not isinstance(self._client, redis.cluster.RedisCluster) and (
                cluster_enabled(self._client, self.keys.prefix)
            )
        except _FAILURES as exc:
            raise startup_error(_where(self._client), "reach Redis", exc) from exc
        except (TypeError, ValueError):  # an option of the URL the client does not take
            raise ConfigurationError(_BAD_OPTION) from None
        if on_a_node:
            raise _cluster_node_error(_where(self._client))

    def close(self) -> None:
        """Close the connections, if the store opened them."""
        if self._owned:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt:
        return self._run(self._ops.totp_attempt(key, step, now, throttle))

    def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        return self._run(self._ops.throttle_charge(key, now, throttle))

    def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        return self._run(self._ops.throttle_refund(key, charge, at))

    def throttle_clear(self, key: str) -> None:
        return self._run(self._ops.throttle_clear(key))

    def throttle_state(self, key: str) -> ThrottleState:
        return self._run(self._ops.throttle_state(key))

    def get_credential(self, user_id: str) -> Credential | None:
        return self._run(self._ops.get_credential(user_id))

    def put_credential(self, credential: Credential) -> None:
        return self._run(self._ops.put_credential(credential))

    def add_credential(self, credential: Credential) -> bool:
        return self._run(self._ops.add_credential(credential))

    def delete_credential(self, user_id: str) -> bool:
        return self._run(self._ops.delete_credential(user_id))

    def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        return self._run(self._ops.consume_recovery_hash(user_id, digest))

    def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        return self._run(self._ops.replace_credential(credential, expected_version))

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        return self._run(self._ops.get_tenant(tenant_id))

    def put_tenant(self, tenant: Tenant) -> None:
        return self._run(self._ops.put_tenant(tenant))

    def add_tenant(self, tenant: Tenant) -> Tenant:
        return self._run(self._ops.add_tenant(tenant))

    def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> tuple[Tenant, Tenant] | None:
        return self._steps(self._ops.patch_tenant(tenant_id, attributes, flags))

    def put_grant(self, grant: Grant, expires_at: float) -> None:
        return self._run(self._ops.put_grant(grant, expires_at))

    def get_grant(self, user_id: str, session_id: str) -> Grant | None:
        return self._run(self._ops.get_grant(user_id, session_id))

    def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> bool:
        return self._run(self._ops.replace_grant(grant, expires_at, expected, from_session))

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        return self._run(self._ops.revoke_grants(user_id, session_id))

    def put_challenge(self, challenge: Challenge) -> None:
        return self._run(self._ops.put_challenge(challenge))

    def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        return self._run(self._ops.take_challenge(challenge_id, now))

    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        return self._run(self._ops.list_passkeys(user_id))

    def add_passkey(self, passkey: Passkey, max_per_user: int) -> bool:
        """See :meth:`.RedisOps.add_passkey` (three round trips: a claim, the add, the
        claim made permanent)."""
        return self._steps(self._ops.add_passkey(passkey, max_per_user))

    def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        return self._steps(self._ops.remove_passkey(user_id, credential_id))

    def record_passkey_use(self, passkey: Passkey, expected_count: int) -> bool:
        return self._run(self._ops.record_passkey_use(passkey, expected_count))

    def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        return self._run(self._ops.rename_passkey(user_id, credential_id, name))


class _Bound:
    """An async redis-py client and how the store sends on it (see :class:`RedisStore`:
    batches of a plain client, and single commands of a client the store built, go out
    on one pooled connection, packed by the store)."""

    __slots__ = ("client", "is_cluster", "pool", "single")

    def __init__(self, client: Any, owned: bool) -> None:
        self.client = client
        # redis-py's async cluster client can hand a half-open connection to concurrent
        # first commands; awaiting its (locked, idempotent) initialize() first avoids it.
        self.is_cluster = isinstance(client, redis.asyncio.cluster.RedisCluster)
        self.pool = _direct_pool(client)
        self.single = self.pool if owned else None


def _close_client_of_closed_loop(client: Any) -> None:
    """Close every connection of a redis.asyncio client whose event loop is closed: its
    pool's, free and in use, or those of each cluster node (the startup nodes too), and
    mark a cluster client closed, as its ``aclose`` would. redis-py has no public way
    to list them, so this reads its attributes and finds none where they are not."""
    connections: list[Any] = []
    pool = getattr(client, "connection_pool", None)
    for name in ("_available_connections", "_in_use_connections"):
        connections.extend(getattr(pool, name, ()))
    nodes = getattr(client, "nodes_manager", None)
    for cache in ("nodes_cache", "startup_nodes"):
        for node in getattr(nodes, cache, {}).values():
            connections.extend(getattr(node, "_connections", ()))
    for connection in connections:
        _close_on_closed_loop(connection)
    if nodes is not None:
        with suppress(AttributeError):
            nodes.default_node = None  # what NodesManager.aclose does first


def _close_on_closed_loop(connection: Any) -> None:
    """Close a connection whose event loop is closed, here and now. Nothing can be
    awaited or scheduled on that loop any more: redis-py's ``disconnect`` and asyncio's
    ``transport.close()`` both need it, and would leave the socket open until garbage
    collection (with a ResourceWarning). So the transport is marked closing and its
    socket closed directly, as the closed loop would have done next; redis-py then
    sees the connection closed. A part that is not there (another asyncio or redis-py
    version, another loop implementation) is left to garbage collection."""
    writer = getattr(connection, "_writer", None)
    if writer is None:
        return
    with suppress(AttributeError):
        connection._writer = connection._reader = None
    transport = writer.transport
    with suppress(RuntimeError):  # "Event loop is closed", once marked closing
        transport.close()
    finish = getattr(transport, "_call_connection_lost", None)
    if finish is not None and getattr(transport, "_sock", None) is not None:
        with suppress(RuntimeError, OSError):
            finish(None)  # closes the socket first of all (in its finally)


class AsyncRedisStore(_RedisBase):
    """Implements :class:`stepup.adapters.storage.base.AsyncStore` on ``redis.asyncio``.

    Takes the same URLs and options as :class:`RedisStore`, or a ready
    ``redis.asyncio.Redis`` / ``redis.asyncio.cluster.RedisCluster``. Nothing
    connects until the first call, so it can be built outside the event loop.

    A redis.asyncio connection belongs to the event loop it was opened on. A store
    built from a URL therefore keeps one client per loop: the one it built goes to the
    first loop that uses it, and another loop (``asyncio.run(store.check())`` at
    start-up, then the server's loop) gets a client of its own; the clients of loops
    that are closed are dropped, and their connections closed, when another loop next
    uses the store (nothing is awaited on a closed loop); :meth:`aclose` on a loop
    closes that loop's at once. A client you pass in is used on every loop as it is; a
    call it cannot make there fails closed (:class:`StoreUnavailableError`).
    """

    def __init__(
        self,
        client_or_url: str | AsyncRedis,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        timeout: float = TIMEOUT,
    ) -> None:
        self._build: Callable[[], Any] | None = None
        if isinstance(client_or_url, str):
            url, named = split_redis_cluster_url(client_or_url)
            self._build = partial(
                _from_url, lambda: _async_client(url, cluster or named, timeout), client_or_url
            )
            super().__init__(self._build(), prefix, True)
        else:
            super().__init__(client_or_url, prefix, False)
        # The built (or given) client, until a loop claims it; then one per loop, the
        # last one used also at hand without a lookup.
        self._unclaimed: _Bound | None = _Bound(self._client, self._owned)
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Bound] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[asyncio.AbstractEventLoop | None, _Bound | None] = (None, None)
        self._claim = threading.Lock()

    def _here(self) -> _Bound:
        """The client of the running event loop (see the class docstring)."""
        loop = asyncio.get_running_loop()
        last_loop, bound = self._last
        if last_loop is loop and bound is not None:
            return bound
        with self._claim:
            self._drop_closed_loops()
            bound = self._by_loop.get(loop)
            if bound is None:
                if self._unclaimed is not None:
                    bound, self._unclaimed = self._unclaimed, None
                elif self._build is not None:
                    bound = _Bound(self._build(), True)
                else:  # a client passed in: the only one there is
                    bound = _Bound(self._client, False)
                self._by_loop[loop] = bound
            self._last = (loop, bound)
        return bound

    def _drop_closed_loops(self) -> None:
        """Forget the clients of closed event loops (with ``_claim`` held), closing the
        connections of those the store built: each holds its loop, so without this every
        loop the store was used on (each ``asyncio.run``) would live on with a socket."""
        closed = [loop for loop in self._by_loop if loop.is_closed()]
        for loop in closed:
            bound = self._by_loop.pop(loop)
            if not self._owned:
                continue  # a client passed in stays its owner's
            _close_client_of_closed_loop(bound.client)
            self._retire(bound)
        if self._last[0] is not None and self._last[0].is_closed():
            self._last = (None, None)

    def _retire(self, bound: _Bound) -> None:
        """``bound``'s client is done with (with ``_claim`` held). A client keeps the
        loop it was used on (its locks, its connections), so if it is the one the store
        built first, a fresh one (no connection yet) takes its place, for the next loop
        to claim."""
        if bound.client is self._client and self._build is not None:
            self._client = self._build()
            self._unclaimed = _Bound(self._client, True)

    @property
    def client(self) -> Any:
        """The redis-py client of the running event loop (outside a loop: the one built
        or passed in), for health checks and tests; not for stepup's keys."""
        try:
            return self._here().client
        except RuntimeError:  # no running event loop
            return self._client

    async def _send(self, command: tuple[Any, ...]) -> Any:
        bound = self._here()
        if bound.single is not None:
            return (await _on_one_connection_async(bound.single, [command]))[0]
        if bound.is_cluster:
            await bound.client.initialize()
        return await bound.client.execute_command(*command)

    async def _run(self, op: Op[T]) -> T:
        try:
            try:
                reply = await self._send(op.command)
            except NoScriptError:
                if op.fallback is None:
                    raise
                reply = await self._send(op.fallback)
        except _ASYNC_FAILURES as exc:
            raise _unavailable(op, exc) from exc
        return _decoded(op, reply)

    async def _steps(self, steps: Steps[T]) -> T:
        """See :meth:`RedisStore._steps`."""
        try:
            op = next(steps)
            while True:
                op = steps.send(await self._run(op))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def batch(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> tuple[Any, ...]:
        """See :meth:`RedisStore.batch`."""
        ops = self._batch_ops(calls)
        bound = self._here()
        pipeline: Any = getattr(bound.client, "pipeline", None)
        if bound.pool is None and pipeline is None:
            return tuple([await self._run(op) for op in ops])
        try:
            if bound.pool is not None:
                replies = await _on_one_connection_async(bound.pool, [op.command for op in ops])
            else:
                if bound.is_cluster:
                    await bound.client.initialize()
                pipe = pipeline(transaction=False)
                for op in ops:
                    pipe.execute_command(*op.command)
                replies = await pipe.execute()
        except _ASYNC_FAILURES as exc:
            raise _unavailable(_batch_op(ops), exc) from exc
        return tuple(_decoded(op, reply) for op, reply in zip(ops, replies, strict=True))

    async def check(self) -> None:
        """:meth:`RedisStore.check`, awaited."""
        bound = self._here()
        client = bound.client
        try:
            await client.execute_command("PING")
            on_a_node = not bound.is_cluster and await acluster_enabled(client, self.keys.prefix)
        except _ASYNC_FAILURES as exc:
            raise startup_error(_where(client), "reach Redis", exc) from exc
        except (TypeError, ValueError):  # an option of the URL the client does not take
            raise ConfigurationError(_BAD_OPTION) from None
        if on_a_node:
            raise _cluster_node_error(_where(client))

    async def aclose(self) -> None:
        """Close the connections of the running event loop, if the store opened them
        (those of closed loops are closed when another loop next uses the store). A
        later call connects again."""
        if not self._owned:
            return
        loop = asyncio.get_running_loop()
        with self._claim:
            bound = self._by_loop.pop(loop, None)
            if bound is None:
                bound, self._unclaimed = self._unclaimed, None
            else:
                self._retire(bound)
            self._last = (None, None)
        if bound is not None:
            await bound.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def totp_attempt(
        self, key: str, step: int | None, now: float, throttle: ThrottlePolicy
    ) -> Attempt:
        return await self._run(self._ops.totp_attempt(key, step, now, throttle))

    async def throttle_charge(self, key: str, now: float, throttle: ThrottlePolicy) -> Attempt:
        return await self._run(self._ops.throttle_charge(key, now, throttle))

    async def throttle_refund(self, key: str, charge: Attempt, at: float) -> None:
        return await self._run(self._ops.throttle_refund(key, charge, at))

    async def throttle_clear(self, key: str) -> None:
        return await self._run(self._ops.throttle_clear(key))

    async def throttle_state(self, key: str) -> ThrottleState:
        return await self._run(self._ops.throttle_state(key))

    async def get_credential(self, user_id: str) -> Credential | None:
        return await self._run(self._ops.get_credential(user_id))

    async def put_credential(self, credential: Credential) -> None:
        return await self._run(self._ops.put_credential(credential))

    async def add_credential(self, credential: Credential) -> bool:
        return await self._run(self._ops.add_credential(credential))

    async def delete_credential(self, user_id: str) -> bool:
        return await self._run(self._ops.delete_credential(user_id))

    async def consume_recovery_hash(self, user_id: str, digest: str) -> bool:
        return await self._run(self._ops.consume_recovery_hash(user_id, digest))

    async def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        return await self._run(self._ops.replace_credential(credential, expected_version))

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return await self._run(self._ops.get_tenant(tenant_id))

    async def put_tenant(self, tenant: Tenant) -> None:
        return await self._run(self._ops.put_tenant(tenant))

    async def add_tenant(self, tenant: Tenant) -> Tenant:
        return await self._run(self._ops.add_tenant(tenant))

    async def patch_tenant(
        self, tenant_id: str, attributes: Mapping[str, Any], flags: Mapping[str, Any]
    ) -> tuple[Tenant, Tenant] | None:
        return await self._steps(self._ops.patch_tenant(tenant_id, attributes, flags))

    async def put_grant(self, grant: Grant, expires_at: float) -> None:
        return await self._run(self._ops.put_grant(grant, expires_at))

    async def get_grant(self, user_id: str, session_id: str) -> Grant | None:
        return await self._run(self._ops.get_grant(user_id, session_id))

    async def replace_grant(
        self, grant: Grant, expires_at: float, expected: Grant, from_session: str
    ) -> bool:
        op = self._ops.replace_grant(grant, expires_at, expected, from_session)
        return await self._run(op)

    async def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        return await self._run(self._ops.revoke_grants(user_id, session_id))

    async def put_challenge(self, challenge: Challenge) -> None:
        return await self._run(self._ops.put_challenge(challenge))

    async def take_challenge(self, challenge_id: str, now: float) -> Challenge | None:
        return await self._run(self._ops.take_challenge(challenge_id, now))

    async def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        return await self._run(self._ops.list_passkeys(user_id))

    async def add_passkey(self, passkey: Passkey, max_per_user: int) -> bool:
        return await self._steps(self._ops.add_passkey(passkey, max_per_user))

    async def remove_passkey(self, user_id: str, credential_id: str) -> bool:
        return await self._steps(self._ops.remove_passkey(user_id, credential_id))

    async def record_passkey_use(self, passkey: Passkey, expected_count: int) -> bool:
        return await self._run(self._ops.record_passkey_use(passkey, expected_count))

    async def rename_passkey(self, user_id: str, credential_id: str, name: str) -> bool:
        return await self._run(self._ops.rename_passkey(user_id, credential_id, name))


# No command retries, on one server or a cluster: a retry after a lost reply (a timeout,
# a dropped connection) would run a script a second time (a failure counted twice, a
# recovery code spent and then refused). A cluster client still follows MOVED and ASK
# and refreshes its slot map after a failed node (neither is a retry of the command);
# redis-py's cluster default is ten retries on timeouts and connection errors.


def _sync_client(url: str, cluster: bool, timeout: float) -> SyncRedis:
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    retry = redis.retry.Retry(NoBackoff(), 0)
    if cluster:
        client: SyncRedis = redis.cluster.RedisCluster.from_url(url, retry=retry, **options)
        return client
    return redis.Redis.from_url(url, retry=retry, **options)


def _async_client(url: str, cluster: bool, timeout: float) -> AsyncRedis:
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
    if cluster:
        client: AsyncRedis = redis.asyncio.cluster.RedisCluster.from_url(
            url, retry=retry, **options
        )
        return client
    return redis.asyncio.Redis.from_url(url, retry=retry, **options)
