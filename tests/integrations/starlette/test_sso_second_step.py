"""An OIDC sign-in that goes through stepup's second step (a code, a recovery code),
begun with ``begin_sign_in(identity=...)``: ``complete_sign_in(request, user_id,
identity)`` is told how the user signed in, so the app's subject loader gives the OIDC
identity and the re-authentications go to the provider; with ``sign_in_counts`` the
sign-in counts with ``oidc`` plus what the second step proved. A ``complete_sign_in``
that cannot be told, or a first step that does not fit, is refused before anything is
kept."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.starlette.starlette_support import Browser, TestApp, enrol, make_app
from stepup.adapters.idp.oidc import AsyncOIDCReauth, OIDCProviderConfig
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError, MalformedInputError
from stepup.events import SignInRecorded
from stepup.integrations.starlette import Stepup
from stepup.integrations.views import default_policy
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

ISSUER = "https://idp.example"
CORP = Identity(LoginMethod.OIDC, issuer=ISSUER, subject="alice-sub", provider="corp")
VERIFY = "/stepup/2fa/verify"
PROVIDER_BUTTON = 'action="/stepup/oidc/start?'


def complete_sign_in(request: Request, user_id: str, identity: Identity) -> None:
    """The app's sign-in, told how the user signed in: kept where its loader reads it."""
    request.session["user"] = user_id
    request.session["sid"] = secrets.token_urlsafe(8)
    if identity.method is not LoginMethod.PASSWORD:
        fields = (identity.method.value, identity.issuer, identity.subject, identity.provider)
        request.session["sso"] = list(fields)


def _oidc_callback(stepup: Stepup) -> list[Any]:
    """The app's own OIDC callback, once the ID token is checked: alice has a second
    factor, so stepup asks for it (the provider logged her in 5 seconds ago)."""

    async def oidc_callback(request: Request) -> Response:
        auth_time = stepup.clock() - 5
        waiting = await stepup.begin_sign_in(
            request, "alice", next="/", identity=CORP, authenticated_at=auth_time
        )
        assert waiting is not None  # alice has a second factor
        return waiting

    return [Route("/oidc/callback", oidc_callback)]


