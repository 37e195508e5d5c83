"""An integration or adapter imported without its extra names the extra to install.

Each case imports the package in a child process in which one module of the extra cannot
be imported (a finder refuses it, as in an environment without it): the import fails with
a ``ModuleNotFoundError`` (so ``except ImportError`` still catches it) that names the
package and ``pip install 'stepup-auth[extra]'``, keeps the missing module as ``name``,
and is chained from the original error. Without this, Flask without fido2 said "No
module named 'fido2'", for passkeys the app may never turn on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from packaging_support import DIST_NAME, ROOT, Venv, dependency_table
from stepup._extras import needs_extra

DJANGO = (
    "from django.conf import settings; settings.configure(INSTALLED_APPS=["
    "'django.contrib.auth', 'django.contrib.contenttypes', 'django.contrib.sessions',"
    " 'stepup.integrations.django']); import django; django.setup()"
)
# extra -> (the package that names it, how an app imports it, the modules it cannot miss).
# Babel is left out: stepup.i18n imports it when it formats a time, falling back to
# ISO 8601 without it; markupsafe comes with the framework (Flask) or with jinja2.
PACKAGES = {
    "flask": (
        "stepup.integrations.flask",
        "import stepup.integrations.flask",
        ["flask", "itsdangerous", "fido2", "markupsafe"],
    ),
    "django": (  # imported by Django from INSTALLED_APPS, or by the app (DjangoStore)
        "stepup.integrations.django",
        "import stepup.integrations.django",
        ["django", "jinja2", "fido2"],
    ),
    "starlette": (
        "stepup.integrations.starlette",
        "import stepup.integrations.starlette",
        ["starlette", "jinja2", "itsdangerous", "fido2", "markupsafe"],
    ),
    "fastapi": (
        "stepup.integrations.fastapi",
        "import stepup.integrations.fastapi",
        ["fastapi", "starlette", "jinja2", "markupsafe"],
    ),
    "sql": ("stepup.adapters.storage.sql", "import stepup.adapters.storage.sql", ["sqlalchemy"]),
    "redis": ("stepup.adapters.storage.redis", "import stepup.adapters.storage.redis", ["redis"]),
    "oidc": (
        "stepup.adapters.idp.oidc",
        "import stepup.adapters.idp.oidc.client",  # a submodule: its package says it
        ["httpx", "joserfc"],
    ),
    "saml": (
        "stepup.adapters.idp.saml",
        "import stepup.adapters.idp.saml",
        ["saml2", "defusedxml"],
    ),
    "passkeys": ("stepup.passkeys", "import stepup.passkeys", ["fido2"]),
}
CASES = [
    pytest.param(extra, missing, id=f"{extra}-without-{missing}")
    for extra, (_, _, modules) in PACKAGES.items()
    for missing in modules
]
# Run in the child: refuse one module, import, and print what the error says.
CHILD = """
import importlib.abc, json, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Absent())
try:
    exec(IMPORT)
except ImportError as exc:
    cause = exc.__cause__
    print(json.dumps({
        "type": type(exc).__name__, "message": str(exc), "name": exc.name,
        "cause": [type(cause).__name__, getattr(cause, "name", None)],
    }))
else:
    print("null")
