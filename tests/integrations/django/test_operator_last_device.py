"""``manage.py stepup_operator remove-2fa USER --device ID`` on the user's last
authenticator app, on the ORM store: the app and the recovery codes go, the passkeys
stay (plain ``remove-2fa`` is the reset that takes them)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from integrations.django.django_support import Site, running_site
from stepup import TOTP
from stepup.events import TwoFactorRemoved
from stepup.integrations.django.models import (
    CredentialRecord,
    GrantRecord,
    PasskeyRecord,
)
from stepup.integrations.django.services import get_stepup
from stepup.integrations.django.store import DjangoStore
from stepup.policy import Policy
from stepup.reauth import Reauth
from stepup.records import Passkey
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.twofactor import TwoFactor


@pytest.fixture
def orm_site(clock: SettableClock) -> Iterator[Site]:
    models = (CredentialRecord, GrantRecord, PasskeyRecord)
    for model in models:
        model.objects.all().delete()
    try:
        with running_site("orm", clock, ENCRYPTION_KEYS={"k": b"k" * 32}) as site:
            assert isinstance(get_stepup().store, DjangoStore)
            yield site
    finally:  # the database outlives the test: leave no passkey to other tests
        for model in models:
            model.objects.all().delete()


def test_the_last_device_leaves_the_passkeys(
    orm_site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    store = get_stepup().store
    two_factor = TwoFactor(store, box=get_stepup().two_factor.box, clock=orm_site.clock)
    enrolment = two_factor.begin_enrolment("alice", "alice@example.com")
    assert two_factor.confirm_enrolment("alice", TOTP(enrolment.secret).at(orm_site.clock())).ok
    assert store.add_passkey(Passkey("alice", "cred-1", "data", "Key", created_at=1.0), 10)
    Reauth(store, Policy.default(environ={})).record(Subject("alice", "s1"), ["pwd"])
    argv = ["remove-2fa", "alice", "--device", enrolment.device_id, "--actor", "support:bob"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO("y\n"))
        call_command("stepup_operator", *argv)
    out, err = capsys.readouterr()
    assert "and with it their recovery codes (their 1 passkey stays)?" in err
    assert "their 1 passkey stays)" in out
    assert [p.credential_id for p in store.list_passkeys("alice")] == ["cred-1"]
    assert store.get_credential("alice") is None
    assert store.get_grant("alice", "s1") is None
    assert [type(e) for e in orm_site.events] == [TwoFactorRemoved]  # no passkey signal
