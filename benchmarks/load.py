"""Enrolled users in bulk, for the benchmarks: what ``TwoFactor`` would have written.

Each user gets a confirmed credential (one TOTP device, its secret sealed with AES-GCM,
ten recovery hashes) and a replay-ledger entry whose last accepted step lies in the
past, as after an earlier sign-in. The device was last used an hour before ``now``, so
a timed verification makes no "last used" write (``TwoFactor.verify`` writes that at
most once per device per day; see docs/totp.md, "Several devices").

Writing 100,000 of them one ``TwoFactor`` call at a time would take minutes, so the
SQL store gets batched ``executemany`` inserts in one transaction and Redis gets
pipelined commands; the records and the Redis commands come from the library itself
(``Credential``, the store's own ops), so the layout is always the store's own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.redis import RedisStore
from stepup.adapters.storage.sql import SQLStore
from stepup.records import Credential, TotpDevice
from stepup.sealing import SecretBox
from stepup.throttle import ThrottlePolicy

__all__ = ["BOX", "Users", "load_memory", "load_redis", "load_sql", "users"]

#: A fixed sealing key: the benchmarks measure the cost of opening, not key handling.
BOX = SecretBox({"bench": bytes(range(32))}, current="bench")
THROTTLE = ThrottlePolicy()
_BATCH = 5_000


@dataclass(frozen=True)
class Users:
    """``count`` enrolled users sharing one TOTP secret (each sealed for its own
    credential), with ``last_step`` as the step of their previous sign-in."""

    ids: tuple[str, ...]
    secret: str
    last_step: int
    now: float

    def credentials(self) -> Iterator[Credential]:
        for index, user_id in enumerate(self.ids):
            credential_id = f"totp:{user_id}"
            hashes = tuple(hashlib.sha256(f"{user_id}:{n}".encode()).hexdigest() for n in range(10))
            created_at = self.now - 86_400 - index
            device = TotpDevice(
                device_id=credential_id,
                secret=BOX.seal(self.secret, context=credential_id),
                confirmed=True,
                created_at=created_at,
                last_used_at=self.now - 3_600,
            )
            yield Credential(
                user_id=user_id,
                credential_id=credential_id,
                secret="",
                confirmed=True,
                created_at=created_at,
                recovery_hashes=hashes,
                devices=(device,),
            )


def users(count: int, secret: str, *, last_step: int, now: float, tag: str = "u") -> Users:
    return Users(tuple(f"{tag}{i:07d}" for i in range(count)), secret, last_step, now)


def _chunks(items: Sequence[Any], size: int = _BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def load_memory(store: MemoryStore, enrolled: Users) -> None:
    for credential in enrolled.credentials():
        store.put_credential(credential)
        store.totp_attempt(credential.credential_id, enrolled.last_step, enrolled.now, THROTTLE)


def load_sql(store: SQLStore, enrolled: Users) -> None:
    """One transaction of batched inserts into the store's own tables."""
    tables = store._tables  # the benchmark reaches in to load fast; the layout is the store's
    credentials, hashes, ledger = [], [], []
    expires = enrolled.now + THROTTLE.forget_after
    for credential in enrolled.credentials():
        data = credential.to_dict()
        digests = data.pop("recovery_hashes")
        credentials.append({"user_id": credential.user_id, "data": json.dumps(data)})
        hashes.extend(
            {"user_id": credential.user_id, "position": i, "digest": digest}
            for i, digest in enumerate(digests)
        )
        ledger.append(
            {
                "key": credential.credential_id,
                "failures": 0,
                "blocked_until": 0.0,
                "last_step": enrolled.last_step,
                "expires_at": expires,
            }
        )
    with store.engine.begin() as conn:
        for table, rows in (
            (tables.credentials, credentials),
            (tables.recovery_hashes, hashes),
            (tables.attempts, ledger),
        ):
            for chunk in _chunks(rows):
                conn.execute(table.insert(), list(chunk))


def load_redis(store: RedisStore, enrolled: Users) -> None:
    """Pipelined, with the very commands the store sends (scripts loaded first)."""
    ops = store._ops  # the store's own command builder: the layout is always the store's
    items = list(enrolled.credentials())
    if not items:
        return
    # One ordinary call of each kind loads its script into the server's cache.
    store.put_credential(items[0])
    store.totp_attempt(items[0].credential_id, enrolled.last_step, enrolled.now, THROTTLE)
    # The rest only: claiming items[0]'s step again would be a replay, a failure that a
    # later success no longer clears.
    for chunk in _chunks(items[1:]):
        pipe = store.client.pipeline(transaction=False)
        for credential in chunk:
            pipe.execute_command(*ops.put_credential(credential).command)
            attempt = ops.totp_attempt(
                credential.credential_id, enrolled.last_step, enrolled.now, THROTTLE
            )
            pipe.execute_command(*attempt.command)
        pipe.execute()
