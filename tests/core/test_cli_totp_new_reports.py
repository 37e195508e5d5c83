"""``stepup totp new`` says what is wrong with a label, and copes with a terminal that
cannot show its QR code: an account or issuer over the length limit is refused naming
the limit (it was told "without ':' or control characters"), and a standard output
that cannot encode the QR code's half blocks (``PYTHONIOENCODING=ascii``) gets a note
instead of a traceback after the secret and URI, with status 0."""

from __future__ import annotations

import io
import sys

import pytest

from stepup.cli import main
from stepup.errors import InvalidAccountNameError
from stepup.ids import MAX_ID_LENGTH
from stepup.totp import check_key_uri_label


@pytest.mark.parametrize("which", ["account", "issuer"])
def test_a_label_over_the_length_limit_is_refused_naming_the_limit(which: str) -> None:
    long = "a" * (MAX_ID_LENGTH + 1)
    labels = {"account": "bob", "issuer": "Acme", which: long}
    with pytest.raises(InvalidAccountNameError) as info:
        check_key_uri_label(labels["account"], labels["issuer"])
    assert str(info.value) == (
        f"{which} must be at most {MAX_ID_LENGTH} characters (this one has {MAX_ID_LENGTH + 1})"
    )


@pytest.mark.parametrize(("account", "issuer"), [("", "Acme"), ("a:b", "Acme"), ("b", "A\x1bc")])
def test_other_labels_keep_their_message(account: str, issuer: str) -> None:
    with pytest.raises(InvalidAccountNameError, match="without ':' or control characters"):
        check_key_uri_label(account, issuer)


def test_totp_new_names_the_length_limit(capsys: pytest.CaptureFixture[str]) -> None:
    account = "a" * (MAX_ID_LENGTH + 1)
    assert main(["totp", "new", "--issuer", "Acme", "--account", account]) == 2
    assert capsys.readouterr().err == (
        f"stepup: error: account must be at most {MAX_ID_LENGTH} characters"
        f" (this one has {MAX_ID_LENGTH + 1})\n"
    )


def test_totp_new_on_an_ascii_stdout_notes_the_missing_qr_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    assert main(["totp", "new", "--issuer", "A", "--account", "b"]) == 0
    sys.stdout.flush()
    lines = raw.getvalue().decode("ascii").splitlines()
    assert [line[:8] for line in lines] == ["secret: ", "uri:    "]
    assert capsys.readouterr().err == (
        "note: no QR code: standard output's encoding (ascii) cannot show it;"
        " give the app the secret or the uri above instead\n"
    )


def test_totp_new_on_a_utf8_stdout_still_prints_the_qr_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["totp", "new", "--issuer", "A", "--account", "b"]) == 0
    out, err = capsys.readouterr()
    assert "\u2588" in out
    assert err == ""
