"""docs/testing.md's tenant-admin block, copied verbatim after the Flask and isolation
blocks it builds on (the same test file, as the page says): it passes against the Flask
example, and fails, naming the leak, once the example's ``is_tenant_admin`` ignores the
tenant it is asked about."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from guides.test_testing_doc import DOCS, _env, _pytest, _sections

HEADING = "A tenant admin changes only their own tenant"
OWN_TENANT_ONLY = 'return user["admin"] is True and user["tenant"] == tenant_id'


def _project(where: Path) -> Path:
    sections = _sections()
    [guarded] = sections["Flask"]
    [isolation] = sections["A proof never grants another user or session"]
    [tenant_admin] = sections[HEADING]
    shutil.copy(DOCS / "examples" / "flask_app.py", where)
    (where / "test_isolation.py").write_text(f"{guarded}\n\n{isolation}\n\n{tenant_admin}")
    return where


def test_the_page_has_one_tenant_admin_block() -> None:
    [block] = _sections()[HEADING]
    assert "check_tenant_admin_isolation(" in block


def test_the_block_passes_against_the_flask_example(tmp_path: Path) -> None:
    _pytest(_project(tmp_path), STEPUP_DEV="1")


def test_the_block_fails_when_is_tenant_admin_ignores_its_tenant_id(tmp_path: Path) -> None:
    app = _project(tmp_path) / "flask_app.py"
    source = app.read_text()
    assert OWN_TENANT_ONLY in source
    app.write_text(source.replace(OWN_TENANT_ONLY, 'return user["admin"] is True'))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"],
        cwd=tmp_path, env=_env(STEPUP_DEV="1"), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-4000:]
    assert "1 failed, 2 passed" in done.stdout, done.stdout[-4000:]
    assert (
        "is_tenant_admin ignores its tenant_id: an admin of 'acme' changed 'globex'"
    ) in done.stdout
