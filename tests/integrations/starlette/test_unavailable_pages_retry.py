"""Every page answered 503 because the store could not answer says when to try again
(``Retry-After``), the re-auth form re-shown after a password that could not be checked
included: it was a 503 without the header every other 503 carries."""

from __future__ import annotations

from integrations.outage_support import StoreDown
from integrations.starlette.starlette_support import PASSWORDS, csrf_token, make_app
from stepup.integrations.pages import PAGE_HEADERS, page_headers
from stepup.testing import SettableClock

PAGE = "/stepup/reauth?action=api_key.read&next=/api-key"


def test_page_headers_add_retry_after_to_a_503_only() -> None:
    assert page_headers(503) == {**PAGE_HEADERS, "Retry-After": "5"}
    for status in (200, 400, 403, 404, 500, 502):
        assert page_headers(status) == PAGE_HEADERS


def test_the_reauth_form_after_an_outage_says_when_to_try_again() -> None:
    store = StoreDown()
    app = make_app(clock=SettableClock(), store=store)
    alice = app.browser()
    try:
        alice.login("alice")
        token = csrf_token(alice.get(PAGE).text)
        store.down = True
        answer = alice.post(PAGE, data={"csrf_token": token, "password": PASSWORDS["alice"]})
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert answer.headers["Cache-Control"] == "no-store"
    finally:
        alice.close()
