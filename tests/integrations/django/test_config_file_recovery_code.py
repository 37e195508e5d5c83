"""Django's sign-in second step for a user whose TOTP secret is in a configuration file
(``TwoFactor(config_users=...)``): a recovery code posted there is answered as Starlette
answers it, 400 with the code page saying the account has none, never a 500; the code
from the authenticator app then signs in."""

from __future__ import annotations

from integrations.django.django_support import Site, user_id
from stepup.config_users import ConfigUsers
from stepup.integrations.django.services import get_stepup
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor

VERIFY = "/stepup/2fa/verify/"
FILE_SECRET = "5HRTG53M4MDFXLWSSLS5HKILODTUAJGK"


def test_a_recovery_code_at_sign_in_asks_for_the_code(site: Site) -> None:
    services = get_stepup()
    users = ConfigUsers.from_mapping({"users": {user_id("bob"): {"otp_secret": FILE_SECRET}}})
    services.two_factor = TwoFactor(
        services.store,
        issuer="Acme",
        box=services.two_factor.box,
        clock=site.clock,
        events=services.events,
        config_users=users,
    )
    bob = site.browser()
    bob.client.raise_request_exception = False  # an error is the 500 a browser gets
    assert bob.login("bob")["Location"] == VERIFY
    recovery = "aaaa-bbbb-cccc-dddd-eeee-ffff"
    answer = bob.form(VERIFY, {"recovery_code": recovery}, page=VERIFY)
    assert answer.status_code == 400
    page = answer.content.decode()
    assert "This account has no recovery codes." in page
    assert "Enter the code from your authenticator app." in page
    assert bob.get("/home/").content.decode() == "home of nobody"
    code = TOTP(FILE_SECRET).at(site.clock())
    assert bob.form(VERIFY, {"code": code}, page=VERIFY).status_code == 303
    assert bob.get("/home/").content.decode() == "home of bob"
