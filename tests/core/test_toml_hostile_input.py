"""A hostile or broken TOML file (nested thousands of levels deep, an integer longer
than Python converts) is the same one-line ``ConfigurationError`` "not valid TOML" that
names the file, wherever a file is read: ``Policy.load_toml``, ``ConfigUsers.load``,
``stepup policy show`` (status 2) and ``stepup users check`` (invalid: status 1); never
a RecursionError or a ValueError with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepup._toml import read_toml
from stepup.cli import main
from stepup.config_users import ConfigUsers
from stepup.errors import ConfigurationError
from stepup.policy import Policy

DEPTH = 5000
HOSTILE = {
    "deep arrays": "x = " + "[" * DEPTH + "]" * DEPTH + "\n",
    "deep inline tables": "x = " + "{a=" * DEPTH + "1" + "}" * DEPTH + "\n",
    "deep arrays of inline tables": "x = " + "[{a=" * DEPTH + "1" + "}]" * DEPTH + "\n",
    "deep policy entry": '[actions."x"]\naccept = ' + "[" * DEPTH + "]" * DEPTH + "\n",
    "integer too long": "x = " + "1" * 5000 + "\n",
}
IDS = sorted(HOSTILE)


@pytest.fixture(params=IDS)
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "hostile.toml"
    path.write_text(HOSTILE[request.param])
    path.chmod(0o600)
    return path


def test_read_toml(hostile: Path) -> None:
    with pytest.raises(ConfigurationError, match="not valid TOML") as raised:
        read_toml(hostile)
    message = str(raised.value)
    assert message.startswith(f"{hostile}: not valid TOML (")
    assert "\n" not in message
    assert "[[[[" not in message
    assert "{a={a=" not in message
    assert "1111" not in message


def test_policy_load_toml(hostile: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"^{hostile}: not valid TOML"):
        Policy.default().load_toml(hostile)


def test_config_users_load(hostile: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"^{hostile}: not valid TOML"):
        ConfigUsers.load(hostile)


def test_policy_show(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "show", "--file", str(hostile)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"stepup: error: {hostile}: not valid TOML")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_users_check(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "check", str(hostile)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"invalid: {hostile}: not valid TOML" + err.split("not valid TOML", 1)[1]
    assert err.count("\n") == 1


def test_a_deep_but_reasonable_file_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text("x = " + "[" * 20 + "]" * 20 + "\ny = " + "{a=" * 20 + "1" + "}" * 20 + "\n")
    data = read_toml(path)
    assert set(data) == {"x", "y"}
