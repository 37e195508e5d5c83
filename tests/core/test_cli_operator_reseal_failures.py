"""``stepup operator reseal`` when a user's stored credential cannot be read, or the
store stops answering mid-run: the first is one line naming the user, the others are
still re-sealed, the summary is printed and the status is 1 (as for a secret the keys
cannot open); the second prints what was done before it, then the store's error, with
status 2. Never a traceback."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.sql import SQLStore
from stepup.cli import main
from stepup.cli.operator import run_operator
from stepup.errors import StoreUnavailableError
from stepup.records import Credential, TotpDevice
from stepup.sealing import SecretBox
from stepup.totp import generate_secret

OLD, NEW = b"o" * 32, b"n" * 32
OLD_BOX = SecretBox({"old": OLD}, "old")
BOTH = SecretBox({"old": OLD, "new": NEW}, "new")
USERS = ("alice", "bob", "carol")


def credential(user_id: str) -> Credential:
    device = TotpDevice(
        device_id=f"{user_id}-d",
        secret=OLD_BOX.seal(generate_secret(), context=f"{user_id}-d"),
        confirmed=True,
    )
    return Credential(
        user_id=user_id, credential_id=f"{user_id}-c", secret="", confirmed=True, devices=(device,)
    )


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEYS", json.dumps({"old": b64(OLD), "new": b64(NEW)}))
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEY_ID", "new")


def test_an_unreadable_credential_is_one_line_and_the_others_are_resealed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: None
) -> None:
    path = tmp_path / "app.sqlite3"
    url = f"sqlite:///{path}"
    with SQLStore(url) as store:
        store.create_schema()
        for user_id in USERS:
            store.put_credential(credential(user_id))
    with sqlite3.connect(path) as db:  # bob's row, damaged outside stepup
        db.execute("UPDATE stepup_credentials SET data = '{not json' WHERE user_id = 'bob'")
    assert main(["operator", "reseal", "--store", url, "--yes"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "resealed: 2 secret(s) under key 'new'; 0 already were; 1 failed"
    assert (
        "  cannot read the stored credential of user 'bob' (JSONDecodeError): not re-sealed\n"
        in err
    )
    assert "Traceback" not in err
    assert "not json" not in err
    with SQLStore(url) as store:
        for user_id in ("alice", "carol"):
            stored = store.get_credential(user_id)
            assert stored is not None
            assert stored.devices[0].secret.startswith("v1:new:")
    # Run again: the others are left alone, bob is still named.
    assert main(["operator", "reseal", "--store", url, "--yes"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "resealed: 0 secret(s) under key 'new'; 2 already were; 1 failed"
    assert "'bob'" in err


class StopsAnswering(MemoryStore):
    """A store that stops answering at ``method`` for ``user_id``, as a database that goes
    away mid-run does."""

    def __init__(self, method: str, user_id: str) -> None:
        super().__init__()
        self.failing = (method, user_id)

    def credential_user_ids(self) -> list[str]:
        return list(USERS)

    def _maybe_fail(self, method: str, user_id: str) -> None:
        if (method, user_id) == self.failing:
            raise StoreUnavailableError(f"store unavailable: {method} failed (OperationalError)")

    def get_credential(self, user_id: str) -> Credential | None:
        self._maybe_fail("get_credential", user_id)
        return super().get_credential(user_id)

    def replace_credential(self, credential: Credential, expected_version: int) -> bool:
        self._maybe_fail("replace_credential", credential.user_id)
        return super().replace_credential(credential, expected_version)


@pytest.mark.parametrize("method", ["get_credential", "replace_credential"])
def test_a_store_that_stops_answering_prints_what_was_done(
    capsys: pytest.CaptureFixture[str], method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEPUP_ENCRYPTION_KEYS", raising=False)
    store = StopsAnswering(method, "bob")
    for user_id in USERS:
        store.put_credential(credential(user_id))
    status = run_operator(["reseal", "--yes"], prog="x", store=store, box=BOTH)
    out, err = capsys.readouterr()
    assert status == 2
    assert out.splitlines()[-1] == (
        "resealed: 1 secret(s) under key 'new'; 0 already were; 0 failed;"
        " stopped after 1 of 3 user(s): run again"
    )
    assert err.startswith("stepup: error: ")
    assert method in err
    assert err.count("\n") == 1  # one line, no traceback
    done: Any = store.get_credential("alice")
    assert done.devices[0].secret.startswith("v1:new:")
    left: Any = MemoryStore.get_credential(store, "carol")
    assert left.devices[0].secret.startswith("v1:old:")
