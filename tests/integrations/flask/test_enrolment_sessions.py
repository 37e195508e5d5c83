"""A pending enrolment's secret is shown again only in the session that began it: another
session of the same user (a stolen cookie, an intruder who knows the password) begins a
new one instead of receiving it, and the user's confirmation of the replaced secret fails
visibly. The page's manual-entry settings are the device's own."""

from __future__ import annotations

import re
from typing import Any

from integrations.flask.flask_support import Browser, TestApp
from stepup import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')
_EXPIRED = "The set-up was not finished in time, or was replaced."


def _key(page: Any) -> str:
    found = _KEY.search(page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)
    return found.group(1).replace(" ", "")


def _two_sessions(test_app: TestApp) -> tuple[Browser, Browser]:
    mine, other = test_app.client(), test_app.client()
    assert mine.login("bob").status_code == 303
    assert other.login("bob").status_code == 303
    return mine, other


def test_another_session_never_receives_the_pending_secret(test_app: TestApp) -> None:
    mine, other = _two_sessions(test_app)
    key_a = _key(mine.form("/stepup/2fa/enrol", {}))
    test_app.clock.advance(60)
    assert _key(mine.form("/stepup/2fa/enrol", {})) == key_a  # a reload: the same secret
    key_b = _key(other.form("/stepup/2fa/enrol", {}))
    assert key_b != key_a
    test_app.clock.advance(30)
    # The user confirms the secret their phone holds: replaced, so it fails visibly.
    refused = mine.form("/stepup/2fa/confirm", {"code": TOTP(key_a).at(test_app.clock())})
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert _EXPIRED in body
    assert key_b not in body.replace(" ", "")
    with test_app.app.app_context():
        assert not test_app.stepup.two_factor.is_enrolled("bob")
    # A reload begins anew: never the other session's secret.
    key_c = _key(mine.form("/stepup/2fa/enrol", {}))
    assert key_c not in (key_a, key_b)


def test_a_wrong_code_shows_this_sessions_secret_again(test_app: TestApp) -> None:
    mine, _ = _two_sessions(test_app)
    key_a = _key(mine.form("/stepup/2fa/enrol", {}))
    wrong = mine.form("/stepup/2fa/confirm", {"code": "000000"})
    assert wrong.status_code == 400
    assert _key(wrong) == key_a
    done = mine.form("/stepup/2fa/confirm", {"code": TOTP(key_a).at(test_app.clock())})
    assert done.status_code == 200
    # Confirmed: the session keeps no enrolment, so a later one starts afresh.
    with mine.client.session_transaction() as session:
        assert "_stepup_enrolling" not in session


def test_another_session_never_receives_the_device_being_added(test_app: TestApp) -> None:
    mine, other = _two_sessions(test_app)
    mine.enrol()
    test_app.clock.advance(30)
    key_a = _key(mine.form("/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True))
    key_b = _key(other.form("/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True))
    assert key_b != key_a
    test_app.clock.advance(30)
    refused = mine.form("/stepup/2fa/devices/confirm", {"code": TOTP(key_a).at(test_app.clock())})
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert _EXPIRED in body
    assert key_b not in body.replace(" ", "")
    assert len(_DEVICE.findall(mine.get("/stepup/2fa").get_data(as_text=True))) == 1
    # The other session's wrong code shows its own secret again, not a stranger's.
    again = other.form("/stepup/2fa/devices/confirm", {"code": "000000"})
    assert again.status_code == 400
    assert _key(again) == key_b


def test_an_added_device_states_its_own_period(test_app: TestApp) -> None:
    mine, _ = _two_sessions(test_app)
    mine.enrol()
    with test_app.app.app_context():
        test_app.stepup.two_factor.period = 60  # the app's setting changed since
    page = mine.form("/stepup/2fa/devices/add", {"name": "Tablet"}, follow_redirects=True).get_data(
        as_text=True
    )
    # The device steps with the first one (30 s): the page says so, as its Key URI does.
    assert "every 30 seconds" in page
    assert "algorithm" not in page  # SHA1, which manual entry assumes: nothing to add
