"""Throwaway Redis servers for the Redis store tests: single nodes and a 3-master cluster.

Every server binds to 127.0.0.1 on a free port, keeps its files in a temp folder,
and is killed by whoever started it. Waiting for a server is bounded polling of an
external process, never a wait on stepup's own (injected) time.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from support import REDIS_URL, need, port_open

STARTUP_TIMEOUT = 10.0
#: For the stores under the contract cases, which test atomicity, not latency: 32
#: concurrent calls on a loaded CI machine can take longer than the 2 s a production
#: client waits before answering "unavailable".
LOADED_MACHINE_TIMEOUT = 30.0


def free_port(*, cluster_bus: bool = False) -> int:
    """A free loopback port; with ``cluster_bus``, one whose bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not cluster_bus:
            return port
        if port + 10000 <= 65535 and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def need_redis_binaries() -> None:
    need(
        shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None,
        "redis-server and redis-cli are not installed (Debian package redis-server)",
    )


def need_shared_redis() -> None:
    """The machine's Redis at ``support.REDIS_URL`` (127.0.0.1:6379 unless overridden)."""
    pool = redis.ConnectionPool.from_url(REDIS_URL)
    kwargs = pool.connection_kwargs
    pool.disconnect()
    need(
        port_open(str(kwargs.get("host", "127.0.0.1")), int(kwargs.get("port", 6379))),
        "no Redis server at STEPUP_TEST_REDIS / 127.0.0.1:6379",
    )


def unique_prefix() -> str:
    """A key prefix no other run uses, so runs can share one Redis and clean up."""
    return f"stepup-test-{uuid.uuid4().hex[:12]}:"


def open_sockets() -> int:
    """How many sockets this process has open (those of its file descriptors), for the
    tests that no connection outlives what it served; Linux only (``/proc``)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # the listing's own descriptor, closed by now
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def assert_loops_left_behind_nothing(
    store: Any, use: Callable[[int], Awaitable[None]], runs: int, held_sockets: int | None
) -> None:
    """Use an async store on ``runs`` event loops one after another (an ``asyncio.run``
    each; ``use`` gets the run's number), then on one more that closes it: each earlier
    loop is collectable once the next has used the store, the last is held until
    ``aclose``, no socket outlives its loop, and no ResourceWarning is raised.
    ``held_sockets``: how many sockets the last loop's client holds meanwhile (``None``:
    not counted, e.g. one per cluster node)."""
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def run(close: bool) -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await use(len(loops))
        if close:
            await store.aclose()

    gc.collect()
    before = open_sockets()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(runs):
            asyncio.run(run(close=False))
        gc.collect()
        # Only the last loop is still held, until another loop uses the store.
        assert [ref() is not None for ref in loops] == [False] * (runs - 1) + [True]
        if held_sockets is not None:
            assert open_sockets() == before + held_sockets
        asyncio.run(run(close=True))
        gc.collect()
    assert [ref() for ref in loops] == [None] * (runs + 1)
    assert open_sockets() == before
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix`` (works on one node; call it per cluster node)."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        for key in keys[start : start + 500]:
            client.delete(key)  # one key per call: keys of a cluster node span slots
    return len(keys)


def _wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``; restartable on the same port."""

    def __init__(self, directory: Path, port: int | None = None, *extra: str) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
                "--protected-mode", "yes",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_until(self._answers, f"redis-server on port {self.port}")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited early")
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """A crash: SIGKILL, no chance to save anything it had not already written."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STARTUP_TIMEOUT)
        self.process = None


@contextmanager
def redis_server(directory: Path, *extra: str) -> Iterator[RedisServer]:
    need_redis_binaries()
    server = RedisServer(directory, None, *extra).start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def redis_cluster(directory: Path, masters: int = 3, *extra: str) -> Iterator[list[RedisServer]]:
    """``masters`` cluster-enabled servers joined by ``redis-cli --cluster create``; each
    node also gets the ``extra`` server options."""
    need_redis_binaries()
    nodes: list[RedisServer] = []
    try:
        for index in range(masters):
            port = free_port(cluster_bus=True)
            config = directory / f"nodes-{port}.conf"
            node = RedisServer(
                directory / f"node{index}",
                port,
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(config),
                "--cluster-node-timeout", "5000",
                *extra,
            )  # fmt: skip
            nodes.append(node.start())
        subprocess.run(
            [
                "redis-cli", "--cluster", "create",
                *(f"127.0.0.1:{node.port}" for node in nodes),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        for node in nodes:
            _wait_until(
                lambda node=node: _cluster_ok(node.port), f"cluster_state:ok on {node.port}"
            )
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def _cluster_ok(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as client:
        info = client.execute_command("CLUSTER", "INFO")
    if isinstance(info, dict):
        return info.get("cluster_state") == "ok"
    return "cluster_state:ok" in str(info)


def debug_command() -> tuple[str, ...]:
    """The server option that lets loopback clients send ``DEBUG`` (Redis 7 refuses it by
    default; earlier versions allow it and do not know the option)."""
    version = subprocess.run(
        ["redis-server", "--version"], check=True, capture_output=True, text=True, timeout=10
    ).stdout
    major = version.partition(" v=")[2].partition(".")[0]
    return ("--enable-debug-command", "local") if major.isdigit() and int(major) >= 7 else ()


def stall(port: int, seconds: int) -> threading.Thread:
    """Stall the server on ``port`` (``DEBUG SLEEP``, from a thread) and return once it
    has stopped answering: commands sent now wait, then run in order when it wakes.
    Join the thread to wait for the end of the stall."""

    def sleep() -> None:
        with redis.Redis(port=port, socket_timeout=seconds + STARTUP_TIMEOUT) as client:
            client.execute_command("DEBUG", "SLEEP", str(seconds))

    thread = threading.Thread(target=sleep)
    thread.start()
    # No retries: redis-py's default ones would wait out the stall and answer after all.
    with redis.Redis(port=port, socket_timeout=0.05, retry=Retry(NoBackoff(), 0)) as probe:
        _wait_until(lambda: not _answers_now(probe), f"redis-server on port {port} to stall")
    return thread


def _answers_now(client: redis.Redis) -> bool:
    try:
        client.ping()
    except redis.TimeoutError:
        return False
    return True
