"""The ``stepup`` command line: main(argv) in-process, and the installed script once."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from stepup.cli import main
from stepup.cli.totp import MAX_AT
from stepup.totp import TOTP, generate_secret

SECRET = "JMGP5QJ3EBUO7BHU6H2R4OXRMWHYOOVE"
BOB_SECRET = "KRUGKIDROVUWG2ZAMJZG653OEBTG66BA"
AT = 1_699_999_980


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# help ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["totp"],
        ["totp", "new"],
        ["totp", "code"],
        ["totp", "verify"],
        ["users"],
        ["users", "check"],
        ["operator"],
        ["operator", "remove-2fa"],
        ["operator", "revoke-grants"],
        ["operator", "reseal"],
        ["operator", "tenant"],
        ["operator", "tenant", "set-flag"],
    ],
)
def test_help_everywhere(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, out, _ = run(capsys, *argv, "--help")
    assert status == 0
    assert out.startswith("usage: stepup")


@pytest.mark.parametrize("argv", [["operator"], ["operator", "tenant", "show"]])
def test_operator_help_names_the_environment_store_as_the_default(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    _, out, _ = run(capsys, *argv, "--help")
    assert "(default: $STEPUP_STORE)" in " ".join(out.split())


def test_top_level_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--help")
    assert "totp" in out
    assert "users" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required"),
        (["nope"], "invalid choice"),
        (["totp"], "required"),
        (["totp", "new"], "--issuer"),
        (["totp", "new", "--issuer", "Acme"], "--account"),
        (["totp", "new", "--issuer", "Acme", "--account", "a", "--digits", "7"], "invalid choice"),
        (["totp", "new", "--issuer", "Acme", "--account", "a", "--period", "0"], "period"),
        (["totp", "new", "--issuer", "Acme", "--account", "a", "--algorithm", "MD5"], "choice"),
        (["totp", "code", SECRET, "--at", "yesterday"], "Unix time"),
        (["totp", "code", SECRET, "--at", "-5"], "Unix time"),
        (["totp", "code", SECRET, "--at", "253402214401"], "9999-12-31T00:00:00Z"),
        (["totp", "verify", SECRET, "123456", "--at", "300000000000"], "9999-12-31T00:00:00Z"),
        (["totp", "verify", SECRET, "123456", "--at", "inf"], "Unix time"),
        (["totp", "verify", SECRET, "123456", "--at", "nan"], "Unix time"),
        (["totp", "verify", SECRET], "CODE"),
        (["totp", "verify", SECRET, "123456", "--window", "-1"], "window"),
        (["totp", "verify", SECRET, "123456", "--window", "101"], "window"),
        (["users", "check"], "FILE"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert "usage: stepup" in err
    assert fragment in err


# totp new --------------------------------------------------------------------------------


def test_totp_new_prints_secret_uri_and_qr(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "totp", "new", "--issuer", "Acme", "--account", "alice@example.com"
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("secret: ")
    secret = lines[0].removeprefix("secret: ")
    assert len(secret) == 32
    uri = lines[1].removeprefix("uri:").strip()
    assert uri.startswith("otpauth://totp/Acme:alice%40example.com?")
    assert parse_qs(urlsplit(uri).query)["secret"] == [secret]
    qr = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines[3:]]  # colours: test_qr_codes
    assert len(qr) > 10
    assert set("".join(qr)) <= set(" █▀▄")
    assert pyotp.parse_uri(uri).at(AT) == TOTP(secret).at(AT)


def test_totp_new_with_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["totp", "new", "--issuer", "Acme Co", "--account", "bob", "--digits", "8"]
    argv += ["--period", "60", "--algorithm", "SHA512", "--no-qr"]
    status, out, _ = run(capsys, *argv)
    assert status == 0
    assert len(out.splitlines()) == 2
    query = parse_qs(urlsplit(out.splitlines()[1].removeprefix("uri:").strip()).query)
    assert (query["digits"], query["period"], query["algorithm"]) == (["8"], ["60"], ["SHA512"])
    assert query["issuer"] == ["Acme Co"]


def test_totp_new_refuses_an_account_too_long_for_a_qr_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "totp", "new", "--issuer", "Acme", "--account", "é" * 400)
    assert (status, out) == (2, "")
    assert err == (
        "stepup: error: the Key URI would be 2506 characters and a QR code holds at most"
        " 2331: shorten the account or the issuer\n"
    )


def test_totp_new_refuses_a_colon_in_the_label(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "totp", "new", "--issuer", "Ac:me", "--account", "bob")
    assert status == 2
    assert out == ""
    assert "issuer" in err


# totp code / verify ------------------------------------------------------------------------


def test_totp_code_at_a_given_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "totp", "code", SECRET, "--at", str(AT)) == (
        0,
        TOTP(SECRET).at(AT) + "\n",
        "",
    )
    status, out, _ = run(
        capsys, "totp", "code", SECRET, "--at", "59", "--digits", "8", "--algorithm", "SHA256"
    )
    assert status == 0
    assert out.strip() == TOTP(SECRET, digits=8, algorithm="SHA256").at(59)


def test_totp_code_now_is_a_current_code(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "totp", "code", SECRET)
    assert pyotp.TOTP(SECRET).verify(out.strip(), valid_window=1)


def test_the_secret_can_come_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(SECRET + "\n"))
    assert run(capsys, "totp", "code", "-", "--at", str(AT))[1].strip() == TOTP(SECRET).at(AT)


SHORT = "JBSWY3DPEHPK3PXP"  # 80 bits: under RFC 4226's 128, as an old enrolment may have


def test_code_and_verify_still_take_a_short_secret_with_a_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    note = (
        "note: this secret holds 80 bits, fewer than the 128 RFC 4226 asks for"
        " (stepup totp new makes 160; a users file refuses it)\n"
    )
    code = TOTP(SHORT).at(AT)
    assert run(capsys, "totp", "code", SHORT, "--at", str(AT)) == (0, code + "\n", note)
    status, out, err = run(capsys, "totp", "verify", SHORT, code, "--at", str(AT))
    assert (status, err) == (0, note)
    assert out.startswith("match: ")


def test_a_bad_secret_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "totp", "code", "NOT-BASE32!", "--at", "0")
    assert status == 2
    assert out == ""
    assert err == "stepup: error: a TOTP secret must be valid base32\n"


@pytest.mark.parametrize(
    ("offset", "words"), [(0, "agrees"), (2, "60 s ahead"), (-3, "90 s behind")]
)
def test_totp_verify_reports_the_clock_offset(
    capsys: pytest.CaptureFixture[str], offset: int, words: str
) -> None:
    totp = TOTP(SECRET)
    step = totp.step(AT) + offset
    code = totp.code_for_step(step)
    status, out, err = run(capsys, "totp", "verify", SECRET, code, "--at", str(AT), "--window", "3")
    assert (status, err) == (0, "")
    start = datetime.fromtimestamp(step * 30, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert out == f"match: step {step} (from {start}), offset {offset:+d} step(s): " + (
        "the device clock agrees with this one\n"
        if offset == 0
        else f"the device clock is about {words}\n"
    )


def test_totp_verify_outside_the_window_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    totp = TOTP(SECRET)
    code = totp.code_for_step(totp.step(AT) + 2)
    status, out, _ = run(capsys, "totp", "verify", SECRET, code, "--at", str(AT))
    assert status == 1
    assert out == "no match within 1 step(s) of 2023-11-14T22:13:00Z (30 s steps)\n"
    assert run(capsys, "totp", "verify", SECRET, code, "--at", str(AT), "--window", "2")[0] == 0


def test_totp_verify_at_the_latest_time_prints_every_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The latest --at, the widest window, the longest steps: the matched step starts
    100 steps later and is still a date that can be written."""
    totp = TOTP(SECRET, period=300)
    step = totp.step(MAX_AT) + 100
    argv = ["totp", "verify", SECRET, totp.code_for_step(step), "--at", str(MAX_AT)]
    status, out, err = run(capsys, *argv, "--window", "100", "--period", "300")
    assert (status, err) == (0, "")
    assert out.startswith(f"match: step {step} (from 9999-12-31T08:20:00Z), offset +100 step(s)")


