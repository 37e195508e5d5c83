"""Firefox for the browser journeys: Debian's ``firefox-esr`` driven over Marionette
(Mozilla's ``marionette-driver``, no downloaded driver binary), behind the small part of
Playwright's page API that ``e2e.journeys`` uses, so the same steps run in both browsers.

``expect`` here waits for a condition the way Playwright's does (the page may still be
loading), then asserts it; it measures nothing.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
WAIT_SECONDS = 15.0
#: Nothing outside loopback: no updates, telemetry, safe-browsing lists or captive portal.
PREFS: dict[str, Any] = {
    "app.update.disabledForTesting": True,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "toolkit.telemetry.enabled": False,
    "extensions.update.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def firefox() -> Iterator[Any]:
    """A headless Firefox with a Marionette session; closed (and its profile removed)
    on exit."""
    from marionette_driver.marionette import Marionette

    with tempfile.TemporaryDirectory(prefix="stepup-firefox-") as folder:
        client = Marionette(
            host="127.0.0.1",
            port=_free_port(),
            bin=FIREFOX,
            headless=True,
            prefs=PREFS,
            startup_timeout=90,
            gecko_log=str(Path(folder) / "gecko.log"),  # not ./gecko.log in the checkout
        )
        try:
            client.start_session()
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.delete_session()
            client.cleanup()


def _wait(condition: Callable[[], Any], describe: Callable[[], str]) -> Any:
    """Retry ``condition`` until it is truthy, as Playwright's auto-waiting does.

    An element can be found on one page and read after a navigation has replaced it
    (Marionette then raises "stale element"); like a missing element, that only means
    the page is not there yet, so the whole condition runs again with a fresh lookup.
    """
    from marionette_driver import Wait
    from marionette_driver.errors import (
        NoSuchElementException,
        StaleElementException,
        TimeoutException,
    )

    not_yet = (NoSuchElementException, StaleElementException)
    try:
        waiting = Wait(None, timeout=WAIT_SECONDS, interval=0.05, ignored_exceptions=not_yet)
        return waiting.until(lambda _: condition())  # type: ignore[arg-type]
    except TimeoutException:
        try:
            described = describe()
        except not_yet:
            described = "the page changed while it was being described"
        raise AssertionError(described) from None


class FirefoxLocator:
    def __init__(self, page: FirefoxPage, selector: str) -> None:
        self.page = page
        self.selector = selector

    def _elements(self) -> list[Any]:
        from marionette_driver.by import By

        return list(self.page.client.find_elements(By.CSS_SELECTOR, self.selector))

    def all_inner_texts(self) -> list[str]:
        return [element.text for element in self._elements()]

    def first_text(self) -> str | None:
        found = self._elements()
        return found[0].text if found else None

    def attribute(self, name: str) -> str | None:
        found = self._elements()
        return found[0].get_attribute(name) if found else None

    def value(self) -> str | None:
        found = self._elements()
        return found[0].get_property("value") if found else None

    def count(self) -> int:
        return len(self._elements())


class FirefoxPage:
    """What ``e2e.journeys`` calls on a Playwright page, over Marionette."""

    def __init__(self, client: Any, base_url: str) -> None:
        self.client = client
        self.base_url = base_url

    @property
    def url(self) -> str:
        return str(self.client.get_url())

    def goto(self, path: str) -> None:
        self.client.navigate(self.base_url + path)

    def _act(self, selector: str, action: Callable[[Any], Any]) -> Any:
        """Run ``action`` on a fresh lookup of ``selector`` until it gets through: an
        element that went stale before the action reached it was never acted on."""
        from marionette_driver.by import By

        def attempt() -> tuple[Any]:
            # In a tuple: an action that answers None (a click) still counts as done.
            return (action(self.client.find_element(By.CSS_SELECTOR, selector)),)

        return _wait(attempt, lambda: f"no element {selector!r} on {self.url}")[0]

    def fill(self, selector: str, value: str) -> None:
        def clear_and_type(element: Any) -> None:
            element.clear()
            element.send_keys(value)

        self._act(selector, clear_and_type)

    def click(self, selector: str) -> None:
        self._act(selector, lambda element: element.click())  # waits for its navigation

    def inner_text(self, selector: str) -> str:
        return str(self._act(selector, lambda element: element.text))

    def get_attribute(self, selector: str, name: str) -> str | None:
        value = self._act(selector, lambda element: element.get_attribute(name))
        return None if value is None else str(value)

    def locator(self, selector: str) -> FirefoxLocator:
        return FirefoxLocator(self, selector)

    def content(self) -> str:
        return str(self.client.page_source)

    def screenshot(self, **_: Any) -> bytes:
        data: bytes = self.client.screenshot(format="binary")
        return data

    @contextlib.contextmanager
    def expect_navigation(self) -> Iterator[None]:
        """Wait, after the block, until the page that was showing has been replaced and
        the new one has loaded."""
        marker = secrets.token_hex(8)
        self.client.execute_script(f"window.__stepupMarker = '{marker}';")
        yield
        _wait(
            lambda: self.client.execute_script(
                "return window.__stepupMarker === undefined && document.readyState === 'complete';"
            ),
            lambda: f"no navigation away from {self.url}",
        )

    def save_failure(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "failed-here-firefox.png").write_bytes(self.screenshot())
        (folder / "failed-here-firefox.html").write_text(self.content())


def _text_matches(actual: str | None, expected: str | re.Pattern[str]) -> bool:
    if actual is None:
        return False
    if isinstance(expected, re.Pattern):
        return expected.search(actual) is not None
    return " ".join(actual.split()) == " ".join(expected.split())


class FirefoxExpect:
    """Playwright's ``expect`` assertions that the journeys use, waiting like them."""

    def __init__(self, target: FirefoxPage | FirefoxLocator) -> None:
        self.target = target

    def _locator(self) -> FirefoxLocator:
        assert isinstance(self.target, FirefoxLocator)
        return self.target

    def to_have_url(self, expected: str | re.Pattern[str]) -> None:
        page = self.target
        assert isinstance(page, FirefoxPage)
        pattern = (
            expected if isinstance(expected, re.Pattern) else re.compile(re.escape(expected) + "$")
        )
        _wait(
            lambda: pattern.search(page.url),
            lambda: f"URL {page.url} does not match {pattern.pattern}",
        )

    def to_have_text(self, expected: str | re.Pattern[str]) -> None:
        loc = self._locator()
        _wait(
            lambda: _text_matches(loc.first_text(), expected),
            lambda: f"{loc.selector}: text {loc.first_text()!r}, expected {expected!r}",
        )

    def to_contain_text(self, expected: str) -> None:
        loc = self._locator()
        _wait(
            lambda: expected in " ".join((loc.first_text() or "").split()),
            lambda: f"{loc.selector}: text {loc.first_text()!r} lacks {expected!r}",
        )

    def to_have_count(self, expected: int) -> None:
        loc = self._locator()
        _wait(
            lambda: loc.count() == expected,
            lambda: f"{loc.selector}: {loc.count()} elements, expected {expected}",
        )

    def to_have_attribute(self, name: str, expected: str) -> None:
        loc = self._locator()
        _wait(
            lambda: loc.attribute(name) == expected,
            lambda: f"{loc.selector}: {name}={loc.attribute(name)!r}, expected {expected!r}",
        )

    def to_have_value(self, expected: str | re.Pattern[str]) -> None:
        loc = self._locator()
        _wait(
            lambda: _text_matches(loc.value(), expected),
            lambda: f"{loc.selector}: value {loc.value()!r}, expected {expected!r}",
        )
