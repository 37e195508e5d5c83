"""The published ``test`` extra is explained too: docs/architecture.md's Dependencies
section gives each of its requirements one line (``- `name`: why``), and no line for a
requirement it no longer has. (The other extras are the table test_dependencies.py reads.)
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement

from packaging_support import DIST_NAME, DOCS, ROOT, normalise


def _test_extra() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["optional-dependencies"]["test"]]
    return {normalise(r.name) for r in requirements if r.name != DIST_NAME}


def _explained() -> list[str]:
    text = (DOCS / "architecture.md").read_text()
    section = text.split("\n## Dependencies\n", 1)[1].split("\n## ", 1)[0]
    return [
        normalise(name) for name in re.findall(r"^- `([\w.-]+)(?:\[[\w,]+\])?`: ", section, re.M)
    ]


def test_each_requirement_of_the_test_extra_has_one_line() -> None:
    explained = _explained()
    assert len(explained) == len(set(explained)), "a requirement explained twice"
    assert set(explained) == _test_extra()
