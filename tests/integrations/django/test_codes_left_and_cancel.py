"""Flask, Django and Starlette alike: the recovery codes page offers ways to keep the codes
(a Download link that needs no script, Copy and Print with ``stepup-codes.js``); the
two-factor settings page says how many recovery codes are left, and warns when few are;
the sign-in's second step has a way off ("Sign in as someone else"), which spends the
waiting sign-in so that no copy of the session can finish it; its recovery code field is
required and bounded, its code field has a pattern. (Under django/: Django is configured
once per process here.)"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from integrations.django.django_support import Site
from integrations.flask import flask_support
from integrations.starlette import starlette_support
from stepup import TOTP
from stepup.adapters.storage.memory import MemoryStore
from stepup.i18n import format_time
from stepup.recovery import MAX_RECOVERY_INPUT_LENGTH
from stepup.testing import SettableClock

_KEY = re.compile(r'id="stepup-manual-key">([^<]+)<')
_CODES = re.compile(r"<li><code>([^<]+)</code></li>")
_BOX = re.compile(r"<div class=\"stepup-actions\" data-stepup-codes([^>]*)>")
_LEFT = re.compile(r'<p id="stepup-recovery-left" class="([^"]*)">(.*?)</p>', re.S)
Headers = dict[str, str]
GERMAN = {"Accept-Language": "de"}


@dataclass
class Answer:
    status: int
    location: str
    body: str


class Side:
    """One framework's test app, driven as a person would: bob turns two-factor on, and
    signs in again in other browsers."""

    name: str
    verify: str  # the second step's address
    sign_in: str  # where "Sign in as someone else" leads (the app's sign-in page or root)
    clock: SettableClock
    issuer: str

    def get(self, browser: Any, url: str, headers: Headers | None = None) -> Answer:
        raise NotImplementedError

    def post(self, browser: Any, url: str, data: dict[str, str]) -> Answer:
        raise NotImplementedError

    def token(self, page: str) -> dict[str, str]:
        raise NotImplementedError

    def new_browser(self) -> Any:
        raise NotImplementedError

    def login(self, browser: Any) -> Answer:
        raise NotImplementedError

    def who(self, browser: Any) -> str:
        raise NotImplementedError

    def copy(self, browser: Any) -> Any:
        """Another browser with ``browser``'s session cookie (a cookie session only)."""
        raise NotImplementedError

    settings_url: str
    enrol_url: str
    confirm_url: str

    def enrol(self, headers: Headers | None = None) -> tuple[TOTP, str]:
        """bob turns two-factor on: his authenticator and the recovery codes page."""
        bob = self.bob
        settings = self.get(bob, self.settings_url)
        page = self.post(bob, self.enrol_url, self.token(settings.body))
        assert page.status == 200, page.body
        key = _KEY.search(page.body)
        assert key is not None
        totp = TOTP(key.group(1).replace(" ", ""))
        data = {**self.token(page.body), "code": totp.at(self.clock())}
        done = self.post_headers(bob, self.confirm_url, data, headers or {})
        assert done.status == 200, done.body
        self.clock.advance(30)  # the confirming code is spent
        return totp, done.body

    def post_headers(
        self, browser: Any, url: str, data: dict[str, str], headers: Headers
    ) -> Answer:
        raise NotImplementedError

    def waiting(self) -> Any:
        """A browser where bob's sign-in waits for its second step."""
        browser = self.new_browser()
        started = self.login(browser)
        assert started.status == 303
        assert started.location.split("?")[0].endswith(self.verify), started.location
        return browser

    def second_step(self, browser: Any, fields: dict[str, str]) -> Answer:
        page = self.get(browser, self.verify)
        assert page.status == 200, page.body
        return self.post(browser, self.verify, {**self.token(page.body), **fields})

    bob: Any