def test_totp_verify_accepts_separators(capsys: pytest.CaptureFixture[str]) -> None:
    code = TOTP(SECRET).at(AT)
    assert run(capsys, "totp", "verify", SECRET, f"{code[:3]} {code[3:]}", "--at", str(AT))[0] == 0


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "+123456", "12345", "123_456", ""])
def test_totp_verify_malformed_code_exits_2(capsys: pytest.CaptureFixture[str], code: str) -> None:
    status, out, err = run(capsys, "totp", "verify", SECRET, code, "--at", str(AT))
    assert status == 2
    assert out == ""
    assert "malformed code" in err


# users check -------------------------------------------------------------------------------


def test_users_check_counts_and_never_prints_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "users.toml"
    path.write_text(
        f'[users.alice]\notp_secret = "{SECRET}"\n'
        f'[users.bob]\notp_secret = "{BOB_SECRET}"\ndigits = 8\nalgorithm = "SHA256"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    status, out, err = run(capsys, "users", "check", str(path))
    assert (status, err) == (0, "")
    assert out == f"{path}: 2 user(s), all valid\n"
    status, out, _ = run(capsys, "users", "check", str(path), "--list")
    assert out.splitlines()[1:] == [
        '  "alice": 6 digits, 30 s, SHA1',
        '  "bob": 8 digits, 30 s, SHA256',
    ]
    assert SECRET not in out
    assert BOB_SECRET not in out


def test_users_check_refuses_a_secret_two_users_share(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "users.toml"
    path.write_text(
        f'[users.alice]\notp_secret = "{SECRET}"\n[users.bob]\notp_secret = "{SECRET.lower()}"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    status, out, err = run(capsys, "users", "check", str(path))
    assert (status, out) == (1, "")
    assert "users.'bob': the same otp_secret as users.'alice'" in err
    assert SECRET not in err
    assert SECRET.lower() not in err


def test_users_check_lists_ids_as_json_strings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Ids are printed as JSON strings, ASCII only: a bidirectional override or a
    character the terminal font lacks shows as its escape, not as itself."""
    path = tmp_path / "users.toml"
    path.write_text(
        f'[users."ren\\u00e9"]\notp_secret = "{generate_secret()}"\n'
        f'[users."a\\u202eb"]\notp_secret = "{generate_secret()}"\n'
        f'[users."q\\"uote"]\notp_secret = "{generate_secret()}"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    status, out, err = run(capsys, "users", "check", str(path), "--list")
    assert (status, err) == (0, "")
    assert out.splitlines()[1:] == [
        '  "a\\u202eb": 6 digits, 30 s, SHA1',
        '  "q\\"uote": 6 digits, 30 s, SHA1',
        '  "ren\\u00e9": 6 digits, 30 s, SHA1',
    ]
    assert out.isascii()


def test_users_check_warns_of_a_file_others_may_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if os.name == "nt":
        pytest.skip("POSIX file modes")
    path = tmp_path / "users.toml"
    path.write_text(f'[users.alice]\notp_secret = "{SECRET}"\n', encoding="utf-8")
    path.chmod(0o644)
    status, out, err = run(capsys, "users", "check", str(path))
    assert (status, out) == (0, f"{path}: 1 user(s), all valid\n")
    assert err == (
        f"warning: {path}: the secrets file is open to its group or others (mode 0644);"
        " only the app's user should read it (chmod 600)\n"
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (f'[users.alice]\notp_secret = "{SECRET}!"\n', "users.'alice'"),
        (f'[users.alice]\notp_secret = "{SECRET}"\ndigits = 7\n', "digits"),
        (f'[users.alice\notp_secret = "{SECRET}"\n', "not valid TOML"),
        ('[users.alice]\notp_secret = "JBSWY3DPEHPK3PXP"\n', "at least 128 bits"),
        (f'[users."x\\u001b[2J"]\notp_secret = "{SECRET}"\n', "user 1 under [users]"),
        (f'[users.alice]\notp_secret = "{SECRET}"\n# caf\udce9\n', "not UTF-8"),
    ],
)
def test_users_check_reports_bad_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: str, fragment: str
) -> None:
    path = tmp_path / "users.toml"
    path.write_bytes(body.encode("utf-8", "surrogateescape"))  # \udce9: the byte 0xe9
    path.chmod(0o600)
    status, out, err = run(capsys, "users", "check", str(path))
    assert status == 1
    assert out == ""
    assert err.startswith(f"invalid: {path}")
    assert err.count("\n") == 1  # one line, no traceback
    assert fragment in err
    assert SECRET not in err
    assert "\x1b" not in err


def test_policy_show_of_a_file_that_is_not_utf8_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(b'[actions."report.export"]\nsensitivity = "caf\xe9"\n')
    status, out, err = run(capsys, "policy", "show", "--file", str(path))
    assert (status, out) == (2, "")
    assert err == f"stepup: error: {path}: not UTF-8, as TOML must be (byte 44, line 2)\n"


def test_users_check_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "users", "check", str(tmp_path / "missing.toml"))
    assert status == 1
    assert "cannot read" in err


def test_users_check_of_a_file_without_users_says_so_and_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for text in ("", "# nothing yet\n", "[users]\n"):
        path = tmp_path / "users.toml"
        path.write_text(text)
        status, out, err = run(capsys, "users", "check", str(path))
        assert status == 1
        assert out == ""
        assert "no users found" in err
        assert "all valid" not in err


# the whole command line ------------------------------------------------------------------


def test_version_prints_the_single_version_source(capsys: pytest.CaptureFixture[str]) -> None:
    import stepup

    status, out, err = run(capsys, "--version")
    assert (status, err) == (0, "")
    assert out == f"stepup {stepup.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", stepup.__version__)


CLOSED_READER = """
import os, sys
from stepup.cli import main
read, write = os.pipe()
os.close(read)            # the reader is gone before the first line, as with `| head -0`
os.dup2(write, 1)
sys.stdout = open(1, "w", closefd=False)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["policy", "show"], ["policy", "show", "--json"]])
def test_a_closed_pipe_ends_quietly_with_141(argv: list[str]) -> None:
    """``stepup policy show | head``: no BrokenPipeError traceback, the status a shell
    gives a writer killed by SIGPIPE. The reader is closed before anything is written,
    so this does not depend on timing."""
    done = subprocess.run(
        [sys.executable, "-c", CLOSED_READER, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stderr == ""
    assert done.returncode == 141


def test_policy_show_into_head_through_a_shell(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "stepup"
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    done = subprocess.run(  # noqa: S602 (a shell pipe is the point)
        f"'{script}' policy show | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("default lifetime (SENSITIVE_ACTION_AUTH_LIFETIME): ")
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr


# the installed script ------------------------------------------------------------------


def test_the_installed_script_runs() -> None:
    script = Path(sys.executable).parent / "stepup"
    if not script.exists():
        found = shutil.which("stepup")
        assert found is not None, "the stepup console script is not installed"
        script = Path(found)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [str(script), "totp", "new", "--issuer", "Acme", "--account", "alice@example.com"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("secret: ")
    assert "otpauth://totp/Acme:alice%40example.com?" in done.stdout
    assert "█" in done.stdout
    bad = subprocess.run(
        [str(script), "totp", "verify", SECRET, "abc"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
