"""The enrolment's confirmation names what went wrong instead of failing: the account
name (the username) no longer fits a Key URI (the user was renamed since the QR code was
shown) is the 400 that the enrolment page itself answers, and a confirmation with no
enrolment pending (expired, never begun) is the 400 that says the set-up expired, as
Starlette and the added-app pages answer, not a silent return to the settings page."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from integrations.django.django_support import Site, user_id

_ACCOUNT = "Your account name cannot be put into an authenticator app"
_EXPIRED = "The set-up was not finished in time, or was replaced."
ENROL = "/stepup/2fa/enrol/"
CONFIRM = "/stepup/2fa/confirm/"


def test_a_wrong_code_once_the_account_name_no_longer_fits_is_a_400(site: Site) -> None:
    bob = site.browser("bob")
    assert bob.form(ENROL, {}).status_code == 200
    users = get_user_model()._default_manager
    # Renamed meanwhile: ':' cannot be in a Key URI's label.
    users.filter(username="bob").update(username="ops:bob")
    try:
        refused = bob.form(CONFIRM, {"code": "000000"})
        assert refused.status_code == 400
        assert _ACCOUNT in refused.content.decode()
        assert site.store.get_credential(user_id("ops:bob")).confirmed is False
    finally:  # the users outlive the test
        users.filter(username="ops:bob").update(username="bob")


def test_a_confirmation_with_nothing_pending_says_the_set_up_expired(site: Site) -> None:
    bob = site.browser("bob")
    refused = bob.form(CONFIRM, {"code": "000000"})
    assert refused.status_code == 400
    body = refused.content.decode()
    assert _EXPIRED in body
    assert 'href="/stepup/2fa/"' in body  # where it begins again
