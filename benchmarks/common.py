"""What the benchmark modules share: iteration counts, where Redis is, and clean-up.

Redis benchmarks use their own database and a key prefix unique to the process, and
delete exactly their own keys afterwards, so they never touch what tests or apps keep.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "REDIS_URL",
    "Scale",
    "on_cpu",
    "redis_prefix",
    "redis_reachable",
    "scale",
    "wall",
]

#: Override with ``STEPUP_BENCH_REDIS``. Database 14: away from the tests' database 0.
REDIS_URL = os.environ.get("STEPUP_BENCH_REDIS", "redis://127.0.0.1:6379/14")

#: Wall-clock nanoseconds: for anything that waits on a server, a disk or the event loop
#: (a CPU-time clock would leave the waiting out and flatter the side that waits).
wall = time.perf_counter_ns


def on_cpu(pid: int | str) -> dict[str, int]:
    """Nanoseconds on a CPU so far of each thread of process ``pid``, by thread id, from
    ``/proc/<pid>/task/<tid>/schedstat``: exact, where the ``utime``/``stime`` of
    ``/proc/<pid>/stat`` count whole clock ticks, which a server that runs in bursts of
    tens of microseconds is charged for only by chance. Empty without procfs or once
    the process is gone; a thread that ends while being read is left out."""
    found: dict[str, int] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found[task.name] = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return found


@dataclass(frozen=True)
class Scale:
    rounds: int
    inner: int
    warmup: int

    @property
    def calls(self) -> int:
        """Calls of each side over the whole comparison (warm-up included)."""
        return (self.rounds + self.warmup) * self.inner


def scale(quick: bool, rounds: int, inner: int, warmup: int = 3) -> Scale:
    """The full counts, or a tiny run that only proves the benchmark still works."""
    if quick:
        return Scale(rounds=2, inner=max(1, min(inner, 5)), warmup=1)
    return Scale(rounds, inner, warmup)


def redis_reachable(url: str = REDIS_URL) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextmanager
def redis_prefix(url: str = REDIS_URL) -> Iterator[str]:
    """A key prefix no one else uses; its keys are deleted on the way out."""
    import redis

    prefix = f"stepup-bench:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)
        finally:
            client.close()
