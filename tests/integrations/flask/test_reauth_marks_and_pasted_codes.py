"""Flask: the re-authentication page marks and focuses only the field a refusal was
about; a wrong password says what to do; a code pasted with blanks around it (a space,
a tab, a line break) is taken at sign-in, at re-authentication and when confirming an
authenticator app; signing out forgets the enrolment this session began."""

from __future__ import annotations

import re
from typing import Any

from integrations.flask.flask_support import Browser, TestApp
from integrations.test_reauth_error_field import WRONG_CODE, WRONG_PASSWORD, assert_marked
from stepup import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_CODES = re.compile(r"<li><code>([^<]+)</code></li>")
REAUTH = "/stepup/reauth?action=billing.export&next=/home"  # password and code
VERIFY = "/stepup/2fa/verify"
ENROLLING = "_stepup_enrolling"


def _key(page: Any) -> str:
    found = _KEY.search(page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)
    return found.group(1).replace(" ", "")


def _enrolled(test_app: TestApp, pasted: str = "{}") -> tuple[Browser, str, list[str]]:
    """bob, signed in, with two-factor on: confirmed with ``pasted`` around the code."""
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    key = _key(bob.form("/stepup/2fa/enrol", {}))
    done = bob.form("/stepup/2fa/confirm", {"code": pasted.format(test_app.totp_code(key))})
    assert done.status_code == 200, done.get_data(as_text=True)
    return bob, key, _CODES.findall(done.get_data(as_text=True))


def test_a_wrong_code_marks_only_the_code(test_app: TestApp) -> None:
    bob, _, _ = _enrolled(test_app)
    refused = bob.reauth(REAUTH, "battery staple", code="000000")
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert WRONG_CODE in html
    assert_marked(html, "code", "password")


def test_a_wrong_password_marks_only_the_password(test_app: TestApp) -> None:
    bob, _, _ = _enrolled(test_app)
    refused = bob.reauth(REAUTH, "not my password", code="000000")
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert WRONG_PASSWORD in html
    assert_marked(html, "password", "code")


def test_pasted_codes_are_taken_everywhere(test_app: TestApp) -> None:
    bob, key, codes = _enrolled(test_app, " {}")  # a leading space at enrolment
    bob.post("/logout")
    assert bob.login("bob").headers["Location"] == VERIFY
    test_app.clock.advance(30)
    signed_in = bob.form(VERIFY, {"code": test_app.totp_code(key) + "\t"}, page=VERIFY)
    assert signed_in.status_code == 303, signed_in.get_data(as_text=True)
    assert bob.get("/home").get_data(as_text=True) == "home of bob"

    test_app.clock.advance(30)
    confirmed = bob.reauth(REAUTH, "battery staple", code=test_app.totp_code(key) + "\n")
    assert confirmed.status_code == 303, confirmed.get_data(as_text=True)
    assert confirmed.headers["Location"] == "/home"

    tablet = _key(bob.form("/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True))
    test_app.clock.advance(30)  # a time step is used once per user, whichever app
    added = bob.form(
        "/stepup/2fa/devices/confirm", {"code": f"\t{TOTP(tablet).at(test_app.clock())}\r\n"}
    )
    assert added.status_code == 303, added.get_data(as_text=True)

    bob.post("/logout")
    bob.login("bob")
    recovered = bob.form(VERIFY, {"recovery_code": f" {codes[0]}\n"}, page=VERIFY)
    assert recovered.status_code == 303, recovered.get_data(as_text=True)


def test_signing_out_forgets_the_enrolment_begun(test_app: TestApp, bob: Browser) -> None:
    bob.form("/stepup/2fa/enrol", {})
    with bob.client.session_transaction() as session:
        assert ENROLLING in session
    bob.post("/logout")
    with bob.client.session_transaction() as session:
        assert ENROLLING not in session
