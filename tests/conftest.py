"""In CI nothing may skip: a skipped test turns the run red."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from support import IN_CI

# Hypothesis's per-example deadline (200 ms) is a timing assertion: on a loaded CI machine
# an example can take longer without anything being wrong. Tests assert behaviour only.
settings.register_profile("stepup", deadline=None)
settings.load_profile("stepup")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter is not None and reporter.stats.get("skipped"):
        reporter.write_line(f"CI: {len(reporter.stats['skipped'])} tests skipped; CI allows none")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


#: The keys the docs examples read from the environment (they refuse to start without).
EXAMPLE_KEYS = {
    "SECRET_KEY": "tests-session-key-for-the-docs-examples",
    "STEPUP_ENCRYPTION_KEY": "dGVzdHMtc2VhbGluZy1rZXktZm9yLXRoZS1leGFtcGw",  # 32 bytes
}


@pytest.fixture(scope="session", autouse=True)
def _docs_example_keys() -> Iterator[None]:
    """The docs examples are imported and built in-process by many tests: give them the
    keys production would (tests of the refusal and of STEPUP_DEV unset them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("STEPUP_DEV", raising=False)
        for name, value in EXAMPLE_KEYS.items():
            patch.setenv(name, value)
        yield
