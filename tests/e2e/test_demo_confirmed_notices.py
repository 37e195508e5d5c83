"""Back from the prompt, the page says that the confirmation worked and for how long, so
the second press is obvious: the Tenant page after the flag's PATCH asked to confirm,
the Passkeys page after "Add a passkey" did. Before, both came back unchanged, without
a word (and the passkey's typed name was gone: the demo's layout keeps it for the tab)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from e2e.journeys import ADMIN, MEMBER, PASSWORDS
from e2e.test_demo_app import csrf, flag_on, sign_in
from e2e.test_demo_passkeys import _json
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

JSONAPI = {"Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"}
FLAG_ON = {
    "data": {"type": "tenant", "attributes": {"feature_flags": {"sensitive_actions_reauth": True}}}
}
TENANT_CONFIRMED = (
    "You have confirmed it is you: press “Turn on” again to change the setting,"
    " without being asked again for 6 h."
)
PASSKEY_CONFIRMED = (
    "You have confirmed it is you: add your passkey now, without being asked again for 6 h."
)


def _reauthenticate(client: Any, reauth_url: str, password: str, next_path: str) -> str:
    """The prompt, with ``next`` set as the page's script sets it; where it sends back."""
    parts = urlsplit(reauth_url)
    query = dict(parse_qsl(parts.query))
    query["next"] = next_path
    prompt = f"{parts.path}?{urlencode(query)}"
    page = client.get(prompt)
    assert page.status_code == 200, page.text
    done = client.post(prompt, data={"csrf_token": csrf(page.text), "password": password})
    assert done.status_code == 303, done.text
    location: str = done.headers["location"]
    return location


def _patch_flag(client: Any) -> Any:
    return client.patch("/stepup/tenants/acme", content=json.dumps(FLAG_ON), headers=JSONAPI)


def test_the_tenant_page_says_the_confirmation_holds_after_the_prompt(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, clock = app_client
    sign_in(client, ADMIN)
    assert "You have confirmed it is you" not in client.get("/tenant").text
    # Nothing confirmed yet: the flag's address is the Tenant page as it is.
    assert client.get("/tenant/flag").headers["location"] == "/tenant"
    assert "You have confirmed it is you" not in client.get("/tenant").text

    asked = _patch_flag(client)  # the button's script
    assert asked.status_code == 401
    reauth_url = asked.json()["errors"][0]["meta"]["reauth_url"]
    back = _reauthenticate(client, reauth_url, PASSWORDS[ADMIN], "/tenant/flag")
    assert back == "/tenant/flag"
    assert client.get(back).headers["location"] == "/tenant"
    page = client.get("/tenant").text
    assert TENANT_CONFIRMED in page
    assert 'data-on="no"' in page  # nothing changed yet: the second press does it

    assert _patch_flag(client).status_code == 200
    page = client.get("/tenant").text
    assert 'data-on="yes"' in page
    assert "You have confirmed it is you" not in page  # said once, after the prompt

    clock.advance(6 * 3600 - 90)  # later: the time left is what the core says
    assert client.get("/tenant/flag").headers["location"] == "/tenant"
    assert (
        "You have confirmed it is you: press “Turn off” again to change the setting,"
        " without being asked again for 1 min." in client.get("/tenant").text
    )


def test_a_member_is_not_told_to_press_a_button_they_do_not_have(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    flag_on(client)
    sign_in(client, MEMBER)
    prompt = "/stepup/reauth?action=user.update&next=%2Ftenant%2Fflag"
    back = _reauthenticate(client, prompt, PASSWORDS[MEMBER], "/tenant/flag")
    assert client.get(back).headers["location"] == "/tenant"
    page = client.get("/tenant").text
    assert 'data-state="fresh"' in page  # the member's session holds a grant
    assert "You have confirmed it is you" not in page


def test_the_passkeys_page_says_the_confirmation_holds_until_the_passkey_is_added(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    origin = client.app.state.demo.settings.passkey_origin
    sign_in(client, MEMBER)
    page = client.get("/stepup/passkeys").text
    assert 'id="confirmed"' not in page
    assert "<!--confirmed-->" not in page  # the slot is emptied when there is nothing to say
    assert "stepup-demo.passkey-name" in page  # the script that keeps the typed name

    refused = _json(client, "/stepup/passkeys/register/begin", {})  # "Add a passkey"
    assert refused.status_code == 401
    back = _reauthenticate(
        client, refused.json()["reauth_url"], PASSWORDS[MEMBER], "/stepup/passkeys"
    )
    assert back == "/stepup/passkeys"
    page = client.get(back).text
    assert (
        f'<p class="flash" role="status" id="confirmed" lang="en">{PASSKEY_CONFIRMED}</p>' in page
    )
    german = client.get(back, headers={"Accept-Language": "de"}).text
    assert '<html lang="de">' in german
    assert PASSKEY_CONFIRMED in german  # the demo's English, marked as such

    key = SoftAuthenticator(origin=origin, counter=1)
    options = _json(client, "/stepup/passkeys/register/begin", {})
    assert options.status_code == 200
    finish = _json(
        client,
        "/stepup/passkeys/register/finish",
        {"credential": key.create(options.json()), "name": "Laptop"},
    )
    assert finish.status_code == 200
    # Adding a passkey ends every re-authentication of the user: nothing to say any more.
    page = client.get("/stepup/passkeys").text
    assert "Laptop" in page
    assert 'id="confirmed"' not in page


def test_other_stepup_pages_have_no_slot_left(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    for path in ("/stepup/2fa", "/stepup/reauth?next=%2Faccount&action=user.update"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "<!--confirmed-->" not in page.text, path
