"""Django, on the docs example project (docs/examples/django_app) and the test project:
a sign-in that counts, the resumed form POST, the status endpoint, the guard coverage
check and the isolation contract."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path

from integrations.django.django_support import Browser, Site, running_site, set_flag
from integrations.django.test_docs import acme  # noqa: F401 (the example project, as a fixture)
from integrations.resume_support import as_multidict, resume_form
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django.services import get_stepup
from stepup.testing import SettableClock
from stepup.testing.coverage import assert_guarded, django_routes
from stepup.testing.isolation import check_grant_isolation

#: What the example declares: its sensitive routes, and those that need no re-auth.
SENSITIVE = {"/api-key/": "api_key.read", "/api-key/regenerate/": "api_key.regenerate"}
PUBLIC = {"/", "/login/", "/logout/"}
PASSWORDS = {"alice": "correct horse", "bob": "battery staple"}


def _sign_in(browser: Browser, name: str) -> Any:
    data = {"username": name, "password": PASSWORDS[name], "next": "/"}
    return browser.form("/login/", data, page="/login/")


def _flag_on() -> None:
    get_stepup().store.patch_tenant("acme", {}, {"sensitive_actions_reauth": True})


# Nothing lost to a re-authentication --------------------------------------------------

FORM = [("note", "line 1\nline 2 <&>"), ("tag", "x"), ("tag", "y")]


def test_an_interrupted_form_post_resumes_through_djangos_csrf_check(acme: Site) -> None:  # noqa: F811
    alice = acme.browser()
    _sign_in(alice, "alice")
    _flag_on()
    token = alice.fields("/login/")["csrfmiddlewaretoken"]
    refused = alice.post(
        "/api-key/regenerate/", as_multidict([*FORM, ("csrfmiddlewaretoken", token)])
    )
    assert refused.status_code == 303
    assert "resume=" in refused["Location"]

    resumed = alice.reauth(refused["Location"], PASSWORDS["alice"])
    assert resumed.status_code == 200
    assert resumed["Cache-Control"] == "no-store"
    target, fields = resume_form(resumed.content.decode())
    assert target == "/api-key/regenerate/"
    assert [f for f in fields if f[0] != "csrfmiddlewaretoken"] == FORM
    # Django's token rotated with the session: the replay carries the new one ...
    assert dict(fields)["csrfmiddlewaretoken"] != token
    # ... and without it, Django's CSRF check refuses the replay.
    without = [f for f in fields if f[0] != "csrfmiddlewaretoken"]
    assert alice.post(target, as_multidict(without)).status_code == 403
    done = alice.post(target, as_multidict(fields))
    assert done.status_code == 303
    assert done["Location"] == "/api-key/"  # the view ran
    # Used up: a second re-authentication with the same link resumes nothing.
    assert alice.reauth(refused["Location"], PASSWORDS["alice"]).status_code == 303


def test_a_form_django_did_not_check_is_resumed_without_a_token(acme: Site) -> None:  # noqa: F811
    """A ``csrf_exempt`` view's form passed no CSRF check when it was kept: its replay
    carries no token either (never one minted by the detour)."""
    from django.conf import settings
    from django.test import override_settings
    from django.urls import clear_url_caches
    from django.utils.module_loading import import_module
    from django.views.decorators.csrf import csrf_exempt

    from stepup.integrations.django import reauth_required

    @csrf_exempt
    @reauth_required("user.update")
    def hook(request: HttpRequest) -> HttpResponse:
        return HttpResponse("ran")

    urlconf = types.ModuleType("acme_with_an_exempt_view")
    example = import_module(settings.ROOT_URLCONF)
    urlconf.urlpatterns = [*example.urlpatterns, path("hook/", hook)]  # type: ignore[attr-defined]
    with override_settings(ROOT_URLCONF=urlconf):
        clear_url_caches()
        alice = acme.browser()
        _sign_in(alice, "alice")
        _flag_on()
        refused = alice.post("/hook/", as_multidict(FORM))
        assert refused.status_code == 303
        resumed = alice.reauth(refused["Location"], PASSWORDS["alice"])
        target, fields = resume_form(resumed.content.decode())
        assert (target, fields) == ("/hook/", FORM)  # no csrfmiddlewaretoken
    clear_url_caches()


def test_two_tabs_each_resume_their_own_form(acme: Site) -> None:  # noqa: F811
    """Two tabs each had a form interrupted; tab A re-authenticates first (the session id
    and the CSRF token are renewed), then tab B: B's form comes back too."""
    alice = acme.browser()
    _sign_in(alice, "alice")
    _flag_on()
    token = alice.fields("/login/")["csrfmiddlewaretoken"]
    tabs = {
        note: alice.post("/api-key/regenerate/", {"note": note, "csrfmiddlewaretoken": token})
        for note in ("A", "B")
    }
    for note, refused in tabs.items():
        resumed = alice.reauth(refused["Location"], PASSWORDS["alice"])
        assert resumed.status_code == 200, note
        target, fields = resume_form(resumed.content.decode())
        assert [f for f in fields if f[0] == "note"] == [("note", note)]
        assert alice.post(target, as_multidict(fields))["Location"] == "/api-key/"


