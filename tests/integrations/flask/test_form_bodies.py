"""Flask: a form posted to stepup's views is read no further than
:data:`~stepup.integrations.views.FORM_MAX_BYTES`, with or without a
``Content-Length``; Werkzeug would read a urlencoded body whole before the CSRF check
(its ``MAX_FORM_MEMORY_SIZE`` bounds multipart fields only). A form over the cap is
refused as Starlette refuses it: the CSRF 403 (the page for a browser, JSON for a
script). The app's own views, and its own smaller ``MAX_CONTENT_LENGTH``, are left as
they were. And a field of stepup's forms sent twice is refused as malformed (see
``integrations/repeated_field_support.py``)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import request

from integrations.flask.flask_support import Browser, TestApp, make_app
from integrations.repeated_field_support import (
    CODE_ERROR,
    NAME_ERROR,
    ORDERS,
    PASSWORD_ERROR,
    RECOVERY_ERROR,
    WRONG_RECOVERY,
    assert_refused,
    both,
    wrong_code,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.events import ReauthSucceeded
from stepup.integrations.views import FORM_MAX_BYTES

HUGE = 200 * 1024 * 1024
#: What Werkzeug may read past the cap: at most one read's buffer.
SLACK = 64 * 1024
VERIFY = "/stepup/2fa/verify"
FORM_VIEWS = ["/stepup/reauth/password", "/stepup/2fa/confirm", "/stepup/2fa/devices/add", VERIFY]
CSRF_REFUSED = "This form has expired."


class CountingInput(io.RawIOBase):
    """A body of ``size`` bytes of ``a`` that is never held in memory: it only counts
    what was read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.read_bytes

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Only what Werkzeug's test client does to learn the length: to the end and
        back, before anything is read."""
        self.read_bytes = self.size if whence == io.SEEK_END else offset
        return self.read_bytes

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.size - self.read_bytes)
        buffer[:count] = b"a" * count
        self.read_bytes += count
        return count


def _post_huge(browser: Browser, url: str, *, chunked: bool, **kw: Any) -> tuple[Any, int]:
    body = CountingInput(HUGE)
    if chunked:
        kw["headers"] = {**kw.get("headers", {}), "Transfer-Encoding": "chunked"}
        kw["environ_overrides"] = {"wsgi.input_terminated": True}  # as servers that unchunk
    answer = browser.post(
        url, input_stream=body, content_type="application/x-www-form-urlencoded", **kw
    )
    return answer, body.read_bytes


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("url", FORM_VIEWS)
def test_a_huge_form_is_read_no_further_than_the_cap(
    test_app: TestApp, bob: Browser, url: str, chunked: bool
) -> None:
    if url == VERIFY:
        bob.enrol()
        bob.post("/logout")
        bob.login("bob")
    answer, read = _post_huge(bob, url, chunked=chunked)
    assert read <= FORM_MAX_BYTES + SLACK
    assert answer.status_code == 403
    assert CSRF_REFUSED in answer.get_data(as_text=True)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_without_a_cookie_and_for_a_script_too(test_app: TestApp, chunked: bool) -> None:
    answer, read = _post_huge(
        test_app.client(),
        "/stepup/reauth/password",
        chunked=chunked,
        headers={"Accept": "application/json"},
    )
    assert read <= FORM_MAX_BYTES + SLACK
    assert answer.status_code == 403
    assert answer.get_json()["error"] == "csrf"


def test_a_form_just_under_the_cap_is_read(test_app: TestApp, bob: Browser) -> None:
    """The cap refuses only what no form of stepup's is: a long field under it is read,
    and the form is answered as any other (here, its wrong password)."""
    location = "/stepup/reauth?action=api_key.read&next=/api-key"
    padding = "x" * (FORM_MAX_BYTES - 2048)
    answer = bob.reauth(location, "wrong password", padding=padding)
    assert_refused(answer.status_code, answer.get_data(as_text=True), PASSWORD_ERROR)


def test_the_apps_own_views_and_smaller_limit_are_left_alone() -> None:
    seen: list[int] = []

    def own_view(app: Any, stepup: Any) -> None:
        @app.post("/own/form")
        def own_form() -> str:
            seen.append(len(request.form["big"]))
            return "ok"

    test_app = make_app(store=MemoryStore(), setup=own_view)
    big = "b" * (2 * FORM_MAX_BYTES)
    assert test_app.client().post("/own/form", data={"big": big}).status_code == 200
    assert seen == [len(big)]
    small = make_app(store=MemoryStore(), config={"MAX_CONTENT_LENGTH": 1024})
    bob = small.client()
    bob.login("bob")
    location = "/stepup/reauth?action=api_key.read&next=/api-key"
    answer = bob.reauth(location, "wrong password", padding="x" * 2048)
    assert answer.status_code == 403  # over the app's own 1 KiB, not stepup's cap


# a field sent twice --------------------------------------------------------------------


def _pending_bob(test_app: TestApp) -> tuple[Browser, str, list[str]]:
    bob = test_app.client()
    bob.login("bob")
    secret, codes = bob.enrol()
    bob.post("/logout")
    bob.login("bob")
    test_app.clock.advance(30)
    return bob, secret, codes


def _verify(bob: Browser, data: dict[str, Any]) -> Any:
    return bob.post(VERIFY, data={**data, "csrf_token": bob.csrf(VERIFY)})


@pytest.mark.parametrize("order", ORDERS)
def test_a_code_sent_twice_is_malformed(test_app: TestApp, order: str) -> None:
    bob, secret, _ = _pending_bob(test_app)
    right = test_app.totp_code(secret)
    answer = _verify(bob, {"code": both(order, right, wrong_code(right))})
    assert_refused(answer.status_code, answer.get_data(as_text=True), CODE_ERROR)
    assert bob.get("/home").get_data(as_text=True) == "home of nobody"
    assert _verify(bob, {"code": right}).status_code == 303


@pytest.mark.parametrize("order", ORDERS)
def test_a_recovery_code_sent_twice_is_malformed(test_app: TestApp, order: str) -> None:
    bob, _, codes = _pending_bob(test_app)
    answer = _verify(bob, {"recovery_code": both(order, codes[0], WRONG_RECOVERY)})
    assert_refused(answer.status_code, answer.get_data(as_text=True), RECOVERY_ERROR)
    assert bob.get("/home").get_data(as_text=True) == "home of nobody"
    assert _verify(bob, {"recovery_code": codes[0]}).status_code == 303  # not used up


@pytest.mark.parametrize("order", ORDERS)
def test_a_password_sent_twice_is_malformed(test_app: TestApp, bob: Browser, order: str) -> None:
    location = "/stepup/reauth?action=api_key.read&next=/api-key"
    password = both(order, "battery staple", "wrong password")
    answer = bob.reauth(location, password)
    assert_refused(answer.status_code, answer.get_data(as_text=True), PASSWORD_ERROR)
    assert not any(isinstance(event, ReauthSucceeded) for event in test_app.events)


@pytest.mark.parametrize("order", ORDERS)
def test_a_device_name_sent_twice_is_refused(test_app: TestApp, bob: Browser, order: str) -> None:
    bob.enrol()
    answer = bob.form("/stepup/2fa/devices/add", {"name": both(order, "Tablet", "Phone")})
    assert_refused(answer.status_code, answer.get_data(as_text=True), NAME_ERROR)
