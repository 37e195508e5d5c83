"""The OIDC tests' real OpenID provider (tests/idp/oidc/provider.mjs), started for the demo:
its one registered redirect URI is the demo's ``/sso/oidc/callback``."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import need

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "idp" / "oidc"
CLIENT_ID, CLIENT_SECRET = "stepup-rp", "stepup-rp-secret"
ALICE = ("alice", "alice-password")
#: What the demo calls it on its buttons (scripts/demo.sh --with-oidc uses the same).
PROVIDER_NAME = "Test OpenID provider"
STARTUP_SECONDS = 90.0  # node starts in ~1 s; a loaded CI machine can take far longer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(process: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait (without sleeping) for the provider's "listening" line; False if it exited."""
    assert process.stdout is not None
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], left)
        if not ready:
            break
        line = process.stdout.readline()
        if not line:  # exited, e.g. the port was taken meanwhile
            return False
        if b"listening on" in line:
            return True
    raise RuntimeError(f"oidc-provider did not start within {STARTUP_SECONDS}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


@contextmanager
def oidc_provider(redirect_uri: str) -> Iterator[str]:
    """Run the provider on a free loopback port; yields its issuer."""
    need(shutil.which("node") is not None, "node is not installed (needed for oidc-provider)")
    need(
        (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir(),
        "oidc-provider is not installed (npm install in tests/idp/oidc)",
    )
    env = {**os.environ, "STEPUP_OIDC_REDIRECT_URI": redirect_uri, "STEPUP_OIDC_WATCH_STDIN": "1"}
    for _ in range(3):
        port = _free_port()
        process = subprocess.Popen(
            ["node", str(PROVIDER_DIR / "provider.mjs"), str(port)],
            cwd=PROVIDER_DIR,
            env=env,
            stdin=subprocess.PIPE,  # closed when this process dies: node then exits too
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            if _listening(process, time.monotonic() + STARTUP_SECONDS):
                # Keep reading its output, so a full pipe never stalls it.
                threading.Thread(target=process.stdout.read, daemon=True).start()  # type: ignore[union-attr]
                yield f"http://127.0.0.1:{port}"
                return
        finally:
            _stop(process)
    raise RuntimeError("oidc-provider exited at start three times")
