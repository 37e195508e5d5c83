"""``stepup operator``: the defects a review found. A store URL with a typo is refused
before anything is touched, a listener that fails is reported with its own status,
the help says what each command does, and Ctrl-C at the prompt changes nothing."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import cli_operator_support
from stepup.adapters.storage.memory import MemoryStore
from stepup.adapters.storage.sql import SQLStore
from stepup.cli import main
from stepup.cli.operator import run_operator
from stepup.errors import ConfigurationError
from stepup.events import PasskeyRemoved, TwoFactorRemoved
from stepup.policy import Policy
from stepup.reauth import Reauth
from stepup.records import Passkey
from stepup.sealing import SecretBox
from stepup.subject import Subject
from stepup.tenants import TenantSettings
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor
from support import REDIS_URL, need, port_open

FAILING = "core.cli_operator_support:fail"
RECORD = "core.cli_operator_support:record"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    store = SQLStore(url)
    store.create_schema()
    store.close()
    return url


@pytest.fixture(autouse=True)
def events() -> Iterator[list[Any]]:
    cli_operator_support.EVENTS.clear()
    yield cli_operator_support.EVENTS
    cli_operator_support.EVENTS.clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def enrol(url: str, user_id: str, *, passkeys: int = 0) -> None:
    store = SQLStore(url)
    clock = SettableClock()
    two_factor = TwoFactor(store, box=SecretBox(), clock=clock)
    enrolment = two_factor.begin_enrolment(user_id, f"{user_id}@example.com")
    assert two_factor.confirm_enrolment(user_id, TOTP(enrolment.secret).at(clock())).ok
    for n in range(passkeys):
        passkey = Passkey(user_id, f"Y3JlZA{n}", "data", "Key", created_at=1.0)
        assert store.add_passkey(passkey, 10)
    store.close()


# 1, 2: store URLs with a typo -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/l3", "/13x", "/1/3", "/ 3", "/%31", "/-1", "/1.0", "/db"])
def test_a_redis_url_whose_database_is_not_a_number_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """redis-py reads /l3 as no database and connects to 0: another database changed."""
    monkeypatch.delenv("STEPUP_STORE", raising=False)
    url = f"redis://:s3cret@127.0.0.1:6379{path}"
    argv = ["operator", "tenant", "set-flag", "acme", "on", "--yes", "--store", url]
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err == "stepup: error: the database part of a Redis URL must be a number\n"


@settings(max_examples=60, deadline=None)
# Without tab and newlines: URL parsing (urllib's and so redis-py's) drops them.
@given(path=st.text(st.characters(codec="ascii", exclude_characters="?#\t\n\r"), max_size=8))
def test_a_redis_store_takes_only_an_empty_or_numeric_database_part(path: str) -> None:
    from stepup.adapters.storage.redis import AsyncRedisStore, RedisStore

    url = f"redis://127.0.0.1:1/{path}"  # nothing listens: built, never connected
    numeric = path.isdigit() or path == ""
    for make in (RedisStore, AsyncRedisStore):
        if numeric:
            store = make(url)
            store.close() if isinstance(store, RedisStore) else asyncio.run(store.aclose())
            continue
        with pytest.raises(ConfigurationError) as refused:
            make(url)
        assert str(refused.value) in (
            "the database part of a Redis URL must be a number",
            "invalid Redis URL (not shown: it may hold a password)",
        )


def test_a_numeric_redis_database_still_works(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    need(port_open("127.0.0.1", 6379), f"Redis at {REDIS_URL}")
    from stepup.adapters.storage.redis import RedisStore

    monkeypatch.delenv("STEPUP_STORE", raising=False)
    url = "redis://127.0.0.1:6379/11"  # a database no other test uses
    store = RedisStore(url, prefix="review-db11:")
    try:
        TenantSettings(store).ensure("acme")
        argv = ["operator", "tenant", "show", "acme", "--store", url, "--prefix", "review-db11:"]
        status, out, err = run(capsys, *argv)
        assert (status, err) == (0, "")
        assert '"id": "acme"' in out
    finally:
        for key in store.client.scan_iter(match="review-db11:*"):
            store.client.delete(key)
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@[::1/x",
        "postgresql://admin@db:5432:Sup3rSecret/x",
        "postgresql://admin:Sup3rSecret@[::1/x",
        "postgres://admin@db:Sup3rSecret/x",
    ],
)
def test_a_malformed_database_url_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.delenv("STEPUP_STORE", raising=False)
    status, out, err = run(capsys, "operator", "totp-devices", "alice", "--store", url)
    assert (status, out) == (2, "")
    assert err == "stepup: error: not a valid database URL\n"
    with pytest.raises(ConfigurationError, match=r"^not a valid database URL$"):
        SQLStore(url)


# 3: a listener that fails ---------------------------------------------------------------


def test_a_failing_listener_is_reported_with_its_own_status_after_the_change(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, events: list[Any]
) -> None:
    enrol(sqlite_url, "alice", passkeys=1)
    argv = ["operator", "remove-2fa", "alice", "--yes", "--store", sqlite_url]
    status, out, err = run(capsys, *argv, "--listener", FAILING, "--listener", RECORD)
    assert status == 3
    assert "removed: two-factor authentication of user 'alice'" in out
    assert err.splitlines() == [
        f"stepup: warning: the listener {FAILING} failed on {name} (OSError); the change was made"
        for name in ("PasskeyRemoved", "TwoFactorRemoved")
    ]
    assert "Traceback" not in err
    assert "secret-in-message" not in out + err
    # The other listener still got every event, and the change stands.
    assert [type(e) for e in events] == [PasskeyRemoved, TwoFactorRemoved]
    store = SQLStore(sqlite_url)
    assert store.get_credential("alice") is None
    store.close()


def test_an_apps_listener_that_fails_is_reported_too(capsys: pytest.CaptureFixture[str]) -> None:
    store = MemoryStore()
    TenantSettings(store).ensure("acme")
    argv = ["tenant", "set-flag", "acme", "on", "--yes"]
    status = run_operator(argv, prog="x", store=store, listeners=(cli_operator_support.fail,))
    _, err = capsys.readouterr()
    assert status == 3
    assert err == (
        "stepup: warning: the listener core.cli_operator_support:fail failed on"
        " TenantFlagChanged (OSError); the change was made\n"
    )


def test_listeners_that_work_keep_status_0(
    capsys: pytest.CaptureFixture[str], sqlite_url: str
) -> None:
    enrol(sqlite_url, "alice")
    argv = ["operator", "remove-2fa", "alice", "--yes", "--store", sqlite_url, "--listener", RECORD]
    status, _, err = run(capsys, *argv)
    assert (status, err) == (0, "")


# 4: help that says what happens -----------------------------------------------------------


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    status, out, _ = run(capsys, *argv, "--help")
    assert status == 0
    return " ".join(out.split())


def test_remove_2fa_help_says_it_removes_the_passkeys(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys, "operator", "remove-2fa")
    assert "every passkey" in text
    assert "PasskeyRemoved" in text


def test_totp_devices_help_says_it_lists_passkeys(capsys: pytest.CaptureFixture[str]) -> None:
    assert "one line per passkey" in help_of(capsys, "operator", "totp-devices")


def test_tenant_help_names_no_get_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys, "operator", "tenant")
    assert "GET" not in text
    assert "PATCH /tenants/{id}" in text


def test_revoke_grants_names_the_actor_and_tells_the_listener(
    capsys: pytest.CaptureFixture[str], sqlite_url: str, events: list[Any]
) -> None:
    text = help_of(capsys, "operator", "revoke-grants")
    assert "--actor" in text
    assert "--listener" in text
    assert "GrantsRevoked" in text
    store = SQLStore(sqlite_url)
    Reauth(store, Policy.default(environ={})).record(Subject("alice", "s1"), ["pwd"])
    store.close()
    argv = ["operator", "revoke-grants", "alice", "--yes", "--store", sqlite_url]
    status, out, _ = run(capsys, *argv, "--actor", "support:bob", "--listener", RECORD)
    assert status == 0
    assert [(e.name, e.reason, e.count, e.revoked_by, e.session_id) for e in events] == [
        ("GrantsRevoked", "operator", 1, "support:bob", None)
    ]
    assert "event: GrantsRevoked(" in out
    events.clear()
    status, _, _ = run(capsys, *argv, "--listener", RECORD)  # none left: nothing changed
    assert status == 1
    assert events == []


# 5: Ctrl-C --------------------------------------------------------------------------------


class CtrlC(io.StringIO):
    """A terminal on which the operator presses Ctrl-C at the prompt."""

    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def interrupted(command: Callable[[], int]) -> int:
    """The status ``command`` answers Ctrl-C with; escaping, it would stop pytest itself."""
    try:
        return command()
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped: a traceback for the operator")


def test_ctrl_c_at_the_prompt_changes_nothing_and_shows_no_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    enrol(sqlite_url, "alice")
    monkeypatch.setattr(sys, "stdin", CtrlC())
    status = interrupted(lambda: main(["operator", "remove-2fa", "alice", "--store", sqlite_url]))
    out, err = capsys.readouterr()
    assert (status, out) == (130, "")
    assert err.endswith("[y/N] \nstepup: interrupted: nothing changed\n")
    store = SQLStore(sqlite_url)
    assert store.get_credential("alice") is not None
    store.close()


def test_ctrl_c_in_the_apps_operator_command_is_the_same_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    TenantSettings(store).ensure("acme")
    monkeypatch.setattr(sys, "stdin", CtrlC())
    argv = ["tenant", "set-flag", "acme", "on"]
    status = interrupted(lambda: run_operator(argv, prog="x", store=store))
    _, err = capsys.readouterr()
    assert status == 130
    assert err.splitlines()[-1] == "stepup: interrupted: nothing changed"
    tenant = store.get_tenant("acme")
    assert tenant is not None
    assert tenant.flag("sensitive_actions_reauth") is not True
