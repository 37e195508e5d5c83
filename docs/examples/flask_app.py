"""A small Flask app with stepup: Flask-Login sign-in with an optional second factor,
an API-key page behind re-authentication, and the tenant flag that turns it on.

Save it as ``flask_app.py`` and run ``STEPUP_DEV=1 flask --app flask_app.py run`` in that
directory (from a stepup checkout: ``STEPUP_DEV=1 flask --app docs/examples/flask_app.py
run``); sign in as alice (password ``alice password``, admin of tenant acme) or bob
(``bob password``). In production set SECRET_KEY and STEPUP_ENCRYPTION_KEY instead.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    redirect,
    render_template_string,
    request,
    url_for,
)
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)

from stepup.adapters.idp.password import PasswordReason, PasswordReauth, hash_password
from stepup.integrations.flask import Stepup
from stepup.integrations.views import throttled_message
from stepup.redirects import safe_return_path_or_default
from stepup.subject import Subject

# Your user table. Hashes are argon2id, made with stepup's recommended parameters.
USERS: dict[str, dict[str, Any]] = {
    "alice": {"hash": hash_password("alice password"), "tenant": "acme", "admin": True},
    "bob": {"hash": hash_password("bob password"), "tenant": "acme", "admin": False},
}

login_manager = LoginManager()
stepup = Stepup()
views = Blueprint("example", __name__)


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return User(user_id) if user_id in USERS else None


# What stepup needs to know about your users ---------------------------------------


@stepup.password_hash_loader
def password_hash(user_id: str) -> str | None:
    user = USERS.get(user_id)
    return user["hash"] if user else None


@stepup.password_rehash_saver
def save_password_hash(user_id: str, new_hash: str) -> None:
    USERS[user_id]["hash"] = new_hash


@stepup.tenant_loader
def tenant_of(subject: Subject) -> str:
    return str(USERS[subject.user_id]["tenant"])


@stepup.is_tenant_admin
def is_tenant_admin(subject: Subject, tenant_id: str) -> bool:
    user = USERS[subject.user_id]
    return user["admin"] is True and user["tenant"] == tenant_id  # only True means yes


@stepup.has_full_access
def has_full_access(subject: Subject) -> bool:
    return USERS[subject.user_id]["admin"] is True


# Your keys --------------------------------------------------------------------------

DEV_KEY_FILE = Path("stepup-dev.key")  # next to stepup.sqlite3; not for production


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


# Your views -------------------------------------------------------------------------

# Every form that changes something carries stepup's CSRF token ({{ stepup_csrf_field() }})
# and its view is wrapped in @stepup.csrf_protect, which refuses a POST without it.
LOGIN_PAGE = """<p>{{ error }}</p><form method="post">{{ stepup_csrf_field() }}
  <input name="username" placeholder="user"> <input name="password" type="password">
  <input type="hidden" name="next" value="{{ next }}"> <button>Sign in</button>
