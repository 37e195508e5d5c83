"""The journeys on the Django ORM store (``STORE = "orm"``): SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.django.django_support import Site, running_site, set_flag, user_id
from stepup.integrations.django.models import (
    AttemptState,
    ChallengeRecord,
    CredentialRecord,
    GrantRecord,
    TenantRecord,
)
from stepup.integrations.django.services import get_stepup
from stepup.integrations.django.store import DjangoStore
from stepup.testing import SettableClock

VERIFY = "/stepup/2fa/verify/"


@pytest.fixture(params=["default", pytest.param("postgres", marks=pytest.mark.postgres)])
def orm_site(request: pytest.FixtureRequest, clock: SettableClock) -> Iterator[Site]:
    alias = str(request.param)
    if alias == "postgres":
        request.getfixturevalue("postgres_database")
    for model in (AttemptState, ChallengeRecord, CredentialRecord, GrantRecord, TenantRecord):
        model.objects.using(alias).all().delete()
    with running_site("orm", clock, DATABASE=alias) as site:
        stepup = get_stepup()
        assert isinstance(stepup.store, DjangoStore)
        assert stepup.store.using == alias
        site.store = stepup.store
        stepup.tenant_settings.ensure("acme")
        yield site


def walk_the_journeys(site: Site) -> None:
    """Re-auth with the flag off and on, expiry, then 2FA enrol, verify, replay, a
    recovery code and removal behind re-auth: through the views, on ``site``'s store."""
    admin, bob = site.browser("alice"), site.browser("bob")
    assert bob.get("/api-key/").status_code == 200
    assert set_flag(bob).status_code == 403
    assert set_flag(admin).status_code == 200

    refused = bob.get("/api-key/")
    assert refused.status_code == 303
    assert bob.reauth(refused["Location"], "wrong").status_code == 400
    back = bob.reauth(refused["Location"], "battery staple")
    assert back["Location"] == "/api-key/"
    assert bob.get("/api-key/").status_code == 200
    site.clock.advance(6 * 3600 - 1)
    assert bob.get("/api-key/").status_code == 200
    site.clock.advance(1)
    assert bob.get("/api-key/").status_code == 303

    secret, codes = bob.enrol()
    bob.logout()
    bob.login("bob")
    replayed = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
    assert replayed.status_code == 400
    site.clock.advance(30)
    assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
    assert bob.get("/home/").content == b"home of bob"

    bob.logout()
    bob.login("bob")
    assert bob.form(VERIFY, {"recovery_code": codes[0]}, page=VERIFY).status_code == 303
    assert len(site.store.get_credential(user_id("bob")).recovery_hashes) == 9

    refused = bob.form("/stepup/2fa/remove/", {})
    assert refused.status_code == 303
    assert bob.reauth(refused["Location"], "battery staple").status_code == 200  # resume page
    assert bob.form("/stepup/2fa/remove/", {}).status_code == 303
    assert site.store.get_credential(user_id("bob")) is None


def test_reauth_and_two_factor_on_the_orm_store(orm_site: Site) -> None:
    walk_the_journeys(orm_site)
    alias = orm_site.store.using
    stored = TenantRecord.objects.using(alias).get(pk="acme").attributes  # JSON text
    assert json.loads(stored) == {"feature_flags": {"sensitive_actions_reauth": True}}
    assert AttemptState.objects.using(alias).filter(key__startswith="totp:").exists()
    assert not CredentialRecord.objects.using(alias).exists()


def test_the_same_journeys_on_the_sql_store_from_a_url(
    clock: SettableClock, tmp_path: Path
) -> None:
    from stepup.adapters.storage.sql import SQLStore

    url = f"sqlite:///{tmp_path / 'stepup.sqlite3'}"
    with running_site(url, clock) as site:
        store = get_stepup().store
        assert isinstance(store, SQLStore)
        site.store = store
        get_stepup().tenant_settings.ensure("acme")
        try:
            walk_the_journeys(site)
        finally:
            store.close()


def test_purge_removes_only_expired_rows(orm_site: Site) -> None:
    from django.core.management import call_command

    site = orm_site
    admin = site.browser("alice")
    assert set_flag(admin).status_code == 200
    bob = site.browser("bob")
    assert bob.reauth("/stepup/reauth/?next=/api-key/", "battery staple").status_code == 303
    grants = GrantRecord.objects.using(site.store.using)
    assert grants.count() == 1
    call_command("stepup_purge", verbosity=0)
    assert grants.count() == 1
    site.clock.advance(6 * 3600)
    call_command("stepup_purge", verbosity=0)
    assert grants.count() == 0


def _no_sign_in(request: object, user_id: str) -> None:
    raise RuntimeError("the project's sign-in broke after the code was accepted")


def test_atomic_requests_cannot_roll_back_a_used_code(clock: SettableClock) -> None:
    """With ATOMIC_REQUESTS, an error later in the request would roll back the replay
    claim, and the same code would work twice; stepup's views commit as they go."""
    from django.db import connections

    for model in (AttemptState, CredentialRecord, TenantRecord):
        model.objects.all().delete()
    database = connections.settings["default"]
    database["ATOMIC_REQUESTS"] = True
    try:
        with running_site("orm", clock, COMPLETE_SIGN_IN=_no_sign_in) as site:
            bob = site.browser("bob")
            secret, _ = bob.enrol()
            bob.logout()
            bob.login("bob")
            bob.client.raise_request_exception = False
            site.clock.advance(30)
            code = site.totp_code(secret)
            broken = bob.form(VERIFY, {"code": code}, page=VERIFY)
            assert broken.status_code == 500
            bob.login("bob")
            again = bob.form(VERIFY, {"code": code}, page=VERIFY)
            assert again.status_code == 400
            assert "already used" in again.content.decode()
    finally:
        database["ATOMIC_REQUESTS"] = False
