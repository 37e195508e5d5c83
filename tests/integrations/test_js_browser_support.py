"""The seed promises re-authentication on "Chrome 66+, Firefox 63+". The scripts stepup
serves (and the demo's own) are parsed as ECMAScript 2017, what both browsers read:
optional chaining, ``??``, class fields and the like would be a syntax error there, and
the page's script would not run at all. (The pages work without JavaScript for a
password; passkeys need WebAuthn, which the scripts detect before use.)"""

from __future__ import annotations

import re
from pathlib import Path

import esprima
import pytest

import stepup.demo
import stepup.integrations

STATIC = Path(stepup.integrations.__file__).parent / "static"
DEMO_TEMPLATES = Path(stepup.demo.__file__).parent / "templates"
INLINE = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _demo_scripts() -> list[tuple[str, str]]:
    found = []
    for template in sorted(DEMO_TEMPLATES.glob("*.html")):
        for number, body in enumerate(INLINE.findall(template.read_text(encoding="utf-8"))):
            # Jinja expressions inside a script are JSON values (tojson) or strings.
            found.append((f"{template.name}#{number}", re.sub(r"\{\{.*?\}\}", "null", body)))
    return found


@pytest.mark.parametrize("script", sorted(STATIC.glob("*.js")), ids=lambda p: p.name)
def test_stepups_scripts_are_ecmascript_2017(script: Path) -> None:
    esprima.parseScript(script.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("name", "body"), _demo_scripts(), ids=lambda v: v if "#" in v else "")
def test_the_demos_scripts_are_ecmascript_2017(name: str, body: str) -> None:
    esprima.parseScript(body)


@pytest.mark.parametrize(
    "newer", ["var a = b?.c;", "var a = b ?? c;", "class A { x = 1 }", "var n = 1_000;"]
)
def test_the_check_refuses_what_those_browsers_cannot_read(newer: str) -> None:
    with pytest.raises(esprima.Error):
        esprima.parseScript(newer)