def test_a_kept_request_never_resumes_for_another_user(acme: Site) -> None:  # noqa: F811
    alice, bob = acme.browser(), acme.browser()
    _sign_in(alice, "alice")
    _sign_in(bob, "bob")
    _flag_on()
    token = alice.fields("/login/")["csrfmiddlewaretoken"]
    refused = alice.post("/api-key/regenerate/", {"note": "x", "csrfmiddlewaretoken": token})
    assert bob.reauth(refused["Location"], PASSWORDS["bob"]).status_code == 303  # no resume
    assert alice.reauth(refused["Location"], PASSWORDS["alice"]).status_code == 303  # gone


def test_a_secret_field_is_never_kept(acme: Site) -> None:  # noqa: F811
    alice = acme.browser()
    _sign_in(alice, "alice")
    _flag_on()
    token = alice.fields("/login/")["csrfmiddlewaretoken"]
    data = {"password": "hunter2", "csrfmiddlewaretoken": token}
    refused = alice.post("/api-key/regenerate/", data)
    assert refused.status_code == 303
    assert "resume=" not in refused["Location"]


def test_the_projects_own_secret_names_are_never_kept(acme: Site) -> None:  # noqa: F811
    from django.conf import settings
    from django.test import override_settings

    alice = acme.browser()
    _sign_in(alice, "alice")
    _flag_on()
    own = {**settings.STEPUP, "RESUME_SECRET_FIELDS": ["kontonummer"]}
    with override_settings(STEPUP=own):
        token = alice.fields("/login/")["csrfmiddlewaretoken"]
        data = {"neue_kontonummer": "DE0012", "csrfmiddlewaretoken": token}
        refused = alice.post("/api-key/regenerate/", data)
        assert refused.status_code == 303
        assert "resume=" not in refused["Location"]
        kept = alice.post("/api-key/regenerate/", {"note": "x", "csrfmiddlewaretoken": token})
        assert "resume=" in kept["Location"]  # an ordinary form still waits


# The status endpoint and the helper --------------------------------------------------


def test_the_status_endpoint_and_the_helper(acme: Site) -> None:  # noqa: F811
    alice = acme.browser()
    assert alice.get("/stepup/reauth/status?action=api_key.read").status_code == 401
    _sign_in(alice, "alice")
    assert alice.get("/stepup/reauth/status?action=api_key.read").json()["required"] is False
    assert alice.get("/stepup/reauth/status?action=nope").status_code == 400
    _flag_on()
    needed = alice.get("/stepup/reauth/status?action=api_key.read").json()
    assert needed["required"] is True
    assert (
        needed["reauth_url"] == "/stepup/reauth/?next=%2Fstepup%2Freauth%2Fdone&action=api_key.read"
    )
    assert (
        alice.reauth(needed["reauth_url"], PASSWORDS["alice"])["Location"] == "/stepup/reauth/done"
    )
    done = alice.get("/stepup/reauth/done").content.decode()
    assert re.search(r'data-stepup-reauth-done data-csrf-token="[^"]+"', done)
    assert alice.get("/stepup/reauth/status?action=api_key.read").json()["required"] is False
    script = alice.get("/stepup/stepup-reauth.js")
    assert script["Content-Type"].startswith("text/javascript")
    assert b"window.stepup" in script.content


