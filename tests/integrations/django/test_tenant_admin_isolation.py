"""``check_tenant_admin_isolation`` against the Django test project: its
``is_tenant_admin`` passes, and one that ignores the tenant it is asked about fails with
the leak named, while that hook really lets alice, admin of acme, change globex."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.django.django_support import PASSWORDS, Browser, Site, flag_body, running_site
from integrations.tenant_answers import only_error
from stepup.integrations.django.services import get_stepup
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.isolation import check_tenant_admin_isolation

ADMIN_ANYWHERE = f"{__name__}.admin_of_any_tenant"


def admin_of_any_tenant(subject: Subject, tenant_id: str) -> bool:
    """The broken hook: an admin of some tenant, whichever tenant is asked about."""
    from integrations.django.testapp.hooks import username

    return username(subject.user_id) == "alice"


def _patch(browser: Browser, tenant: str) -> Any:
    return browser.patch(
        f"/stepup/tenants/{tenant}", data=flag_body(True), content_type="application/vnd.api+json"
    )


def _check(site: Site) -> None:
    get_stepup().tenant_settings.ensure("acme")
    get_stepup().tenant_settings.ensure("globex")
    reauthenticated: list[str] = []

    def reauthenticate(browser: Browser, refused: Any) -> None:
        error = only_error(refused.json())
        reauthenticated.append(error["code"])
        done = browser.reauth(error["meta"]["reauth_url"], PASSWORDS["alice"])
        assert done.status_code == 303

    check_tenant_admin_isolation(
        sign_in=site.browser,
        patch=_patch,
        reauthenticate=reauthenticate,
        admin="alice",
        tenants=("acme", "globex"),
    )
    assert reauthenticated[0] == "reauth_required"  # the own PATCH asked for one


def test_the_projects_hook_passes(site: Site) -> None:
    _check(site)
    globex = get_stepup().store.get_tenant("globex").attributes
    assert globex["feature_flags"]["sensitive_actions_reauth"] is False  # unchanged


def test_a_hook_that_ignores_its_tenant_id_fails(clock: SettableClock) -> None:
    from stepup.adapters.storage.memory import MemoryStore

    with running_site(MemoryStore(), clock, IS_TENANT_ADMIN=ADMIN_ANYWHERE) as site:
        with pytest.raises(AssertionError) as caught:
            _check(site)
        assert str(caught.value) == (
            "is_tenant_admin ignores its tenant_id: an admin of 'acme' changed 'globex'"
        )
        globex = get_stepup().store.get_tenant("globex")
        assert globex.attributes["feature_flags"]["sensitive_actions_reauth"] is True


def test_an_admin_refused_for_their_own_tenant_is_named(clock: SettableClock) -> None:
    from stepup.adapters.storage.memory import MemoryStore

    refused = r"an admin of 'acme' could not change 'acme' \(HTTP 403\)"
    with (
        running_site(MemoryStore(), clock, IS_TENANT_ADMIN=f"{__name__}.nobody") as site,
        pytest.raises(AssertionError, match=refused),
    ):
        _check(site)


def nobody(subject: Subject, tenant_id: str) -> bool:
    return False


def test_two_different_tenants_are_needed() -> None:
    with pytest.raises(ValueError, match="two different tenants"):
        check_tenant_admin_isolation(
            sign_in=str,
            patch=lambda client, tenant: 200,
            reauthenticate=lambda client, response: None,
            admin="alice",
            tenants=("acme", "acme"),
        )
