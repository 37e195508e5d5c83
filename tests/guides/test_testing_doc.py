"""docs/testing.md, as a reader uses it: each framework's blocks, copied verbatim into a
test file next to the matching example app (copied out of the source tree), pass under
``pytest`` there, with stepup and its pytest plugin as installed and the example's own
environment (``STEPUP_DEV=1``, as the guides run it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
#: What a reader has not set (this run's pytest, the examples' keys and switches).
UNSET = ("PYTEST", "DJANGO_", "FLASK_", "SECRET_KEY", "STEPUP_", "PYTHONPATH")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(UNSET)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def _sections() -> dict[str, list[str]]:
    """The page's ``python`` blocks by the heading they are under (## or ###)."""
    found: dict[str, list[str]] = {}
    heading = ""
    for part in re.split(r"(^#{2,3} [^\n]*$|^```python\n.*?^```$)", _page(), flags=re.M | re.S):
        if part.startswith("#"):
            heading = part.lstrip("#").strip()
        elif part.startswith("```python\n"):
            found.setdefault(heading, []).append(part.removeprefix("```python\n")[:-3])
    return found


def _page() -> str:
    return (DOCS / "testing.md").read_text()


def _pytest(where: Path, **env: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"],
        cwd=where, env=_env(**env), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert " passed" in done.stdout, done.stdout
    assert "skipped" not in done.stdout, done.stdout


def test_the_page_has_a_block_for_each_framework_and_the_isolation_check() -> None:
    sections = _sections()
    for heading, count in (
        ("Flask", 1),
        ("Django", 2),
        ("Starlette and FastAPI", 1),
        ("A proof never grants another user or session", 1),
    ):
        assert len(sections.get(heading, [])) == count, heading


def test_the_flask_blocks_pass_against_the_flask_example(tmp_path: Path) -> None:
    sections = _sections()
    shutil.copy(DOCS / "examples" / "flask_app.py", tmp_path)
    [guarded] = sections["Flask"]
    [isolation] = sections["A proof never grants another user or session"]
    (tmp_path / "test_guarded.py").write_text(guarded)
    # "in the test file above (its `app` fixture)"
    (tmp_path / "test_isolation.py").write_text(f"{guarded}\n\n{isolation}")
    _pytest(tmp_path, STEPUP_DEV="1")


def test_the_fastapi_block_passes_against_the_fastapi_example(tmp_path: Path) -> None:
    [guarded] = _sections()["Starlette and FastAPI"]
    shutil.copy(DOCS / "examples" / "fastapi_app.py", tmp_path)
    (tmp_path / "test_guarded.py").write_text(guarded)
    _pytest(tmp_path, STEPUP_DEV="1")


def test_the_fastapi_block_as_the_page_says_to_change_it_passes_against_the_starlette_example(
    tmp_path: Path,
) -> None:
    [guarded] = _sections()["Starlette and FastAPI"]
    said = re.search(r"import `starlette_app` and declare\s+`(sensitive=\{[^`]*\})`", _page())
    assert said, "the page says what changes for the Starlette example"
    changed = re.sub(r"sensitive=\{.*?\},\n", f"{said.group(1)},\n", guarded, flags=re.S)
    changed = changed.replace("fastapi_app", "starlette_app")
    assert changed != guarded
    shutil.copy(DOCS / "examples" / "starlette_app.py", tmp_path)
    (tmp_path / "test_guarded.py").write_text(changed)
    _pytest(tmp_path, STEPUP_DEV="1")


def test_the_django_blocks_pass_against_the_django_example(tmp_path: Path) -> None:
    conftest, guarded = _sections()["Django"]
    project = tmp_path / "project"
    shutil.copytree(
        DOCS / "examples" / "django_app",
        project,
        ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"),
    )
    (project / "conftest.py").write_text(conftest)
    (project / "test_guarded.py").write_text(guarded)
    _pytest(project, DJANGO_DEBUG="1")


@pytest.mark.parametrize("name", ["settable_clock", "memory_store"])
def test_the_plugin_fixtures_the_page_names_exist(name: str) -> None:
    from stepup.testing import plugin

    assert f"`{name}`" in _page()
    assert hasattr(plugin, name)


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_the_guides_testing_install_line_brings_what_starlettes_test_client_needs(
    framework: str,
) -> None:
    """Starlette 1.x's TestClient refuses to import without ``httpx2``, which no stepup
    extra installs: the guide's "Testing your app" line names it."""
    guide = (DOCS / f"getting-started-{framework}.md").read_text()
    testing = guide.split("## Testing your app", 1)[1]
    [line] = re.findall(r"^pip install .*$", testing, re.M)
    assert '"stepup-auth[testing]" httpx2' in line
    assert '"stepup-auth[testing]"' in _page()
    assert "httpx2" in _page()
    import starlette.testclient

    assert "httpx2" in Path(starlette.testclient.__file__).read_text()  # the name it asks for
