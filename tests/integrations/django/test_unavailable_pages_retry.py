"""Django: the re-auth form re-shown after a password that could not be checked (the
store down) is a 503 that says when to try again, as every other 503 does."""

from __future__ import annotations

from integrations.django.django_support import PASSWORDS, running_site
from integrations.outage_support import StoreDown
from stepup.testing import SettableClock

PAGE = "/stepup/reauth/?action=api_key.read&next=/api-key/"


def test_the_reauth_form_after_an_outage_says_when_to_try_again(clock: SettableClock) -> None:
    store = StoreDown()
    with running_site(store, clock) as site:
        alice = site.browser("alice")
        fields = alice.fields(PAGE)
        store.down = True
        answer = alice.client.post(
            "/stepup/reauth/password/", {**fields, "password": PASSWORDS["alice"]}
        )
        assert answer.status_code == 503
        assert answer["Retry-After"] == "5"
        assert answer["Cache-Control"] == "no-store"
