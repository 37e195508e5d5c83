"""A tiny Starlette (or FastAPI) app with two users, and a browser that drives it.

alice is tenant admin of ``acme`` and has full access; bob is neither. Passwords are
hashed with the password adapter's CHEAPEST preset, so the tests stay fast.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from integrations.tenant_answers import reauth_asked
from stepup.adapters.idp.password import CHEAPEST, AsyncPasswordReauth, hash_password
from stepup.errors import StoreUnavailableError
from stepup.events import EventBus, StepupEvent
from stepup.integrations.starlette import Stepup
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import Channel

TENANT = "acme"
SECRET_KEY = "test-secret-key-for-stepup-only"
PASSWORDS = {"alice": "alice's long passphrase", "bob": "bob's long passphrase"}
TOKENS = {"alice-token": "alice"}
CHEAP = PasswordHasher.from_parameters(CHEAPEST)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_MANUAL_KEY = re.compile(r'id="stepup-manual-key">([A-Z2-7 ]+)<')
_RECOVERY = re.compile(r"<li>(?:<code>)?((?:[a-z2-7]{4}-){5}[a-z2-7]{4})(?:</code>)?</li>")


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


@dataclass
class TestApp:
    __test__ = False  # not a test class

    app: Starlette
    stepup: Stepup
    clock: SettableClock
    store: Any
    hashes: dict[str, str]
    events: list[StepupEvent] = field(default_factory=list)
    rehashed: list[str] = field(default_factory=list)

    def browser(self) -> Browser:
        return Browser(self)


class Browser:
    """A TestClient that keeps its cookies, like one browser, with journey helpers."""

    def __init__(self, test_app: TestApp) -> None:
        self.test_app = test_app
        self.client = TestClient(test_app.app, follow_redirects=False)
        self.client.__enter__()  # runs the app's lifespan

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, **kwargs)

    def login(self, user: str, password: str | None = None, next: str = "/") -> Any:
        data = {"user": user, "password": password or PASSWORDS[user], "next": next}
        return self.client.post("/login", data=data)

    def login_sso(self, user: str, method: str, issuer: str, subject: str, provider: str) -> Any:
        data = {
            "user": user,
            "method": method,
            "issuer": issuer,
            "subject": subject,
            "provider": provider,
        }
        return self.client.post("/login-sso", data=data)

    def logout(self) -> Any:
        return self.client.post("/logout")

    def form(self, url: str, data: dict[str, str] | None = None, *, to: str = "") -> Any:
        """GET a stepup form page, then POST it back (or to ``to``) with its CSRF token."""
        page = self.client.get(url)
        assert page.status_code == 200, page.text
        fields = {"csrf_token": csrf_token(page.text), **(data or {})}
        return self.client.post(to or url, data=fields)

    def reauth(self, location: str, password: str) -> Any:
        """Follow a 303 to the re-auth page and submit ``password``."""
        return self.form(location, {"password": password})

    def patch_tenant(self, flag: object, tenant: str = TENANT) -> Any:
        body = {
            "data": {
                "type": "tenant",
                "attributes": {"feature_flags": {"sensitive_actions_reauth": flag}},
            }
        }
        headers = {"Content-Type": "application/vnd.api+json"}
        url = f"/stepup/tenants/{tenant}"
        response = self.client.patch(url, json=body, headers=headers)
        asked = reauth_asked(response.status_code, response.json())
        if asked is None:
            return response
        # Changing tenant settings needs a fresh re-authentication whatever the flag says
        # (tenant.settings.update): record the grant the endpoint asks for, PATCH again,
        # then revoke every grant of the user, so the test goes on as a session that has
        # not re-authenticated. Tests of the endpoint itself use client.patch.
        self.client.post("/_test/grant", data={"method": asked["methods"]})
        response = self.client.patch(url, json=body, headers=headers)
        self.client.post("/_test/revoke")
        return response


def enrol(browser: Browser) -> tuple[TOTP, list[str]]:
    """Turn 2FA on through the enrolment pages; the authenticator and recovery codes."""
    settings = browser.get("/stepup/2fa")
    assert settings.status_code == 200, settings.text
    page = browser.post("/stepup/2fa/enrol", data={"csrf_token": csrf_token(settings.text)})
    assert page.status_code == 200, page.text
    assert "<svg" in page.text
    key = _MANUAL_KEY.search(page.text)
    assert key is not None
    totp = TOTP(key.group(1).replace(" ", ""))
    code = totp.at(browser.test_app.clock())
    data = {"csrf_token": csrf_token(page.text), "code": code}
    done = browser.post("/stepup/2fa/confirm", data=data)
    assert done.status_code == 200, done.text
    assert done.headers["cache-control"] == "no-store"
    codes = _RECOVERY.findall(done.text)
    assert len(codes) == 10
    return totp, codes


def next_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["next"][0]


def make_app(
    *,
    clock: SettableClock,
    store: Any,
    stepup_class: type[Stepup] = Stepup,
    app_class: type[Starlette] = Starlette,
    extra_routes: Callable[[Stepup], list[Any]] | None = None,
    setup: Callable[[], Any] | None = None,
    teardown: Callable[[], Any] | None = None,
    ensure_tenant: bool = True,
    **options: Any,
) -> TestApp:
    hashes = {user: hash_password(pw, hasher=CHEAP) for user, pw in PASSWORDS.items()}
    events: list[StepupEvent] = []
    bus = EventBus(events.append)
    rehashed: list[str] = []

    def subject_loader(request: Request) -> Subject | None:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            user = TOKENS.get(auth[7:])
            return None if user is None else Subject(user, f"token:{auth[7:]}", channel=Channel.API)
        user, sid = request.session.get("user"), request.session.get("sid")
        if user is None:
            return None
        sso = request.session.get("sso")  # [method, issuer, subject, provider]
        if sso is None:
            return Subject(user, sid)
        return Subject(user, sid, Identity(LoginMethod(sso[0]), sso[1], sso[2], sso[3]))

    async def tenant_loader(request: Request) -> str:
        return TENANT

    async def password_hash_loader(user_id: str) -> str | None:
        return hashes.get(user_id)

    async def password_rehash_saver(user_id: str, new_hash: str) -> None:
        hashes[user_id] = new_hash
        rehashed.append(user_id)

    def complete_sign_in(request: Request, user_id: str) -> None:
        request.session["user"] = user_id
        request.session["sid"] = secrets.token_urlsafe(8)

    settings: dict[str, Any] = {
        "store": store,
        "secret_key": SECRET_KEY,
        "clock": clock,
        "events": bus,
        "subject_loader": subject_loader,
        "tenant_loader": tenant_loader,
        "password_hash_loader": password_hash_loader,
        "password_rehash_saver": password_rehash_saver,
        "is_tenant_admin": lambda subject, tenant: subject.user_id == "alice",
        "has_full_access": lambda subject: subject.user_id == "alice",
        "complete_sign_in": complete_sign_in,
        "passwords": AsyncPasswordReauth(store, hasher=CHEAP, clock=clock, events=bus),
        **options,
    }
    stepup = stepup_class(**settings)

    async def home(request: Request) -> Response:
        return PlainTextResponse(f"hello {request.session.get('user', 'stranger')}")

    async def login(request: Request) -> Response:
        form = await request.form()
        user, password = str(form.get("user")), str(form.get("password"))
        try:
            CHEAP.verify(hashes.get(user, ""), password)
        except (VerificationError, ValueError):
            return PlainTextResponse("wrong password", 401)
        try:
            waiting = await stepup.begin_sign_in(request, user, next=str(form.get("next", "/")))
        except StoreUnavailableError:  # cannot tell whether 2FA is on: do not sign in
            return PlainTextResponse("try again soon", 503)
        if waiting is not None:
            return waiting
        complete_sign_in(request, user)
        return RedirectResponse(str(form.get("next", "/")), 303)

    async def login_sso(request: Request) -> Response:
        """Stands in for the app's SSO sign-in: who signed in, through which provider."""
        form = await request.form()
        complete_sign_in(request, str(form["user"]))
        fields = ("method", "issuer", "subject", "provider")
        request.session["sso"] = [str(form[name]) for name in fields]
        return RedirectResponse("/", 303)

    async def logout(request: Request) -> Response:
        await stepup.sign_out(request)
        request.session.clear()
        return RedirectResponse("/", 303)

    @stepup.requires_reauth("api_key.read")
    async def read_key(request: Request) -> Response:
        return PlainTextResponse("the key")

    @stepup.requires_reauth("api_key.regenerate")
    def regenerate_key(request: Request) -> Response:  # a sync endpoint, run in a thread
        return PlainTextResponse("regenerated")

    @stepup.requires_reauth(
        "workspace.delete", context=lambda request: {"workspace_type": request.path_params["kind"]}
    )
    async def delete_workspace(request: Request) -> Response:
        return PlainTextResponse("deleted")

    async def test_grant(request: Request) -> Response:
        """Test plumbing: a grant for this session (see Browser.patch_tenant)."""
        subject = await stepup.subject(request)
        assert subject is not None
        methods = (await request.form()).getlist("method")
        await stepup.reauth.record(subject, [str(m) for m in methods])
        return Response(status_code=204)

    async def test_revoke(request: Request) -> Response:
        subject = await stepup.subject(request)
        assert subject is not None
        await stepup.reauth.password_changed(subject.user_id)
        return Response(status_code=204)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if setup is not None:
            await setup()
        if ensure_tenant:
            await stepup.tenants.ensure(TENANT)
        yield
        if teardown is not None:
            await teardown()

    routes = [
        Route("/", home),
        Route("/login", login, methods=["POST"]),
        Route("/login-sso", login_sso, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api-key", read_key),
        Route("/api-key/regenerate", regenerate_key, methods=["POST"]),
        Route("/workspaces/{kind}", delete_workspace, methods=["DELETE"]),
        Route("/_test/grant", test_grant, methods=["POST"]),
        Route("/_test/revoke", test_revoke, methods=["POST"]),
        *(extra_routes(stepup) if extra_routes is not None else []),
    ]
    app = app_class(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET_KEY)],
        lifespan=lifespan,
    )
    stepup.install(app)
    return TestApp(app, stepup, clock, store, hashes, events, rehashed)


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
    assert browser.post("/_test/grant", data={"method": ["pwd", "phr"]}).status_code == 204