@dataclass
class FlaskSide(Side):
    clock: SettableClock
    name: str = "flask"
    verify: str = "/stepup/2fa/verify"
    sign_in: str = "/"
    settings_url: str = "/stepup/2fa"
    enrol_url: str = "/stepup/2fa/enrol"
    confirm_url: str = "/stepup/2fa/confirm"
    app: Any = field(init=False)
    bob: Any = field(init=False)
    issuer: str = field(init=False)

    def __post_init__(self) -> None:
        self.app = flask_support.make_app("subject_loader", clock=self.clock, store=MemoryStore())
        self.issuer = self.app.app.extensions["stepup"].two_factor.issuer
        self.bob = self.new_browser()
        assert self.login(self.bob).status == 303

    def _answer(self, r: Any) -> Answer:
        return Answer(r.status_code, r.headers.get("Location", ""), r.get_data(as_text=True))

    def get(self, browser: Any, url: str, headers: Headers | None = None) -> Answer:
        return self._answer(browser.client.get(url, headers=headers or {}))

    def post(self, browser: Any, url: str, data: dict[str, str]) -> Answer:
        return self._answer(browser.client.post(url, data=data))

    def post_headers(
        self, browser: Any, url: str, data: dict[str, str], headers: Headers
    ) -> Answer:
        return self._answer(browser.client.post(url, data=data, headers=headers))

    def token(self, page: str) -> dict[str, str]:
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, "no CSRF token"
        return {"csrf_token": html.unescape(found.group(1))}

    def new_browser(self) -> Any:
        return self.app.client()

    def login(self, browser: Any) -> Answer:
        return self._answer(browser.login("bob"))

    def who(self, browser: Any) -> str:
        return browser.get("/home").get_data(as_text=True).removeprefix("home of ")

    def copy(self, browser: Any) -> Any:
        cookie = browser.client.get_cookie("session")
        assert cookie is not None
        other = self.new_browser()
        other.client.set_cookie("session", cookie.value)
        return other


@dataclass
class DjangoSide(Side):
    clock: SettableClock
    site: Site
    name: str = "django"
    verify: str = "/stepup/2fa/verify/"
    sign_in: str = "/login/"  # the project's LOGIN_URL
    settings_url: str = "/stepup/2fa/"
    enrol_url: str = "/stepup/2fa/enrol/"
    confirm_url: str = "/stepup/2fa/confirm/"
    bob: Any = field(init=False)
    issuer: str = field(init=False)

    def __post_init__(self) -> None:
        from stepup.integrations.django.services import get_stepup

        self.issuer = get_stepup().two_factor.issuer
        self.bob = self.site.browser("bob")

    def _answer(self, r: Any) -> Answer:
        return Answer(r.status_code, r.headers.get("Location", ""), r.content.decode())

    def get(self, browser: Any, url: str, headers: Headers | None = None) -> Answer:
        return self._answer(browser.client.get(url, headers=headers or {}))

    def post(self, browser: Any, url: str, data: dict[str, str]) -> Answer:
        return self._answer(browser.client.post(url, data))

    def post_headers(
        self, browser: Any, url: str, data: dict[str, str], headers: Headers
    ) -> Answer:
        return self._answer(browser.client.post(url, data, headers=headers))

    def token(self, page: str) -> dict[str, str]:
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found, "no CSRF token"
        return {"csrfmiddlewaretoken": html.unescape(found.group(1))}

    def new_browser(self) -> Any:
        return self.site.browser()

    def login(self, browser: Any) -> Answer:
        return self._answer(browser.login("bob"))

    def who(self, browser: Any) -> str:
        return browser.get("/home/").content.decode().removeprefix("home of ")


