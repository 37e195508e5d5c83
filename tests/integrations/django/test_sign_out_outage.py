"""Django: a store outage never stops a sign-out (see
tests/integrations/test_sign_out_outage.py): Django ends the session only after its
``user_logged_out`` signal, whose revocation raised, so the person stayed signed in."""

from __future__ import annotations

import logging

import pytest

from integrations.django.django_support import running_site
from integrations.outage_support import FailingWrites
from stepup.testing import SettableClock


def test_django(clock: SettableClock, caplog: pytest.LogCaptureFixture) -> None:
    store = FailingWrites()
    with running_site(store, clock) as site:
        alice = site.browser("alice")
        assert alice.get("/home/").content.decode() == "home of alice"
        store.broken = True
        with caplog.at_level(logging.WARNING, logger="stepup.store"):
            assert alice.logout().status_code == 303
        assert "revoke_grants" in caplog.text
        store.broken = False
        assert alice.get("/home/").content.decode() == "home of nobody"
