"""``--listener MODULE:NAME`` and ``--box MODULE:NAME`` find the app's own modules in
the current directory, as ``python -m`` and gunicorn do: the console script's
``sys.path[0]`` is the virtual environment's ``bin``, so an operator who ran the
command from the app's folder was told there is no module ``app_audit``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stepup.adapters.storage.sql import SQLStore
from stepup.cli import main
from stepup.tenants import TenantSettings

LISTENER = """\
from pathlib import Path


def log(event):
    with Path("audit.log").open("a", encoding="utf-8") as out:
        out.write(type(event).__name__ + "\\n")
"""


def console_script() -> Path:
    script = Path(sys.executable).parent / "stepup"
    if not script.exists():
        found = shutil.which("stepup")
        assert found is not None, "the stepup console script is not installed"
        script = Path(found)
    return script


@pytest.fixture
def app_folder(tmp_path: Path) -> tuple[Path, str, str]:
    """The app's folder: its audit module (a unique name), and a store with a tenant."""
    folder = tmp_path / "app"
    folder.mkdir()
    module = f"app_audit_{uuid.uuid4().hex[:8]}"
    (folder / f"{module}.py").write_text(LISTENER, encoding="utf-8")
    url = f"sqlite:///{folder / 'app.sqlite3'}"
    with SQLStore(url) as store:
        store.create_schema()
        TenantSettings(store).ensure("acme")
    return folder, module, url


def test_the_console_script_imports_a_listener_from_the_current_directory(
    app_folder: tuple[Path, str, str],
) -> None:
    folder, module, url = app_folder
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = ["operator", "tenant", "set-flag", "acme", "on", "--yes", "--store", url]
    done = subprocess.run(
        [str(console_script()), *argv, "--listener", f"{module}:log"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "changed: sensitive_actions_reauth of tenant 'acme': off -> on" in done.stdout
    assert (folder / "audit.log").read_text(encoding="utf-8") == "TenantFlagChanged\n"


def test_main_imports_from_the_current_directory_without_it_on_the_path(
    app_folder: tuple[Path, str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, module, url = app_folder
    monkeypatch.chdir(folder)
    # As the console script has it: neither "" nor the folder itself on the path.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(folder))])
    argv = ["operator", "tenant", "set-flag", "acme", "on", "--yes", "--store", url]
    try:
        assert main([*argv, "--listener", f"{module}:log"]) == 0, capsys.readouterr().err
    finally:
        sys.modules.pop(module, None)
    assert (folder / "audit.log").read_text(encoding="utf-8") == "TenantFlagChanged\n"
    # For the rest of the command, not only the import: a listener may import more.
    assert Path(sys.path[0]).resolve() == folder.resolve()
