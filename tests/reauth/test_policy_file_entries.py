"""What a policy file's entries mean and how its errors read: ``sensitivity =
"critical"`` is the CRITICAL preset (five minutes) as in code; every error names the file
and the entry, levels included; a description is text; a blank action or pattern name is
refused; and a name with terminal escape codes never reaches an error or ``stepup policy
show`` raw."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepup.assurance import LevelConfigurationError, UnknownLevelError
from stepup.cli import main
from stepup.errors import ConfigurationError
from stepup.policy import CRITICAL, Policy, Rule, Sensitivity

ESC = "\x1b"
LEVELS = '[[levels]]\nname = "mfa"\nmethods = [["pwd", "otp"]]\n\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


# "critical" is the preset ---------------------------------------------------------------


def test_critical_in_the_file_asks_again_after_five_minutes_as_in_code(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[actions."vault.open"]\nsensitivity = "critical"\n'
        'accept = [["phr"], ["primary", "otp"], ["primary"]]\n\n'
        '[actions."ssh_key.add"]\nsensitivity = "critical"\n\n'
        '[actions."report.export"]\nsensitivity = "critical"\nlifetime = "1h"\n\n'
        '[patterns."billing.*"]\nsensitivity = "critical"\n',
    )
    policy = Policy.default().load_toml(path)
    assert CRITICAL.lifetime == 300.0
    for action in ("vault.open", "ssh_key.add", "billing.pay"):
        assert policy.lifetime_for(policy.rule_for(action)) == 300.0, action
    assert policy.lifetime_for(policy.rule_for("report.export")) == 3600.0


def test_a_lifetime_the_code_gave_stays_when_the_file_says_critical(tmp_path: Path) -> None:
    base = Policy({"vault.open": Rule(Sensitivity.SENSITIVE, lifetime=60.0)})
    policy = base.load_toml(_write(tmp_path, '[actions."vault.open"]\nsensitivity = "critical"\n'))
    assert policy.rule_for("vault.open").lifetime == 60.0


def test_sensitive_in_the_file_keeps_the_installation_lifetime(tmp_path: Path) -> None:
    path = _write(tmp_path, '[actions."x"]\nsensitivity = "sensitive"\n')
    policy = Policy({}, lifetime=7200.0).load_toml(path)
    assert policy.lifetime_for(policy.rule_for("x")) == 7200.0


# errors name the file and the entry ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error", "entry"),
    [
        ("levels = []\n", LevelConfigurationError, "levels"),
        ('levels = "mfa"\n', LevelConfigurationError, "levels"),
        (LEVELS + '[actions."x"]\nlevel = "high"\n', UnknownLevelError, "actions.x"),
        ('[actions."x"]\nlevel = "mfa"\n', ConfigurationError, "actions.x"),
        (
            LEVELS.replace('methods = [["pwd", "otp"]]', 'acr = ["urn:mfa"]')
            + '[actions."x"]\nlevel = "mfa"\naccept = [["otp"]]\n',
            ConfigurationError,
            "actions.x",
        ),
        (LEVELS + '[patterns."x.*"]\nlevel = "high"\n', UnknownLevelError, "patterns.'x.*'"),
        ('[actions."x"]\ndescription = {x = 1}\n', ConfigurationError, "actions.x"),
        ('[actions."x"]\ndescription = 5\n', ConfigurationError, "actions.x"),
        ('[actions.""]\nsensitivity = "critical"\n', ConfigurationError, "actions.''"),
        ('[actions." "]\nsensitivity = "critical"\n', ConfigurationError, "actions.' '"),
        ('[patterns.""]\nsensitivity = "none"\n', ConfigurationError, "patterns.''"),
    ],
)
def test_every_error_names_the_file_and_the_entry(
    tmp_path: Path, text: str, error: type[Exception], entry: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(error) as raised:
        Policy.default().load_toml(path)
    assert str(raised.value).startswith(f"{path}: {entry}"), str(raised.value)


def test_an_unknown_level_keeps_its_type_and_level(tmp_path: Path) -> None:
    path = _write(tmp_path, LEVELS + '[actions."x"]\nlevel = "high"\n')
    with pytest.raises(UnknownLevelError) as raised:
        Policy.default().load_toml(path)
    assert raised.value.level == "high"


def test_levels_that_drop_one_the_codes_rule_needs_name_the_file(tmp_path: Path) -> None:
    from stepup.assurance import Level, Levels

    base = Policy(
        {"vault.open": Rule(Sensitivity.CRITICAL, level="strong")},
        levels=Levels([Level("strong", methods=(frozenset({"pwd", "otp"}),))]),
    )
    path = _write(tmp_path, LEVELS)
    with pytest.raises(UnknownLevelError, match=f"^{path}: levels: "):
        base.load_toml(path)


def test_a_text_description_is_kept(tmp_path: Path) -> None:
    policy = Policy({}).load_toml(_write(tmp_path, '[actions."x"]\ndescription = "Opening"\n'))
    assert policy.rule_for("x").description == "Opening"


# names with escape codes --------------------------------------------------------------


def test_a_name_with_escape_codes_is_escaped_in_errors(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[actions."x\\u001b[31m"]\nsensitivity = "red"\n',
    )
    with pytest.raises(ConfigurationError) as raised:
        Policy.default().load_toml(path)
    message = str(raised.value)
    assert ESC not in message
    assert "actions.'x\\x1b[31m'" in message
    path.write_text(LEVELS + '[actions."x\\u001b[31m"]\nlevel = "high"\n')
    with pytest.raises(ConfigurationError) as raised:
        Policy.default().load_toml(path)
    assert ESC not in str(raised.value)


def test_a_name_with_escape_codes_in_code_is_escaped_in_errors() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Policy({f"x{ESC}[2J": Rule(Sensitivity.SENSITIVE, level="mfa")})
    assert ESC not in str(raised.value)
    assert "'x\\x1b[2J'" in str(raised.value)


def test_policy_show_never_prints_an_escape_code_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        '[actions."x\\u001b[31m"]\nsensitivity = "critical"\ndescription = "a\\u001b[2Jb"\n\n'
        '[patterns."y\\u001b[H*"]\nsensitivity = "none"\n',
    )
    assert main(["policy", "show", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert ESC not in out
    assert "'x\\x1b[31m'" in out
    assert "'y\\x1b[H*'" in out
    assert "user.update " in out  # plain names stay as they are
    assert main(["policy", "show", "--json", "--file", str(path)]) == 0
    out = capsys.readouterr().out
    assert ESC not in out
    assert "x\\u001b[31m" in out


def test_policy_show_refuses_a_blank_name_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, '[actions.""]\nsensitivity = "critical"\n')
    assert main(["policy", "show", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: actions.'': a blank name names no action" in err
