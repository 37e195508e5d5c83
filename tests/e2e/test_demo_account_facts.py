"""What the demo's pages say about a user is what is true: the Account page names the
second step once there is one (it said "a password" after a passkey was added), the 2FA
page says how many recovery codes are left once one was used, the sign-in page lists
every demo account (the test provider's alice too), and no page asks for a favicon the
demo does not have."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from e2e.demo_server import START
from e2e.journeys import MEMBER, PASSWORDS
from e2e.test_demo_app import csrf, sign_in
from e2e.test_demo_audit import enrol, sign_out
from e2e.test_demo_passkeys import _add
from stepup import TOTP
from stepup.adapters.idp.password import CHEAPEST
from stepup.demo import DemoSettings, OIDCSettings, create_app
from stepup.demo.data import User
from stepup.demo.views_account import sign_in_steps
from stepup.signin import SecondFactors
from stepup.testing import SettableClock


def _signs_in_with(client: Any) -> str:
    found = re.search(r'<dd id="account-sign-in">([^<]*)</dd>', client.get("/account").text)
    assert found is not None, "no sign-in line on the Account page"
    return found.group(1)


def test_the_account_page_names_the_second_step(app_client: tuple[Any, SettableClock]) -> None:
    client, clock = app_client
    origin = client.app.state.demo.settings.passkey_origin
    sign_in(client, MEMBER)
    assert _signs_in_with(client) == "a password"
    _add(client, origin, "Laptop", password=PASSWORDS[MEMBER])
    assert _signs_in_with(client) == "a password, then a passkey"
    enrol(client, clock)
    assert _signs_in_with(client) == (
        "a password, then a code from an authenticator app or a passkey"
    )


@pytest.mark.parametrize(
    ("login", "factors", "said"),
    [
        ("password", SecondFactors(), "a password"),
        (
            "password",
            SecondFactors(totp=True, recovery=True),
            "a password, then a code from an authenticator app",
        ),
        ("oidc", SecondFactors(passkeys=2), "OpenID Connect single sign-on, then a passkey"),
        ("saml", SecondFactors(), "SAML single sign-on"),
        (
            "password",
            None,
            "a password (whether a second step follows cannot be checked right now)",
        ),
    ],
)
def test_sign_in_steps(login: str, factors: SecondFactors | None, said: str) -> None:
    user = User("u", "u@acme.test", "U", "member", "acme", login, "", "")
    assert sign_in_steps(user, factors) == said


def _use_recovery_code(client: Any, code: str) -> None:
    assert sign_in(client, MEMBER).headers["location"].endswith("/stepup/2fa/verify")
    page = client.get("/stepup/2fa/verify")
    done = client.post(
        "/stepup/2fa/verify", data={"csrf_token": csrf(page.text), "recovery_code": code}
    )
    assert done.headers["location"] == "/account", done.text


def _left(client: Any) -> str | None:
    found = re.search(
        r'<p id="recovery-codes-left" data-count="(\d+)">([^<]*)</p>', client.get("/security").text
    )
    return None if found is None else f"{found.group(1)}: {' '.join(found.group(2).split())}"


def test_the_2fa_page_says_how_many_recovery_codes_are_left(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, clock = app_client
    sign_in(client, MEMBER)
    page = client.post(
        "/stepup/2fa/enrol", data={"csrf_token": csrf(client.get("/stepup/2fa").text)}
    )
    key = re.search(r'id="stepup-manual-key">([^<]+)<', page.text)
    assert key is not None
    totp = TOTP(key.group(1).replace(" ", ""))
    codes_page = client.post(
        "/stepup/2fa/confirm", data={"csrf_token": csrf(page.text), "code": totp.at(clock())}
    )
    codes = re.findall(r"<li><code>([^<]+)</code></li>", codes_page.text)
    assert len(codes) == 10
    assert _left(client) is None  # none used: nothing to say
    sign_out(client)

    _use_recovery_code(client, codes[0])
    assert _left(client) == "9: You have used a recovery code: 9 are left."
    sign_out(client)
    for code in codes[1:9]:
        _use_recovery_code(client, code)
        sign_out(client)
    _use_recovery_code(client, codes[9])
    assert _left(client) == (
        "0: You have used a recovery code: none are left. Make new ones before you need one."
    )

    # New codes: the count of the last one used no longer holds.
    page = client.get("/stepup/2fa/recovery-codes")
    assert page.status_code == 200
    made = client.post("/stepup/2fa/recovery-codes", data={"csrf_token": csrf(page.text)})
    assert len(re.findall(r"<li><code>([^<]+)</code></li>", made.text)) == 10
    assert _left(client) is None


@pytest.fixture
def with_test_provider(tmp_path: Path) -> Iterator[TestClient]:
    oidc = OIDCSettings(
        "http://127.0.0.1:9",
        "stepup-rp",
        "secret",
        name="Test OpenID provider",
        account_hint="alice / alice-password",
    )
    settings = DemoSettings(db_path=tmp_path / "demo.sqlite3", oidc=oidc)
    hasher = PasswordHasher.from_parameters(CHEAPEST)
    app = create_app(settings, clock=SettableClock(START), hasher=hasher)
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_the_sign_in_page_lists_the_test_providers_account(
    with_test_provider: TestClient,
) -> None:
    page = with_test_provider.get("/login").text
    assert "<code>admin@acme.test</code> / <code>acme-admin-demo</code>" in page
    assert "<code>member@acme.test</code> / <code>acme-member-demo</code>" in page
    assert (
        '<li class="sso-account"><code>alice / alice-password</code> at Test OpenID provider'
        " (“Sign in with Test OpenID provider”)</li>"
    ) in page


def test_without_a_hint_no_sso_account_is_listed(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    assert "sso-account" not in client.get("/login").text


def test_the_account_hint_comes_from_the_environment() -> None:
    environ = {
        "STEPUP_DEMO_OIDC_ISSUER": "http://127.0.0.1:9",
        "STEPUP_DEMO_OIDC_CLIENT_ID": "stepup-rp",
        "STEPUP_DEMO_OIDC_ACCOUNT_HINT": " alice / alice-password ",
    }
    oidc = DemoSettings.oidc_from(None, None, None, environ)
    assert oidc is not None
    assert oidc.account_hint == "alice / alice-password"
    assert "alice-password" not in repr(oidc)
    flag = DemoSettings.oidc_from(None, None, None, environ, account_hint="bob / pw")
    assert flag is not None
    assert flag.account_hint == "bob / pw"


@pytest.mark.parametrize("path", ["/login", "/stepup/reauth?next=%2Faccount&action=user.update"])
def test_no_page_asks_for_a_favicon(app_client: tuple[Any, SettableClock], path: str) -> None:
    client, _ = app_client
    if path.startswith("/stepup"):
        sign_in(client, MEMBER)
    page = client.get(path)
    assert page.status_code == 200
    assert '<link rel="icon" href="data:,">' in page.text
