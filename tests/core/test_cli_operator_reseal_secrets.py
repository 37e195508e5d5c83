"""``stepup operator reseal`` counts secrets, as it says: a user with two authenticator
apps under the old key is two secrets resealed, and the ones already under the current
key are counted one by one too."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from stepup.adapters.storage.sql import SQLStore
from stepup.cli import main
from stepup.records import Credential, TotpDevice
from stepup.sealing import SecretBox

OLD, NEW = b"o" * 32, b"n" * 32


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


def _put(store: SQLStore, user: str, boxes: list[SecretBox]) -> None:
    devices = tuple(
        TotpDevice(
            device_id=f"{user}-d{i}",
            secret=box.seal("JBSWY3DPEHPK3PXP", context=f"{user}-d{i}"),
            confirmed=True,
        )
        for i, box in enumerate(boxes)
    )
    store.put_credential(
        Credential(
            user_id=user, credential_id=f"{user}-c", secret="", confirmed=True, devices=devices
        )
    )


def test_two_devices_are_two_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = SecretBox({"old": OLD}, "old"), SecretBox({"new": NEW}, "new")
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    with SQLStore(url) as store:
        store.create_schema()
        _put(store, "dave", [old, old])  # two apps, both under the old key
        _put(store, "erin", [old, new])  # one of each
        _put(store, "fred", [new])
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEYS", json.dumps({"old": _b64(OLD), "new": _b64(NEW)}))
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEY_ID", "new")
    assert main(["operator", "reseal", "--store", url, "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "resealed: 3 secret(s) under key 'new'; 2 already were; 0 failed"
    assert main(["operator", "reseal", "--store", url, "--yes"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "resealed: 0 secret(s) under key 'new'; 5 already were; 0 failed"


def test_a_user_whose_secrets_cannot_be_opened_counts_them_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = SecretBox({"old": OLD}, "old"), SecretBox({"new": NEW}, "new")
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    with SQLStore(url) as store:
        store.create_schema()
        _put(store, "dave", [old, old, new])
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEYS", json.dumps({"new": _b64(NEW)}))
    monkeypatch.delenv("STEPUP_ENCRYPTION_KEY_ID", raising=False)
    assert main(["operator", "reseal", "--store", url, "--yes"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "resealed: 0 secret(s) under key 'new'; 1 already were; 2 failed"
