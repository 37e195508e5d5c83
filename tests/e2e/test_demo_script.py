"""``scripts/demo.sh``: starts without installing anything when the environment is
complete (so offline too), and ``--with-oidc`` runs the demo with the tests' OpenID
provider, named on the sign-in button, and stops the provider with the demo."""

from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from e2e.oidc_provider import PROVIDER_DIR, PROVIDER_NAME
from support import need

ROOT = Path(__file__).resolve().parents[2]
STAMP = ROOT / ".venv" / ".stepup-demo-installed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_until(process: subprocess.Popen[bytes], marker: str, seconds: float) -> str:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    printed = ""
    deadline = time.monotonic() + seconds
    while marker not in printed:
        ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
        chunk = os.read(fd, 4096).decode() if ready else ""
        if not chunk:
            pytest.fail(f"demo.sh did not print {marker!r}: {printed}")
        printed += chunk
    return printed


@pytest.mark.oidc
def test_demo_sh_with_oidc_needs_no_network_and_cleans_up(tmp_path: Path) -> None:
    need(shutil.which("node") is not None, "node is not installed")
    need(
        (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir(), "npm install in tests/idp/oidc"
    )
    need((ROOT / ".venv" / "bin" / "python").exists(), "no .venv in the checkout")
    # This environment has everything: the script must see that and install nothing,
    # even with no package index to reach.
    STAMP.write_text(hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() + "\n")
    port = _free_port()
    env = {**os.environ, "PIP_NO_INDEX": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            "bash",
            "scripts/demo.sh",
            "--with-oidc",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "d.sqlite3"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    try:
        printed = _read_until(process, "stop:", 90)
        assert "installing" not in printed
        issuer = re.search(r"OIDC:\s+(http://127\.0\.0\.1:\d+)", printed)
        assert issuer is not None, printed
        transport = httpx.HTTPTransport(retries=20)
        with httpx.Client(transport=transport, timeout=10) as client:
            login = client.get(f"http://127.0.0.1:{port}/login")
            assert f"Sign in with {PROVIDER_NAME}" in login.text
            discovery = client.get(issuer.group(1) + "/.well-known/openid-configuration")
            assert discovery.json()["issuer"] == issuer.group(1)
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl+C in its terminal
        status = process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
    assert status == 0
    provider_port = int(issuer.group(1).rsplit(":", 1)[1])
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", provider_port), timeout=2),
    ):
        pass  # the provider is gone too
