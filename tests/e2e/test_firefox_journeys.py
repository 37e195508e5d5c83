"""The main demo journeys in Firefox (Debian's firefox-esr over Marionette): sign in,
turn the flag on, re-authenticate with a password, enrol in TOTP and sign in with it.
The steps are ``e2e.journeys``, the same ones Chromium runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import ARTIFACTS
from e2e.demo_server import DemoServer
from e2e.firefox import FIREFOX, FirefoxPage, firefox
from e2e.journeys import (
    ADMIN,
    MEMBER,
    PASSWORDS,
    enrol,
    expect,
    grant_state,
    new_session,
    reauthenticate,
    sign_in,
    sign_out,
    submit_code,
    toggle_flag,
)
from support import need

pytestmark = [
    pytest.mark.browser,
    # marionette-driver's helpers (mozinfo, mozrunner) use APIs Python deprecates.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mozinfo.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mozrunner.*"),
]

REPLAYED = "That code was already used. Wait for the next code and try again."


@pytest.fixture(scope="module")
def marionette() -> Iterator[Any]:
    need(Path(FIREFOX).exists(), "Firefox is not installed (apt-get install firefox-esr)")
    try:
        import marionette_driver  # noqa: F401
    except ImportError:
        need(False, "marionette-driver is not installed (pip install marionette-driver)")
    with firefox() as client:
        yield client


@pytest.fixture
def page(
    marionette: Any, demo: DemoServer, request: pytest.FixtureRequest
) -> Iterator[FirefoxPage]:
    firefox_page = FirefoxPage(marionette, demo.url)
    firefox_page.goto("/login")
    marionette.delete_all_cookies()  # cookies are per host, not per port: start clean
    yield firefox_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        firefox_page.save_failure(folder)


class _NoTour:
    def shot(self, page: Any, name: str) -> None:
        page.screenshot()  # the tour images come from Chromium; here it only must work


def test_sign_in_flag_on_and_reauthenticate_with_a_password(page: FirefoxPage) -> None:
    page.goto("/api-keys")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fapi-keys$"))
    sign_in(page, ADMIN, "not the password")
    expect(page.locator("#login-error")).to_have_text("Wrong email or password.")
    sign_in(page, ADMIN)
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("#signed-in-as")).to_have_text(ADMIN)
    assert grant_state(page) == "off"

    toggle_flag(page, on=True)  # the tenant settings ask for the password first
    assert grant_state(page) == "fresh"
    new_session(page, ADMIN)
    assert grant_state(page) == "stale"

    page.goto("/api-keys/1/regenerate")
    expect(page).to_have_url(re.compile(r"/stepup/reauth\?next=%2Fapi-keys%2F1%2Fregenerate"))
    reauthenticate(page, "not my password")
    expect(page.locator("#stepup-error")).to_have_text(
        "That password is not right. Check it and try again."
    )
    reauthenticate(page, PASSWORDS[ADMIN])
    expect(page).to_have_url(re.compile(r"/api-keys/1/regenerate$"))
    assert grant_state(page) == "fresh"
    page.click("#confirm")
    expect(page).to_have_url(re.compile(r"/api-keys$"))
    expect(page.locator(".flash")).to_contain_text("Deploy bot was regenerated")


def test_enrol_in_totp_and_sign_in_with_it(page: FirefoxPage, demo: DemoServer) -> None:
    sign_in(page, MEMBER)
    expect(page).to_have_url(re.compile(r"/account$"))
    totp, confirming, recovery = enrol(page, demo.clock, _NoTour())
    assert len(recovery) == 10
    page.goto("/security")
    expect(page.locator("#two-factor-state")).to_have_attribute("data-enrolled", "yes")

    sign_out(page)
    sign_in(page, MEMBER)
    expect(page).to_have_url(re.compile(r"/stepup/2fa/verify$"))
    submit_code(page, confirming)  # spent by the enrolment
    expect(page.locator("#stepup-error")).to_have_text(REPLAYED)
    demo.clock.advance(30)
    submit_code(page, totp.at(demo.clock()))
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("#signed-in-as")).to_have_text(MEMBER)
