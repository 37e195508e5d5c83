"""Each extra adds only what its integration imports: a fresh virtual environment with
``stepup-auth[<extra>]`` holds exactly the packages docs/architecture.md lists for the
core and that extra, and what those in turn require; and the integration imports there."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from packaging_support import DIST_NAME, ROOT, Venv, closure, dependency_table, normalise

DJANGO = (
    "from django.conf import settings; settings.configure(INSTALLED_APPS=["
    "'django.contrib.auth', 'django.contrib.contenttypes', 'django.contrib.sessions',"
    " 'stepup.integrations.django']); import django; django.setup()"
)
# What each extra's integration is: imported (and, for a dependency used through another
# library, used) in the fresh environment.
PAGES = "from stepup.i18n import format_time; format_time(0, 'de')"  # Babel, lazily
SMOKE = {
    "sql": (
        "import stepup.adapters.storage.sql\n"
        "from sqlalchemy.ext.asyncio import create_async_engine\n"
        "create_async_engine('sqlite+aiosqlite://')"  # loads aiosqlite
    ),
    "postgres": (
        "import stepup.adapters.storage.sql, sqlalchemy\n"
        "sqlalchemy.create_engine('postgresql+psycopg://')"  # loads psycopg, connects not
    ),
    "redis": "import stepup.adapters.storage.redis",
    "oidc": "import stepup.adapters.idp.oidc",
    "saml": "import stepup.adapters.idp.saml",
    "passwords": (  # bcrypt is imported when a bcrypt hash is checked
        "from stepup.adapters.idp.password_formats import BcryptVerifier\n"
        "hashed = '$2b$04$nupi5/nhavHovHJb/YgAWO/aQRDr7HNj0sxNHlkq6iJor2YV6C3UK'\n"
        "assert BcryptVerifier().verify(hashed, 'pw')"
    ),
    "passkeys": "import stepup.passkeys",
    "flask": f"import stepup.integrations.flask\n{PAGES}",
    "django": (
        f"{DJANGO}\nimport stepup.integrations.django.views, stepup.integrations.django.middleware"
        f"\n{PAGES}"
    ),
    "starlette": f"import stepup.integrations.starlette, starlette.formparsers\n{PAGES}",
    "fastapi": "import stepup.integrations.fastapi",
    "testing": "import stepup.testing.strategies, stepup.testing.contract, stepup.testing.plugin",
    # cli.demo imports uvicorn when it serves; the demo configured for an OpenID provider
    # signs in through authlib's Starlette client (which needs httpx, from the oidc extra)
    "demo": (
        "import stepup.cli.demo, uvicorn\n"
        "from pathlib import Path\n"
        "from argon2 import PasswordHasher\n"
        "from stepup.adapters.idp.password import CHEAPEST\n"
        "from stepup.demo import DemoSettings, OIDCSettings, create_app\n"
        "oidc = OIDCSettings('https://login.example.com', 'demo')\n"
        "create_app(DemoSettings(Path('demo.sqlite3'), oidc=oidc),"
        " hasher=PasswordHasher.from_parameters(CHEAPEST))"
    ),
}
# Printed after the smoke: the distributions whose modules the process has imported.
LOADED = """
import importlib.metadata, json, sys
imported = {name.split(".")[0] for name in list(sys.modules)}
providers = importlib.metadata.packages_distributions()
print(json.dumps(sorted({d for top in imported for d in providers.get(top, [])})))
"""
# Put before a smoke: the modules named in ABSENT cannot be imported, as in an
# environment without their distributions (a finder that refuses them, so nothing
# else in sys.modules changes).
ABSENT = """
import importlib.abc, sys
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Absent())
"""


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


def _run_smoke(code: str, cwd: Path, absent: Iterable[str] = ()) -> set[str]:
    """Run ``code`` from this checkout in a child process with ``absent``'s modules
    refused; the distributions it imported."""
    prelude = f"ABSENT = {sorted(absent)!r}\n{ABSENT}" if absent else ""
    done = subprocess.run(
        [sys.executable, "-c", prelude + code + LOADED],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return {normalise(d) for d in json.loads(done.stdout.splitlines()[-1])}


def _not_installed_with(extra: str) -> set[str]:
    """The top-level modules of this environment that a fresh ``stepup-auth[extra]``
    would not have: those of every distribution outside the extra's closure."""
    installed = {
        normalise(d.metadata["Name"]): d.requires or [] for d in importlib.metadata.distributions()
    }
    extras = _extras_included(extra)
    allowed = [row.parsed for row in dependency_table() if row.extra in {"core", *extras}]
    kept = closure(allowed, installed) | {DIST_NAME}
    return {
        top
        for top, dists in importlib.metadata.packages_distributions().items()
        if not {normalise(d) for d in dists} & kept
    }


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
    loaded = {
        normalise(d)
        for d in json.loads(venv.run("python", "-c", SMOKE[extra] + LOADED, cwd=outside))
    }
    own = {row.name for row in dependency_table() if row.extra == extra}
    assert own - loaded == set(), f"{extra!r} brings what its integration never imports"


@pytest.mark.parametrize("extra", sorted(SMOKE))
def test_each_extra_is_imported_by_its_integration(extra: str, tmp_path: Path) -> None:
    """The same check in this environment (which has every extra): after its smoke, the
    process has imported every package the extra declares. Fails for a dependency added
    to an extra that its integration never imports, without building anything."""
    loaded = _run_smoke(SMOKE[extra], tmp_path)
    own = {row.name for row in dependency_table() if row.extra == extra}
    assert own - loaded == set(), f"{extra!r} brings what its integration never imports"


@pytest.mark.parametrize("extra", sorted(SMOKE))
def test_each_extra_works_with_only_what_it_installs(extra: str, tmp_path: Path) -> None:
    """The smoke again, with every module a fresh ``stepup-auth[extra]`` would lack
    refused: an extra that needs another's package to work (the demo's OIDC sign-in,
    authlib's client, needs httpx) fails here, without building anything."""
    absent = _not_installed_with(extra)
    assert "stepup" not in absent
    loaded = _run_smoke(SMOKE[extra], tmp_path, absent)
    own = {row.name for row in dependency_table() if row.extra == extra}
    assert own - loaded == set(), f"{extra!r} brings what its integration never imports"