</form>"""

HOME_PAGE = """<p>Hello {{ user }}</p>
<p><a href="/settings/api-key">Show my API key</a> ·
<a href="{{ url_for('stepup.two_factor') }}">Two-factor authentication</a></p>
<form method="post" action="/logout">{{ stepup_csrf_field() }}<button>Sign out</button></form>"""

KEY_PAGE = """<p>Your API key: <code>{{ key }}</code></p>
<form method="post" action="/settings/api-key/regenerate">{{ stepup_csrf_field() }}
  <button>Regenerate</button></form>"""


@views.route("/login", methods=["GET", "POST"])
@stepup.csrf_protect
def login() -> Any:
    # Only a path on this site: never https://evil.example or //evil.example.
    next_page = safe_return_path_or_default(request.values.get("next"))
    if request.method == "GET":
        return render_template_string(LOGIN_PAGE, next=next_page, error="")
    user_id = request.form.get("username", "")
    passwords: PasswordReauth = current_app.extensions["sign_in_passwords"]
    # The same answer, and the same time, for an unknown user as for a wrong password.
    checked = passwords.verify(user_id or "-", request.form.get("password"), password_hash(user_id))
    if checked.reason is PasswordReason.UNAVAILABLE:  # stepup's store did not answer
        error = "Passwords cannot be checked right now: try again in a moment."
        page = render_template_string(LOGIN_PAGE, next=next_page, error=error)
        return page, 503, {"Retry-After": "5"}  # as stepup's own "try again" page
    if checked.reason is PasswordReason.THROTTLED:  # too many guesses at this user name
        # stepup's words, as on its pages: paused, and until when. In English, as this page
        # is; a translated page says .translate(locale) instead of str().
        error = str(throttled_message(checked.retry_at))
        page = render_template_string(LOGIN_PAGE, next=next_page, error=error)
        wait = math.ceil(checked.retry_at - passwords.clock()) if checked.retry_at else 1
        return page, 429, {"Retry-After": str(max(1, wait))}  # in seconds
    if not checked.ok:
        error = "Wrong user name or password."
        return render_template_string(LOGIN_PAGE, next=next_page, error=error), 401
    if stepup.two_factor_required(user_id):
        # The password was right; the code page signs the user in after the second factor.
        return stepup.begin_two_factor(user_id, next=next_page)
    login_user(User(user_id))  # stepup starts a fresh session id here
    return redirect(next_page, 303)


@views.post("/logout")
@login_required
@stepup.csrf_protect
def logout() -> Any:
    logout_user()  # stepup revokes this session's re-authentication here
    return redirect("/login", 303)


@views.get("/")
@login_required
def home() -> str:
    return render_template_string(HOME_PAGE, user=current_user.id)


@views.get("/settings/api-key")
@login_required
@stepup.reauth_required("api_key.read")
def api_key() -> str:
    return render_template_string(KEY_PAGE, key=f"key-of-{current_user.id}")


@views.post("/settings/api-key/regenerate")
@login_required
@stepup.csrf_protect
@stepup.reauth_required("api_key.regenerate", return_to="/settings/api-key")
def regenerate_api_key() -> Any:
    # ... make and store the new key, then show it on the key page
    return redirect(url_for("example.api_key"), 303)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    secret_key, key_id, sealing_key = keys_from_env()
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=secret_key,  # signs the session and stepup's CSRF tokens
        # TOTP secrets are stored sealed with this key. To rotate, add the new key under a
        # new id, keep the old one, and reseal (docs/totp.md, docs/cli.md).
        STEPUP_ENCRYPTION_KEYS={key_id: sealing_key},
        STEPUP_ENCRYPTION_KEY_ID=key_id,
        # Or postgresql+psycopg://..., redis://...; memory:// for tests only.
        STEPUP_STORE=os.environ.get("STEPUP_STORE", "sqlite:///stepup.sqlite3"),
        STEPUP_TOTP_ISSUER="Example",
        # In production the session cookie travels over https only (Secure).
        SESSION_COOKIE_SECURE=not running_locally(),
    )
    if test_config:
        app.config.update(test_config)
    login_manager.init_app(app)
    login_manager.login_view = "example.login"
    stepup.init_app(app)  # the views under /stepup, and every action name checked now
    app.register_blueprint(views)
    with app.app_context():
        stepup.tenant_settings.ensure("acme")  # the flag starts off
        # Sign-in passwords, checked by stepup as it checks re-authentications: an unknown
        # user is checked against a dummy hash (the same cost), and guesses are throttled
        # per user name, sharing the re-authentication's throttle. Its own instance, so a
        # sign-in sends no ReauthSucceeded or ReauthFailed to stepup.events.
        app.extensions["sign_in_passwords"] = PasswordReauth(
            stepup.store, clock=stepup.reauth.clock, on_upgrade=save_password_hash
        )
    return app
