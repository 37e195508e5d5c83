"""A tiny Flask app with two users, in two flavours: Flask-Login and an app-given
``subject_loader``, and a test-client wrapper that reads what a person would read."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from argon2 import PasswordHasher
from flask import Flask, abort, redirect, request, session
from flask.testing import FlaskClient

from integrations.tenant_answers import reauth_asked
from stepup import TOTP, Channel
from stepup.adapters.idp.password import CHEAPEST, hash_password
from stepup.integrations.flask import Stepup
from stepup.policy import SENSITIVE, Policy
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

CHEAP = PasswordHasher.from_parameters(CHEAPEST)
TENANT = "acme"
MODES = ("flask_login", "subject_loader")


@dataclass
class User:
    user_id: str
    password: str
    password_hash: str
    tenant_admin: bool
    full_access: bool


def make_users() -> dict[str, User]:
    return {
        "alice": User(
            "alice", "correct horse", hash_password("correct horse", hasher=CHEAP), True, True
        ),
        "bob": User(
            "bob", "battery staple", hash_password("battery staple", hasher=CHEAP), False, False
        ),
    }


def app_policy() -> Policy:
    """The seed's catalog plus one action that also demands a second factor."""
    return Policy.default().extend(
        {"billing.export": replace(SENSITIVE, second_factor=True, description="Exporting billing")}
    )


@dataclass
class TestApp:
    app: Flask
    stepup: Stepup
    users: dict[str, User]
    clock: SettableClock
    mode: str
    events: list[Any]

    __test__ = False

    def client(self) -> Browser:
        return Browser(self.app.test_client(), self)

    def totp_code(self, secret: str, offset: float = 0.0) -> str:
        return TOTP(secret).at(self.clock() + offset)


def make_app(
    mode: str = "subject_loader",
    *,
    store: Any = None,
    clock: SettableClock | None = None,
    config: dict[str, Any] | None = None,
    policy: Policy | None = None,
    template_folder: str | None = None,
    setup: Callable[[Flask, Stepup], None] | None = None,
    ensure_tenant: bool = True,
) -> TestApp:
    clock = clock or SettableClock()
    users = make_users()
    app = Flask(__name__, template_folder=template_folder or "no-templates-here")
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789",
        TESTING=True,
        STEPUP_PASSWORD_HASHER=CHEAP,
        STEPUP_TOTP_ISSUER="Acme",
        **(config or {}),
    )
    stepup = Stepup(policy=policy or app_policy(), clock=clock, store=store)
    events: list[Any] = []
    stepup.events.subscribe(events.append)

    @stepup.password_hash_loader
    def password_hash(user_id: str) -> str | None:
        user = users.get(user_id)
        return user.password_hash if user is not None else None

    @stepup.password_rehash_saver
    def save_hash(user_id: str, new_hash: str) -> None:
        users[user_id].password_hash = new_hash

    @stepup.is_tenant_admin
    def tenant_admin(subject: Subject, tenant_id: str) -> bool:
        # alice administers acme and "ghost", a tenant that does not exist
        return tenant_id in {TENANT, "ghost"} and users[subject.user_id].tenant_admin

    @stepup.has_full_access
    def full_access(subject: Subject) -> bool:
        return users[subject.user_id].full_access

    @stepup.tenant_loader
    def tenant(subject: Subject) -> str:
        return TENANT

    if mode == "flask_login":
        _use_flask_login(app, users)
    else:
        _use_subject_loader(app, stepup)

    @app.post("/login")
    def login() -> Any:
        user = users.get(request.form.get("username", ""))
        if user is None:
            abort(401)
        try:
            CHEAP.verify(user.password_hash, request.form.get("password", ""))
        except Exception:
            abort(401)
        next_page = request.form.get("next", "/home")
        if stepup.two_factor_required(user.user_id):
            return stepup.begin_two_factor(user.user_id, next=next_page)
        _sign_in(app, user.user_id)
        return redirect(next_page, 303)

    @app.get("/home")
    def home() -> str:
        subject = stepup.current_subject()
        return f"home of {subject.user_id if subject else 'nobody'}"

    @app.get("/public")
    def public() -> str:
        return "public"

    @app.get("/api-key")
    @stepup.reauth_required("api_key.read")
    def read_api_key() -> Any:
        decision = stepup.decision
        return {"api_key": "key-123", "reason": decision.reason if decision else None}

    @app.post("/api-key/regenerate")
    @stepup.reauth_required("api_key.regenerate", return_to="/api-key")
    def regenerate_api_key() -> str:
        return "regenerated"

    @app.post("/workspaces/<kind>/delete")
    @stepup.reauth_required(
        "workspace.delete", context=lambda req: {"workspace_type": req.view_args["kind"]}
    )
    def delete_workspace(kind: str) -> str:
        return f"deleted {kind}"

    @app.get("/billing/export")
    @stepup.reauth_required("billing.export")
    def export_billing() -> str:
        return "billing.csv"

    if setup is not None:
        setup(app, stepup)
    stepup.init_app(app)
    if ensure_tenant:
        with app.app_context():
            stepup.tenant_settings.ensure(TENANT)
    return TestApp(app, stepup, users, clock, mode, events)


