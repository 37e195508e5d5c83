"""Django: the re-authentication page marks and focuses only the field a refusal was
about; a wrong password says what to do; a code pasted with blanks around it (a space,
a tab, a line break) is taken at sign-in, at re-authentication and when confirming an
authenticator app."""

from __future__ import annotations

import re
from typing import Any

from integrations.django.django_support import Browser, Site
from integrations.test_reauth_error_field import WRONG_CODE, WRONG_PASSWORD, assert_marked
from stepup import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_CODES = re.compile(r"<li><code>([^<]+)</code></li>")
REAUTH = "/stepup/reauth/?action=billing.export&next=/home/"  # password and code
VERIFY = "/stepup/2fa/verify/"


def _key(page: Any) -> str:
    found = _KEY.search(page.content.decode())
    assert found, page.content.decode()
    return found.group(1).replace(" ", "")


def _enrolled(site: Site, pasted: str = "{}") -> tuple[Browser, str, list[str]]:
    """bob, signed in, with two-factor on: confirmed with ``pasted`` around the code."""
    bob = site.browser("bob")
    key = _key(bob.form("/stepup/2fa/enrol/", {}))
    done = bob.form("/stepup/2fa/confirm/", {"code": pasted.format(site.totp_code(key))})
    assert done.status_code == 200, done.content.decode()
    return bob, key, _CODES.findall(done.content.decode())


def test_a_wrong_code_marks_only_the_code(site: Site) -> None:
    bob, _, _ = _enrolled(site)
    refused = bob.reauth(REAUTH, "battery staple", code="000000")
    assert refused.status_code == 400
    html = refused.content.decode()
    assert WRONG_CODE in html
    assert_marked(html, "code", "password")


def test_a_wrong_password_marks_only_the_password(site: Site) -> None:
    bob, _, _ = _enrolled(site)
    refused = bob.reauth(REAUTH, "not my password", code="000000")
    assert refused.status_code == 400
    html = refused.content.decode()
    assert WRONG_PASSWORD in html
    assert_marked(html, "password", "code")


def test_pasted_codes_are_taken_everywhere(site: Site) -> None:
    bob, key, codes = _enrolled(site, " {}")  # a leading space at enrolment
    bob.logout()
    assert bob.login("bob")["Location"] == VERIFY
    site.clock.advance(30)
    signed_in = bob.form(VERIFY, {"code": site.totp_code(key) + "\t"}, page=VERIFY)
    assert signed_in.status_code == 303, signed_in.content.decode()
    assert bob.get("/home/").content.decode() == "home of bob"

    site.clock.advance(30)
    confirmed = bob.reauth(REAUTH, "battery staple", code=site.totp_code(key) + "\n")
    assert confirmed.status_code == 303, confirmed.content.decode()
    assert confirmed["Location"] == "/home/"

    tablet = _key(bob.form("/stepup/2fa/devices/add/", {"name": "Tablet"}, follow=True))
    site.clock.advance(30)  # a time step is used once per user, whichever app
    code = f"\t{TOTP(tablet).at(site.clock())}\r\n"
    added = bob.form("/stepup/2fa/devices/confirm/", {"code": code})
    assert added.status_code == 303, added.content.decode()

    bob.logout()
    bob.login("bob")
    recovered = bob.form(VERIFY, {"recovery_code": f" {codes[0]}\n"}, page=VERIFY)
    assert recovered.status_code == 303, recovered.content.decode()
