"""``stepup operator``: support tasks against real SQLite, PostgreSQL and Redis stores.

Each test gets its own table or key prefix, so runs and other tests never see each
other's data. Events are checked through ``--listener`` and the printed ``event:``
lines: the commands go through the same core objects as the web path.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from core import cli_operator_support
from stepup.adapters.storage.base import Store
from stepup.cli import main
from stepup.events import (
    PasskeyRemoved,
    TenantFlagChanged,
    TwoFactorDeviceRemoved,
    TwoFactorRemoved,
)
from stepup.policy import Policy
from stepup.reauth import Reauth
from stepup.records import Passkey, Tenant
from stepup.sealing import SecretBox
from stepup.subject import Subject
from stepup.tenants import TenantSettings
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor
from support import POSTGRES_URL, REDIS_URL, need, port_open

LISTENER = "core.cli_operator_support:record"
OLD_KEY, NEW_KEY = b"o" * 32, b"n" * 32


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


class Target:
    """A store for one test, and the arguments that reach it from the command line."""

    def __init__(self, store: Store, url: str, prefix: str) -> None:
        self.store = store
        self.url = url
        self.prefix = prefix

    def args(self) -> list[str]:
        return ["--store", self.url, "--prefix", self.prefix]


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+psycopg", ""))
    return port_open(parts.hostname or "127.0.0.1", parts.port or default_port)


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    prefix = f"op{uuid.uuid4().hex[:10]}_"
    if request.param == "redis":
        need(_reachable(REDIS_URL, 6379), f"Redis at {REDIS_URL}")
        from stepup.adapters.storage.redis import RedisStore

        redis_store = RedisStore(REDIS_URL, prefix=prefix)
        try:
            yield Target(redis_store, REDIS_URL, prefix)
        finally:
            for key in redis_store.client.scan_iter(match=f"{prefix}*"):
                redis_store.client.delete(key)
            redis_store.close()
        return
    from stepup.adapters.storage.sql import SQLStore

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    else:
        need(_reachable(POSTGRES_URL, 5432), f"PostgreSQL at {POSTGRES_URL}")
        url = POSTGRES_URL
    sql_store = SQLStore(url, prefix=prefix)
    sql_store.create_schema()
    try:
        yield Target(sql_store, url, prefix)
    finally:
        sql_store.drop_schema()
        sql_store.close()


@pytest.fixture(autouse=True)
def events() -> Iterator[list[Any]]:
    cli_operator_support.EVENTS.clear()
    yield cli_operator_support.EVENTS
    cli_operator_support.EVENTS.clear()


def enrol(store: Store, user_id: str, box: SecretBox) -> str:
    clock = SettableClock()
    two_factor = TwoFactor(store, box=box, clock=clock)
    enrolment = two_factor.begin_enrolment(user_id, f"{user_id}@example.com")
    assert two_factor.confirm_enrolment(user_id, TOTP(enrolment.secret).at(clock())).ok
    return enrolment.secret


def grant(store: Store, user_id: str, session_id: str) -> None:
    Reauth(store, Policy.default(environ={})).record(Subject(user_id, session_id), ["pwd"])


def run(
    capsys: pytest.CaptureFixture[str], argv: list[str], answer: str | None = None
) -> tuple[int, str, str]:
    if answer is not None:
        stdin = io.StringIO(answer)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stdin", stdin)
            status = main(argv)
    else:
        status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


# remove-2fa ---------------------------------------------------------------------------


def test_totp_devices_lists_and_remove_2fa_device_removes_one(
    target: Target, capsys: pytest.CaptureFixture[str], events: list[Any]
) -> None:
    box = SecretBox({"k": OLD_KEY}, "k")
    clock = SettableClock(1_764_720_000)  # 2025-12-03T00:00:00Z
    two_factor = TwoFactor(target.store, box=box, clock=clock)
    first = two_factor.begin_enrolment("alice", "alice@example.com", name="Phone")
    assert two_factor.confirm_enrolment("alice", TOTP(first.secret).at(clock())).ok
    clock.advance(86_400 + 30)
    added = two_factor.begin_device("alice", "alice@example.com", name='Tab "\u00e9"')
    assert two_factor.confirm_device("alice", TOTP(added.secret).at(clock())).ok
    clock.advance(30)
    assert two_factor.verify("alice", TOTP(added.secret).at(clock())).ok
    status, out, err = run(capsys, ["operator", "totp-devices", "alice", *target.args()])
    assert status == 0, err
    assert out.splitlines() == [
        f'{first.device_id}  added 2025-12-03  last used never  "Phone"',
        f'{added.device_id}  added 2025-12-04  last used 2025-12-04  "Tab \\"\\u00e9\\""',
    ]
    assert first.secret not in out
    assert added.secret not in out
    grant(target.store, "alice", "s1")
    argv = ["operator", "remove-2fa", "alice", "--device", first.device_id, *target.args()]
    status, out, err = run(capsys, [*argv, "--actor", "support:bob", "--listener", LISTENER], "y\n")
    assert status == 0, err
    assert f"Remove device {first.device_id!r} of user 'alice'?" in err
    assert f"removed: device {first.device_id!r} of user 'alice'" in out
    assert [type(e) for e in events] == [TwoFactorDeviceRemoved]
    assert target.store.get_grant("alice", "s1") is None
    assert [d.device_id for d in two_factor.devices("alice")] == [added.device_id]
    unknown = ["operator", "remove-2fa", "alice", "--device", "totp:nope", "--yes"]
    status, _, err = run(capsys, [*unknown, *target.args()])
    assert status == 1
    assert "has no device 'totp:nope'" in err
    argv = ["operator", "remove-2fa", "alice", "--device", added.device_id, "--yes"]
    status, out, err = run(capsys, [*argv, *target.args()])
    assert status == 0, err
    assert "with its last device" in out
    assert target.store.get_credential("alice") is None
    status, _, err = run(capsys, ["operator", "totp-devices", "alice", *target.args()])
    assert status == 1
    assert "has no two-factor authentication" in err


def test_remove_2fa_removes_revokes_and_emits_the_web_paths_event(
    target: Target, capsys: pytest.CaptureFixture[str], events: list[Any]
) -> None:
    box = SecretBox({"k": OLD_KEY}, "k")
    enrol(target.store, "alice", box)
    grant(target.store, "alice", "s1")
    argv = ["operator", "remove-2fa", "alice", *target.args(), "--actor", "support:bob"]
    status, out, err = run(capsys, [*argv, "--listener", LISTENER], answer="y\n")
    assert status == 0, err
    assert "Remove two-factor authentication of user 'alice'" in err
    assert "removed: two-factor authentication of user 'alice'" in out
    assert "event: TwoFactorRemoved(user_id='alice', removed_by='support:bob')" in out
    assert [type(e) for e in events] == [TwoFactorRemoved]
    assert events[0].removed_by == "support:bob"
    assert target.store.get_credential("alice") is None
    assert target.store.get_grant("alice", "s1") is None


def passkey(user_id: str, credential_id: str) -> Passkey:
    return Passkey(user_id, credential_id, "data", "Laptop", created_at=1_700_000_000.0)


def test_remove_2fa_removes_the_passkeys_too(
    target: Target, capsys: pytest.CaptureFixture[str], events: list[Any]
) -> None:
    """A passkey asks for itself at sign-in as a second factor: the reset for a user who
    lost their devices removes it with the rest, and says so. A user whose only second
    factor is a passkey is listed and reset too (it was "no two-factor authentication")."""
    enrol(target.store, "alice", SecretBox())
    assert target.store.add_passkey(passkey("alice", "cred-a"), 10)
    assert target.store.add_passkey(passkey("carol", "cred-c"), 10)
    status, out, _ = run(capsys, ["operator", "totp-devices", "carol", *target.args()])
    assert status == 0
    assert "passkey cred-c" in out
    for user, kept in (
        ("alice", "authenticator apps and recovery codes, 1 passkey"),
        ("carol", "1 passkey"),
    ):
        argv = ["operator", "remove-2fa", user, *target.args(), "--yes"]
        status, out, err = run(capsys, [*argv, "--listener", LISTENER])
        assert status == 0, err
        assert kept in out
        assert target.store.list_passkeys(user) == ()
    assert target.store.get_credential("alice") is None
    removed = [e for e in events if isinstance(e, PasskeyRemoved)]
    assert sorted(e.credential_id for e in removed) == ["cred-a", "cred-c"]
    assert run(capsys, ["operator", "remove-2fa", "carol", *target.args(), "--yes"])[0] == 1


def test_remove_2fa_resets_passkeys_whatever_the_actor_is_called(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's reset is explicit: an --actor that reads like the user's own id (a
    free-text audit label) left the passkeys, or refused a passkey-only user."""
    assert target.store.add_passkey(passkey("carol", "cred-c"), 10)
    argv = ["operator", "remove-2fa", "carol", *target.args(), "--yes", "--actor", "carol"]
    status, out, err = run(capsys, argv)
    assert status == 0, err
    assert "1 passkey" in out
    assert target.store.list_passkeys("carol") == ()


