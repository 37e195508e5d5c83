"""A small Starlette app with stepup: password sign-in with an optional second factor,
an API-key page behind re-authentication, and the tenant flag that turns it on.

Save it as ``starlette_app.py`` and run ``STEPUP_DEV=1 uvicorn --factory starlette_app:create_app``
in that directory (from a stepup checkout: ``STEPUP_DEV=1 uvicorn --app-dir docs/examples
--factory starlette_app:create_app``); in production set SECRET_KEY and STEPUP_ENCRYPTION_KEY
instead of STEPUP_DEV; sign in as alice (password ``alice password``, admin of
tenant acme) or bob (``bob password``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import math
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from stepup.adapters.idp.password import (
    PASSWORD_PARAMETERS,
    AsyncPasswordReauth,
    PasswordReason,
    hash_password,
)
from stepup.adapters.storage import AsyncStore, MemoryStore, Store
from stepup.clock import Clock, system_clock
from stepup.integrations.starlette import Stepup
from stepup.integrations.views import throttled_message
from stepup.redirects import safe_return_path_or_default
from stepup.sealing import SecretBox
from stepup.subject import Subject

# Your keys --------------------------------------------------------------------------

DEV_KEY_FILE = Path("stepup-dev.key")  # where your database would be; not for production


def running_locally() -> bool:
    """STEPUP_DEV=1: a run on your machine; never in production."""
    return os.environ.get("STEPUP_DEV") == "1"


MAKE_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def keys_from_env() -> tuple[str, str, bytes]:
    """SECRET_KEY signs sessions and CSRF tokens; STEPUP_ENCRYPTION_KEY (32 bytes, urlsafe
    base64) seals the TOTP secrets in the database, under key id "k1". Without them the app
    does not start, unless STEPUP_DEV=1: then a sealing key kept in stepup-dev.key, under
    its own key id "dev" (so it can stand next to k1 to reseal), and a session key that
    lasts until the app stops. Returns the session key, the sealing key's id and the key."""
    secret_key = os.environ.get("SECRET_KEY", "")
    sealing_key = os.environ.get("STEPUP_ENCRYPTION_KEY", "")
    missing = " and ".join(
        name for name in ("SECRET_KEY", "STEPUP_ENCRYPTION_KEY") if not os.environ.get(name)
    )
    if missing and not running_locally():
        raise SystemExit(
            f"set {missing} (or STEPUP_DEV=1 to try it locally); make a key: {MAKE_KEY}"
        )
    if not secret_key:
        secret_key = secrets.token_urlsafe(32)
        print("STEPUP_DEV=1: a new SECRET_KEY for this run; sessions end when the app stops")
    key_id = "k1"
    if not sealing_key:
        sealing_key, key_id = dev_sealing_key(DEV_KEY_FILE), "dev"
    try:
        key = base64.urlsafe_b64decode(sealing_key.encode("ascii") + b"==")
    except (binascii.Error, UnicodeEncodeError):
        key = b""
    if len(key) != 32:
        raise SystemExit(f"STEPUP_ENCRYPTION_KEY must be 32 bytes in urlsafe base64: {MAKE_KEY}")
    return secret_key, key_id, key


def dev_sealing_key(path: Path) -> str:
    """The development sealing key: read from ``path``, made there (0600) on first start.
    Written whole to a file of its own, then linked to ``path`` (which fails if another
    process got there first): two processes starting at once (test workers) never read
    a half-written key, and both use the one that was linked."""
    if not path.exists():
        fd, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(written, path)
        finally:
            os.unlink(written)
    key = path.read_text().strip()
    print(f"STEPUP_DEV=1: sealing TOTP secrets with the development key in {path.resolve()}")
    return key


@dataclass
class User:
    password_hash: str
    admin: bool


# Every form that changes something carries stepup's CSRF token, and its view checks it
# with stepup.csrf_ok before doing anything (Starlette has no CSRF protection of its own).
LOGIN_FORM = """<p>{error}</p><form method="post">
  <input type="hidden" name="csrf_token" value="{csrf}">
  <input type="hidden" name="next" value="{next}">
  <label>User <input name="username" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button>Sign in</button>
</form>"""


