"""``scripts/demo.sh``: starts without installing anything when the environment is
complete (so offline too), and ``--with-oidc`` runs the demo with the tests' OpenID
provider, named on the sign-in button, and stops the provider with the demo. The demo
is at one address, ``http://localhost:PORT``, where the provider sends the sign-in back
to; the console shows no AuthlibDeprecationWarning."""

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
from urllib.parse import parse_qs, urlsplit

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


def _without_httpx2(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python cannot import httpx2, as in a fresh .venv with the demo's
    extras only: authlib then falls back to httpx and warns about it on import."""
    shadow = tmp_path / "no-httpx2"
    shadow.mkdir()
    (shadow / "httpx2.py").write_text('raise ImportError("not installed here")\n')
    env = {**os.environ, "PYTHONPATH": str(shadow)}
    # The warning the launcher must keep off the console does show without it.
    probe = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", "import authlib.integrations.httpx_client"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "AuthlibDeprecationWarning" in probe.stderr
    return env


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
    env = {**_without_httpx2(tmp_path), "PIP_NO_INDEX": "1", "PYTHONUNBUFFERED": "1"}
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
        assert "Warning" not in printed, printed  # AuthlibDeprecationWarning, say
        issuer = re.search(r"OIDC:\s+(http://127\.0\.0\.1:\d+)", printed)
        assert issuer is not None, printed
        demo = f"http://localhost:{port}"
        assert f"  open:     {demo}/\n" in printed
        assert f"  sign in:  alice / alice-password  (at {PROVIDER_NAME})\n" in printed
        transport = httpx.HTTPTransport(retries=20)
        with httpx.Client(transport=transport, timeout=10) as client:
            login = client.get(f"{demo}/login")
            assert f"Sign in with {PROVIDER_NAME}" in login.text
            assert "<code>alice / alice-password</code>" in login.text
            # Under 127.0.0.1 (other cookies, to a browser), the same page at localhost.
            moved = client.get(f"http://127.0.0.1:{port}/login")
            assert (moved.status_code, moved.headers["location"]) == (303, f"{demo}/login")
            discovery = client.get(issuer.group(1) + "/.well-known/openid-configuration")
            assert discovery.json()["issuer"] == issuer.group(1)
            # The sign-in goes to the provider with the demo's one address to come back
            # to, which is the redirect URI the script registered there: the provider
            # shows its sign-in form, not an error.
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert token is not None
            start = client.post(
                f"{demo}/sso/oidc/login", data={"csrf_token": token.group(1), "next": "/account"}
            )
            assert start.status_code in (302, 303), start.text
            authorize = start.headers["location"]
            query = parse_qs(urlsplit(authorize).query)
            assert query["redirect_uri"] == [f"{demo}/sso/oidc/callback"]
            at_provider = client.get(authorize)
            assert at_provider.status_code in (302, 303), at_provider.text
            assert "/interaction/" in at_provider.headers["location"]
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