def test_remove_2fa_not_confirmed_changes_nothing(
    target: Target, capsys: pytest.CaptureFixture[str], events: list[Any]
) -> None:
    enrol(target.store, "alice", SecretBox())
    for answer in ("n\n", "\n", ""):
        status, out, err = run(
            capsys, ["operator", "remove-2fa", "alice", *target.args()], answer=answer
        )
        assert status == 1
        assert "nothing changed" in err
        assert out == ""
    assert target.store.get_credential("alice") is not None
    assert events == []


def test_remove_2fa_of_an_unknown_user_refuses_in_one_line(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, ["operator", "remove-2fa", "ghost", *target.args(), "--yes"])
    assert status == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "user 'ghost' has no two-factor authentication" in err


@pytest.mark.parametrize("command", ["remove-2fa", "totp-devices", "revoke-grants"])
def test_a_malformed_user_id_is_named_in_one_line_and_changes_nothing(
    target: Target, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """A NUL or control character in the id: on PostgreSQL this was the store's failure
    ("unavailable"); it is the operator's input, named as such."""
    enrol(target.store, "alice", SecretBox({"k1": OLD_KEY}, current="k1"))
    grant(target.store, "alice", "s1")
    yes = [] if command == "totp-devices" else ["--yes"]
    argv = ["operator", command, "ali\x00ce", *target.args(), *yes]
    status, out, err = run(capsys, argv)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert "user_id must be non-empty text" in err
    assert TwoFactor(target.store).is_enrolled("alice")
    assert target.store.get_grant("alice", "s1") is not None


def test_the_apps_operator_command_answers_a_typed_error_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``manage.py stepup_operator`` runs the commands on the app's store: a typed error
    is the same one line and status as ``stepup operator``'s, not a traceback."""
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.cli.operator import run_operator

    status = run_operator(["revoke-grants", "a\x01b", "--yes"], prog="x", store=MemoryStore())
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.startswith("stepup: error: user_id must be")
    assert err.count("\n") == 1


# revoke-grants ------------------------------------------------------------------------


def test_revoke_grants_in_every_session(target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    grant(target.store, "alice", "s1")
    grant(target.store, "alice", "s2")
    grant(target.store, "bob", "s3")
    argv = ["operator", "revoke-grants", "alice", *target.args(), "--yes", "--actor", "ops:eve"]
    status, out, _ = run(capsys, argv)
    assert status == 0
    assert out == (
        "event: GrantsRevoked(user_id='alice', session_id=None, count=2, reason='operator',"
        " revoked_by='ops:eve')\nrevoked: 2 grant(s) of user 'alice'\n"
    )
    assert target.store.get_grant("alice", "s1") is None
    assert target.store.get_grant("alice", "s2") is None
    assert target.store.get_grant("bob", "s3") is not None
    status, _, err = run(capsys, ["operator", "revoke-grants", "alice", *target.args(), "--yes"])
    assert status == 1
    assert "user 'alice' has no grants" in err


# reseal -------------------------------------------------------------------------------


def test_reseal_moves_every_secret_to_the_newest_key(
    target: Target, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = SecretBox({"2025": OLD_KEY}, "2025")
    secrets = {user: enrol(target.store, user, old) for user in ("alice", "b{o}b%", "carol")}
    monkeypatch.setenv(
        "STEPUP_ENCRYPTION_KEYS", json.dumps({"2025": b64(OLD_KEY), "2026": b64(NEW_KEY)})
    )
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEY_ID", "2026")
    status, out, err = run(capsys, ["operator", "reseal", *target.args()], answer="yes\n")
    assert status == 0, err
    assert "Re-seal the TOTP secrets of 3 user(s) under key '2026'?" in err
    assert out == "resealed: 3 secret(s) under key '2026'; 0 already were; 0 failed\n"
    new_only = SecretBox({"2026": NEW_KEY}, "2026")
    for user, secret in secrets.items():
        credential = target.store.get_credential(user)
        assert credential is not None
        (device,) = credential.totp_devices
        assert device.secret.startswith("v1:2026:")
        assert new_only.open(device.secret, context=device.device_id) == secret
    status, out, _ = run(capsys, ["operator", "reseal", *target.args(), "--yes"])
    assert status == 0
    assert out == "resealed: 0 secret(s) under key '2026'; 3 already were; 0 failed\n"


def test_reseal_without_the_old_key_reports_each_user_and_fails(
    target: Target, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    enrol(target.store, "alice", SecretBox({"2025": OLD_KEY}, "2025"))
    enrol(target.store, "bob", SecretBox({"2026": NEW_KEY}, "2026"))
    monkeypatch.setenv("STEPUP_ENCRYPTION_KEYS", json.dumps({"2026": b64(NEW_KEY)}))
    monkeypatch.delenv("STEPUP_ENCRYPTION_KEY_ID", raising=False)
    status, out, err = run(capsys, ["operator", "reseal", *target.args(), "--yes"])
    assert status == 1
    assert "cannot re-seal user 'alice'" in err
    assert out == "resealed: 0 secret(s) under key '2026'; 1 already were; 1 failed\n"
    assert b64(NEW_KEY) not in out + err


@pytest.mark.parametrize(
    ("keys", "key_id", "words"),
    [
        (None, None, "no sealing keys"),
        ("not json", None, "is not JSON"),
        ('{"k": "c2hvcnQ="}', None, "32 bytes"),
        (json.dumps({"a": b64(OLD_KEY), "b": b64(NEW_KEY)}), None, "name the current one"),
    ],
)
def test_reseal_refuses_bad_keys_before_touching_the_store(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    keys: str | None,
    key_id: str | None,
    words: str,
) -> None:
    for name, value in (("STEPUP_ENCRYPTION_KEYS", keys), ("STEPUP_ENCRYPTION_KEY_ID", key_id)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    status, out, err = run(capsys, ["operator", "reseal", "--store", "sqlite:///nowhere.db"])
    assert status == 2
    assert words in err
    assert out == ""


def test_reseal_takes_the_apps_own_box(
    target: Target, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    enrol(target.store, "alice", SecretBox({"2025": OLD_KEY}, "2025"))
    monkeypatch.setattr(
        cli_operator_support,
        "make_box",
        lambda: SecretBox({"2025": OLD_KEY, "2026": NEW_KEY}, "2026"),
        raising=False,
    )
    argv = [
        "operator",
        "reseal",
        *target.args(),
        "--yes",
        "--box",
        "core.cli_operator_support:make_box",
    ]
    status, out, err = run(capsys, argv)
    assert status == 0, err
    assert "resealed: 1 secret(s) under key '2026'" in out


# tenant -------------------------------------------------------------------------------


def test_tenant_show_and_set_flag(
    target: Target, capsys: pytest.CaptureFixture[str], events: list[Any]
) -> None:
    TenantSettings(target.store).ensure("acme", {"name": "Acme"})
    status, out, _ = run(capsys, ["operator", "tenant", "show", "acme", *target.args()])
    assert status == 0
    shown = json.loads(out)
    assert shown["data"]["id"] == "acme"
    assert shown["data"]["attributes"]["feature_flags"] == {"sensitive_actions_reauth": False}

    argv = ["operator", "tenant", "set-flag", "acme", "on", *target.args(), "--listener", LISTENER]
    status, out, err = run(capsys, [*argv, "--actor", "support:bob"], answer="y\n")
    assert status == 0, err
    assert "changed: sensitive_actions_reauth of tenant 'acme': off -> on" in out
    assert events == [
        TenantFlagChanged(
            at=events[0].at,
            actor_id="support:bob",
            tenant_id="acme",
            flag="sensitive_actions_reauth",
            old=False,
            new=True,
        )
    ]
    tenant = target.store.get_tenant("acme")
    assert tenant == Tenant(
        "acme", {"name": "Acme", "feature_flags": {"sensitive_actions_reauth": True}}
    )
    status, out, _ = run(capsys, [*argv, "--yes"])
    assert status == 0
    assert "already on" in out
    assert len(events) == 1


def test_unknown_tenant_refuses(target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["show", "nope"], ["set-flag", "nope", "on", "--yes"]):
        status, out, err = run(capsys, ["operator", "tenant", *argv, *target.args()])
        assert status == 1
        assert out == ""
        assert "no tenant 'nope'" in err


# stores that cannot be used -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "no store given"),
        ("mysql://db/app", "unsupported store URL scheme 'mysql'"),
        ("/var/lib/app.db", "not a store URL"),
        ("sqlite://relative.db", "sqlite:///relative.db"),
        ("redis://127.0.0.1:1/0", "cannot reach Redis at redis://127.0.0.1:1/0"),
        (
            "postgresql://postgres:s3cret@127.0.0.1:1/app",
            "at postgresql://postgres@127.0.0.1:1/app",
        ),
    ],
)
def test_a_bad_store_url_is_one_line_with_status_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str, words: str
) -> None:
    monkeypatch.delenv("STEPUP_STORE", raising=False)
    status, out, err = run(capsys, ["operator", "remove-2fa", "alice", "--store", url, "--yes"])
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert words in err
    assert "s3cret" not in err


def test_sqlite_files_are_never_created_and_odd_paths_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.sqlite3"
    status, _, err = run(
        capsys, ["operator", "tenant", "show", "acme", "--store", f"sqlite:///{missing}"]
    )
    assert status == 2
    assert "no such file" in err
    assert not missing.exists()
    status, _, err = run(
        capsys, ["operator", "tenant", "show", "acme", "--store", f"sqlite:///{tmp_path}"]
    )
    assert (status, "is a directory" in err) == (2, True)
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    status, _, err = run(
        capsys, ["operator", "tenant", "show", "acme", "--store", f"sqlite:///{other}"]
    )
    assert (status, "is not a SQLite database" in err) == (2, True)


def test_a_database_without_stepups_tables_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    path = tmp_path / "other.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    status, _, err = run(
        capsys, ["operator", "tenant", "show", "acme", "--store", f"sqlite:///{path}"]
    )
    assert status == 2
    assert "no table stepup_credentials" in err


def test_the_store_url_can_come_from_the_environment(
    target: Target, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    TenantSettings(target.store).ensure("acme")
    monkeypatch.setenv("STEPUP_STORE", target.url)
    status, out, _ = run(capsys, ["operator", "tenant", "show", "acme", "--prefix", target.prefix])
    assert status == 0
    assert '"id": "acme"' in out


@pytest.mark.parametrize(
    "where",
    [
        lambda store: ["operator", *store, "tenant", "show", "acme"],
        lambda store: ["operator", "tenant", *store, "show", "acme"],
        lambda store: ["operator", "tenant", "show", "acme", *store],
    ],
    ids=["before-the-command", "between", "after"],
)
def test_the_store_options_count_wherever_they_are_given(
    target: Target,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: Any,
) -> None:
    monkeypatch.delenv("STEPUP_STORE", raising=False)
    TenantSettings(target.store).ensure("acme")
    status, out, err = run(capsys, where(target.args()))
    assert (status, err) == (0, "")
    assert json.loads(out)["data"]["id"] == "acme"


def test_a_store_given_after_the_command_wins(
    target: Target, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STEPUP_STORE", raising=False)
    TenantSettings(target.store).ensure("acme")
    wrong = ["--store", "postgresql://postgres:s3cret@127.0.0.1:1/app"]
    status, out, _ = run(capsys, ["operator", *wrong, "tenant", "show", "acme", *target.args()])
    assert status == 0
    assert json.loads(out)["data"]["id"] == "acme"
    # Only before the command: that store is the one used (and its password not shown).
    status, out, err = run(capsys, ["operator", *wrong, "tenant", "show", "acme"])
    assert (status, out) == (2, "")
    assert "at postgresql://postgres@127.0.0.1:1/app" in err
    assert "s3cret" not in err


def test_a_listener_that_does_not_import_is_a_usage_error(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    enrol(target.store, "alice", SecretBox())
    argv = ["operator", "remove-2fa", "alice", *target.args(), "--yes", "--listener", "nope:x"]
    status, _, err = run(capsys, argv)
    assert status == 2
    assert "cannot import --listener 'nope:x'" in err
    assert target.store.get_credential("alice") is not None
