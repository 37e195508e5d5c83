"""Fixtures: headless Chromium (one per module), a fresh demo server per test, and the
screenshots: the tour on success (docs/images), the key pages on failure (artifacts/)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from e2e.demo_server import START, DemoServer
from e2e.oidc_provider import CLIENT_ID, CLIENT_SECRET, PROVIDER_NAME, oidc_provider
from stepup.demo import OIDCSettings
from stepup.demo.sso import OIDC_CALLBACK
from stepup.testing import SettableClock
from support import need

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
IMAGES = ROOT / "docs" / "images"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1100, "height": 800}
#: A tour image must stay small enough for the docs.
MAX_IMAGE_BYTES = 150 * 1024


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not longer: while Playwright's sync API is open,
    its event loop counts as running in this thread, and ``asyncio.run`` in any later
    test would fail."""
    need(Path(CHROMIUM).exists(), "Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def running_demo(tmp_path: Path, sso: str | None = None) -> Iterator[DemoServer]:
    """A fresh demo, stopped afterwards; ``sso="oidc"`` adds the test OpenID provider,
    and the demo's clock then starts at the real time, like the provider's."""
    server = DemoServer(tmp_path / "demo.sqlite3", start=time.time() if sso else START)
    with ExitStack() as stack:
        stack.callback(server.stop)
        settings = {}
        if sso == "oidc":
            issuer = stack.enter_context(oidc_provider(server.url + OIDC_CALLBACK))
            settings["oidc"] = OIDCSettings(issuer, CLIENT_ID, CLIENT_SECRET, name=PROVIDER_NAME)
        server.start(**settings)
        yield server


@pytest.fixture
def demo(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DemoServer]:
    """A fresh demo. ``parametrize("demo", ["oidc"], indirect=True)`` adds the test
    OpenID provider (see :func:`running_demo`)."""
    with running_demo(tmp_path, getattr(request, "param", None)) as server:
        yield server


class Tour:
    """Screenshots taken along a journey, kept until the test's outcome is known."""

    def __init__(self) -> None:
        self.shots: dict[str, bytes] = {}

    def shot(self, page: Any, name: str) -> None:
        self.shots[name] = page.screenshot(type="png")


@pytest.fixture
def tour() -> Tour:
    return Tour()


@pytest.fixture
def page(
    browser: Any, demo: DemoServer, tour: Tour, request: pytest.FixtureRequest
) -> Iterator[Any]:
    context = browser.new_context(base_url=demo.url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    try:
        if report is not None and report.failed:
            folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / "failed-here.png"), full_page=True)
            (folder / "failed-here.html").write_text(page.content())
            for name, png in tour.shots.items():
                (folder / f"{name}.png").write_bytes(png)
        elif report is not None and report.passed:
            for name, png in tour.shots.items():
                assert len(png) <= MAX_IMAGE_BYTES, f"{name}: {len(png)} bytes"
            # The tour shows random keys and codes, so rewriting the committed images on
            # every run would only add noise: regenerate them on request.
            if os.environ.get("STEPUP_WRITE_TOUR") == "1":
                IMAGES.mkdir(parents=True, exist_ok=True)
                for name, png in tour.shots.items():
                    (IMAGES / f"demo-{name}.png").write_bytes(png)
    finally:
        context.close()


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[Any, SettableClock]]:
    """The demo app in Starlette's test client (no browser), cheap argon2, settable clock."""
    from argon2 import PasswordHasher
    from starlette.testclient import TestClient

    from stepup.adapters.idp.password import CHEAPEST
    from stepup.demo import DemoSettings, create_app

    clock = SettableClock(START)
    settings = DemoSettings(db_path=tmp_path / "demo.sqlite3")
    app = create_app(settings, clock=clock, hasher=PasswordHasher.from_parameters(CHEAPEST))
    with TestClient(app, follow_redirects=False) as client:
        yield client, clock
