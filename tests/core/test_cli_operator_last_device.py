"""``stepup operator remove-2fa USER --device ID`` on the user's last authenticator app:
it removes that app and the recovery codes, never the passkeys (plain ``remove-2fa`` is
the reset that takes them), and the prompt and the summary say that the passkeys stay."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import cli_operator_support
from stepup.adapters.storage.sql import SQLStore
from stepup.cli import main
from stepup.events import TwoFactorRemoved
from stepup.policy import Policy
from stepup.reauth import Reauth
from stepup.records import Passkey
from stepup.sealing import SecretBox
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor

LISTENER = "core.cli_operator_support:record"


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[tuple[SQLStore, str]]:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    store = SQLStore(url)
    store.create_schema()
    try:
        yield store, url
    finally:
        store.close()


@pytest.fixture(autouse=True)
def events() -> Iterator[list[Any]]:
    cli_operator_support.EVENTS.clear()
    yield cli_operator_support.EVENTS
    cli_operator_support.EVENTS.clear()


def enrol(store: SQLStore, user_id: str, passkeys: int) -> str:
    clock = SettableClock()
    two_factor = TwoFactor(store, box=SecretBox(), clock=clock)
    enrolment = two_factor.begin_enrolment(user_id, f"{user_id}@example.com")
    assert two_factor.confirm_enrolment(user_id, TOTP(enrolment.secret).at(clock())).ok
    for n in range(passkeys):
        passkey = Passkey(user_id, f"cred-{n}", "data", "Key", created_at=1.0)
        assert store.add_passkey(passkey, 10)
    return enrolment.device_id


def run(capsys: pytest.CaptureFixture[str], argv: list[str], answer: str) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(answer))
        status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(("passkeys", "stay"), [(1, "1 passkey stays"), (2, "2 passkeys stay")])
def test_the_last_device_takes_the_recovery_codes_and_leaves_the_passkeys(
    store_url: tuple[SQLStore, str],
    capsys: pytest.CaptureFixture[str],
    events: list[Any],
    passkeys: int,
    stay: str,
) -> None:
    store, url = store_url
    device_id = enrol(store, "alice", passkeys)
    Reauth(store, Policy.default(environ={})).record(Subject("alice", "s1"), ["pwd"])
    argv = ["operator", "remove-2fa", "alice", "--device", device_id, "--store", url]
    status, out, err = run(capsys, [*argv, "--actor", "support:bob", "--listener", LISTENER], "y\n")
    assert status == 0, err
    assert (
        f"Remove device {device_id!r}, the last authenticator app of user 'alice',"
        f" and with it their recovery codes (their {stay})?"
    ) in err
    assert f"with its last device {device_id!r}" in out
    assert f"recovery codes and grants in every session; their {stay})" in out
    assert sorted(p.credential_id for p in store.list_passkeys("alice")) == [
        f"cred-{n}" for n in range(passkeys)
    ]
    assert store.get_credential("alice") is None
    assert store.get_grant("alice", "s1") is None
    assert [type(e) for e in events] == [TwoFactorRemoved]  # no PasskeyRemoved
    assert events[0].removed_by == "support:bob"
    status, out, _ = run(capsys, ["operator", "totp-devices", "alice", "--store", url], "")
    assert status == 0
    assert out.splitlines()[0].startswith("passkey cred-0 ")


def test_without_passkeys_the_prompt_names_none(
    store_url: tuple[SQLStore, str], capsys: pytest.CaptureFixture[str]
) -> None:
    store, url = store_url
    device_id = enrol(store, "alice", 0)
    argv = ["operator", "remove-2fa", "alice", "--device", device_id, "--store", url]
    status, out, err = run(capsys, argv, "y\n")
    assert status == 0, err
    assert "and with it their recovery codes?" in err
    assert "passkey" not in err + out
    assert store.get_credential("alice") is None
