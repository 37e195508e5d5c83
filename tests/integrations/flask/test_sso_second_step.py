"""An OIDC sign-in that goes through stepup's second step (a code, a recovery code):
the session keeps the OIDC identity ``begin_two_factor(identity=...)`` gave, so its
re-authentications go to the provider, and with ``sign_in_counts`` the sign-in counts
with ``oidc`` plus what the second step proved. A sign-in that fails once the user is
signed in leaves nobody signed in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, session

from integrations.flask.flask_support import Browser, TestApp, make_app, set_flag
from stepup.adapters.idp.oidc import OIDCProviderConfig, OIDCReauth
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.events import SignInRecorded
from stepup.integrations.flask import Stepup
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

from .flask_support import app_policy

ISSUER = "https://idp.example"
CORP = Identity(LoginMethod.OIDC, issuer=ISSUER, subject="alice-sub", provider="corp")
_VERIFY = "/stepup/2fa/verify"
_PROVIDER_BUTTON = 'action="/stepup/reauth/oidc/start"'


def _oidc_callback(app: Flask, stepup: Stepup) -> None:
    """The app's own OIDC callback, once the ID token is checked: a user with a second
    factor goes through stepup's (the provider logged alice in 5 seconds ago)."""

    @app.get("/oidc/callback")
    def oidc_callback() -> Any:
        auth_time = stepup.reauth.clock() - 5
        return stepup.begin_two_factor(
            "alice", next="/home", identity=CORP, authenticated_at=auth_time
        )

    @app.get("/oidc/callback/mfa")
    def oidc_callback_mfa() -> Any:  # the ID token's amr says the provider asked for two
        auth_time = stepup.reauth.clock() - 5
        return stepup.begin_two_factor(
            "alice", identity=CORP, proved=("oidc", "mfa"), authenticated_at=auth_time
        )


