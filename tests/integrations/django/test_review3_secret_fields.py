"""Django's error reports (mailed to ADMINS, the DEBUG page, error trackers that read
them) list a request's POST unless the view marks fields sensitive, as Django's own
LoginView does: stepup's forms mark the password, the code and the recovery code, so a
500 anywhere on the way (the app's middleware, a ``user_logged_in`` receiver) shows
them as stars."""

from __future__ import annotations

from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from integrations.django.django_support import PASSWORDS, Site, set_flag

VERIFY = "/stepup/2fa/verify/"


def _reported(response: Any) -> dict[str, Any]:
    return dict(SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request))


def test_the_second_steps_code_and_recovery_code_are_starred(site: Site) -> None:
    bob = site.browser("bob")
    _, codes = bob.enrol()
    bob.logout()
    site.clock.advance(30)
    again = site.browser()
    assert again.login("bob")["Location"] == VERIFY
    wrong = again.form(VERIFY, {"code": "123456"}, page=VERIFY)
    assert "123456" not in str(_reported(wrong))
    assert "*****" in str(_reported(wrong)["code"])
    recovery = again.form(VERIFY, {"recovery_code": codes[0]}, page=VERIFY)
    assert codes[0] not in str(_reported(recovery))


def test_the_reauth_password_and_the_enrolment_code_are_starred(site: Site) -> None:
    alice = site.browser("alice")
    set_flag(alice)
    fields = alice.fields("/stepup/reauth/?action=2fa.disable&next=/stepup/2fa/")
    answer = alice.client.post(
        "/stepup/reauth/password/", {**fields, "password": PASSWORDS["alice"]}
    )
    reported = _reported(answer)
    assert PASSWORDS["alice"] not in str(reported)
    assert "/stepup/2fa/" in str(reported["next"])  # only the secret fields are hidden
