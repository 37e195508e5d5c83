"""``--box`` and ``--listener`` name the app's own code: a module that fails as it is
imported (with anything, not only ImportError), a ``--box`` function that raises or
needs arguments, is one line ``stepup: ...`` naming what was given and the error's
type (never its message, which may quote a secret the module read) and status 2,
with nothing changed; never a traceback."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from stepup.adapters.storage.sql import SQLStore
from stepup.cli import main
from stepup.records import Credential, TotpDevice
from stepup.sealing import SecretBox

OLD_KEY = b"o" * 32
SECRET_WORDS = "hunter2-in-the-message"


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A unique name for this test's app modules (``<name>_...``), importable."""
    folder = tmp_path / "app_code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    name = f"opimp{uuid.uuid4().hex[:8]}"
    (folder / f"{name}_raises.py").write_text(f"raise KeyError({SECRET_WORDS!r})\n")
    (folder / f"{name}_runtime.py").write_text(
        f"raise RuntimeError('cannot reach postgresql://app:{SECRET_WORDS}@db/app')\n"
    )
    (folder / f"{name}_factories.py").write_text(
        "def box():\n"
        f"    raise RuntimeError('vault down: {SECRET_WORDS}')\n"
        "def box_of(name):\n"
        "    raise AssertionError('never called')\n"
        "def listener(event):\n"
        "    pass\n"
    )
    return name


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    with SQLStore(url) as store:
        store.create_schema()
        secret = SecretBox({"old": OLD_KEY}, "old").seal("JBSWY3DPEHPK3PXP", context="d1")
        device = TotpDevice(device_id="d1", secret=secret, confirmed=True)
        credential = Credential(
            user_id="alice", credential_id="c1", secret="", confirmed=True, devices=(device,)
        )
        store.put_credential(credential)
    return url


def stored_secret(url: str) -> str:
    with SQLStore(url) as store:
        credential = store.get_credential("alice")
        assert credential is not None
        return credential.devices[0].secret


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    status = main(argv)
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("stepup: ")
    assert "Traceback" not in err
    assert SECRET_WORDS not in err
    return err.strip()


@pytest.mark.parametrize(("module", "error"), [("raises", "KeyError"), ("runtime", "RuntimeError")])
def test_a_box_module_that_fails_on_import_is_one_line_and_status_2(
    modules: str,
    store_url: str,
    module: str,
    error: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("STEPUP_ENCRYPTION_KEYS", raising=False)
    before = stored_secret(store_url)
    path = f"{modules}_{module}:box"
    line = refused(capsys, ["operator", "reseal", "--store", store_url, "--box", path, "--yes"])
    assert line == (
        f"stepup: cannot import --box {path!r}: importing {f'{modules}_{module}'!r} raised"
        f" {error} (its message is not shown: it may hold a secret)"
    )
    assert stored_secret(store_url) == before


def test_a_listener_module_that_fails_on_import_changes_nothing(
    modules: str, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = f"{modules}_raises:log"
    argv = ["operator", "remove-2fa", "alice", "--store", store_url, "--listener", path, "--yes"]
    line = refused(capsys, argv)
    assert line.startswith(f"stepup: cannot import --listener {path!r}: importing ")
    assert line.endswith("raised KeyError (its message is not shown: it may hold a secret)")
    with SQLStore(store_url) as store:
        assert store.get_credential("alice") is not None


def test_a_box_function_that_raises_is_one_line_and_status_2(
    modules: str,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("STEPUP_ENCRYPTION_KEYS", raising=False)
    before = stored_secret(store_url)
    path = f"{modules}_factories:box"
    line = refused(capsys, ["operator", "reseal", "--store", store_url, "--box", path, "--yes"])
    assert line == (
        f"stepup: --box {path!r} raised RuntimeError when called"
        " (its message is not shown: it may hold a secret)"
    )
    assert stored_secret(store_url) == before


@pytest.mark.parametrize("path", ["{modules}_factories:box_of", "json:loads"])
def test_a_box_function_that_needs_arguments_is_one_line_and_status_2(
    modules: str,
    store_url: str,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("STEPUP_ENCRYPTION_KEYS", raising=False)
    before = stored_secret(store_url)
    path = path.format(modules=modules)
    line = refused(capsys, ["operator", "reseal", "--store", store_url, "--box", path, "--yes"])
    assert line == (
        f"stepup: --box {path!r} needs arguments: name a SecretBox, or a function taking none"
    )
    assert stored_secret(store_url) == before


def test_a_box_function_taking_no_arguments_still_works(
    tmp_path: Path,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "good_code"
    folder.mkdir()
    name = f"opbox{uuid.uuid4().hex[:8]}"
    new = base64.b64encode(b"n" * 32).decode()
    (folder / f"{name}.py").write_text(
        "import base64\n"
        "from stepup.sealing import SecretBox\n"
        "def box():\n"
        f"    return SecretBox({{'old': {OLD_KEY!r}, 'new': base64.b64decode({new!r})}}, 'new')\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("STEPUP_ENCRYPTION_KEYS", raising=False)
    status = main(["operator", "reseal", "--store", store_url, "--box", f"{name}:box", "--yes"])
    out, err = capsys.readouterr()
    assert (status, err) == (0, "")
    assert "resealed: 1 secret(s) under key 'new'" in out
    assert SecretBox({"new": b"n" * 32}, "new").needs_reseal(stored_secret(store_url)) is False
