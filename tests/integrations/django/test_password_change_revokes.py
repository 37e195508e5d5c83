"""Django: a new password saved for a user revokes every grant of that user, in every
session (OWASP ASVS 5.0 section 7.4.3), without the app calling
``request.stepup.password_changed``: Django's ``PasswordChangeView`` as any
``set_password()`` then ``save()``. A new user, a hash upgraded at sign-in and a save
that changes no password leave the store alone; a store outage never stops the save."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.views import PasswordChangeView
from django.db import transaction
from django.test import Client, override_settings
from django.urls import include, path

from integrations.django.django_support import TENANT, Site, running_site
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import StoreUnavailableError
from stepup.events import GrantsRevoked
from stepup.integrations.django.services import get_stepup
from stepup.reauth import FEATURE_FLAG
from stepup.records import Tenant
from stepup.subject import Subject
from stepup.testing import SettableClock

NAME, PASSWORD, NEW_PASSWORD = "carol", "old carol secret", "new carol secret"
#: A hasher fast enough for tests (Django's default iterates PBKDF2 a million times).
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

urlpatterns = [
    path("password/change/", PasswordChangeView.as_view(success_url="/home/")),
    path("", include("integrations.django.testapp.urls")),
]


class CountingStore(MemoryStore):
    """The memory store, counting revocations; unable to revoke while ``down``."""

    down = False

    def __init__(self) -> None:
        super().__init__()
        self.revocations: list[tuple[str, str | None]] = []

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        self.revocations.append((user_id, session_id))
        if self.down:
            raise StoreUnavailableError("grants: the store is down")
        return super().revoke_grants(user_id, session_id)


@pytest.fixture
def site(clock: SettableClock) -> Iterator[Site]:
    with (
        override_settings(PASSWORD_HASHERS=FAST_HASHERS, ROOT_URLCONF=sys.modules[__name__]),
        running_site(CountingStore(), clock) as running,
    ):
        get_stepup().tenant_settings.ensure("acme")
        yield running


@pytest.fixture
def carol(site: Site) -> Iterator[Any]:
    """A user of this test only (the shared users keep their passwords)."""
    model = get_user_model()
    model._default_manager.filter(username=NAME).delete()
    user = model._default_manager.create_user(username=NAME, password=PASSWORD)
    try:
        yield user
    finally:
        user.delete()


def _signed_in_with_grant(site: Site) -> tuple[Client, str]:
    """carol signed in in a new browser, with a fresh re-authentication; its session id."""
    client = Client()
    answer = client.post("/login/", {"username": NAME, "password": PASSWORD})
    assert answer.status_code == 303, answer.content
    session_id = client.session["_stepup_sid"]
    user_id = client.session["_auth_user_id"]
    get_stepup().reauth.record(Subject(user_id, session_id), ("pwd",))
    assert site.store.get_grant(user_id, session_id) is not None
    return client, session_id


def _grants_left(site: Site, user: Any, session_ids: list[str]) -> list[str]:
    return [sid for sid in session_ids if site.store.get_grant(str(user.pk), sid) is not None]


def _revoked_for_password_change(site: Site, user: Any) -> bool:
    return any(
        isinstance(event, GrantsRevoked)
        and event.reason == "password_changed"
        and event.user_id == str(user.pk)
        for event in site.events
    )


def test_the_password_change_view_revokes_every_session_grant(site: Site, carol: Any) -> None:
    site.store.put_tenant(Tenant(TENANT, {"feature_flags": {FEATURE_FLAG: True}}))
    browser, first = _signed_in_with_grant(site)
    _, second = _signed_in_with_grant(site)
    assert browser.get("/api-key/").status_code == 200  # a sensitive action, re-authenticated
    form = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD}
    changed = browser.post("/password/change/", {**form, "new_password2": NEW_PASSWORD})
    assert (changed.status_code, changed["Location"]) == (302, "/home/")
    assert _grants_left(site, carol, [first, second]) == []
    assert _revoked_for_password_change(site, carol)
    # The browser that changed it stays signed in (update_session_auth_hash), asked again.
    assert browser.get("/home/").content.decode() == f"home of {NAME}"
    assert browser.get("/api-key/").status_code == 303


def test_set_password_then_save_revokes_every_session_grant(site: Site, carol: Any) -> None:
    _, first = _signed_in_with_grant(site)
    _, second = _signed_in_with_grant(site)
    user = get_user_model()._default_manager.get(pk=carol.pk)
    user.set_password(NEW_PASSWORD)
    user.save()
    assert _grants_left(site, carol, [first, second]) == []
    assert _revoked_for_password_change(site, carol)


def test_a_new_user_or_an_unchanged_password_leaves_the_store_alone(site: Site, carol: Any) -> None:
    """Creating the user (``create_user`` sets a password, on a user not saved yet), a
    save that changes no password and a hash upgraded at sign-in revoke nothing."""
    assert site.store.revocations == []  # carol's creation
    _, session_id = _signed_in_with_grant(site)
    user = get_user_model()._default_manager.get(pk=carol.pk)
    user.first_name = "Carol"
    user.save()
    with override_settings(
        PASSWORD_HASHERS=[
            "integrations.django.django_support.CheapArgon2PasswordHasher",
            *FAST_HASHERS,
        ]
    ):
        assert user.check_password(PASSWORD)  # MD5 upgraded to the first hasher, saved
        user.refresh_from_db()
        assert user.password.startswith("argon2$")
    assert site.store.revocations == []
    assert _grants_left(site, carol, [session_id]) == [session_id]


def test_a_store_outage_never_stops_the_save(
    site: Site, carol: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, session_id = _signed_in_with_grant(site)
    user = get_user_model()._default_manager.get(pk=carol.pk)
    user.set_password(NEW_PASSWORD)
    site.store.down = True
    with caplog.at_level(logging.WARNING, logger="stepup.store"):
        user.save()
    site.store.down = False
    assert site.store.revocations == [(str(carol.pk), None)]  # it was asked
    assert "store unavailable" in caplog.text
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    # Nothing was revoked: the grant ends at its lifetime.
    assert _grants_left(site, carol, [session_id]) == [session_id]


class ProxiedUser(get_user_model()):  # type: ignore[misc]
    """A proxy of the user model, as apps register them ("Staff", "Customer")."""

    class Meta:
        proxy = True
        app_label = "auth"


def test_a_password_saved_through_a_proxy_of_the_user_model_revokes(site: Site, carol: Any) -> None:
    """Django sends ``post_save`` with the class saved (the proxy) as its sender."""
    _, session_id = _signed_in_with_grant(site)
    user = ProxiedUser._default_manager.get(pk=carol.pk)
    user.set_password(NEW_PASSWORD)
    user.save()
    assert _grants_left(site, carol, [session_id]) == []
    assert _revoked_for_password_change(site, carol)


def test_a_migration_s_historical_user_model_is_not_followed(site: Site, carol: Any) -> None:
    """A data migration's ``apps.get_model`` is another class, not the user model."""
    from django.apps import apps
    from django.db.migrations.state import ProjectState

    from stepup.integrations.django.apps import _password_saved

    historical = ProjectState.from_apps(apps).apps.get_model("auth", "User")
    instance = historical._default_manager.get(pk=carol.pk)
    instance._password = NEW_PASSWORD  # as a (copied) set_password would leave it
    _password_saved(historical, instance, False, using="default")
    assert site.store.revocations == []


def test_a_grant_recorded_before_the_password_commits_is_revoked_at_the_commit(
    site: Site, carol: Any
) -> None:
    """Inside ``atomic()`` (or ``ATOMIC_REQUESTS``) other workers still check the old
    password until the commit: a re-authentication one records meanwhile is revoked
    when the new password commits."""
    _, session_id = _signed_in_with_grant(site)
    with transaction.atomic():
        user = get_user_model()._default_manager.get(pk=carol.pk)
        user.set_password(NEW_PASSWORD)
        user.save()
        assert _grants_left(site, carol, [session_id]) == []  # at once, too
        get_stepup().reauth.record(Subject(str(carol.pk), session_id), ("pwd",))
    assert _grants_left(site, carol, [session_id]) == []
    assert site.store.revocations == [(str(carol.pk), None)] * 2


def test_a_store_outage_at_the_commit_never_breaks_it(site: Site, carol: Any) -> None:
    _signed_in_with_grant(site)
    with transaction.atomic():
        user = get_user_model()._default_manager.get(pk=carol.pk)
        user.set_password(NEW_PASSWORD)
        user.save()
        site.store.down = True
    site.store.down = False
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert len(site.store.revocations) == 2  # the second, at the commit, was asked too
