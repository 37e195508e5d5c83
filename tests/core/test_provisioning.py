"""Secrets, the Key URI format, and the QR code as SVG and as terminal text."""

from __future__ import annotations

import base64
import re
import secrets as stdlib_secrets
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.errors import MalformedInputError
from stepup.totp import MAX_KEY_URI_LENGTH, TOTP, generate_secret, qr_svg, qr_text

NAMES = st.text(
    st.characters(exclude_categories=["Cs", "Cc"], exclude_characters=":"), min_size=1, max_size=40
).filter(lambda s: s.strip() == s and s.strip())


def test_generate_secret_is_160_bits_unpadded_base32() -> None:
    seen = set()
    for _ in range(200):
        secret = generate_secret()
        assert len(secret) == 32  # 160 bits / 5 bits per character, no padding needed
        assert "=" not in secret
        assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        assert len(base64.b32decode(secret)) == 20
        seen.add(secret)
    assert len(seen) == 200


def test_generate_secret_draws_from_the_secrets_module(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []

    def token_bytes(n: int) -> bytes:
        drawn.append(n)
        return b"\x00" * n

    monkeypatch.setattr(stdlib_secrets, "token_bytes", token_bytes)
    assert generate_secret() == "A" * 32
    assert drawn == [20]


def test_generate_secret_other_sizes_are_unpadded_and_small_ones_refused() -> None:
    assert "=" not in generate_secret(16)
    assert len(base64.b32decode(generate_secret(16) + "======")) == 16
    with pytest.raises(ValueError, match="128 bits"):
        generate_secret(15)


@given(
    account=NAMES,
    issuer=NAMES,
    digits=st.sampled_from([6, 8]),
    period=st.sampled_from([30, 60]),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
)
def test_provisioning_uri_round_trips(
    account: str, issuer: str, digits: int, period: int, algorithm: str
) -> None:
    totp = TOTP(generate_secret(), digits=digits, period=period, algorithm=algorithm)  # type: ignore[arg-type]
    uri = totp.provisioning_uri(account, issuer)

    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    raw_label = parts.path[1:]
    assert raw_label.count(":") == 1, "issuer and account are separated by one literal colon"
    label_issuer, label_account = (unquote(p) for p in raw_label.split(":"))
    assert (label_issuer, label_account) == (issuer, account)
    query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
    assert query == {
        "secret": totp.secret,
        "issuer": issuer,
        "algorithm": algorithm,
        "digits": str(digits),
        "period": str(period),
    }

    theirs = pyotp.parse_uri(uri)
    assert (theirs.name, theirs.issuer, theirs.digits, theirs.interval) == (
        account,
        issuer,
        digits,
        period,
    )
    assert theirs.secret == totp.secret
    assert theirs.at(1_234_567_890) == totp.at(1_234_567_890)


def test_provisioning_uri_example() -> None:
    totp = TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert totp.provisioning_uri("alice@example.com", "Acme Co") == (
        "otpauth://totp/Acme%20Co:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        "&issuer=Acme%20Co&algorithm=SHA1&digits=6&period=30"
    )


@pytest.mark.parametrize(
    ("account", "issuer"), [("", "Acme"), ("alice", ""), ("a:b", "Acme"), ("alice", "Ac:me")]
)
def test_provisioning_uri_refuses_ambiguous_labels(account: str, issuer: str) -> None:
    with pytest.raises(MalformedInputError):
        TOTP(generate_secret()).provisioning_uri(account, issuer)


def account_for(totp: TOTP, length: int) -> str:
    """An account name (at most 1024 characters, as labels may be) that makes the Key URI
    of ``totp`` for issuer Acme ``length`` characters long: "é" is six in the URI."""
    room = length - len(totp.provisioning_uri("a", "Acme")) + 1
    return "é" * (room // 6) + "a" * (room % 6)


def test_the_longest_key_uri_makes_a_qr_code_of_the_largest_size() -> None:
    import segno  # the bound is segno's capacity at level M, version 40, byte mode

    totp = TOTP(generate_secret(), algorithm="SHA512", digits=8, period=300)
    uri = totp.provisioning_uri(account_for(totp, MAX_KEY_URI_LENGTH), "Acme")
    assert len(uri) == MAX_KEY_URI_LENGTH
    assert segno.make(uri, error="m").version == 40
    assert qr_svg(uri).startswith("<svg")
    assert qr_text(uri)
    with pytest.raises(segno.DataOverflowError):
        segno.make(uri + "a", error="m")


@given(extra=st.integers(min_value=1, max_value=600), char=st.sampled_from(["é", "中", "a"]))
def test_a_key_uri_too_long_for_a_qr_code_is_malformed_input(extra: int, char: str) -> None:
    """Labels of at most 1024 characters each can still make a Key URI no QR code holds:
    percent-encoding makes one "é" six characters, and the issuer is written twice."""
    totp = TOTP(generate_secret())
    account = account_for(totp, MAX_KEY_URI_LENGTH) + char * extra
    issuer = "Acme"
    if char == "a":  # ASCII: the issuer, written twice, makes up the length
        account, issuer = "a" * 1024, "Acme" + "a" * (600 + 1 + extra % 400)  # 601: too long
    with pytest.raises(MalformedInputError, match="QR code holds at most") as info:
        totp.provisioning_uri(account, issuer)
    assert totp.secret not in str(info.value)


@pytest.mark.parametrize("render", [qr_svg, qr_text])
def test_text_too_long_for_any_qr_code_is_malformed_input(render: Any) -> None:
    with pytest.raises(MalformedInputError, match="more than a QR code holds"):
        render("otpauth://totp/" + "x" * MAX_KEY_URI_LENGTH)


def test_qr_svg_is_a_standalone_svg_document() -> None:
    uri = TOTP(generate_secret()).provisioning_uri("alice@example.com", "Acme")
    svg = qr_svg(uri)
    assert svg.startswith("<svg")
    root = ET.fromstring(svg)  # noqa: S314 -- our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert int(root.attrib["width"]) > 100
    assert root.find(".//{http://www.w3.org/2000/svg}path") is not None


def test_qr_text_is_a_square_of_block_characters() -> None:
    uri = TOTP(generate_secret()).provisioning_uri("alice@example.com", "Acme")
    # Both colours are set on every line (tests/e2e/test_qr_codes.py scans it).
    text = re.sub(r"\x1b\[[0-9;]*m", "", qr_text(uri))
    lines = text.rstrip("\n").split("\n")
    assert len(lines) > 10
    assert len({len(line) for line in lines}) == 1
    assert set("".join(lines)) <= set(" █▀▄")
    # Compact mode packs two module rows per line: roughly twice as wide as tall.
    assert 1.5 < len(lines[0]) / len(lines) < 2.5


def test_qr_codes_differ_per_uri() -> None:
    first = TOTP(generate_secret()).provisioning_uri("a@example.com", "Acme")
    second = TOTP(generate_secret()).provisioning_uri("a@example.com", "Acme")
    assert qr_text(first) != qr_text(second)
    assert qr_svg(first) != qr_svg(second)
