"""Django: a store that fails while the two-factor pages change something gets a 503
that says so ("try again in a moment"); nothing changes, never a 500."""

from __future__ import annotations

from integrations.django.django_support import fresh_grant, running_site, user_id
from integrations.outage_support import FailingWrites
from stepup.testing import SettableClock


def test_two_factor_pages_answer_503_when_the_store_fails(clock: SettableClock) -> None:
    store = FailingWrites()
    with running_site(store, clock) as site:
        alice = site.browser("alice")
        alice.enrol()
        site.browser("bob").enrol()
        ids = (user_id("alice"), user_id("bob"))
        before = [store.get_credential(i) for i in ids]
        for url in (
            "/stepup/2fa/recovery-codes/",
            "/stepup/2fa/remove/",
            f"/stepup/users/{ids[1]}/2fa/remove/",
        ):
            fresh_grant(alice, ("pwd", "otp"))
            store.broken = True
            answer = alice.form(url, {}, page="/stepup/2fa/")
            store.broken = False
            assert answer.status_code == 503, (url, answer.status_code)
            assert "Try again in a moment" in answer.content.decode(), url
        assert [store.get_credential(i) for i in ids] == before
