"""Starlette: a sign-in waiting in the session that cannot be used (kept without its
nonce by a version before it, or a value that is no dict or has fields that are not
text) is an expired sign-in at every entry point of the second step: the 400
``sign_in_expired`` page or JSON, as in Flask and Django, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from integrations.starlette.starlette_support import Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.starlette import Stepup
from stepup.integrations.starlette.stepup import PENDING_SIGN_IN
from stepup.testing import SettableClock

ORIGIN = "http://localhost"
VERIFY = "/stepup/2fa/verify"
BEGIN = "/stepup/2fa/verify/passkey/begin"
FINISH = "/stepup/2fa/verify/passkey/finish"
EXPIRED = "Your sign-in has expired. Please sign in again."


def _keep(stepup: Stepup) -> list[Any]:
    """Test plumbing: keep the posted JSON as the session's pending sign-in."""

    async def keep(request: Request) -> Response:
        request.session[PENDING_SIGN_IN] = json.loads(await request.body())
        return PlainTextResponse("kept")

    return [Route("/_test/pending", keep, methods=["POST"])]


@pytest.fixture
def browser(clock: SettableClock) -> Iterator[Browser]:
    app: TestApp = make_app(
        clock=clock,
        store=MemoryStore(),
        extra_routes=_keep,
        passkeys_rp_id="localhost",
        passkeys_origins=(ORIGIN,),
    )
    browser = app.browser()
    yield browser
    browser.close()


def _fresh(clock: SettableClock, **fields: Any) -> dict[str, Any]:
    """A pending sign-in as one is kept now, with ``fields`` over it (``None``: left out)."""
    pending = {"user_id": "alice", "nonce": "n" * 32, "at": clock(), "next": "/", "proved": ["pwd"]}
    pending.update(fields)
    return {k: v for k, v in pending.items() if v is not None}


def _unusable(clock: SettableClock) -> dict[str, Any]:
    """Every value the second step must answer as an expired sign-in."""
    return {
        # Kept before the nonce (b7495f9): no nonce, no first step either.
        "before-the-nonce": {"user_id": "alice", "at": clock(), "next": "/"},
        "no-nonce": _fresh(clock, nonce=None),
        "empty-nonce": _fresh(clock, nonce=""),
        "number-nonce": _fresh(clock, nonce=5),
        "list-nonce": _fresh(clock, nonce=["n"]),
        "no-user": _fresh(clock, user_id=None),
        "number-user": _fresh(clock, user_id=5),
        "empty-user": _fresh(clock, user_id=""),
        "dict-user": _fresh(clock, user_id={"id": "alice"}),
        "text-at": _fresh(clock, at="now"),
        "text-proved": _fresh(clock, proved="pwd"),
        "a-list": ["alice", "n" * 32],
        "a-string": "alice",
        "a-number": 5,
    }


CASES = list(_unusable(SettableClock()))


def _keep_pending(browser: Browser, clock: SettableClock, case: str) -> None:
    value = _unusable(clock)[case]
    kept = browser.post("/_test/pending", content=json.dumps(value))
    assert kept.status_code == 200


def _expired_page(answer: Any) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert EXPIRED in answer.text


@pytest.mark.parametrize("case", CASES)
def test_the_pages_answer_an_expired_sign_in(
    browser: Browser, clock: SettableClock, case: str
) -> None:
    _keep_pending(browser, clock, case)
    _expired_page(browser.get(VERIFY))
    assert browser.client.head(VERIFY).status_code == 400
    _expired_page(browser.post(VERIFY, data={"code": "123456", "csrf_token": "x"}))
    # The passkey endpoints check the token first, as Flask's and Django's do: no token
    # can match a sign-in kept unusable, so the refusal is the CSRF one, never a 500.
    form = {"credential": "{}", "csrf_token": "x"}
    refused = browser.post(FINISH, data=form)
    assert refused.status_code == 403, refused.text


@pytest.mark.parametrize("case", CASES)
def test_the_json_endpoints_answer_an_expired_sign_in(
    browser: Browser, clock: SettableClock, case: str
) -> None:
    _keep_pending(browser, clock, case)
    headers = {"Content-Type": "application/json", "X-CSRF-Token": "x"}
    for answer in (
        browser.post(BEGIN, content="{}", headers=headers),
        browser.post(FINISH, content='{"credential": {}}', headers=headers),
    ):  # the token first (as in Flask and Django): no token matches an unusable sign-in
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "csrf"


def test_a_sign_in_kept_now_still_opens_the_page(browser: Browser, clock: SettableClock) -> None:
    kept = browser.post("/_test/pending", content=json.dumps(_fresh(clock)))
    assert kept.status_code == 200
    assert browser.get(VERIFY).status_code == 200
