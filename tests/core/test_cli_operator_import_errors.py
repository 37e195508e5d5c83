"""``--box``/``--listener``: a name that does not exist (no such module, no such
attribute) is refused naming what was given; a module that raises as it is imported
(AttributeError, ImportError, a ModuleNotFoundError for a module it imports itself) is
refused with the exception's type only: its message may quote a setting it read."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from stepup.adapters.storage.sql import SQLStore
from stepup.cli import main
from stepup.records import Credential, TotpDevice
from stepup.sealing import SecretBox

KEY = b"k" * 32
DSN = "postgresql://app:hunter2@db/app"
HIDDEN = ("hunter2", DSN)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    folder = tmp_path / "app_code"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    name = f"opierr{uuid.uuid4().hex[:8]}"
    (folder / f"{name}_attr.py").write_text(
        f"DSN = {DSN!r}\nraise AttributeError(f'cannot configure store from {{DSN}}')\n"
    )
    (folder / f"{name}_imp.py").write_text(
        f"raise ImportError('driver missing for {DSN}', name='psycopg_{DSN}')\n"
    )
    (folder / f"{name}_dep.py").write_text("import backend_hunter2_secret_module\n")
    (folder / f"{name}_getattr.py").write_text(
        f"def __getattr__(name):\n    raise AttributeError('{DSN}')\n"
    )
    (folder / f"{name}_ok.py").write_text("box = None\n")
    return name


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    with SQLStore(url) as store:
        store.create_schema()
        secret = SecretBox({"k": KEY}, "k").seal("JBSWY3DPEHPK3PXP", context="d1")
        device = TotpDevice(device_id="d1", secret=secret, confirmed=True)
        store.put_credential(
            Credential(
                user_id="alice", credential_id="c1", secret="", confirmed=True, devices=(device,)
            )
        )
    return url


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    status = main(argv)
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    for hidden in HIDDEN:
        assert hidden not in err
    return err.strip()


@pytest.mark.parametrize(
    ("module", "error"),
    [("attr", "AttributeError"), ("imp", "ImportError"), ("dep", "ModuleNotFoundError")],
)
@pytest.mark.parametrize("option", ["--box", "--listener"])
def test_a_module_that_raises_while_importing_shows_the_type_only(
    modules: str,
    store_url: str,
    module: str,
    error: str,
    option: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(
        "STEPUP_ENCRYPTION_KEYS", f'{{"k": "{base64.urlsafe_b64encode(KEY).decode()}"}}'
    )
    path = f"{modules}_{module}:thing"
    line = refused(capsys, ["operator", "reseal", "--store", store_url, option, path, "--yes"])
    assert line == (
        f"stepup: cannot import {option} {path!r}: importing {f'{modules}_{module}'!r} raised"
        f" {error} (its message is not shown: it may hold a secret)"
    )


def test_a_module_getattr_that_raises_shows_no_message(
    modules: str, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = f"{modules}_getattr:box"
    line = refused(capsys, ["operator", "reseal", "--store", store_url, "--box", path, "--yes"])
    assert line == f"stepup: cannot import --box {path!r}: {f'{modules}_getattr'!r} has no 'box'"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("{m}_missing:box", "there is no module '{m}_missing'"),
        ("{m}_missing.sub:box", "there is no module '{m}_missing'"),
        ("{m}_ok:nothing", "'{m}_ok' has no 'nothing'"),
        ("{m}_ok:box.inner", "'{m}_ok' has no 'box.inner'"),
    ],
)
def test_a_name_that_does_not_exist_is_named(
    modules: str, store_url: str, given: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = given.format(m=modules)
    line = refused(capsys, ["operator", "reseal", "--store", store_url, "--box", path, "--yes"])
    assert line == f"stepup: cannot import --box {path!r}: {said.format(m=modules)}"
