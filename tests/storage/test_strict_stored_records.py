"""Stored records are read strictly: only a JSON ``true`` is true, a whole number is an
int, a time a finite number. ``bool("false")`` read a hand-edited or corrupt
``"confirmed": "false"`` as a confirmed credential (two-factor on, a pending secret
accepted); ``int(True)`` a one-digit code; a NaN sign count or expiry compares false
with everything, so no clone is detected and no challenge expires. A corrupt record is
refused as the stores refuse data they cannot decode: unavailable, never a guess."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select, update

from stepup.errors import StoreUnavailableError
from stepup.records import Challenge, Credential, Passkey, TotpDevice
from stepup.testing import SettableClock
from stepup.twofactor import TwoFactor
from store_kinds import PERSISTENT_KINDS, open_store

T0 = 1_700_000_000.0
DEVICE = TotpDevice("dev-1", "plain:JBSWY3DPEHPK3PXP", confirmed=True, created_at=T0).to_dict()
CREDENTIAL = Credential("alice", "dev-1", "", confirmed=True, created_at=T0).to_dict()
PASSKEY = Passkey("alice", "cred-1", "key", "Laptop", created_at=T0).to_dict()
CHALLENGE = Challenge("c", "alice", "s1", issued_at=T0, expires_at=T0 + 60).to_dict()

NOT_BOOLEANS = ["false", "true", "", 0, 1, None, [], {}]
NOT_WHOLE = [True, False, 6.0, "6", None, math.nan]
NOT_TIMES = [math.nan, math.inf, -math.inf, "1700000000", True, [], {}]


def test_the_records_the_stores_write_read_back() -> None:
    assert TotpDevice.from_dict(DEVICE).to_dict() == DEVICE
    assert Credential.from_dict(dict(CREDENTIAL)).to_dict() == CREDENTIAL
    assert Passkey.from_dict(PASSKEY).to_dict() == PASSKEY
    assert Challenge.from_dict(dict(CHALLENGE)).to_dict() == CHALLENGE
    # Absent fields keep their defaults; a whole number of seconds is a time.
    legacy = TotpDevice.from_dict({"device_id": "d", "secret": "s", "created_at": 1})
    assert (legacy.confirmed, legacy.digits, legacy.created_at) == (False, 6, 1.0)


@pytest.mark.parametrize("value", NOT_BOOLEANS)
@pytest.mark.parametrize("key", ["confirmed"])
def test_only_a_json_true_confirms_a_device_or_a_credential(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=key):
        TotpDevice.from_dict({**DEVICE, key: value})
    with pytest.raises(ValueError, match=key):
        Credential.from_dict({**CREDENTIAL, key: value})


@pytest.mark.parametrize("value", NOT_WHOLE)
@pytest.mark.parametrize("key", ["digits", "period"])
def test_digits_and_period_are_whole_numbers(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=key):
        TotpDevice.from_dict({**DEVICE, key: value})
    with pytest.raises(ValueError, match=key):
        Credential.from_dict({**CREDENTIAL, key: value})


@pytest.mark.parametrize("value", NOT_TIMES)
def test_times_are_finite_numbers(value: Any) -> None:
    for key in ("created_at", "last_used_at"):
        with pytest.raises(ValueError, match=key):
            TotpDevice.from_dict({**DEVICE, key: value})
        with pytest.raises(ValueError, match=key):
            Passkey.from_dict({**PASSKEY, key: value})
    with pytest.raises(ValueError, match="created_at"):
        Credential.from_dict({**CREDENTIAL, "created_at": value})
    for key in ("issued_at", "expires_at"):
        with pytest.raises(ValueError, match=key):
            Challenge.from_dict({**CHALLENGE, key: value})


@pytest.mark.parametrize("value", NOT_BOOLEANS)
@pytest.mark.parametrize("key", ["user_verified", "backup_eligible", "backup_state"])
def test_a_passkey_claims_only_what_a_json_true_says(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=key):
        Passkey.from_dict({**PASSKEY, key: value})


@pytest.mark.parametrize("value", NOT_WHOLE)
def test_a_passkey_sign_count_is_a_whole_number(value: Any) -> None:
    with pytest.raises(ValueError, match="sign_count"):
        Passkey.from_dict({**PASSKEY, "sign_count": value})


def test_the_version_is_a_whole_number() -> None:
    with pytest.raises(ValueError, match="version"):
        Credential.from_dict({**CREDENTIAL, "version": 1.5})


# through a store --------------------------------------------------------------------


@pytest.fixture(params=PERSISTENT_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as opened:
        yield opened


def _edit_stored_credential(store: Any, user_id: str, **changes: Any) -> None:
    """Change the credential's stored JSON by hand, as a corrupt or edited record."""
    if hasattr(store, "engine"):
        table = store._tables.credentials
        mine = table.c.user_id == user_id
        with store.engine.begin() as conn:
            stored = conn.execute(select(table.c.data).where(mine)).scalar_one()
            data = json.dumps({**json.loads(stored), **changes})
            conn.execute(update(table).where(mine).values(data=data))
        return
    key = store.keys.credential(user_id)
    client: redis.Redis = store.client
    data = json.dumps({**json.loads(client.hget(key, "record")), **changes})
    client.hset(key, "record", data)


@pytest.mark.parametrize("value", ["false", 1])
def test_a_corrupt_confirmed_flag_is_not_two_factor_on(store: Any, value: Any) -> None:
    """An enrolment begun and never confirmed, its flag edited to ``"false"``: it read
    as confirmed (two-factor on, the pending secret's codes accepted); now the record is
    refused and the answer is unavailable (fail closed)."""
    tf = TwoFactor(store, clock=SettableClock(T0), issuer="Acme")
    tf.begin_enrolment("alice", "alice@example.com")
    assert not tf.is_enrolled("alice")
    _edit_stored_credential(store, "alice", confirmed=value)
    with pytest.raises(StoreUnavailableError):
        tf.is_enrolled("alice")
