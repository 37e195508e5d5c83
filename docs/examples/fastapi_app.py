"""A small FastAPI app with stepup: a JSON API whose API-key endpoints need a fresh
re-authentication, a production-workspace rule whose context comes from the path, and
the ready-made stepup pages for the browser side.

Save it as ``fastapi_app.py`` and run ``STEPUP_DEV=1 uvicorn --factory fastapi_app:create_app``
in that directory (from a stepup checkout: ``STEPUP_DEV=1 uvicorn --app-dir docs/examples
--factory fastapi_app:create_app``); in production set SECRET_KEY and STEPUP_ENCRYPTION_KEY
instead of STEPUP_DEV; sign in at ``/login`` as alice (password ``alice password``,
admin of tenant acme) or bob.
"""

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
from typing import Annotated, Any

from argon2 import PasswordHasher
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from stepup.adapters.idp.password import (
    PASSWORD_PARAMETERS,
    AsyncPasswordReauth,
    PasswordReason,
    hash_password,
)
from stepup.adapters.storage import AsyncStore, MemoryStore, Store
from stepup.clock import Clock, system_clock
from stepup.integrations.fastapi import Stepup
from stepup.integrations.views import throttled_message
from stepup.reauth import Allowed
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


WORKSPACES = {"prod": "full", "scratch": "sandbox"}
LOGIN_FORM = """<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="{csrf}">
  <input type="hidden" name="next" value="{next}">
  <label>User <input name="username" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button>Sign in</button>
</form>"""
HOME_PAGE = """<p>Hello {user}</p>
<p><a href="/api/key">Show my API key</a> ·
<a href="/stepup/2fa">Two-factor authentication</a></p>
<form method="post" action="/logout">
  <input type="hidden" name="csrf_token" value="{csrf}"><button>Sign out</button>
</form>"""


