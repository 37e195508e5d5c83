"""Flask's sign-in second step for a user whose TOTP secret is in a configuration file
(``TwoFactor(config_users=...)``): a recovery code posted there is answered as Starlette
answers it, 400 with the code page saying the account has none, never a 500; the code
from the authenticator app then signs in."""

from __future__ import annotations

import html
import re

import pytest

from integrations.flask.flask_support import TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.config_users import ConfigUsers
from stepup.integrations.flask._state import AppState
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor

VERIFY = "/stepup/2fa/verify"
FILE_SECRET = "BURQXV4JIZYHVCRIGLOLMJW5PQ7YT5EC"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(page: str) -> str:
    match = _CSRF.search(page)
    assert match, page
    return html.unescape(match.group(1))


@pytest.fixture
def file_app(mode: str, clock: SettableClock) -> TestApp:
    test_app = make_app(mode, clock=clock, store=MemoryStore())
    app_state: AppState = test_app.app.extensions["stepup"]
    users = ConfigUsers.from_mapping({"users": {"bob": {"otp_secret": FILE_SECRET}}})
    app_state.two_factor = TwoFactor(
        app_state.store,
        issuer="Acme",
        box=app_state.two_factor.box,
        clock=clock,
        config_users=users,
    )
    test_app.app.config["PROPAGATE_EXCEPTIONS"] = False  # an error is the 500 a browser gets
    return test_app


def test_a_recovery_code_at_sign_in_asks_for_the_code(file_app: TestApp) -> None:
    bob = file_app.client()
    signed = bob.login("bob")
    assert signed.status_code == 303
    assert signed.headers["Location"].endswith(VERIFY)
    token = _token(bob.get(VERIFY).get_data(as_text=True))
    recovery = "aaaa-bbbb-cccc-dddd-eeee-ffff"
    answer = bob.post(VERIFY, data={"csrf_token": token, "recovery_code": recovery})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "This account has no recovery codes." in page
    assert "Enter the code from your authenticator app." in page
    assert bob.get("/home").get_data(as_text=True) == "home of nobody"
    code = TOTP(FILE_SECRET).at(file_app.clock())
    done = bob.post(VERIFY, data={"csrf_token": _token(page), "code": code})
    assert done.status_code == 303
    assert bob.get("/home").get_data(as_text=True) == "home of bob"
