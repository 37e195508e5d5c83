"""``stepup policy show``: defaults, a TOML file, and the lifetime variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.cli import main


def test_show_prints_the_seed_catalog(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENSITIVE_ACTION_AUTH_LIFETIME", raising=False)
    assert main(["policy", "show"]) == 0
    out = capsys.readouterr().out
    assert "default lifetime (SENSITIVE_ACTION_AUTH_LIFETIME): 6 h (21600 s)" in out
    assert "api_key.regenerate" in out
    assert "is_production_workspace" in out


def test_show_lists_the_actions_stepups_own_views_guard(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table is the one the integrations build: it was the bare catalog, without the
    recovery codes' action every integration guards."""
    from stepup.integrations.flask._config import policy_from_config

    monkeypatch.delenv("SENSITIVE_ACTION_AUTH_LIFETIME", raising=False)
    assert main(["policy", "show", "--json"]) == 0
    shown = {row["action"] for row in json.loads(capsys.readouterr().out)["actions"]}
    assert {"2fa.recovery.regenerate", "2fa.device.add", "tenant.settings.update"} <= shown
    flask = policy_from_config(
        None, None, recovery_action="2fa.recovery.regenerate", disable_action="2fa.disable"
    )
    assert shown == {row["action"] for row in flask.table()}


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
    assert rows["report.export"]["lifetime"] == "5 min"
    assert rows["report.export"]["sensitivity"] == "critical"
    assert rows["user.update"]["lifetime"] == "30 min"


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


@pytest.mark.parametrize(
    ("lifetime", "shown"),
    [
        ("90s", "1 min 30 s"),
        ("90", "1 min 30 s"),
        ("45s", "45 s"),
        ("6h", "6 h"),
        ("5400", "1 h 30 min"),
        ("3661", "1 h 1 min 1 s"),
        ("48h", "48 h"),
    ],
)
def test_lifetimes_are_shown_exactly_never_rounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lifetime: str, shown: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(f'[actions."report.export"]\nlifetime = "{lifetime}"\n')
    assert main(["policy", "show", "--file", str(path), "--json"]) == 0
    rows = {row["action"]: row for row in json.loads(capsys.readouterr().out)["actions"]}
    assert rows["report.export"]["lifetime"] == shown


def test_the_table_shows_the_exact_lifetime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[actions."report.export"]\nlifetime = "90s"\n')
    assert main(["policy", "show", "--file", str(path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("report.export"))
    assert "1 min 30 s" in line


def test_a_bad_sensitivity_lists_the_valid_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[actions."report.export"]\nsensitivity = "high"\n')
    assert main(["policy", "show", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert "actions.report.export" in err
    assert "'none', 'sensitive', 'critical'" in err
    assert "'high'" in err


@given(st.integers(min_value=1, max_value=10**7))
def test_every_whole_lifetime_reads_back_exactly(seconds: int) -> None:
    from stepup.policy import format_duration

    shown = format_duration(seconds)
    units = {"h": 3600, "min": 60, "s": 1}
    words = shown.split(" ")
    pairs = list(zip(words[::2], words[1::2], strict=True))
    assert sum(int(n) * units[unit] for n, unit in pairs) == seconds
    used = {unit for _, unit in pairs}
    assert [unit for _, unit in pairs] == [u for u in units if u in used]  # largest first
    assert all(int(n) > 0 for n, _ in pairs)
    assert all(int(n) < 60 for n, unit in pairs if unit != "h")


def test_show_lists_levels_reaching_alternatives_and_bound_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENSITIVE_ACTION_AUTH_LIFETIME", raising=False)
    path = tmp_path / "policy.toml"
    path.write_text(
        "passkeys = true\n"
        '[[levels]]\nname = "password"\nmethods = [["pwd"]]\n'
        '[[levels]]\nname = "mfa"\nsaml = ["https://refeds.org/profile/mfa"]\n'
        'methods = [["pwd", "otp"]]\n'
        '[[levels]]\nname = "phishing_resistant"\nmethods = [["phr"]]\n'
        '[actions."billing.pay"]\nlevel = "mfa"\n'
        '[actions."workspace.delete"]\nsensitivity = "critical"\nbind_transaction = true\n'
    )
    assert main(["policy", "show", "--file", str(path), "--json"]) == 0
    rows = {row["action"]: row for row in json.loads(capsys.readouterr().out)["actions"]}
    pay = rows["billing.pay"]
    # The password alone never reaches mfa: it is not listed; the sign-in method is, for
    # the SAML sign-ins whose provider can assert the level.
    assert pay["alternatives"] == "passkey | otp + pwd | sign-in method (saml sign-ins only)"
    assert (pay["level"], pay["bound"]) == ("mfa", "no")
    assert rows["workspace.delete"]["bound"] == "yes: once, one target"
    assert main(["policy", "show", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "levels of assurance, weakest first" in out
    assert "bound" in out.splitlines()[8]  # the header row