# A sign-in that counts -----------------------------------------------------------------


@pytest.mark.parametrize("counts", [False, True])
def test_a_two_factor_sign_in_counts_only_when_the_policy_says_so(
    clock: SettableClock, tmp_path: Path, counts: bool
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(f"sign_in_counts = {'true' if counts else 'false'}\n")
    with running_site(MemoryStore(), clock, POLICY_FILE=str(policy)) as site:
        get_stepup().tenant_settings.ensure("acme")
        bob = site.browser("bob")
        assert bob.login("bob").status_code == 303
        secret, _ = bob.enrol()
        bob.logout()
        set_flag(site.browser("alice"))
        assert bob.login("bob")["Location"] == "/stepup/2fa/verify/"
        clock.advance(30)
        verify = "/stepup/2fa/verify/"
        assert bob.form(verify, {"code": site.totp_code(secret)}, page=verify).status_code == 303
        clock.advance(60)
        assert bob.get("/api-key/").status_code == (200 if counts else 303)


# Did I guard everything? ---------------------------------------------------------------


def test_the_example_is_guarded_as_declared(acme: Site) -> None:  # noqa: F811
    routes = assert_guarded(None, get_stepup().policy, sensitive=SENSITIVE, public=PUBLIC)
    assert {r.path for r in routes if r.stepup_own} >= {"/stepup/reauth/"}


def test_an_unguarded_sensitive_route_in_the_example_is_caught(acme: Site) -> None:  # noqa: F811
    from django.conf import settings
    from django.utils.module_loading import import_module

    def delete_key(request: HttpRequest) -> HttpResponse:  # forgot @reauth_required
        return HttpResponse("deleted")

    example = import_module(settings.ROOT_URLCONF)
    urlconf = types.ModuleType("acme_with_a_new_view")
    urlconf.urlpatterns = [*example.urlpatterns, path("api-key/delete/", delete_key)]  # type: ignore[attr-defined]
    with pytest.raises(AssertionError) as caught:
        assert_guarded(urlconf, get_stepup().policy, sensitive=SENSITIVE, public=PUBLIC)
    assert "ANY /api-key/delete/: can change something but has no stepup guard" in str(caught.value)


def test_class_based_views_and_the_test_project(site: Site) -> None:
    routes = {r.path: r for r in django_routes()}
    assert routes["/billing/export/"].actions == ("billing.export",)  # the mixin's action
    assert routes["/billing/export/"].methods == {"GET"}
    assert routes["/api-key/copy/"].actions == ("api_key.copy",)
    assert routes["/workspaces/<str:kind>/delete/"].actions == ("workspace.delete",)
    # A view that calls require() in its body is invisible unless it says so.
    assert routes["/profile/update/"].actions == ()


# A proof never grants another user or session ------------------------------------------


def test_the_example_passes_the_isolation_contract(acme: Site) -> None:  # noqa: F811
    _flag_on()

    def sign_in(name: str) -> Browser:
        browser = acme.browser()
        _sign_in(browser, name)
        browser.name = name  # type: ignore[attr-defined]
        return browser

    def reauthenticate(browser: Browser) -> None:
        refused = browser.get("/api-key/")
        browser.reauth(refused["Location"], PASSWORDS[browser.name])  # type: ignore[attr-defined]

    check_grant_isolation(
        sign_in=sign_in,
        reauthenticate=reauthenticate,
        allowed=lambda b: b.get("/api-key/").status_code == 200,
        users=("alice", "bob"),
        sign_in_again=_sign_in,
        sign_out=lambda b: b.form("/logout/", {}, page="/login/"),
    )