def create_app(
    *,
    store: AsyncStore | Store | None = None,
    clock: Clock = system_clock,
    hasher: PasswordHasher | None = None,
) -> FastAPI:
    hasher = hasher or PasswordHasher.from_parameters(PASSWORD_PARAMETERS)
    store = store if store is not None else MemoryStore()  # AsyncSQLStore in production
    secret_key, key_id, sealing_key = keys_from_env()
    users = {
        "alice": User(hash_password("alice password", hasher=hasher), admin=True),
        "bob": User(hash_password("bob password", hasher=hasher), admin=False),
    }

    def current_subject(request: Request) -> Subject | None:
        user_id = request.session.get("user")
        return Subject(user_id, request.session["sid"]) if user_id in users else None

    async def complete_sign_in(request: Request, user_id: str) -> None:
        # A new session id at every sign-in: stepup binds grants to it.
        request.session.update(user=user_id, sid=secrets.token_urlsafe(16))

    def renew_session(request: Request) -> None:
        # And after every re-authentication: stepup binds the new grant to the new id.
        request.session["sid"] = secrets.token_urlsafe(16)

    def is_admin(subject: Subject) -> bool:
        return users[subject.user_id].admin is True  # only True means yes

    def password_hash(user_id: str) -> str | None:
        user = users.get(user_id)
        return user.password_hash if user else None

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
        is_tenant_admin=lambda subject, tenant_id: tenant_id == "acme" and is_admin(subject),
        has_full_access=is_admin,
        complete_sign_in=complete_sign_in,
        renew_session=renew_session,
        passwords=AsyncPasswordReauth(store, hasher=hasher, clock=clock),
    )
    # Sign-in passwords, checked by stepup as it checks re-authentications: an unknown
    # user is checked against a dummy hash (the same cost), and guesses are throttled per
    # user name, sharing the re-authentication's throttle (argon2 runs in a thread).
    sign_in_passwords = AsyncPasswordReauth(store, hasher=hasher, clock=clock)

    def workspace_context(name: str) -> dict[str, Any]:
        """The rule's context, as a dependency: FastAPI passes the path parameter."""
        return {"workspace_type": WORKSPACES.get(name, "sandbox")}

    # The dependencies name their actions now, so a typo fails when the app is built.
    # Every endpoint that changes something also checks stepup's CSRF token (the form's
    # csrf_token field, or an X-CSRF-Token header from scripts: see /api/csrf-token).
    csrf = stepup.csrf_protected()
    key_read = stepup.require_reauth("api_key.read")
    key_regenerate = stepup.require_reauth("api_key.regenerate")
    workspace_delete = stepup.require_reauth("workspace.delete", context=workspace_context)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await stepup.tenants.ensure("acme")
        yield

    app = FastAPI(lifespan=lifespan)
    # In production the session cookie travels over https only (Secure).
    app.add_middleware(SessionMiddleware, secret_key=secret_key, https_only=not running_locally())
    stepup.install(app)  # StepupMiddleware, and the stepup views under /stepup

    @app.get("/")
    async def home(request: Request) -> Response:
        subject = current_subject(request)
        if subject is None:
            return HTMLResponse('<a href="/login">Sign in</a>')
        token = html.escape(await stepup.csrf_token(request))
        page = HOME_PAGE.format(user=html.escape(subject.user_id), csrf=token)
        return stepup.set_csrf_cookie(request, HTMLResponse(page))

    @app.get("/login")
    async def login_page(request: Request, next: str = "/") -> Response:
        # Only a path on this site: never https://evil.example or //evil.example.
        next_path = html.escape(safe_return_path_or_default(next))
        token = html.escape(await stepup.csrf_token(request))
        page = LOGIN_FORM.format(csrf=token, next=next_path)
        return stepup.set_csrf_cookie(request, HTMLResponse(page))

    @app.get("/api/csrf-token")
    async def csrf_token(request: Request) -> Response:
        """For scripts: send it back as X-CSRF-Token (other sites cannot read it)."""
        token = await stepup.csrf_token(request)
        return stepup.set_csrf_cookie(request, JSONResponse({"csrf_token": token}))

    @app.post("/login", dependencies=[Depends(csrf)])
    async def login(
        request: Request,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        # The same answer, and the same time, for an unknown user as for a wrong password.
        checked = await sign_in_passwords.verify(username or "-", password, password_hash(username))
        if checked.reason is PasswordReason.UNAVAILABLE:  # stepup's store did not answer
            return Response(
                "passwords cannot be checked right now: try again in a moment",
                status_code=503,
                headers={"Retry-After": "5"},  # as stepup's own "try again" answer
            )
        if checked.reason is PasswordReason.THROTTLED:  # too many guesses at this user name
            # stepup's words, as on its pages: paused, and until when (in English).
            wait = math.ceil(checked.retry_at - clock()) if checked.retry_at else 1
            return Response(
                str(throttled_message(checked.retry_at)),
                status_code=429,
                headers={"Retry-After": str(max(1, wait))},  # in seconds
            )
        if not checked.ok:
            return Response("wrong user or password", status_code=401)
        next_path = safe_return_path_or_default(next)
        second_step = await stepup.begin_sign_in(request, username, next=next_path)
        if second_step is not None:
            return second_step
        await complete_sign_in(request, username)
        return RedirectResponse(next_path, status_code=303)

    @app.post("/logout", dependencies=[Depends(csrf)])
    async def logout(request: Request) -> Response:
        await stepup.sign_out(request)  # revokes this session's re-authentication
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    @app.get("/api/key")
    async def read_key(allowed: Annotated[Allowed, Depends(key_read)]) -> dict[str, Any]:
        return {"key": "sk_example_123", "valid_until": allowed.valid_until}

    @app.post("/api/key/regenerate", dependencies=[Depends(csrf)])
    async def regenerate_key(
        allowed: Annotated[Allowed, Depends(key_regenerate)],
    ) -> dict[str, Any]:
        return {"key": "sk_example_" + secrets.token_hex(4)}

    @app.delete("/api/workspaces/{name}", dependencies=[Depends(csrf)])
    async def delete_workspace(
        name: str, allowed: Annotated[Allowed, Depends(workspace_delete)]
    ) -> dict[str, Any]:
        return {"deleted": name}

    app.state.stepup = stepup
    return app
