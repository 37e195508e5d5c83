"""A usage error never echoes a value that was given: argparse quotes the argument it
refuses ("invalid choice: '...'", "unrecognized arguments: ..."), and that argument may
be a store URL with its password or a TOTP secret. Every parser of the command line,
each subcommand's and ``run_operator``'s (``manage.py stepup_operator``) included,
shows such a value as ``<hidden>``; command and option names stay, so the error still
says what was wrong."""

from __future__ import annotations

import sys

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.cli import HIDDEN, build_parser, main, redact_usage_error
from stepup.cli import _names as parser_names
from stepup.cli.operator import run_operator

PASSWORD = "s3cretpw"
URL = f"postgresql://app:{PASSWORD}@db.internal/app"
SECRET = "KZ3UFV7FFVZNXRGHN5MB6YCZ2ZS4QLQD"
OTHER = "Q4AIFS6N3YUOUJ3H7CIDPKU5YQ6EFUSW"


@pytest.mark.parametrize(
    ("argv", "still_says"),
    [
        (["--store", URL, "operator", "totp-devices", "alice"], "invalid choice"),
        (["operator", "--store", URL, "bogus"], "invalid choice"),
        (["operator", "tenant", "--store", URL, "bogus"], "invalid choice"),
        (["operator", "totp-devices", "alice", "extra", URL], "unrecognized arguments"),
        (["operator", "totp-devices", "alice", URL], "unrecognized arguments"),
        (
            ["operator", "totp-devices", f"--bogus={URL}", "alice"],
            "unrecognized arguments: --bogus=",
        ),
        (["operator", "reseal", f"--yes={URL}"], "--yes: ignored explicit argument"),
        (["operator", "tenant", "set-flag", "acme", URL], "invalid choice"),
        (["totp", "code", SECRET, OTHER], "unrecognized arguments"),
        (["totp", "verify", SECRET, "123456", OTHER], "unrecognized arguments"),
        (["totp", "code", SECRET, "--at", OTHER], "not a Unix time"),
        (["totp", "code", SECRET, "--digits", OTHER], "invalid int value"),
        (["totp", "code", SECRET, "--algorithm", OTHER], "invalid choice"),
        (["users", "check", SECRET, OTHER], "unrecognized arguments"),
        (["policy", "show", URL], "unrecognized arguments"),
        ([URL], "invalid choice"),
    ],
)
def test_a_usage_error_hides_every_value_given(
    capsys: pytest.CaptureFixture[str], argv: list[str], still_says: str
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert still_says in err
    assert HIDDEN in err
    for value in (PASSWORD, URL, SECRET, OTHER, "extra", "'bogus'", ": bogus"):
        assert value not in err
    assert err.count("\n") <= 6  # usage and one error line: no traceback


def test_the_arguments_of_the_console_script_are_hidden_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console script calls ``main()`` with nothing: the arguments are sys.argv's."""
    monkeypatch.setattr(sys, "argv", ["stepup", "operator", "totp-devices", "alice", URL])
    assert main() == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: <hidden>" in err
    assert PASSWORD not in err


def test_run_operator_hides_them_too(capsys: pytest.CaptureFixture[str]) -> None:
    """``manage.py stepup_operator`` parses with ``run_operator``'s own parser."""
    for argv in (["--store", URL, "bogus"], ["totp-devices", "alice", URL]):
        assert run_operator(argv, prog="manage.py stepup_operator", store=MemoryStore()) == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: manage.py stepup_operator")
        assert HIDDEN in err
        assert PASSWORD not in err


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["nope"], "argument COMMAND: invalid choice: <hidden> (choose from 'demo', "),
        (
            ["totp", "new", "--issuer", "A", "--account", "b", "--digits", "7"],
            "argument --digits: invalid choice: <hidden> (choose from 6, 8)",
        ),
        (["totp", "new", "--isuer", "A", "--account", "b"], "the following arguments are"),
        (["totp", "code", SECRET, "--isuer", "A"], "unrecognized arguments: --isuer <hidden>"),
        (["operator", "tenant", "set-flag", "acme"], "required: on|off"),
    ],
)
def test_names_stay_so_the_error_still_says_what_was_wrong(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    assert main(argv) == 2
    assert error in capsys.readouterr().err


NAMES = parser_names(build_parser())


def test_an_ambiguous_option_keeps_its_name_and_hides_its_value() -> None:
    typed = f"--s={URL}"
    message = f"ambiguous option: {typed} could match --store, --something"
    assert redact_usage_error(message, [typed], NAMES) == (
        "ambiguous option: --s=<hidden> could match --store, --something"
    )


def test_a_message_of_another_shape_hides_a_long_value_and_any_url_password() -> None:
    """A message of a later argparse that puts a value bare, not quoted: a long value is
    hidden wherever it stands alone, and a URL's password wherever it is."""
    message = f"something new: {SECRET} and {URL} and redis://:pw@cache:6379/0"
    redacted = redact_usage_error(message, [SECRET, URL], NAMES)
    assert redacted == "something new: <hidden> and <hidden> and redis://:<hidden>@cache:6379/0"


def test_a_short_value_leaves_the_words_of_the_message_alone() -> None:
    message = "argument --at: a Unix time must be from 0 to 253402214400"
    assert redact_usage_error(message, ["a", "--at", "9e99"], NAMES) == message
