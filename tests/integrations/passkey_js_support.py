"""Run stepup-passkeys.js in Node with a test harness: the page script, as shipped, over
a stand-in DOM and WebAuthn the harness builds; what it printed comes back as JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from typing import Any

from support import need

SCRIPT = resources.files("stepup.integrations").joinpath("static/stepup-passkeys.js")


def run_passkeys_js(harness: str, payload: Any) -> Any:
    """Node runs ``harness`` with the script's path and ``payload`` (as JSON) for
    arguments; its standard output, parsed. Skips (never in CI) without Node."""
    node = shutil.which("node")
    need(node is not None, "node is not installed")
    assert node is not None
    with resources.as_file(SCRIPT) as script:
        done = subprocess.run(
            [node, "-e", harness, "--", str(script), json.dumps(payload)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
