"""Django: a sign-in that skips stepup's second step (Django admin's login, another
app's view, a password reset that signs the user in: anything that calls ``login()``
without ``begin_sign_in``) is held for it when the user has a second factor, as
``begin_sign_in`` would have held it. django-otp leaves this to ``OTPAdminSite`` and
``is_verified()`` checks in each view; here nothing signs such a user in without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from integrations.django.django_support import PASSWORDS, Browser, Site, running_site, set_flag
from integrations.django.testapp.views import RECORDED
from integrations.outage_support import StoreDown
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.integrations.django.services import get_stepup
from stepup.reauth import SignInCounted, SignInNotCounted, SignInReason
from stepup.testing import SettableClock

VERIFY = "/stepup/2fa/verify/"


def _elsewhere(browser: Browser, name: str) -> Any:
    data = {"username": name, "password": PASSWORDS[name]}
    return browser.client.post("/login/elsewhere/", data)


def _enrolled(site: Site, name: str = "bob") -> tuple[Browser, str]:
    browser = site.browser(name)
    secret, _ = browser.enrol()
    browser.logout()
    return browser, secret


def _signed_in_as(browser: Browser) -> str:
    return browser.get("/home/").content.decode()


def test_an_enrolled_users_other_sign_in_is_held_for_the_code(clock: SettableClock) -> None:
    with running_site(MemoryStore(), clock) as site:
        bob, secret = _enrolled(site)
        answer = _elsewhere(bob, "bob")
        assert (answer.status_code, answer["Location"]) == (303, VERIFY)
        assert answer["Cache-Control"] == "no-store"
        assert _signed_in_as(bob) == "home of nobody"
        clock.advance(30)
        done = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
        assert (done.status_code, done["Location"]) == (303, "/api-key/")  # where it sent him
        assert _signed_in_as(bob) == "home of bob"


def test_a_user_without_a_second_factor_signs_in_as_before(clock: SettableClock) -> None:
    with running_site(MemoryStore(), clock) as site:
        bob = Browser(site)
        answer = _elsewhere(bob, "bob")
        assert (answer.status_code, answer["Location"]) == (302, "/api-key/")
        assert _signed_in_as(bob) == "home of bob"


def test_the_second_step_after_begin_sign_in_is_not_asked_twice(clock: SettableClock) -> None:
    with running_site(MemoryStore(), clock) as site:
        bob, secret = _enrolled(site)
        assert bob.login("bob")["Location"] == VERIFY
        clock.advance(30)
        done = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
        assert (done.status_code, done["Location"]) == (303, "/home/")
        assert _signed_in_as(bob) == "home of bob"


def test_turned_off_the_other_sign_in_goes_through(clock: SettableClock) -> None:
    with running_site(MemoryStore(), clock, SECOND_STEP_FOR_EVERY_SIGN_IN=False) as site:
        bob, _ = _enrolled(site)
        assert _elsewhere(bob, "bob").status_code == 302
        assert _signed_in_as(bob) == "home of bob"


@pytest.mark.parametrize("value", ["False", 0, None])
def test_the_setting_must_be_a_bool(clock: SettableClock, value: object) -> None:
    from stepup.errors import ConfigurationError

    with (
        running_site(MemoryStore(), clock, SECOND_STEP_FOR_EVERY_SIGN_IN=value),
        pytest.raises(ConfigurationError, match="SECOND_STEP_FOR_EVERY_SIGN_IN"),
    ):
        get_stepup()


def test_a_store_that_cannot_answer_signs_nobody_in(clock: SettableClock) -> None:
    store = StoreDown()
    with running_site(store, clock) as site:
        bob = Browser(site)
        store.down = True
        answer = _elsewhere(bob, "bob")
        assert answer.status_code == 503
        store.down = False
        assert _signed_in_as(bob) == "home of nobody"


def test_a_held_sign_in_never_counts_as_a_re_authentication(
    clock: SettableClock, tmp_path: Path
) -> None:
    """What the other way in proved first is unknown (a password reset link proves no
    password): with ``sign_in_counts``, the code after it records no grant."""
    policy = tmp_path / "policy.toml"
    policy.write_text("sign_in_counts = true\n")
    with running_site(MemoryStore(), clock, POLICY_FILE=str(policy)) as site:
        get_stepup().tenant_settings.ensure("acme")
        bob, secret = _enrolled(site)
        set_flag(site.browser("alice"))
        assert _elsewhere(bob, "bob")["Location"] == VERIFY
        clock.advance(30)
        assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
        assert bob.get("/api-key/").status_code == 303  # asked to re-authenticate


@pytest.mark.parametrize("counts", [False, True], ids=["policy-off", "sign-in-counts"])
def test_recording_a_held_sign_in_answers_second_step(
    clock: SettableClock, tmp_path: Path, counts: bool
) -> None:
    """After its own ``login()`` the project calls ``record_sign_in``. A user with a
    second factor is held for it: the answer is ``second_step``, nothing is granted
    (not even after the code: a held sign-in never counts), and the browser still goes
    to the code step. A user without one is recorded as before; anybody else not
    signed in still raises."""
    policy = tmp_path / "policy.toml"
    policy.write_text(f"sign_in_counts = {str(counts).lower()}\n")
    RECORDED.clear()
    with running_site(MemoryStore(), clock, POLICY_FILE=str(policy)) as site:
        get_stepup().tenant_settings.ensure("acme")
        bob, secret = _enrolled(site)
        set_flag(site.browser("alice"))
        answer = bob.client.post("/login/recorded/", {"username": "bob"})
        assert (answer.status_code, answer["Location"]) == (303, VERIFY)
        assert [SignInNotCounted(SignInReason.SECOND_STEP)] == RECORDED
        assert _signed_in_as(bob) == "home of nobody"
        clock.advance(30)
        assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
        assert _signed_in_as(bob) == "home of bob"
        assert bob.get("/api-key/").status_code == 303  # asked to re-authenticate
        alice = Browser(site)  # no second factor
        assert alice.client.post("/login/recorded/", {"username": "alice"}).status_code == 302
        assert isinstance(RECORDED[1], SignInCounted if counts else SignInNotCounted)
        with pytest.raises(ConfigurationError, match="signed in first"):
            Browser(site).client.post("/login/recorded/")


@pytest.mark.parametrize(
    "headers",
    [{"HTTP_X_API_KEY": "alice"}, {"HTTP_AUTHORIZATION": "Bearer token-alice"}],
    ids=["api-key", "bearer"],
)
def test_other_credentials_on_the_request_do_not_skip_the_hold(
    clock: SettableClock, headers: dict[str, str]
) -> None:
    """Who signed in is the user ``login()`` reports, on the web: an API key or bearer
    token on the same request (the project's loader reads those first) changes nothing."""
    with running_site(MemoryStore(), clock) as site:
        bob, _ = _enrolled(site)
        data = {"username": "bob", "password": PASSWORDS["bob"]}
        answer = bob.client.post("/login/elsewhere/", data, **headers)
        assert (answer.status_code, answer["Location"]) == (303, VERIFY)
        assert _signed_in_as(bob) == "home of nobody"


def test_an_sso_middleware_signing_in_on_every_request_can_finish(
    clock: SettableClock,
) -> None:
    """``RemoteUserMiddleware`` calls ``login()`` on every request while nobody is signed
    in: the held sign-in is kept (not begun again), and stepup's second-step page answers
    instead of sending the browser to itself again."""
    from django.test import override_settings

    from integrations.django.django_support import MIDDLEWARE

    middleware = list(MIDDLEWARE)
    at = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    middleware.insert(at + 1, "django.contrib.auth.middleware.RemoteUserMiddleware")
    backends = [
        "django.contrib.auth.backends.RemoteUserBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    with running_site(MemoryStore(), clock) as site:
        _, secret = _enrolled(site)
        with override_settings(MIDDLEWARE=middleware, AUTHENTICATION_BACKENDS=backends):
            bob = Browser(site)  # a client that loads the middleware above
            sso = {"REMOTE_USER": "bob"}
            first = bob.client.get("/home/", **sso)
            assert (first.status_code, first["Location"]) == (303, VERIFY)
            page = bob.client.get(VERIFY, **sso)
            assert page.status_code == 200
            assert 'name="code"' in page.content.decode()
            clock.advance(30)
            token = bob.fields(VERIFY)["csrfmiddlewaretoken"]
            code = {"code": site.totp_code(secret), "csrfmiddlewaretoken": token}
            done = bob.client.post(VERIFY, code, **sso)
            assert (done.status_code, done["Location"]) == (303, "/home/")
            assert bob.client.get("/home/", **sso).content.decode() == "home of bob"


def test_a_held_sign_in_completes_with_several_backends(clock: SettableClock) -> None:
    from django.test import override_settings

    backends = [
        "django.contrib.auth.backends.ModelBackend",
        "django.contrib.auth.backends.AllowAllUsersModelBackend",
    ]
    with running_site(MemoryStore(), clock) as site:
        bob, secret = _enrolled(site)
        with override_settings(AUTHENTICATION_BACKENDS=backends):
            assert _elsewhere(bob, "bob")["Location"] == VERIFY
            clock.advance(30)
            done = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
            assert (done.status_code, done["Location"]) == (303, "/api-key/")
            assert _signed_in_as(bob) == "home of bob"


def test_an_absolute_redirect_to_this_site_is_kept_as_its_path(clock: SettableClock) -> None:
    with running_site(MemoryStore(), clock) as site:
        bob, secret = _enrolled(site)
        data = {
            "username": "bob",
            "password": PASSWORDS["bob"],
            "to": "http://testserver/api-key/?x=1",
        }
        assert bob.client.post("/login/elsewhere/", data)["Location"] == VERIFY
        clock.advance(30)
        done = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
        assert done["Location"] == "/api-key/?x=1"
        other = {"username": "bob", "password": PASSWORDS["bob"], "to": "http://evil.example/x"}
        bob.logout()
        assert bob.client.post("/login/elsewhere/", other)["Location"] == VERIFY
        clock.advance(30)
        done = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
        assert done["Location"] == "/"


def test_a_login_through_a_request_wrapper_is_held_and_its_token_not_handed_out(
    clock: SettableClock,
) -> None:
    """Django REST framework's ``Request`` wraps the ``HttpRequest``: the hold reaches the
    middleware anyway, so the view's answer (an API token in its body and a cookie) is
    replaced by the second step."""
    with running_site(MemoryStore(), clock) as site:
        bob, _ = _enrolled(site)
        data = {"username": "bob", "password": PASSWORDS["bob"]}
        answer = bob.client.post("/login/wrapped/", data)
        assert (answer.status_code, answer["Location"]) == (303, VERIFY)
        assert b"api-token" not in answer.content
        assert "app_token" not in answer.cookies
        assert _signed_in_as(bob) == "home of nobody"


def test_the_same_user_signed_in_again_stays_signed_in(clock: SettableClock) -> None:
    with running_site(MemoryStore(), clock) as site:
        bob, secret = _enrolled(site)
        assert bob.login("bob")["Location"] == VERIFY
        clock.advance(30)
        assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
        assert bob.get("/login/again/").content == b"renewed"
        assert _signed_in_as(bob) == "home of bob"


def test_another_user_signed_in_over_a_session_is_held(clock: SettableClock) -> None:
    """A session signed in as alice (no second factor) signing bob in (he has one): Django
    starts a new session for bob, and his sign-in waits for his code."""
    with running_site(MemoryStore(), clock) as site:
        _enrolled(site)
        shared = site.browser("alice")
        assert _elsewhere(shared, "bob")["Location"] == VERIFY
        assert _signed_in_as(shared) == "home of nobody"


def test_turning_it_off_is_a_system_check_warning(clock: SettableClock) -> None:
    from stepup.integrations.django.checks import check_settings

    with running_site(MemoryStore(), clock, SECOND_STEP_FOR_EVERY_SIGN_IN=False):
        assert "stepup.W005" in [m.id for m in check_settings(None)]
    with running_site(MemoryStore(), clock):
        assert "stepup.W005" not in [m.id for m in check_settings(None)]


def _by_username(request: Any) -> Any:
    """A project's SUBJECT_LOADER that knows users by their username, not their pk."""
    from stepup.integrations.views import session_id
    from stepup.subject import Subject

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return Subject(f"name-{user.get_username()}", session_id(request.session))


def _sign_in_by_username(request: Any, user_id: str) -> None:
    from django.contrib.auth import get_user_model, login

    user = get_user_model()._default_manager.get(username=user_id.removeprefix("name-"))
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")


def test_the_projects_own_id_for_the_user_is_held_too(clock: SettableClock) -> None:
    """The second factor is enrolled under the project's id (``name-bob``), not
    ``str(user.pk)``: a sign-in through another view is held all the same."""
    hooks = {"SUBJECT_LOADER": _by_username, "COMPLETE_SIGN_IN": _sign_in_by_username}
    with running_site(MemoryStore(), clock, **hooks) as site:
        bob = Browser(site)
        assert _elsewhere(bob, "bob").status_code == 302
        secret, _ = bob.enrol()
        bob.logout()
        answer = _elsewhere(bob, "bob")
        assert (answer.status_code, answer["Location"]) == (303, VERIFY)
        assert _signed_in_as(bob) == "home of nobody"
        clock.advance(30)
        done = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
        assert (done.status_code, done["Location"]) == (303, "/api-key/")
        assert _signed_in_as(bob) == "home of bob"


def test_code_after_login_runs_as_it_expects_and_its_redirect_is_kept(
    clock: SettableClock,
) -> None:
    """django-allauth asserts ``request.user.is_authenticated`` right after ``login()``
    and then makes the session end with the browser: the held sign-in lets that code run
    (no 500), keeps its redirect and its session expiry."""
    with running_site(MemoryStore(), clock) as site:
        bob, secret = _enrolled(site)
        data = {"username": "bob", "password": PASSWORDS["bob"]}
        answer = bob.client.post("/login/allauth-like/", data)
        assert (answer.status_code, answer["Location"]) == (303, VERIFY)
        clock.advance(30)
        done = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
        assert (done.status_code, done["Location"]) == (303, "/home/")
        assert _signed_in_as(bob) == "home of bob"
        assert bob.client.session.get_expire_at_browser_close()


def _refusing_loader(request: Any) -> Any:
    """A project's loader that refuses a header it does not like (an attacker's)."""
    from django.core.exceptions import PermissionDenied

    from stepup.integrations.django.hooks import django_auth_subject

    if request.headers.get("X-Tenant", "acme") != "acme":
        raise PermissionDenied("unknown tenant")
    return django_auth_subject(request)


@pytest.mark.parametrize("view", ["/login/elsewhere/", "/login/catching/"])
def test_an_error_while_holding_signs_nobody_in(clock: SettableClock, view: str) -> None:
    """Whatever stops the hold (the project's loader refusing, a malformed id), not only
    a store outage, undoes the sign-in: also when the view swallows the error."""
    with running_site(MemoryStore(), clock, SUBJECT_LOADER=_refusing_loader) as site:
        bob, _ = _enrolled(site)
        data = {"username": "bob", "password": PASSWORDS["bob"]}
        answer = bob.client.post(view, data, HTTP_X_TENANT="evil")
        assert answer.status_code in (302, 403)
        assert _signed_in_as(bob) == "home of nobody"


def _token_for_signed_in(get_response: Any) -> Any:
    """A middleware outside stepup's that gives a signed-in user a token cookie."""

    def middleware(request: Any) -> Any:
        response = get_response(request)
        if request.user.is_authenticated:
            response.set_cookie("app_token", f"token-for-{request.user.get_username()}")
        return response

    return middleware


def test_middleware_outside_stepups_sees_nobody_on_a_held_answer(clock: SettableClock) -> None:
    from django.test import override_settings

    from integrations.django.django_support import MIDDLEWARE

    path = f"{__name__}._token_for_signed_in"
    with running_site(MemoryStore(), clock) as site:
        _enrolled(site)
        with override_settings(MIDDLEWARE=[path, *MIDDLEWARE]):
            bob = Browser(site)  # a client that loads the middleware above
            answer = _elsewhere(bob, "bob")
            assert (answer.status_code, answer["Location"]) == (303, VERIFY)
            assert "app_token" not in answer.cookies
