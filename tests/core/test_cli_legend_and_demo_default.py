"""``stepup policy show`` explains only the columns it shows, and names the lifetime
setting; ``stepup demo --help`` prints where the demo database really is."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepup.cli import main

LEVEL_LEGEND = "level: the minimum level of assurance"
LEVELS = (
    '[[levels]]\nname = "password"\nmethods = [["pwd"]]\n'
    '[[levels]]\nname = "mfa"\nmethods = [["pwd", "otp"]]\n'
    '[actions."billing.pay"]\nlevel = "mfa"\n'
)


def _show(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["policy", "show", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def _header(lines: list[str]) -> list[str]:
    [header] = [line for line in lines if line.startswith("action ")]
    return header.split()


def test_without_levels_neither_the_level_column_nor_its_legend_is_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENSITIVE_ACTION_AUTH_LIFETIME", raising=False)
    lines = _show(capsys)
    assert "level" not in _header(lines)
    assert not any(line.startswith(LEVEL_LEGEND) for line in lines)
    assert lines[0] == "default lifetime (SENSITIVE_ACTION_AUTH_LIFETIME): 6 h (21600 s)"


def test_with_levels_the_level_column_comes_with_its_legend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", "30m")
    policy = tmp_path / "policy.toml"
    policy.write_text(LEVELS)
    lines = _show(capsys, "--file", str(policy))
    assert "level" in _header(lines)
    assert sum(line.startswith(LEVEL_LEGEND) for line in lines) == 1
    assert lines[0] == "default lifetime (SENSITIVE_ACTION_AUTH_LIFETIME): 30 min (1800 s)"


def test_demo_help_prints_the_default_database_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepup.demo import default_demo_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: the path is not wrapped
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert default_demo_path() == tmp_path / "data" / "stepup" / "demo.sqlite3"
    assert f"the SQLite file (default: {default_demo_path()})" in out
    assert "next to stepup's default database" not in out