def create_app(
    *,
    store: AsyncStore | Store | None = None,
    clock: Clock = system_clock,
    hasher: PasswordHasher | None = None,
) -> Starlette:
    hasher = hasher or PasswordHasher.from_parameters(PASSWORD_PARAMETERS)
    store = store if store is not None else MemoryStore()  # AsyncSQLStore in production
    secret_key, key_id, sealing_key = keys_from_env()

    # Your user table. Hashes are argon2id, made with stepup's recommended parameters.
    users = {
        "alice": User(hash_password("alice password", hasher=hasher), admin=True),
        "bob": User(hash_password("bob password", hasher=hasher), admin=False),
    }

    # What stepup needs to know about your users -----------------------------------

    def current_subject(request: Request) -> Subject | None:
        user_id = request.session.get("user")
        return Subject(user_id, request.session["sid"]) if user_id in users else None

    async def complete_sign_in(request: Request, user_id: str) -> None:
        # A new session id at every sign-in: stepup binds grants to it.
        request.session.update(user=user_id, sid=secrets.token_urlsafe(16))

    def renew_session(request: Request) -> None:
        # And after every re-authentication: stepup binds the new grant to the new id.
        request.session["sid"] = secrets.token_urlsafe(16)

    def password_hash(user_id: str) -> str | None:
        user = users.get(user_id)
        return user.password_hash if user else None

    async def save_rehash(user_id: str, new_hash: str) -> None:
        users[user_id].password_hash = new_hash

    def is_admin(subject: Subject) -> bool:
        return users[subject.user_id].admin is True  # only True means yes

    stepup = Stepup(
        store=store,
        secret_key=secret_key,
        # TOTP secrets are stored sealed with this key. To rotate, add the new key under a
        # new id, keep the old one, and reseal (docs/totp.md, docs/cli.md).
        secret_box=SecretBox({key_id: sealing_key}, current=key_id),
        clock=clock,
        subject_loader=current_subject,
        tenant_loader=lambda request: "acme",
        password_hash_loader=password_hash,
        password_rehash_saver=save_rehash,
        is_tenant_admin=lambda subject, tenant_id: tenant_id == "acme" and is_admin(subject),
        has_full_access=is_admin,
        complete_sign_in=complete_sign_in,
        renew_session=renew_session,
        login_url="/login",
        passwords=AsyncPasswordReauth(store, hasher=hasher, clock=clock),
    )
    # Sign-in passwords, checked by stepup as it checks re-authentications: an unknown
    # user is checked against a dummy hash (the same cost), and guesses are throttled per
    # user name, sharing the re-authentication's throttle (argon2 runs in a thread).
    sign_in_passwords = AsyncPasswordReauth(
        store, hasher=hasher, clock=clock, on_upgrade=save_rehash
    )

    # Your views ---------------------------------------------------------------------

    async def page(request: Request, body: str, status: int = 200) -> Response:
        """An HTML page whose forms carry the CSRF token (``{csrf}`` in ``body``)."""
        token = html.escape(await stepup.csrf_token(request))
        return stepup.set_csrf_cookie(request, HTMLResponse(body.replace("{csrf}", token), status))

    def refused() -> Response:
        return HTMLResponse("This form expired or did not come from this site.", 403)

    async def home(request: Request) -> Response:
        user = request.session.get("user")
        if user is None:
            return HTMLResponse('<a href="/login">Sign in</a>')
        return await page(
            request,
            f"<p>Hello {html.escape(user)}</p>"
            '<p><a href="/api-key">Show my API key</a> · '
            '<a href="/stepup/2fa">Two-factor authentication</a></p>'
            '<form method="post" action="/logout">'
            '<input type="hidden" name="csrf_token" value="{csrf}"><button>Sign out</button>'
            "</form>",
        )

    async def login_page(
        request: Request, next_path: str, error: str = "", status: int = 200
    ) -> Response:
        form = LOGIN_FORM.replace("{next}", html.escape(next_path))
        form = form.replace("{error}", html.escape(error))
        return await page(request, form, status)

    async def login(request: Request) -> Response:
        if request.method == "GET":
            # Only a path on this site: never https://evil.example or //evil.example.
            next_path = safe_return_path_or_default(request.query_params.get("next"))
            return await login_page(request, next_path)
        form = await request.form()
        if not await stepup.csrf_ok(request, form):
            return refused()
        user_id = str(form.get("username", ""))
        next_path = safe_return_path_or_default(form.get("next"))
        # The same answer, and the same time, for an unknown user as for a wrong password.
        checked = await sign_in_passwords.verify(
            user_id or "-", form.get("password"), password_hash(user_id)
        )
        if checked.reason is PasswordReason.UNAVAILABLE:  # stepup's store did not answer
            error = "Passwords cannot be checked right now: try again in a moment."
            unavailable = await login_page(request, next_path, error, 503)
            unavailable.headers["Retry-After"] = "5"  # as stepup's own "try again" page
            return unavailable
        if checked.reason is PasswordReason.THROTTLED:  # too many guesses at this user name
            # stepup's words, as on its pages: paused, and until when. In English, as this
            # page is; a translated page says .translate(locale) instead of str().
            error = str(throttled_message(checked.retry_at))
            paused = await login_page(request, next_path, error, 429)
            wait = math.ceil(checked.retry_at - clock()) if checked.retry_at else 1
            paused.headers["Retry-After"] = str(max(1, wait))  # in seconds
            return paused
        if not checked.ok:
            return await login_page(request, next_path, "Wrong user name or password.", 401)
        second_step = await stepup.begin_sign_in(request, user_id, next=next_path)
        if second_step is not None:  # 2FA is on: stepup asks for the code, then calls
            return second_step  # complete_sign_in and sends the user to next_path
        await complete_sign_in(request, user_id)
        return RedirectResponse(next_path, status_code=303)

    async def logout(request: Request) -> Response:
        if not await stepup.csrf_ok(request, await request.form()):
            return refused()
        await stepup.sign_out(request)  # revokes this session's re-authentication
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    @stepup.requires_reauth("api_key.read")
    async def api_key(request: Request) -> Response:
        return HTMLResponse("<p>Your API key: <code>sk_example_123</code></p>")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await stepup.tenants.ensure("acme")  # the flag starts off, as the seed says
        yield

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/api-key", api_key),
        ],
        # In production the session cookie travels over https only (Secure).
        middleware=[
            Middleware(SessionMiddleware, secret_key=secret_key, https_only=not running_locally())
        ],
        lifespan=lifespan,
    )
    stepup.install(app)  # StepupMiddleware, and the stepup views under /stepup
    app.state.stepup = stepup
    return app