@pytest.fixture(params=[False, True], ids=["counts_off", "counts_on"])
def counts(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def sso_app(counts: bool) -> Iterator[TestApp]:
    clock = SettableClock()
    store = MemoryStore()
    config = OIDCProviderConfig(
        issuer=ISSUER,
        client_id="app",
        client_secret="app-secret",
        redirect_uri="https://app.example/stepup/reauth/oidc/callback",
        name="corp",
    )
    provider = OIDCReauth(config, store, clock=clock)  # never reached: only its button
    policy = app_policy().with_sign_in_counts(counts)
    yield make_app(
        "flask_login",
        clock=clock,
        store=store,
        policy=policy,
        config={"STEPUP_OIDC_PROVIDERS": {"corp": provider}},
        setup=_oidc_callback,
    )
    provider.close()


def _enrolled_alice(test_app: TestApp) -> tuple[str, list[str]]:
    """alice turns 2FA on (and the tenant's flag), then signs out: her TOTP secret and
    recovery codes."""
    alice = test_app.client()
    alice.login("alice")
    assert set_flag(alice).status_code == 200
    secret, codes = alice.enrol()
    alice.post("/logout")
    test_app.clock.advance(30)  # the code that confirmed the enrolment is spent
    return secret, codes


def _through_the_second_step(
    browser: Browser, data: dict[str, str], callback: str = "/oidc/callback"
) -> Any:
    started = browser.get(callback)
    assert started.status_code == 303
    assert started.headers["Location"] == _VERIFY
    assert browser.get("/home").get_data(as_text=True) == "home of nobody"
    return browser.form(_VERIFY, data, page=_VERIFY)


def _reauth_page(browser: Browser) -> str:
    page = browser.get("/stepup/reauth?action=api_key.read&next=/api-key")
    assert page.status_code == 200
    return str(page.get_data(as_text=True))


def test_after_a_code_the_sso_user_reauthenticates_at_the_provider(
    sso_app: TestApp, counts: bool
) -> None:
    secret, _ = _enrolled_alice(sso_app)
    alice = sso_app.client()
    done = _through_the_second_step(alice, {"code": sso_app.totp_code(secret)})
    assert done.status_code == 303
    assert done.headers["Location"] == "/home"
    assert alice.get("/home").get_data(as_text=True) == "home of alice"

    page = _reauth_page(alice)
    assert _PROVIDER_BUTTON in page
    assert "Continue with corp" in page
    assert 'type="password"' not in page

    recorded = [e for e in sso_app.events if isinstance(e, SignInRecorded)]
    if counts:  # oidc from the provider, dated by its auth_time, plus the code
        assert [(e.user_id, e.method) for e in recorded] == [("alice", "oidc,otp")]
        assert recorded[0].authenticated_at == sso_app.clock() - 5
        assert alice.get("/api-key").json["reason"] == "fresh_grant"
    else:
        assert recorded == []
        refused = alice.get("/api-key")
        assert refused.status_code == 303
        assert _PROVIDER_BUTTON in alice.get(refused.headers["Location"]).get_data(as_text=True)


def test_after_a_recovery_code_the_sign_in_counts_with_the_provider_only(
    sso_app: TestApp, counts: bool
) -> None:
    _, codes = _enrolled_alice(sso_app)
    alice = sso_app.client()
    done = _through_the_second_step(alice, {"recovery_code": codes[0]})
    assert done.status_code == 303
    assert alice.get("/home").get_data(as_text=True) == "home of alice"
    assert _PROVIDER_BUTTON in _reauth_page(alice)
    methods = [e.method for e in sso_app.events if isinstance(e, SignInRecorded)]
    assert methods == (["oidc"] if counts else [])  # a recovery code proves no factor


def test_what_the_provider_proved_joins_the_sign_in(sso_app: TestApp, counts: bool) -> None:
    secret, _ = _enrolled_alice(sso_app)
    alice = sso_app.client()
    done = _through_the_second_step(
        alice, {"code": sso_app.totp_code(secret)}, "/oidc/callback/mfa"
    )
    assert done.status_code == 303
    assert _PROVIDER_BUTTON in _reauth_page(alice)
    methods = [e.method for e in sso_app.events if isinstance(e, SignInRecorded)]
    assert methods == (["mfa,oidc,otp"] if counts else [])


@pytest.mark.parametrize(
    ("identity", "proved", "cause"),
    [
        (None, ("oidc",), "needs identity=Identity"),
        (None, ("saml", "pwd"), "needs identity=Identity"),
        (CORP, ("pwd",), "proves 'oidc'"),
        (CORP, ("oidc", "recovery"), "proved must be some of"),
        (Identity(LoginMethod.OIDC, provider="corp"), None, "issuer and subject"),
        ("oidc", None, "must be a stepup.subject.Identity"),
    ],
)
def test_a_first_step_that_does_not_fit_is_refused_before_anything_is_kept(
    identity: Any, proved: Any, cause: str
) -> None:
    test_app = make_app("flask_login")
    with test_app.app.test_request_context("/oidc/callback"):
        with pytest.raises(MalformedInputError, match=cause):
            test_app.stepup.begin_two_factor("alice", identity=identity, proved=proved)
        assert dict(session) == {}  # no pending sign-in


def _failing_loader(app: Flask, stepup: Stepup) -> None:
    """The app's user directory fails just after the second step signed alice in."""

    @stepup.subject_loader
    def load_subject() -> Subject | None:
        user_id = session.get("user_id")
        if user_id is None:
            return None
        if app.config.get("DIRECTORY_DOWN"):
            raise RuntimeError("the user directory is down")
        return Subject(user_id, stepup.session_id())

    _oidc_callback(app, stepup)


def test_an_error_once_signed_in_leaves_nobody_signed_in() -> None:
    test_app = make_app(
        "subject_loader",
        policy=app_policy().with_sign_in_counts(),
        config={"PROPAGATE_EXCEPTIONS": False},
        setup=_failing_loader,
    )
    secret, _ = _enrolled_alice(test_app)
    alice = test_app.client()
    test_app.app.config["DIRECTORY_DOWN"] = True
    failed = _through_the_second_step(alice, {"code": test_app.totp_code(secret)})
    assert failed.status_code == 500
    test_app.app.config["DIRECTORY_DOWN"] = False
    assert alice.get("/home").get_data(as_text=True) == "home of nobody"
    assert alice.get(_VERIFY).status_code == 400  # the sign-in has to start again
    assert [e for e in test_app.events if isinstance(e, SignInRecorded)] == []