@pytest.fixture(params=[False, True], ids=["counts_off", "counts_on"])
def counts(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _app(clock: SettableClock, counts: bool, **options: Any) -> TestApp:
    store = MemoryStore()
    config = OIDCProviderConfig(
        issuer=ISSUER,
        client_id="app",
        client_secret="app-secret",
        redirect_uri="https://app.example/stepup/reauth/oidc/callback",
        name="corp",
    )
    oidc = AsyncOIDCReauth(config, store, clock=clock)  # never reached: only its button
    settings: dict[str, Any] = {
        "clock": clock,
        "store": store,
        "policy": default_policy().with_sign_in_counts(counts),
        "oidc": oidc,
        "teardown": oidc.aclose,
        "complete_sign_in": complete_sign_in,
        "extra_routes": _oidc_callback,
        **options,
    }
    return make_app(**settings)


@pytest.fixture
def sso_app(clock: SettableClock, counts: bool) -> TestApp:
    return _app(clock, counts)


@pytest.fixture
def alice(sso_app: TestApp) -> Iterator[Browser]:
    browser = sso_app.browser()
    yield browser
    browser.close()


def _enrolled(browser: Browser) -> tuple[Any, list[str]]:
    """alice turns 2FA on (and the tenant's flag), then signs out: her authenticator and
    recovery codes."""
    assert browser.login("alice").status_code == 303
    assert browser.patch_tenant(True).status_code == 200
    totp, codes = enrol(browser)
    browser.logout()
    browser.test_app.clock.advance(30)  # the code that confirmed the enrolment is spent
    return totp, codes


def _through_the_second_step(browser: Browser, data: dict[str, str]) -> Any:
    started = browser.get("/oidc/callback")
    assert started.status_code == 303
    assert started.headers["location"] == VERIFY
    assert browser.get("/").text == "hello stranger"
    return browser.form(VERIFY, data)


def _reauth_page(browser: Browser) -> str:
    page = browser.get("/stepup/reauth?action=api_key.read&next=/api-key")
    assert page.status_code == 200
    return str(page.text)


def test_after_a_code_the_sso_user_reauthenticates_at_the_provider(
    sso_app: TestApp, alice: Browser, counts: bool
) -> None:
    totp, _ = _enrolled(alice)
    done = _through_the_second_step(alice, {"code": totp.at(sso_app.clock())})
    assert done.status_code == 303
    assert alice.get("/").text == "hello alice"

    page = _reauth_page(alice)
    assert PROVIDER_BUTTON in page
    assert "Continue with corp" in page
    assert 'type="password"' not in page

    recorded = [e for e in sso_app.events if isinstance(e, SignInRecorded)]
    if counts:  # oidc from the provider, dated by its auth_time, plus the code
        assert [(e.user_id, e.method) for e in recorded] == [("alice", "oidc,otp")]
        assert recorded[0].authenticated_at == sso_app.clock() - 5
        assert alice.get("/api-key").status_code == 200
    else:
        assert recorded == []
        refused = alice.get("/api-key")
        assert refused.status_code == 303
        assert PROVIDER_BUTTON in alice.get(refused.headers["location"]).text


def test_after_a_recovery_code_the_sign_in_counts_with_the_provider_only(
    sso_app: TestApp, alice: Browser, counts: bool
) -> None:
    _, codes = _enrolled(alice)
    done = _through_the_second_step(alice, {"recovery_code": codes[0]})
    assert done.status_code == 303
    assert alice.get("/").text == "hello alice"
    assert PROVIDER_BUTTON in _reauth_page(alice)
    methods = [e.method for e in sso_app.events if isinstance(e, SignInRecorded)]
    assert methods == (["oidc"] if counts else [])  # a recovery code proves no factor


def _two_argument_sign_in(request: Request, user_id: str) -> None:
    request.session["user"] = user_id


def _wrapped_sign_in(*args: Any) -> None:  # a decorator's wrapper, without functools.wraps
    _two_argument_sign_in(*args)


@pytest.mark.parametrize(
    ("identity", "proved", "hook", "error", "cause"),
    [
        (None, ("oidc",), complete_sign_in, MalformedInputError, "needs identity=Identity"),
        (CORP, ("pwd",), complete_sign_in, MalformedInputError, "proves 'oidc'"),
        (CORP, None, _two_argument_sign_in, ConfigurationError, "must take"),
        (CORP, None, _wrapped_sign_in, ConfigurationError, "must take"),
    ],
)
def test_a_first_step_that_does_not_fit_is_refused_before_anything_is_kept(
    clock: SettableClock, identity: Any, proved: Any, hook: Any, error: type, cause: str
) -> None:
    refused: list[Exception] = []

    def callback(stepup: Stepup) -> list[Any]:
        async def oidc_callback(request: Request) -> Response:
            try:
                await stepup.begin_sign_in(request, "alice", identity=identity, proved=proved)
            except error as exc:
                refused.append(exc)
            return Response(str(dict(request.session)))

        return [Route("/oidc/callback", oidc_callback)]

    test_app = _app(clock, True, complete_sign_in=hook, extra_routes=callback)
    browser = test_app.browser()
    try:
        assert browser.get("/oidc/callback").text == "{}"  # no pending sign-in
    finally:
        browser.close()
    assert len(refused) == 1
    assert cause in str(refused[0])


def test_an_error_once_signed_in_leaves_nobody_signed_in(clock: SettableClock) -> None:
    down: list[bool] = []

    def subject_loader(request: Request) -> Subject | None:
        user = request.session.get("user")
        if user is None:
            return None
        if down:  # the app's user directory fails just after the sign-in
            raise RuntimeError("the user directory is down")
        return Subject(user, request.session["sid"])

    test_app = _app(clock, True, subject_loader=subject_loader)
    alice = test_app.browser()
    try:
        totp, _ = _enrolled(alice)
        down.append(True)
        with pytest.raises(RuntimeError, match="directory is down"):
            _through_the_second_step(alice, {"code": totp.at(clock())})
        down.clear()
        assert alice.get("/").text == "hello stranger"
    finally:
        alice.close()
    assert [e for e in test_app.events if isinstance(e, SignInRecorded)] == []
