"""Helpers for tests/packaging. (They live here, not in tests/packaging/, because that
directory shares its name with the ``packaging`` library and cannot be imported as a
package.)

The wheel is built once per session (``python -m build``: the sdist, then the wheel from
the sdist, so a file missing from the sdist fails too). Every dependency is collected once
into a wheelhouse; each test then makes an empty virtual environment outside the source
tree and installs into it with ``--no-index --find-links`` from that wheelhouse.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DIST_NAME = "stepup-auth"
GUIDES = {
    "flask": DOCS / "getting-started-flask.md",
    "django": DOCS / "getting-started-django.md",
    "starlette": DOCS / "getting-started-starlette.md",
    "fastapi": DOCS / "getting-started-fastapi.md",
}
# Imported by an integration but brought by the framework it serves (not declared).
FRAMEWORK_PROVIDED = {"werkzeug": "flask", "markupsafe": "flask", "asgiref": "django"}
# Imported only when the app has installed it (not declared): see docs/architecture.md.
OPTIONAL_IMPORTS = {"flask_login", "flask_wtf", "wtforms", "asyncpg"}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: nothing that points back into this tree."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def run(args: Sequence[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command and return its output; on failure the assertion shows the output."""
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (
        f"{shlex.join(str(a) for a in args)} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
    return done.stdout


def guide_requirements(guide: Path) -> list[str]:
    """The requirements of a guide's first ``pip install`` line, as a user types them."""
    match = re.search(r"^pip install (.+?)(?:\s+#.*)?$", guide.read_text(), re.M)
    assert match, f"{guide.name} has no pip install line"
    return shlex.split(match.group(1))


@dataclass(frozen=True)
class Row:
    """One line of docs/architecture.md's Dependencies table."""

    extra: str  # "core" or the extra's name
    requirement: str  # as pyproject.toml names it, e.g. "SQLAlchemy[asyncio]"
    module: str | None  # the top-level module src/ imports; None when used through another

    @property
    def parsed(self) -> Requirement:
        return Requirement(self.requirement)

    @property
    def name(self) -> str:
        return normalise(self.parsed.name)


def dependency_table() -> list[Row]:
    """docs/architecture.md's Dependencies table: the allow-list."""
    text = (DOCS / "architecture.md").read_text()
    section = text.split("\n## Dependencies\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`"):
            continue
        module = re.match(r"`([\w.]+)`", cells[2])
        rows.append(Row(cells[0], cells[1].strip("`"), module.group(1) if module else None))
    assert rows, "docs/architecture.md has no Dependencies table"
    return rows


def closure(requirements: Iterable[Requirement], installed: Mapping[str, list[str]]) -> set[str]:
    """Every distribution ``requirements`` pull in, following the installed metadata."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name, extras = normalise(requirement.name), frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        for line in installed.get(name, []):
            needed = Requirement(line)
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            ):
                todo.append(needed)
    return names


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path
    wheelhouse: Path


def build(out: Path, wheelhouse: Path, also: Iterable[str]) -> Built:
    """Build the sdist and the wheel; collect the wheel's and ``also``'s dependencies."""
    run([sys.executable, "-m", "build", "--outdir", out, ROOT], cwd=ROOT)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    run(
        [
            sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", wheelhouse,
            f"{wheel}[all,demo]", *sorted(set(also)),
        ],
        cwd=out,
    )  # fmt: skip
    return Built(wheel, sdist, wheelhouse)


@dataclass(frozen=True)
class Venv:
    """A fresh virtual environment with no pip of its own: the outer pip installs into it
    (``pip --python``), so what is installed is exactly what was asked for."""

    path: Path
    wheelhouse: Path

    @classmethod
    def create(cls, path: Path, wheelhouse: Path) -> Venv:
        run([sys.executable, "-m", "venv", "--without-pip", path], cwd=path.parent)
        return cls(path, wheelhouse)

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def install(self, *requirements: str) -> None:
        run(
            [
                sys.executable, "-m", "pip", "--python", self.bin("python"), "install", "-q",
                "--no-index", "--find-links", self.wheelhouse, *requirements,
            ],
            cwd=self.path,
        )  # fmt: skip

    def run(self, *args: str | Path, cwd: Path, **env: str) -> str:
        """Run a command of this environment (``"python"``, ``"stepup"``, ...) in ``cwd``."""
        program, *rest = args
        return run([self.bin(str(program)), *rest], cwd=cwd, env=clean_env(**env))

    def pip_list(self) -> set[str]:
        """What ``pip list`` shows in this environment (normalised names)."""
        shown = run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                self.bin("python"),
                "list",
                "--format",
                "json",
            ],
            cwd=self.path,
        )
        return {normalise(entry["name"]) for entry in json.loads(shown)}

    def distributions(self) -> dict[str, list[str]]:
        """Installed distribution (normalised name) -> its requirements, read in the venv."""
        script = (
            "import json, importlib.metadata as m\n"
            "print(json.dumps({d.metadata['Name']: d.requires or [] for d in m.distributions()}))"
        )
        found: dict[str, list[str]] = json.loads(self.run("python", "-c", script, cwd=self.path))
        return {normalise(name): requires for name, requires in found.items()}
