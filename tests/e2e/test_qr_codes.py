"""The QR codes stepup draws scan: the terminal one on light and dark terminals, the SVG
one at any size a stylesheet gives it (the browser test decodes it on the page)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import segno

from e2e.qr import BLACK, DARK_THEME, LIGHT_THEME, WHITE, frame, png, render_terminal, zbar
from stepup.totp import TOTP, generate_secret, qr_svg, qr_text


def _uri() -> tuple[str, str]:
    secret = generate_secret()
    return TOTP(secret).provisioning_uri("alice@example.com", "Acme"), secret


def _secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


@pytest.mark.parametrize("theme", [LIGHT_THEME, DARK_THEME], ids=["light", "dark"])
def test_terminal_qr_scans_on_light_and_dark_terminals(theme: tuple) -> None:
    uri, secret = _uri()
    pixels = frame(render_terminal(qr_text(uri), theme), margin=3, colour=theme[1])
    found = zbar(png(pixels, scale=6))
    assert len(found) == 1
    assert _secret_of(found[0]) == secret


def test_terminal_qr_draws_every_module_and_the_quiet_zone_in_explicit_colours() -> None:
    uri, _ = _uri()
    text = qr_text(uri)
    # Whatever the theme, the same picture: no cell is left to the default colours.
    light = render_terminal(text, LIGHT_THEME)
    assert light == render_terminal(text, DARK_THEME)
    assert {colour for row in light for colour in row} == {BLACK, WHITE}
    # Module for module the QR code, with a 4-module light border on every side.
    modules = [
        [bool(bit) for bit in row] for row in segno.make(uri, error="m").matrix_iter(border=4)
    ]
    drawn = [[colour == BLACK for colour in row] for row in light][: len(modules)]
    assert drawn == modules
    assert not any(modules[0])
    assert not any(row[0] for row in modules)
    for line in text.splitlines():
        assert re.fullmatch(r"\x1b\[38;5;16;48;5;231m[ █▀▄]+\x1b\[0m", line)


def test_svg_qr_scales_instead_of_cropping() -> None:
    uri, _ = _uri()
    root = ET.fromstring(qr_svg(uri))  # noqa: S314 -- our own output
    width, height = root.attrib["width"], root.attrib["height"]
    # A viewBox the size of the drawing: CSS that resizes the element scales the code.
    assert root.attrib["viewBox"] == f"0 0 {width} {height}"
    background = root.find(".//{http://www.w3.org/2000/svg}path[@fill='#fff']")
    assert background is not None  # light modules are white, not the page's colour


@pytest.mark.parametrize("theme", [LIGHT_THEME, DARK_THEME], ids=["light", "dark"])
def test_stepup_totp_new_prints_a_code_that_scans(
    theme: tuple, capsys: pytest.CaptureFixture[str]
) -> None:
    from stepup.cli import main

    assert main(["totp", "new", "--issuer", "Acme", "--account", "alice@example.com"]) == 0
    out = capsys.readouterr().out
    secret = out.splitlines()[0].removeprefix("secret: ")
    qr = "\n".join(line for line in out.splitlines() if line.startswith("\x1b["))
    found = zbar(png(frame(render_terminal(qr, theme), margin=2, colour=theme[1]), scale=5))
    assert [_secret_of(uri) for uri in found] == [secret]


def test_the_documented_enrolment_screenshot_scans() -> None:
    """docs/images/demo-enrol.png shows a code a phone can read (it once showed a
    cropped one)."""
    image = Path(__file__).resolve().parents[2] / "docs" / "images" / "demo-enrol.png"
    found = zbar(image.read_bytes())
    assert len(found) == 1
    assert found[0].startswith("otpauth://totp/")
