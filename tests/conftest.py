"""In CI nothing may skip: a skipped test turns the run red."""

from __future__ import annotations

import pytest

from support import IN_CI


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if IN_CI and reporter is not None and reporter.stats.get("skipped"):
        reporter.write_line(f"CI: {len(reporter.stats['skipped'])} tests skipped; CI allows none")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
