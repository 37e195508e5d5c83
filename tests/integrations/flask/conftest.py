"""Fixtures: the test app in both modes (Flask-Login, subject_loader), signed-in clients."""

from __future__ import annotations

import pytest

from integrations.flask.flask_support import MODES, Browser, TestApp, make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def test_app(mode: str, clock: SettableClock) -> TestApp:
    return make_app(mode, clock=clock, store=MemoryStore())


@pytest.fixture
def alice(test_app: TestApp) -> Browser:
    browser = test_app.client()
    assert browser.login("alice").status_code == 303
    return browser


@pytest.fixture
def bob(test_app: TestApp) -> Browser:
    browser = test_app.client()
    assert browser.login("bob").status_code == 303
    return browser
