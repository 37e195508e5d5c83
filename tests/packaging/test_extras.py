"""Each extra adds only what its integration imports: a fresh virtual environment with
``stepup-auth[<extra>]`` holds exactly the packages docs/architecture.md lists for the
core and that extra, and what those in turn require; and the integration imports there."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from packaging_support import DIST_NAME, ROOT, Venv, closure, dependency_table

DJANGO = (
    "from django.conf import settings; settings.configure(INSTALLED_APPS=["
    "'django.contrib.auth', 'django.contrib.contenttypes', 'django.contrib.sessions',"
    " 'stepup.integrations.django']); import django; django.setup()"
)
# What each extra's integration is: imported in the fresh environment.
SMOKE = {
    "sql": "import stepup.adapters.storage.sql",
    "postgres": "import stepup.adapters.storage.sql, psycopg",
    "redis": "import stepup.adapters.storage.redis",
    "oidc": "import stepup.adapters.idp.oidc",
    "saml": "import stepup.adapters.idp.saml",
    "passwords": "import stepup.adapters.idp.password_formats, bcrypt",
    "passkeys": "import stepup.passkeys, fido2",
    "flask": "import stepup.integrations.flask",
    "django": f"{DJANGO}; import stepup.integrations.django.views, stepup.integrations.django.middleware",
    "starlette": "import stepup.integrations.starlette",
    "fastapi": "import stepup.integrations.fastapi",
    "testing": "import stepup.testing.strategies, stepup.testing.contract, stepup.testing.plugin",
    "demo": "import stepup.cli.demo, stepup.demo, uvicorn",
}


def _extras_included(extra: str) -> set[str]:
    """The extra and the extras it names (``fastapi`` includes ``starlette``)."""
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    found, todo = set(), [extra]
    while todo:
        name = todo.pop()
        found.add(name)
        for line in optional[name]:
            requirement = Requirement(line)
            if requirement.name == DIST_NAME:
                todo.extend(requirement.extras - found)
    return found


def test_every_extra_has_a_smoke_check() -> None:
    extras = {row.extra for row in dependency_table()} - {"core"}
    assert extras == set(SMOKE)


@pytest.mark.packaging
@pytest.mark.parametrize("extra", sorted(SMOKE))
def test_an_extra_adds_only_what_its_integration_imports(
    extra: str, fresh_venv: Callable[..., Venv], tmp_path: Path
) -> None:
    venv = fresh_venv(f"{DIST_NAME}[{extra}]")
    installed = venv.distributions()
    extras = _extras_included(extra)
    allowed = [row.parsed for row in dependency_table() if row.extra in {"core", *extras}]
    expected = closure(allowed, installed) | {DIST_NAME}
    assert set(installed) - expected == set(), "installed but not on the allow-list"
    assert expected - set(installed) == set(), "on the allow-list but not installed"

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    venv.run("python", "-c", SMOKE[extra], cwd=outside)