def _sign_in(app: Flask, user_id: str) -> None:
    completer = app.extensions["stepup"].hooks.login_completer
    if completer is not None:
        completer(user_id, False)
    else:
        from flask_login import login_user

        login_user(app.login_manager._user_callback(user_id))  # type: ignore[attr-defined]


def _use_flask_login(app: Flask, users: dict[str, User]) -> None:
    from flask_login import LoginManager, UserMixin, logout_user

    class LoginUser(UserMixin):
        def __init__(self, user_id: str) -> None:
            self.id = user_id

    manager = LoginManager(app)

    @manager.user_loader
    def load_user(user_id: str) -> LoginUser | None:
        return LoginUser(user_id) if user_id in users else None

    @app.post("/logout")
    def logout() -> Any:
        logout_user()
        return redirect("/public", 303)


def _use_subject_loader(app: Flask, stepup: Stepup) -> None:
    @stepup.subject_loader
    def load_subject() -> Subject | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer token-"):
            return Subject(auth.removeprefix("Bearer token-"), "api-token", channel=Channel.API)
        api_key = request.headers.get("X-API-Key")
        if api_key:
            return Subject(api_key, "api-key", channel=Channel.API_KEY)
        user_id = session.get("user_id")
        if not user_id:
            return None
        sso = session.get("sso")  # (method, issuer, subject, provider) for SSO sign-ins
        identity = (
            Identity(LoginMethod(sso[0]), *sso[1:]) if sso else Identity(LoginMethod.PASSWORD)
        )
        return Subject(user_id, stepup.session_id(), identity)

    @stepup.login_completer
    def complete_login(user_id: str, remember: bool) -> None:
        session["user_id"] = user_id
        stepup.note_sign_in()

    @app.post("/logout")
    def logout() -> Any:
        stepup.sign_out()
        session.pop("user_id", None)
        return redirect("/public", 303)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_SECRET = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_CODES = re.compile(r"<li><code>([^<]+)</code></li>")


