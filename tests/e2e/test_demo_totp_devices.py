"""The demo's TOTP devices without a browser (issue 15): two-factor on, a second
authenticator app added and shown on the security page, then one removed behind the
re-authentication removing a factor asks for."""

from __future__ import annotations

import re
from typing import Any

from e2e.journeys import MEMBER, PASSWORDS
from e2e.test_demo_app import csrf, flag_on, sign_in
from stepup.testing import SettableClock
from stepup.totp import TOTP

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)</code>')
_DEVICE = re.compile(r'data-device-id="([^"]+)"')


def _key(page: str) -> TOTP:
    found = _KEY.search(page)
    assert found is not None
    return TOTP(found.group(1).replace(" ", ""))


def test_two_authenticator_apps_one_removed(app_client: tuple[Any, SettableClock]) -> None:
    client, clock = app_client
    assert sign_in(client, MEMBER).status_code == 303
    enrol = client.post(
        "/stepup/2fa/enrol", data={"csrf_token": csrf(client.get("/stepup/2fa").text)}
    )
    phone = _key(enrol.text)
    done = client.post(
        "/stepup/2fa/confirm", data={"csrf_token": csrf(enrol.text), "code": phone.at(clock())}
    )
    assert done.status_code == 200, done.text

    settings = client.get("/stepup/2fa").text
    adding = client.post(
        "/stepup/2fa/devices/add", data={"csrf_token": csrf(settings), "name": "Tablet"}
    )
    assert adding.status_code == 303, adding.text  # begun: the page is the GET that follows
    adding = client.get(adding.headers["location"])
    assert adding.status_code == 200, adding.text
    tablet = _key(adding.text)
    clock.advance(30)
    confirm = {"csrf_token": csrf(adding.text), "code": tablet.at(clock())}
    assert client.post("/stepup/2fa/devices/confirm", data=confirm).status_code == 303
    # The note stepup's view hands over is shown once, in stepup's card.
    noted = client.get("/stepup/2fa").text
    assert '<main class="stepup-card">' in noted
    assert re.search(r'class="stepup-flash" role="status">[^<]*added', noted), noted
    assert "stepup-flash" not in client.get("/stepup/2fa").text

    security = client.get("/security").text
    assert 'data-count="2"' in security
    assert "Tablet" in security
    assert 'href="/stepup/2fa"' in security

    flag_on(client)
    settings = client.get("/stepup/2fa").text
    ids = _DEVICE.findall(settings)
    assert len(ids) == 2
    url = f"/stepup/2fa/devices/{ids[1]}/remove"
    asked = client.post(url, data={"csrf_token": csrf(settings)})
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert "action=2fa.disable" in location
    reauth = client.get(location)
    fields = {"csrf_token": csrf(reauth.text), "password": PASSWORDS[MEMBER]}
    assert client.post(location, data=fields).status_code in (200, 303)
    removed = client.post(url, data={"csrf_token": csrf(client.get("/stepup/2fa").text)})
    assert removed.status_code == 303
    security = client.get("/security").text
    assert 'data-count="1"' in security
    assert "Tablet" not in security