"""


def _import_without(missing: str, statement: str, cwd: Path) -> dict[str, object] | None:
    code = f"MISSING = {missing!r}\nIMPORT = {statement!r}\n{CHILD}"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    found: dict[str, object] | None = json.loads(done.stdout.splitlines()[-1])
    return found


@pytest.mark.parametrize(("extra", "missing"), CASES)
def test_an_import_without_its_extra_names_the_extra(
    extra: str, missing: str, tmp_path: Path
) -> None:
    package, statement, _ = PACKAGES[extra]
    error = _import_without(missing, statement, tmp_path)
    assert error == {
        "type": "ModuleNotFoundError",
        "message": f"{package} needs the {extra} extra: pip install 'stepup-auth[{extra}]'",
        "name": missing,
        "cause": ["ModuleNotFoundError", missing],
    }


def test_django_setup_without_the_extra_names_it(tmp_path: Path) -> None:
    """The way a Django app meets it: ``django.setup()`` with the app installed (whose
    package imports its names on first use; it checks only that they are installed)."""
    error = _import_without("fido2", DJANGO, tmp_path)
    assert error is not None
    assert error["message"] == (
        "stepup.integrations.django needs the django extra: pip install 'stepup-auth[django]'"
    )
    assert error["name"] == "fido2"


def test_the_django_package_imports_none_of_its_extra(tmp_path: Path) -> None:
    """Checking the django extra imports none of its packages."""
    statement = (
        "import sys\nimport stepup.integrations.django\n"
        "assert not {'django', 'jinja2', 'fido2'} & {m.partition('.')[0] for m in sys.modules}"
    )
    assert _import_without("nothing-is-missing", statement, tmp_path) is None


def test_the_cases_cover_every_package_of_each_extra() -> None:
    """A module an extra declares (but Babel, imported when a time is shown) is a case:
    a dependency added to an extra without a case here fails."""
    lazy = {"babel"}
    for extra, (_, _, modules) in PACKAGES.items():
        declared = {row.module for row in dependency_table() if row.extra == extra and row.module}
        assert declared - lazy <= set(modules), extra


def test_a_missing_stepup_module_is_not_an_extra() -> None:
    """A stepup module that cannot be found is a broken install or a bug: passed on as it
    came, like an error without a module name."""
    for name in ("stepup.nowhere", None):
        original = ModuleNotFoundError("No module named 'stepup.nowhere'", name=name)
        with pytest.raises(ModuleNotFoundError) as caught, needs_extra("stepup.x", "x"):
            raise original
        assert caught.value is original


def test_other_import_errors_pass_unchanged() -> None:
    original = ImportError("cannot import name 'Fido2Server' from 'fido2.server'", name="fido2")
    with pytest.raises(ImportError) as caught, needs_extra("stepup.passkeys", "passkeys"):
        raise original
    assert caught.value is original


@pytest.mark.packaging
def test_a_fresh_environment_with_the_framework_alone_names_the_extra(
    fresh_venv: Callable[..., Venv], tmp_path: Path
) -> None:
    """Installed for real: the wheel and Flask, not the flask extra."""
    venv = fresh_venv(DIST_NAME, "flask")
    script = """
import json
found = {}
for package in ("stepup.integrations.flask", "stepup.adapters.storage.sql", "stepup.passkeys"):
    try:
        __import__(package)
    except ImportError as exc:
        found[package] = [str(exc), exc.name]
print(json.dumps(found))
"""
    found = json.loads(venv.run("python", "-c", script, cwd=tmp_path))
    hint = "{} needs the {} extra: pip install 'stepup-auth[{}]'"
    assert found["stepup.integrations.flask"][0] == hint.format(
        "stepup.integrations.flask", "flask", "flask"
    )
    assert found["stepup.integrations.flask"][1] in {"itsdangerous", "fido2"}
    assert found["stepup.adapters.storage.sql"] == [
        hint.format("stepup.adapters.storage.sql", "sql", "sql"),
        "sqlalchemy",
    ]
    assert found["stepup.passkeys"] == [
        hint.format("stepup.passkeys", "passkeys", "passkeys"),
        "fido2",
    ]


def test_the_sql_engine_module_names_its_extra(tmp_path: Path) -> None:
    """docs/storage.md names ``stepup.adapters.storage.sql_engine.TIMEOUT``: imported
    on its own without SQLAlchemy, it names the sql extra too."""
    error = _import_without("sqlalchemy", "import stepup.adapters.storage.sql_engine", tmp_path)
    assert error is not None
    assert error["message"] == (
        "stepup.adapters.storage.sql_engine needs the sql extra: pip install 'stepup-auth[sql]'"
    )
    assert error["name"] == "sqlalchemy"
