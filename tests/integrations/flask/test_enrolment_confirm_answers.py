"""The enrolment's confirmation names what went wrong instead of failing: the app's
account name no longer fits a Key URI (the user renamed themselves since the QR code was
shown) is the 400 that the enrolment page itself answers, and a confirmation with no
enrolment pending (expired, never begun) is the 400 that says the set-up expired, as
Starlette and the added-app pages answer, not a silent return to the settings page."""

from __future__ import annotations

from integrations.flask.flask_support import TestApp

_ACCOUNT = "Your account name cannot be put into an authenticator app"
_EXPIRED = "The set-up was not finished in time, or was replaced."


def test_a_wrong_code_once_the_account_name_no_longer_fits_is_a_400(test_app: TestApp) -> None:
    names = {"bob": "bob@example.com"}
    test_app.stepup.account_name(lambda user_id: names.get(user_id))
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    assert bob.form("/stepup/2fa/enrol", {}).status_code == 200
    names["bob"] = "ops:bob"  # renamed meanwhile: ':' cannot be in a Key URI's label
    refused = bob.form("/stepup/2fa/confirm", {"code": "000000"}, page="/stepup/2fa")
    assert refused.status_code == 400
    assert _ACCOUNT in refused.get_data(as_text=True)
    with test_app.app.app_context():
        assert not test_app.stepup.two_factor.is_enrolled("bob")


def test_a_confirmation_with_nothing_pending_says_the_set_up_expired(test_app: TestApp) -> None:
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    refused = bob.form("/stepup/2fa/confirm", {"code": "000000"}, page="/stepup/2fa")
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert _EXPIRED in body
    assert 'href="/stepup/2fa"' in body  # where it begins again