class Browser:
    """A test client plus the few things a person would read off the pages."""

    def __init__(self, client: FlaskClient, test_app: TestApp) -> None:
        self.client = client
        self.test_app = test_app

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        return self.client.patch(url, **kwargs)

    def login(self, user_id: str, *, password: str | None = None, next: str = "/home") -> Any:
        user = self.test_app.users[user_id]
        return self.client.post(
            "/login",
            data={"username": user_id, "password": password or user.password, "next": next},
        )

    def csrf(self, page: str = "/stepup/2fa") -> str:
        """The CSRF token from a page (any stepup page with a form)."""
        body = self.client.get(page).get_data(as_text=True)
        match = _CSRF.search(body)
        assert match, f"no CSRF token on {page}"
        return html.unescape(match.group(1))

    def form(self, url: str, data: dict[str, str], *, page: str = "/stepup/2fa", **kw: Any) -> Any:
        return self.client.post(url, data={**data, "csrf_token": self.csrf(page)}, **kw)

    def reauth(self, location: str, password: str, **extra: str) -> Any:
        """Submit the re-auth form found at ``location`` (the 303's target)."""
        page = self.client.get(location)
        assert page.status_code == 200
        body = page.get_data(as_text=True)
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', body))
        fields = {k: html.unescape(v) for k, v in fields.items()}
        return self.client.post(
            "/stepup/reauth/password", data={**fields, "password": password, **extra}
        )

    def enrol(self) -> tuple[str, list[str]]:
        """Enable 2FA; returns the secret and the recovery codes."""
        page = self.form("/stepup/2fa/enrol", {})
        assert page.status_code == 200
        secret = _SECRET.search(page.get_data(as_text=True))
        assert secret
        key = secret.group(1).replace(" ", "")
        done = self.form("/stepup/2fa/confirm", {"code": self.test_app.totp_code(key)})
        assert done.status_code == 200, done.get_data(as_text=True)
        return key, _CODES.findall(done.get_data(as_text=True))


def flag_body(on: bool) -> dict[str, Any]:
    return {
        "data": {
            "type": "tenant",
            "attributes": {"feature_flags": {"sensitive_actions_reauth": on}},
        }
    }


def _patch_flag(browser: Browser, on: bool) -> Any:
    return browser.patch(
        f"/stepup/tenants/{TENANT}",
        data=json.dumps(flag_body(on)),
        content_type="application/vnd.api+json",
    )


def set_flag(browser: Browser, on: bool = True) -> Any:
    """The admin's PATCH of the flag. Changing tenant settings needs a fresh
    re-authentication whatever the flag says (``tenant.settings.update``): when the
    endpoint asks for one, the grant it asks for is recorded for this session, the PATCH
    sent again, and every grant of the user revoked after, so the test goes on as a
    session that has not re-authenticated. Tests of the endpoint itself use ``browser.patch``."""
    response = _patch_flag(browser, on)
    asked = reauth_asked(response.status_code, response.get_json(silent=True))
    if asked is None:
        return response
    user_id = fresh_grant(browser, asked["methods"])
    response = _patch_flag(browser, on)
    with browser.test_app.app.app_context():
        browser.test_app.app.extensions["stepup"].reauth.password_changed(user_id)
    return response


def fresh_grant(browser: Browser, methods: list[str] | tuple[str, ...] = ("pwd",)) -> str:
    """Test plumbing: record a grant for this browser's session (the real journey is
    the re-auth page; tests about something else skip it). Returns the user id."""
    app = browser.test_app.app
    with browser.client.session_transaction() as session:
        user_id = session.get("user_id") or session.get("_user_id")
        sid = session.get("_stepup_sid")
    assert isinstance(user_id, str)
    assert isinstance(sid, str)
    with app.app_context():
        app.extensions["stepup"].reauth.record(Subject(user_id, sid), methods)
    return user_id


def changes_factors(url: str) -> bool:
    """Is ``url`` a passkey endpoint guarded whatever the tenant's flag (``passkey.add``,
    ``passkey.remove``)?"""
    return "/stepup/passkeys/register/" in url or (
        url.startswith("/stepup/passkeys/") and url.endswith("/remove")
    )


def confirm_factors(browser: Browser) -> None:
    """Test plumbing: a fresh grant that covers adding and removing a passkey (guarded
    whatever the flag): the password, or the passkey of a user who has one. Registering
    or removing one revokes it again. Tests of the guard itself post without it."""
    fresh_grant(browser, ("pwd", "phr"))
