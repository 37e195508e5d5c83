"""Recovery codes of both kinds through the real stores (SQLite, PostgreSQL, Redis): the
``v2:`` digests round-trip, codes issued before are consumed once, and the operator's
queries from docs/totp.md find exactly the users who still hold the old kind."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import text

from stepup.adapters.storage.redis import RedisStore
from stepup.adapters.storage.sql import SQLStore
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor
from stepup.verifier import VerifyReason
from store_kinds import PERSISTENT_KINDS, open_store
from support import REDIS_URL

OLD_CODES = ("abcde-fghij", "k2l3m-4n5o6")
OLD_DIGESTS = tuple(hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in OLD_CODES)
#: As printed in docs/totp.md, for the default table prefix.
FIND_SQL = "SELECT DISTINCT user_id FROM stepup_recovery_hashes WHERE digest NOT LIKE 'v2:%'"


@pytest.fixture(params=PERSISTENT_KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, str]]:
    """A store and its key or table prefix."""
    with open_store(request.param, tmp_path) as store:
        yield store, store.keys.prefix if isinstance(store, RedisStore) else store.prefix


def users_with_old_codes(store: Any, prefix: str) -> set[str]:
    """What an operator runs (docs/totp.md), against this store."""
    if isinstance(store, SQLStore):
        query = FIND_SQL.replace("stepup_", prefix)
        with store.engine.connect() as conn:
            return {row[0] for row in conn.execute(text(query))}
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as client:
        found = set()
        for key in client.scan_iter(match=f"{prefix}cred:*"):
            fields = client.hkeys(key)
            if any(f.startswith("r:") and not f.startswith("r:v2:") for f in fields):
                found.add(key)
        return found


def test_both_kinds_of_code_through_a_real_store(backend: tuple[Any, str]) -> None:
    store, prefix = backend
    clock = SettableClock(1_699_999_980)
    tf = TwoFactor(store, clock=clock, box=SecretBox({"k": bytes(32)}, current="k"))
    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    new = tf.confirm_enrolment("alice", TOTP(enrolment.secret).at(clock())).recovery_codes
    clock.advance(30)
    credential = store.get_credential("alice")
    assert credential is not None
    assert len(credential.recovery_hashes) == 10
    assert all(d.startswith("v2:") and len(d) == 67 for d in credential.recovery_hashes)
    assert users_with_old_codes(store, prefix) == set()

    # The store as a release before 120-bit codes left it: two old digests beside the new.
    store.put_credential(
        replace(credential, recovery_hashes=OLD_DIGESTS + credential.recovery_hashes)
    )
    assert tf.legacy_recovery_codes("alice") == 2
    assert len(users_with_old_codes(store, prefix)) == 1
    assert tf.use_recovery_code("alice", "ABCDE FGHIJ").ok
    assert tf.use_recovery_code("alice", OLD_CODES[0]).reason is VerifyReason.INVALID
    assert tf.use_recovery_code("alice", new[0].upper()).ok
    assert tf.use_recovery_code("alice", new[0]).reason is VerifyReason.INVALID
    assert tf.legacy_recovery_codes("alice") == 1

    fresh = tf.regenerate_recovery_codes("alice")
    assert tf.legacy_recovery_codes("alice") == 0
    assert users_with_old_codes(store, prefix) == set()
    assert tf.use_recovery_code("alice", OLD_CODES[1]).reason is VerifyReason.INVALID
    assert tf.use_recovery_code("alice", fresh[9]).ok
