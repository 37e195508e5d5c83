"""``stepup policy show``: defaults, a TOML file, and the lifetime variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepup.cli import main


def test_show_prints_the_seed_catalog(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENSITIVE_ACTION_AUTH_LIFETIME", raising=False)
    assert main(["policy", "show"]) == 0
    out = capsys.readouterr().out
    assert "installation lifetime: 21600 s" in out
    assert "api_key.regenerate" in out
    assert "is_production_workspace" in out


def test_show_applies_the_environment_and_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", "30m")
    path = tmp_path / "policy.toml"
    path.write_text('[actions."report.export"]\nsensitivity = "critical"\nlifetime = "5m"\n')
    assert main(["policy", "show", "--file", str(path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["lifetime_seconds"] == 1800
    rows = {row["action"]: row for row in shown["actions"]}
    assert rows["report.export"]["lifetime"] == "5m"
    assert rows["report.export"]["sensitivity"] == "critical"
    assert rows["user.update"]["lifetime"] == "30m"


@pytest.mark.parametrize("value", ["0", "abc", "-1h", ""])
def test_bad_lifetime_exits_non_zero_naming_the_variable(
    value: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", value)
    assert main(["policy", "show"]) == 2
    assert "SENSITIVE_ACTION_AUTH_LIFETIME" in capsys.readouterr().err


def test_bad_file_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[actions.x]\nsensitivity = 'extreme'\n")
    assert main(["policy", "show", "--file", str(path)]) == 2
    assert str(path) in capsys.readouterr().err
    assert main(["policy", "show", "--file", str(tmp_path / "missing.toml")]) == 2