@dataclass
class StarletteSide(Side):
    clock: SettableClock
    name: str = "starlette"
    verify: str = "/stepup/2fa/verify"
    sign_in: str = "/"  # no login_url: the app's root
    settings_url: str = "/stepup/2fa"
    enrol_url: str = "/stepup/2fa/enrol"
    confirm_url: str = "/stepup/2fa/confirm"
    app: Any = field(init=False)
    bob: Any = field(init=False)
    issuer: str = field(init=False)
    opened: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = starlette_support.make_app(clock=self.clock, store=MemoryStore())
        self.issuer = self.app.stepup.two_factor.issuer
        self.bob = self.new_browser()
        assert self.login(self.bob).status == 303

    def close(self) -> None:
        for browser in self.opened:
            browser.close()

    def _answer(self, r: Any) -> Answer:
        return Answer(r.status_code, r.headers.get("location", ""), r.text)

    def get(self, browser: Any, url: str, headers: Headers | None = None) -> Answer:
        return self._answer(browser.client.get(url, headers=headers or {}))

    def post(self, browser: Any, url: str, data: dict[str, str]) -> Answer:
        return self._answer(browser.client.post(url, data=data))

    def post_headers(
        self, browser: Any, url: str, data: dict[str, str], headers: Headers
    ) -> Answer:
        return self._answer(browser.client.post(url, data=data, headers=headers))

    def token(self, page: str) -> dict[str, str]:
        return {"csrf_token": starlette_support.csrf_token(page)}

    def new_browser(self) -> Any:
        browser = self.app.browser()
        self.opened.append(browser)
        return browser

    def login(self, browser: Any) -> Answer:
        return self._answer(browser.login("bob"))

    def who(self, browser: Any) -> str:
        said = browser.get("/").text.removeprefix("hello ")
        return "nobody" if said == "stranger" else said

    def copy(self, browser: Any) -> Any:
        other = self.new_browser()
        other.client.cookies.set("session", browser.client.cookies.get("session"))
        return other


FRAMEWORKS = ("flask", "django", "starlette")


@pytest.fixture(params=FRAMEWORKS)
def side(request: pytest.FixtureRequest, site: Site, clock: SettableClock) -> Iterator[Side]:
    if request.param == "flask":
        yield FlaskSide(clock)
    elif request.param == "django":
        yield DjangoSide(clock, site)
    else:
        starlette = StarletteSide(clock)
        yield starlette
        starlette.close()


# the recovery codes page ---------------------------------------------------------------


def _codes_box(page: str) -> dict[str, str]:
    """The attributes of the box holding Download, Copy and Print."""
    found = _BOX.search(page)
    assert found, "no box for the codes' buttons"
    return {k: html.unescape(v) for k, v in re.findall(r'\s([\w-]+)="([^"]*)"', found.group(1))}


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_file_download_saves_is_on_the_page_never_in_a_url(side: Side, language: str) -> None:
    """The page holds the file's text for its script (data-file); no data: URL holds the
    codes (a browser keeps a download's URL in its history, the codes readable there)."""
    headers = GERMAN if language == "de" else {}
    _, page = side.enrol(headers)
    codes = _CODES.findall(page)
    assert len(codes) == 10
    assert "data:" not in page
    button = re.search(r"<button [^>]*data-stepup-codes-download[^>]*>([^<]*)</button>", page)
    assert button is not None
    assert " hidden" in button.group(0)  # shown by the script
    if language == "en":
        assert button.group(1) == "Download"
    box = _codes_box(page)
    assert box["data-file-name"] == "recovery-codes.txt"
    lines = box["data-file"].split("\n")
    if language == "en":
        made = format_time(side.clock() - 30, "en")  # made before enrol() moved the clock
        assert lines[:4] == [
            f"Recovery codes for {side.issuer}",
            f"Made {made}",
            "Each code signs you in once. Keep them somewhere safe.",
            "",
        ]
    assert lines[4:] == [*codes, ""]  # one a line, all ten, as the page lists them


def test_copy_and_print_wait_for_their_script(side: Side, request: pytest.FixtureRequest) -> None:
    """Copy and Print are hidden until stepup-codes.js shows them; the page loads it from
    the integration's own route (a file: a script-src 'self' policy lets it run)."""
    _, page = side.enrol()
    for word in ("Download", "Copy", "Print"):
        button = re.search(rf"<button [^>]*>{word}</button>", page)
        assert button is not None, word
        assert 'type="button"' in button.group(0)
        assert " hidden" in button.group(0)
    assert 'role="status"' in page  # where the script says what Copy did
    script = re.search(r'<script src="([^"]+/stepup-codes\.js)" defer></script>', page)
    assert script is not None
    served = side.get(side.bob, script.group(1))
    assert served.status == 200
    assert "data-stepup-codes" in served.body


# the settings page: how many are left ------------------------------------------------


