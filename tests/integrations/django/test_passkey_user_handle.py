"""Django gives its ``Passkeys`` a subkey of SECRET_KEY: the ``user.id`` a
registration sends is opaque, never the user's primary key (WebAuthn §14.6.1), and the
name the authenticator shows is the username."""

from __future__ import annotations

import base64
import json

from integrations.django.django_support import confirm_factors as django_confirm
from integrations.django.django_support import running_site
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

ORIGIN = "http://localhost"


def _user_id(options: dict[str, object]) -> bytes:
    user = options["publicKey"]["user"]  # type: ignore[index]
    text = user["id"]  # type: ignore[index]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_django_sends_an_opaque_handle_and_the_username(clock: SettableClock) -> None:
    passkeys = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}
    with running_site(MemoryStore(), clock, **passkeys) as site:
        alice = site.browser("alice")
        django_confirm(alice)
        token = alice.fields("/stepup/passkeys/")["csrfmiddlewaretoken"]
        answer = alice.client.post(
            "/stepup/passkeys/register/begin",
            data=json.dumps({}),
            content_type="application/json",
            headers={"X-CSRFToken": token},
        )
        assert answer.status_code == 200, answer.content
        options = answer.json()
        handle = _user_id(options)
        assert len(handle) == 32
        pk = alice.client.session["_auth_user_id"]
        assert handle != str(pk).encode()
        # The authenticator shows the username (as the TOTP app's label), not the pk.
        assert options["publicKey"]["user"]["name"] == "alice"
