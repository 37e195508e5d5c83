"""The dependency table in docs/architecture.md agrees with pyproject.toml and with src/.

The table is the allow-list the install tests use, so it must be exactly what pyproject
declares, every third-party module src/ imports must be on it, and every module on it
must be imported somewhere (a dependency nothing uses is a dependency to drop).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections import defaultdict

import pytest
from packaging.requirements import Requirement

from packaging_support import (
    DIST_NAME,
    DOCS,
    FRAMEWORK_PROVIDED,
    OPTIONAL_IMPORTS,
    ROOT,
    Row,
    dependency_table,
)

SRC = ROOT / "src" / "stepup"
META_EXTRAS = {"all", "test"}  # groups of extras, not extras of their own


def _declared() -> dict[str, set[tuple[str, frozenset[str]]]]:
    """Extra ("core" for the base) -> its own requirements (name, extras), self-references
    left out."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    declared = {}
    for extra, requirements in groups.items():
        parsed = [Requirement(r) for r in requirements]
        declared[extra] = {
            (r.name.lower(), frozenset(r.extras)) for r in parsed if r.name != DIST_NAME
        }
    return declared


def _imports() -> dict[str, set[str]]:
    """Top-level third-party module -> the src/ files that import it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "stepup":
                    found[top].add(str(path.relative_to(SRC)))
    return found


@pytest.fixture(scope="module")
def table() -> list[Row]:
    return dependency_table()


def test_the_table_is_what_pyproject_declares(table: list[Row]) -> None:
    declared = _declared()
    listed: dict[str, set[tuple[str, frozenset[str]]]] = defaultdict(set)
    for row in table:
        listed[row.extra].add((row.parsed.name.lower(), frozenset(row.parsed.extras)))
    for extra in set(declared) - META_EXTRAS:
        assert listed[extra] == declared[extra], f"extra {extra!r}: table and pyproject differ"
    assert set(listed) <= set(declared) - META_EXTRAS, "the table names an unknown extra"


def test_every_third_party_import_is_allowed(table: list[Row]) -> None:
    allowed = {row.module for row in table if row.module} | set(FRAMEWORK_PROVIDED)
    allowed |= OPTIONAL_IMPORTS
    stray = {module: sorted(files) for module, files in _imports().items() if module not in allowed}
    assert not stray, f"imported by src/ but not in docs/architecture.md's table: {stray}"


def test_every_listed_module_is_imported(table: list[Row]) -> None:
    imported = _imports()
    unused = [row.requirement for row in table if row.module and row.module not in imported]
    assert not unused, f"listed but never imported by src/: {unused}"


def test_modules_stay_where_their_extra_is() -> None:
    """pyotp is a test tool; authlib only the demo's; itsdangerous only Flask's and Starlette's."""
    imported = _imports()
    assert "pyotp" not in imported
    assert all(f.startswith("demo/") for f in imported["authlib"]), imported["authlib"]
    assert all(
        f.startswith(("integrations/flask/", "integrations/starlette/"))
        for f in imported["itsdangerous"]
    ), imported["itsdangerous"]


def test_install_lines_name_the_distribution() -> None:
    """Every ``pip install`` in the docs, README, scripts and error hints names stepup-auth."""
    files = [
        *DOCS.glob("*.md"),
        ROOT / "README.md",
        *(ROOT / "scripts").glob("*.sh"),
        *SRC.rglob("*.py"),
    ]
    old = re.compile(r"""pip install\b.*?(?<![\w-])["']?stepup(\[|["'\s]|$)""")
    wrong = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in files
        for line in path.read_text().splitlines()
        if old.search(line)
    ]
    assert not wrong, wrong