def _left(side: Side) -> tuple[str, str]:
    page = side.get(side.bob, side.settings_url)
    assert page.status == 200
    found = _LEFT.search(page.body)
    assert found, "the settings page says nothing about the recovery codes"
    return found.group(1), " ".join(found.group(2).split())


def test_the_settings_page_says_how_many_codes_are_left(side: Side) -> None:
    _, page = side.enrol()
    codes = _CODES.findall(page)
    assert _left(side) == ("stepup-recovery-left", "10 recovery codes left.")
    # Each sign-in with a recovery code spends one (in another browser: bob's stays).
    for spent in range(1, 11):
        browser = side.waiting()
        done = side.second_step(browser, {"recovery_code": codes[spent - 1]})
        assert done.status == 303, done.body
        left = 10 - spent
        if left > 3:
            assert _left(side) == ("stepup-recovery-left", f"{left} recovery codes left.")
        elif left:
            said = "recovery code left." if left == 1 else "recovery codes left."
            assert _left(side) == (
                "stepup-warning",
                f"{left} {said} Make new ones before they run out: each code signs you in only"
                " once.",
            )
    assert _left(side) == (
        "stepup-warning",
        "No recovery codes left. Make new ones now, so you can still sign in if you lose your"
        " authenticator app.",
    )


# the second step: a way off ------------------------------------------------------------


def test_the_second_step_has_a_way_off(side: Side) -> None:
    totp, _ = side.enrol()
    browser = side.waiting()
    page = side.get(browser, side.verify)
    forms = re.findall(r'<form method="post" action="([^"]*)"[^>]*>(.*?)</form>', page.body, re.S)
    leave = [body for action, body in forms if "Sign in as someone else" in body]
    assert len(leave) == 1
    assert [a for a, body in forms if body == leave[0]] == [side.verify]
    button = re.search(r"<button [^>]*>Sign in as someone else</button>", leave[0])
    assert button is not None
    assert 'type="submit"' in button.group(0)
    assert 'name="cancel"' in button.group(0)

    copy = side.copy(browser) if side.name != "django" else None
    left = side.second_step(browser, {"cancel": "1"})
    assert (left.status, left.location) == (303, side.sign_in)
    assert side.who(browser) == "nobody"
    # The sign-in waits no more: the step says it expired, a right code signs nobody in.
    again = side.get(browser, side.verify)
    assert again.status == 400
    assert "Your sign-in has expired" in again.body
    if copy is not None:
        # A copy of the session cookie taken while it waited cannot finish it either: the
        # store no longer holds it (spent, as at sign-out).
        finished = side.second_step(copy, {"code": totp.at(side.clock())})
        assert finished.status == 400, finished.body
        assert "Your sign-in has expired" in finished.body
        assert side.who(copy) == "nobody"
    # bob can sign in again, as anyone can (with the next code: the copy spent this one).
    side.clock.advance(30)
    fresh = side.waiting()
    assert side.second_step(fresh, {"code": totp.at(side.clock())}).status == 303
    assert side.who(fresh) == "bob"


def test_the_way_off_needs_the_forms_csrf_token(side: Side) -> None:
    totp, _ = side.enrol()
    browser = side.waiting()
    refused = side.post(browser, side.verify, {"cancel": "1"})
    assert refused.status == 403
    # Nothing was abandoned: the sign-in still finishes.
    assert side.second_step(browser, {"code": totp.at(side.clock())}).status == 303
    assert side.who(browser) == "bob"


def test_the_second_steps_fields_say_what_they_take(side: Side) -> None:
    side.enrol()
    page = side.get(side.waiting(), side.verify).body
    recovery = re.search(r'<input id="stepup-recovery"[^>]*>', page)
    assert recovery is not None
    assert re.search(r"\srequired\s", recovery.group(0))
    assert f'maxlength="{MAX_RECOVERY_INPUT_LENGTH}"' in recovery.group(0)
    code = re.search(r'<input id="stepup-code"[^>]*>', page)
    assert code is not None
    assert 'pattern="[0-9\\s\\-]+"' in code.group(0)
    assert 'title="Enter the code from your authenticator app (digits only)."' in code.group(0)
