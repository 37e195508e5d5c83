"""Fixtures for the packaging tests (helpers: tests/packaging_support.py).

Tests marked ``packaging`` build the wheel and make virtual environments: a minute or two.
Outside CI they run only when asked (``STEPUP_PACKAGING=1``, ``-m packaging``, or
``bash scripts/package_check.sh``); under ``CI=true`` they always run. The static checks
(the dependency table against pyproject.toml and src/) always run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from packaging_support import DIST_NAME, GUIDES, Built, Venv, build, guide_requirements
from support import IN_CI


def _enabled(config: pytest.Config) -> bool:
    wanted = "packaging" in (config.getoption("markexpr", "") or "")
    return IN_CI or wanted or os.environ.get("STEPUP_PACKAGING") == "1"


@pytest.fixture(autouse=True)
def _only_when_asked(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("packaging") and not _enabled(request.config):
        pytest.skip("packaging check: set STEPUP_PACKAGING=1 or run scripts/package_check.sh")


@pytest.fixture(scope="session")
def guides() -> dict[str, list[str]]:
    """Framework -> the requirements of its getting-started guide's ``pip install`` line."""
    return {name: guide_requirements(guide) for name, guide in GUIDES.items()}


@pytest.fixture(scope="session")
def built(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    guides: dict[str, list[str]],
) -> Built:
    if not _enabled(request.config):  # a session fixture is set up before the autouse skip
        pytest.skip("packaging check: set STEPUP_PACKAGING=1 or run scripts/package_check.sh")
    others = [r for rs in guides.values() for r in rs if not r.startswith(DIST_NAME)]
    return build(tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("wheels"), others)


@pytest.fixture
def fresh_venv(built: Built, tmp_path: Path) -> Callable[..., Venv]:
    """``fresh_venv(*requirements)``: a new environment outside the source tree holding
    exactly those (and what they require), installed from the wheelhouse."""

    def make(*requirements: str) -> Venv:
        venv = Venv.create(tmp_path / f"venv{len(list(tmp_path.glob('venv*')))}", built.wheelhouse)
        if requirements:
            venv.install(*requirements)
        return venv

    return make
