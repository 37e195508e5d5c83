"""Reading QR codes back as a phone would: zbar's ``zbarimg`` on a PNG, and a small
terminal emulator that turns ``qr_text`` output into that PNG on a light or dark theme."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

from support import need

Colour = tuple[int, int, int]
BLACK: Colour = (0, 0, 0)
WHITE: Colour = (255, 255, 255)
#: (foreground, background) of a terminal's default colours.
LIGHT_THEME: tuple[Colour, Colour] = ((30, 30, 30), (250, 250, 250))
DARK_THEME: tuple[Colour, Colour] = ((220, 220, 220), (20, 20, 24))

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def zbar(png: bytes) -> list[str]:
    """Every QR code zbar finds in the image (``[]`` when it finds none)."""
    need(
        shutil.which("zbarimg") is not None, "zbarimg is not installed (apt-get install zbar-tools)"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "qr.png"
        path.write_bytes(png)
        found = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    # zbarimg exits 4 when it found nothing; anything else but 0 is a broken run.
    assert found.returncode in (0, 4), found.stderr
    return [line for line in found.stdout.splitlines() if line]


def png(pixels: list[list[Colour]], scale: int = 1) -> bytes:
    """An RGB PNG of ``pixels`` (rows of colours), each one ``scale`` pixels square."""
    height, width = len(pixels) * scale, len(pixels[0]) * scale
    raw = bytearray()
    for row in pixels:
        line = b"\x00" + b"".join(bytes(colour) * scale for colour in row)
        raw += line * scale

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


def _palette(index: int) -> Colour:
    """xterm's 256 colours: the cube and the grey ramp (the basic 16 are the theme's)."""
    if 16 <= index <= 231:
        r, g, b = (index - 16) // 36, (index - 16) // 6 % 6, (index - 16) % 6
        return tuple(0 if v == 0 else 55 + 40 * v for v in (r, g, b))  # type: ignore[return-value]
    if index >= 232:
        grey = 8 + 10 * (index - 232)
        return (grey, grey, grey)
    raise AssertionError(f"basic colour {index}: its shade depends on the theme")


def render_terminal(text: str, theme: tuple[Colour, Colour]) -> list[list[Colour]]:
    """The pixels a terminal with ``theme`` shows for ``text``: one column and two rows
    per character cell (the half blocks split a cell in two)."""
    default_fg, default_bg = theme
    pixels: list[list[Colour]] = []
    for line in text.rstrip("\n").split("\n"):
        fg, bg, reverse = default_fg, default_bg, False
        top: list[Colour] = []
        bottom: list[Colour] = []
        position = 0
        for match in [*_SGR.finditer(line), None]:
            end = match.start() if match else len(line)
            for char in line[position:end]:
                ink, paper = (bg, fg) if reverse else (fg, bg)
                upper, lower = {"█": (ink, ink), "▀": (ink, paper), "▄": (paper, ink)}.get(
                    char, (paper, paper)
                )
                top.append(upper)
                bottom.append(lower)
            if match is None:
                break
            position = match.end()
            codes = [int(code) for code in match.group(1).split(";") if code] or [0]
            while codes:
                code = codes.pop(0)
                if code == 0:
                    fg, bg, reverse = default_fg, default_bg, False
                elif code == 7:
                    reverse = True
                elif code == 39:
                    fg = default_fg
                elif code == 49:
                    bg = default_bg
                elif code in (38, 48) and codes[:1] == [5]:
                    colour = _palette(codes[1])
                    codes = codes[2:]
                    if code == 38:
                        fg = colour
                    else:
                        bg = colour
                else:
                    raise AssertionError(f"unexpected SGR code {code}")
        pixels += [top, bottom]
    return pixels


def frame(pixels: list[list[Colour]], margin: int, colour: Colour) -> list[list[Colour]]:
    """``pixels`` inside a ``margin`` of the terminal's own background."""
    width = len(pixels[0]) + 2 * margin
    edge = [[colour] * width for _ in range(margin)]
    return [*edge, *([colour] * margin + row + [colour] * margin for row in pixels), *edge]
