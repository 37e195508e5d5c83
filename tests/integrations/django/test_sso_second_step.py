"""An OIDC sign-in that goes through stepup's second step (a code, a recovery code),
begun with ``request.stepup.begin_sign_in(identity=...)`` and finished by the default
``COMPLETE_SIGN_IN`` (``django.contrib.auth.login``): the session keeps the OIDC
identity, so its re-authentications go to the provider, and with ``sign_in_counts``
the sign-in counts with ``oidc`` plus what the second step proved. A sign-in that
fails once the user is signed in leaves nobody signed in."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import include, path

from integrations.django.django_support import Browser, Site, running_site, set_flag
from integrations.django.testapp.hooks import app_policy, load_subject
from stepup.adapters.idp.oidc import OIDCProviderConfig
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.events import SignInRecorded
from stepup.integrations.django.services import get_stepup
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

ISSUER = "https://idp.example"
CORP = Identity(LoginMethod.OIDC, issuer=ISSUER, subject="alice-sub", provider="corp")
VERIFY = "/stepup/2fa/verify/"
PROVIDER_BUTTON = 'action="/stepup/reauth/oidc/start/"'
PROVIDERS = {
    "corp": OIDCProviderConfig(
        issuer=ISSUER,
        client_id="app",
        client_secret="app-secret",
        redirect_uri="https://app.example/stepup/reauth/oidc/callback/",
        name="corp",
    )
}


def _alice_pk() -> str:
    return str(get_user_model()._default_manager.get(username="alice").pk)


def oidc_callback(request: HttpRequest) -> HttpResponse:
    """The project's own OIDC callback, once the ID token is checked: alice has a second
    factor, so stepup asks for it (the provider logged her in 5 seconds ago)."""
    auth_time = get_stepup().clock() - 5
    waiting = request.stepup.begin_sign_in(
        _alice_pk(), next="/home/", identity=CORP, authenticated_at=auth_time
    )
    assert waiting is not None  # alice has a second factor
    return waiting


urlpatterns = [
    path("oidc/callback/", oidc_callback),
    path("", include("integrations.django.testapp.urls")),
]


@pytest.fixture(params=[False, True], ids=["counts_off", "counts_on"])
def counts(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@contextmanager
def _site(clock: SettableClock, counts: bool, **stepup: Any) -> Iterator[Site]:
    policy = app_policy().with_sign_in_counts(counts)
    with (
        override_settings(ROOT_URLCONF=sys.modules[__name__]),
        running_site(
            MemoryStore(), clock, POLICY=policy, OIDC_PROVIDERS=PROVIDERS, **stepup
        ) as site,
    ):
        get_stepup().tenant_settings.ensure("acme")
        yield site


@pytest.fixture
def site(clock: SettableClock, counts: bool) -> Iterator[Site]:
    with _site(clock, counts) as running:
        yield running


def _enrolled_alice(site: Site) -> tuple[str, list[str]]:
    """alice turns 2FA on (and the tenant's flag), then signs out: her TOTP secret and
    recovery codes."""
    alice = site.browser("alice")
    assert set_flag(alice).status_code == 200
    secret, codes = alice.enrol()
    alice.logout()
    site.clock.advance(30)  # the code that confirmed the enrolment is spent
    return secret, codes


def _through_the_second_step(browser: Browser, data: dict[str, str]) -> Any:
    started = browser.get("/oidc/callback/")
    assert started.status_code == 303
    assert started["Location"] == VERIFY
    assert browser.get("/home/").content == b"home of nobody"
    return browser.form(VERIFY, data, page=VERIFY)


def _reauth_page(browser: Browser) -> str:
    page = browser.get("/stepup/reauth/?action=api_key.read&next=/api-key/")
    assert page.status_code == 200
    return str(page.content.decode())


def test_after_a_code_the_sso_user_reauthenticates_at_the_provider(
    site: Site, counts: bool
) -> None:
    secret, _ = _enrolled_alice(site)
    alice = site.browser()
    done = _through_the_second_step(alice, {"code": site.totp_code(secret)})
    assert done.status_code == 303
    assert done["Location"] == "/home/"
    assert alice.get("/home/").content == b"home of alice"

    page = _reauth_page(alice)
    assert PROVIDER_BUTTON in page
    assert "Continue with corp" in page
    assert 'type="password"' not in page

    recorded = [e for e in site.events if isinstance(e, SignInRecorded)]
    if counts:  # oidc from the provider, dated by its auth_time, plus the code
        assert [e.method for e in recorded] == ["oidc,otp"]
        assert recorded[0].authenticated_at == site.clock() - 5
        assert alice.get("/api-key/").json()["reason"] == "fresh_grant"
    else:
        assert recorded == []
        refused = alice.get("/api-key/")
        assert refused.status_code == 303
        assert PROVIDER_BUTTON in alice.get(refused["Location"]).content.decode()


def test_after_a_recovery_code_the_sign_in_counts_with_the_provider_only(
    site: Site, counts: bool
) -> None:
    _, codes = _enrolled_alice(site)
    alice = site.browser()
    done = _through_the_second_step(alice, {"recovery_code": codes[0]})
    assert done.status_code == 303
    assert alice.get("/home/").content == b"home of alice"
    assert PROVIDER_BUTTON in _reauth_page(alice)
    methods = [e.method for e in site.events if isinstance(e, SignInRecorded)]
    assert methods == (["oidc"] if counts else [])  # a recovery code proves no factor


@pytest.mark.parametrize(
    ("identity", "proved", "cause"),
    [
        (None, ("oidc",), "needs identity=Identity"),
        (CORP, ("pwd",), "proves 'oidc'"),
        (Identity(LoginMethod.SAML, provider="corp"), None, "issuer and subject"),
    ],
)
def test_a_first_step_that_does_not_fit_is_refused_before_anything_is_kept(
    site: Site, identity: Any, proved: Any, cause: str
) -> None:
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from stepup.integrations.django._request import RequestStepup

    request = RequestFactory().get("/oidc/callback/")
    request.session = SessionStore()
    bound = RequestStepup(request, get_stepup())
    with pytest.raises(MalformedInputError, match=cause):
        bound.begin_sign_in(_alice_pk(), identity=identity, proved=proved)
    assert dict(request.session.items()) == {}  # no pending sign-in


#: The project's user directory is down (see :func:`failing_subject`).
DIRECTORY_DOWN: list[bool] = []


def failing_subject(request: HttpRequest) -> Subject | None:
    """The project's subject loader, failing just after the second step signed alice in."""
    if DIRECTORY_DOWN and request.user.is_authenticated:
        raise RuntimeError("the user directory is down")
    return load_subject(request)


def test_an_error_once_signed_in_leaves_nobody_signed_in(clock: SettableClock) -> None:
    with _site(clock, True, SUBJECT_LOADER=failing_subject) as site:
        secret, _ = _enrolled_alice(site)
        alice = site.browser()
        alice.client.raise_request_exception = False
        DIRECTORY_DOWN.append(True)
        try:
            failed = _through_the_second_step(alice, {"code": site.totp_code(secret)})
        finally:
            DIRECTORY_DOWN.clear()
        assert failed.status_code == 500
        assert alice.get("/home/").content == b"home of nobody"
        assert alice.get(VERIFY).status_code == 400  # the sign-in has to start again
        assert [e for e in site.events if isinstance(e, SignInRecorded)] == []
