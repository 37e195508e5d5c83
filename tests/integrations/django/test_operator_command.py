"""``manage.py stepup_operator``: the operator commands on the project's own store (the
ORM store, which no store URL reaches), with the project's keys and signals."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from integrations.django.django_support import Site, running_site
from stepup import TOTP
from stepup.adapters.storage.sql import SQLStore
from stepup.events import TenantFlagChanged, TwoFactorRemoved
from stepup.integrations.django.models import (
    ChallengeRecord,
    CredentialRecord,
    GrantRecord,
    TenantRecord,
)
from stepup.integrations.django.services import get_stepup
from stepup.integrations.django.store import DjangoStore
from stepup.policy import Policy
from stepup.reauth import Reauth
from stepup.records import Tenant
from stepup.sealing import SecretBox
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.twofactor import TwoFactor

OLD, NEW = b"o" * 32, b"n" * 32


@pytest.fixture(params=["default", pytest.param("postgres", marks=pytest.mark.postgres)])
def orm_site(request: pytest.FixtureRequest, clock: SettableClock) -> Iterator[Site]:
    alias = str(request.param)
    if alias == "postgres":
        request.getfixturevalue("postgres_database")
    for model in (ChallengeRecord, CredentialRecord, GrantRecord, TenantRecord):
        model.objects.using(alias).all().delete()
    keys = {"old": OLD, "new": NEW}
    with running_site(
        "orm", clock, DATABASE=alias, ENCRYPTION_KEYS=keys, ENCRYPTION_KEY_ID="new"
    ) as site:
        assert isinstance(get_stepup().store, DjangoStore)
        yield site


def operate(*argv: str, answer: str | None = None) -> int:
    try:
        if answer is None:
            call_command("stepup_operator", *argv)
        else:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("sys.stdin", io.StringIO(answer))
                call_command("stepup_operator", *argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def enrol(user_id: str, box: SecretBox, clock: SettableClock) -> str:
    two_factor = TwoFactor(get_stepup().store, box=box, clock=clock)
    enrolment = two_factor.begin_enrolment(user_id, f"{user_id}@example.com")
    assert two_factor.confirm_enrolment(user_id, TOTP(enrolment.secret).at(clock())).ok
    return enrolment.secret


def test_remove_2fa_on_the_orm_store_sends_the_web_paths_signal(
    orm_site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    store = get_stepup().store
    enrol("alice", get_stepup().two_factor.box, orm_site.clock)
    Reauth(store, Policy.default(environ={})).record(Subject("alice", "s1"), ["pwd"])
    assert operate("remove-2fa", "alice", "--actor", "support:bob", answer="n\n") == 1
    assert store.get_credential("alice") is not None  # not confirmed: nothing changed

    assert operate("remove-2fa", "alice", "--actor", "support:bob", answer="y\n") == 0
    out = capsys.readouterr().out
    assert "removed: two-factor authentication of user 'alice'" in out
    assert "event: TwoFactorRemoved(user_id='alice', removed_by='support:bob')" in out
    assert [type(e) for e in orm_site.events] == [TwoFactorRemoved]  # the signal fired
    assert store.get_credential("alice") is None
    assert store.get_grant("alice", "s1") is None


HINT = "manage.py stepup_operator: USER_ID is the user's primary key (user.pk)"


def test_an_unknown_user_is_refused_in_one_line_and_the_id_explained_in_another(
    orm_site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    assert operate("remove-2fa", "ghost", "--yes") == 1
    refused, hint = capsys.readouterr().err.splitlines()
    assert "user 'ghost' has no two-factor authentication" in refused
    assert hint == HINT
    assert operate("revoke-grants", "ghost", "--yes") == 1
    assert capsys.readouterr().err.splitlines()[-1] == HINT


@pytest.mark.parametrize(
    "argv",
    [
        ["totp-devices", "{name}"],
        ["remove-2fa", "--yes", "{name}"],
        ["--prefix", "x", "revoke-grants", "--yes", "{name}"],
    ],
    ids=["totp-devices", "remove-2fa", "revoke-grants"],
)
def test_a_user_name_given_for_the_id_is_answered_with_the_users_primary_key(
    orm_site: Site, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """stepup knows a Django user by ``str(user.pk)``: ``bob`` finds nothing, and the
    command says which key is bob's."""
    pk = get_user_model()._default_manager.get(username="bob").pk
    assert operate(*[arg.format(name="bob") for arg in argv]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert "'bob'" in lines[0]  # the refusal, from the operator command
    assert lines[-1] == (
        f"{HINT}, and 'bob' is the user name of the user whose primary key is {pk}"
    )


def test_no_hint_when_the_command_found_the_user_or_takes_no_user_id(
    orm_site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    pk = str(get_user_model()._default_manager.get(username="bob").pk)
    enrol(pk, get_stepup().two_factor.box, orm_site.clock)
    assert operate("totp-devices", pk) == 0
    assert operate("tenant", "show", "bob") == 1  # no tenant bob: not about a user
    assert "primary key" not in capsys.readouterr().err


def test_reseal_moves_the_secrets_to_the_projects_current_key(
    orm_site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = enrol("carol", SecretBox({"old": OLD}, "old"), orm_site.clock)
    assert operate("reseal", "--yes") == 0
    assert "resealed: 1 secret(s) under key 'new'" in capsys.readouterr().out
    only_new = TwoFactor(
        get_stepup().store, box=SecretBox({"new": NEW}, "new"), clock=orm_site.clock
    )
    orm_site.clock.advance(30)
    assert only_new.verify("carol", TOTP(secret).at(orm_site.clock())).ok


def test_tenant_show_and_set_flag(orm_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    get_stepup().tenant_settings.ensure("acme")
    assert operate("tenant", "set-flag", "acme", "on", "--yes", "--actor", "support:bob") == 0
    assert (
        "changed: sensitive_actions_reauth of tenant 'acme': off -> on" in capsys.readouterr().out
    )
    assert [type(e) for e in orm_site.events] == [TenantFlagChanged]
    assert operate("tenant", "show", "acme") == 0
    assert '"sensitive_actions_reauth": true' in capsys.readouterr().out
    assert operate("tenant", "show", "nobody") == 1


def test_another_store_before_or_after_the_command(
    orm_site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = SQLStore.sqlite(tmp_path / "other.db")
    other.put_tenant(Tenant("elsewhere", {"feature_flags": {"sensitive_actions_reauth": True}}))
    other.close()
    url = f"sqlite:///{tmp_path / 'other.db'}"
    for argv in (
        ["--store", url, "tenant", "show", "elsewhere"],
        ["tenant", "show", "elsewhere", "--store", url],
        ["--store", "sqlite:////nonexistent/x.db", "tenant", "show", "elsewhere", "--store", url],
    ):
        assert operate(*argv) == 0, argv
        assert '"id": "elsewhere"' in capsys.readouterr().out
    assert operate("tenant", "show", "elsewhere") == 1  # the project's own store has none


def test_help_and_bad_usage(orm_site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    assert operate("--help") == 0
    assert "remove-2fa" in capsys.readouterr().out
    assert operate("no-such-command") == 2


def test_help_names_the_projects_store_as_the_default(
    orm_site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    # Here no --store means the project's store, not $STEPUP_STORE as under `stepup`.
    assert operate("--help") == 0
    assert "another store than the project's" in " ".join(capsys.readouterr().out.split())
    for argv in (["tenant", "show", "--help"], ["remove-2fa", "--help"]):
        assert operate(*argv) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "(default: the app's own store)" in out, argv
        assert "STEPUP_STORE" not in out, argv
