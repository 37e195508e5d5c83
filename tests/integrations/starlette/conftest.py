"""Fixtures: the test app on the memory store, and signed-in browsers for alice and bob."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.starlette.starlette_support import Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def test_app(clock: SettableClock) -> TestApp:
    return make_app(clock=clock, store=MemoryStore())


@pytest.fixture
def browsers(test_app: TestApp) -> Iterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        browser.close()


def _signed_in(test_app: TestApp, browsers: list[Browser], user: str) -> Browser:
    browser = test_app.browser()
    browsers.append(browser)
    assert browser.login(user).status_code == 303
    return browser


@pytest.fixture
def alice(test_app: TestApp, browsers: list[Browser]) -> Browser:
    return _signed_in(test_app, browsers, "alice")


@pytest.fixture
def bob(test_app: TestApp, browsers: list[Browser]) -> Browser:
    return _signed_in(test_app, browsers, "bob")
