"""Django: a store outage that escapes a view, stepup's (the two-factor page, the
enrolment) or the project's own (its login view calling ``request.stepup.begin_sign_in``,
documented "a store failure raises"), is the 503 that says to try again in a moment,
with ``Retry-After``: the page for a browser, JSON for a script; never a 500, nor a
traceback, and no log line besides the store's own WARNING."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from integrations.django.django_support import PASSWORDS, running_site
from integrations.outage_support import FailingWrites, StoreDown
from integrations.record_outage_support import TRY_AGAIN
from stepup.testing import SettableClock

JSON = {"HTTP_ACCEPT": "application/json"}
_DEVICE = re.compile(r'data-device-id="([^"]+)"')


def _try_again_page(answer: Any) -> None:
    assert answer.status_code == 503
    assert answer["Content-Type"].startswith("text/html")
    assert answer["Retry-After"] == "5"
    body = answer.content.decode()
    assert TRY_AGAIN in body
    assert "Traceback" not in body


def _try_again_json(answer: Any) -> None:
    assert answer.status_code == 503
    assert answer["Retry-After"] == "5"
    assert answer.json() == {"error": "unavailable", "title": TRY_AGAIN}


def test_the_two_factor_pages(clock: SettableClock, caplog: pytest.LogCaptureFixture) -> None:
    store = StoreDown()
    with running_site(store, clock) as site:
        alice = site.browser("alice")
        token = alice.fields("/stepup/2fa/")["csrfmiddlewaretoken"]
        store.down = True
        with caplog.at_level(logging.DEBUG):
            _try_again_page(alice.get("/stepup/2fa/"))
            _try_again_json(alice.get("/stepup/2fa/", **JSON))
            enrol = alice.post("/stepup/2fa/enrol/", {"csrfmiddlewaretoken": token})
            _try_again_page(enrol)
            enrol = alice.post("/stepup/2fa/enrol/", {"csrfmiddlewaretoken": token}, **JSON)
            _try_again_json(enrol)
        store.down = False
        # One WARNING per failed store call, from the store's runner; nothing else of stepup's.
        stepup_records = [r for r in caplog.records if r.name.startswith("stepup")]
        assert stepup_records
        assert {(r.name, r.levelname) for r in stepup_records} == {("stepup.store", "WARNING")}
        assert all(r.exc_info is None for r in stepup_records)
        assert alice.get("/stepup/2fa/").status_code == 200


def test_the_projects_login_view(clock: SettableClock) -> None:
    store = StoreDown()
    with running_site(store, clock) as site:
        bob = site.browser()
        store.down = True
        _try_again_page(bob.login("bob"))
        login = {"username": "bob", "password": PASSWORDS["bob"]}
        _try_again_json(bob.client.post("/login/", login, **JSON))
        store.down = False
        assert bob.get("/home/").content.decode() == "home of nobody"  # not signed in
        assert bob.login("bob").status_code == 303


def test_a_device_change_the_store_refuses(clock: SettableClock) -> None:
    """The device views' own 503 (the store refused the write): the same answer."""
    store = FailingWrites()
    with running_site(store, clock) as site:
        bob = site.browser("bob")
        bob.enrol()
        (device,) = _DEVICE.findall(bob.get("/stepup/2fa/").content.decode())
        token = bob.fields("/stepup/2fa/")["csrfmiddlewaretoken"]
        rename = f"/stepup/2fa/devices/{device}/rename/"
        form = {"name": "Phone", "csrfmiddlewaretoken": token}
        store.broken = True
        page = bob.post(rename, form)
        _try_again_page(page)
        assert 'href="/stepup/2fa/"' in page.content.decode()  # where to try again
        _try_again_json(bob.post(rename, form, **JSON))
