"""The real OpenID provider (the certified `oidc-provider` npm package) as a child process
on a loopback port, and the settings the OIDC tests share."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stepup.adapters.idp.oidc import OIDCProviderConfig
from stepup.subject import Identity, LoginMethod, Subject
from support import need

HERE = Path(__file__).resolve().parent
REDIRECT_URI = "http://127.0.0.1:9/oidc/callback"
STARTUP_SECONDS = 90.0  # node starts in ~1 s; a loaded CI machine can take far longer

ALICE = ("alice", "alice-password")
MALLORY = ("mallory", "mallory-password")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdin is not None:
            self.process.stdin.close()


def _node_ready() -> None:
    need(shutil.which("node") is not None, "node is not installed (needed for oidc-provider)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        need(shutil.which("npm") is not None, "npm is not installed (needed for oidc-provider)")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=HERE,
            check=True,
            timeout=300,
        )


def _spawn(
    log_path: Path, client_jwks: Path | None, extra_env: dict[str, str] | None = None
) -> Provider | None:
    """One attempt: ``None`` if node exited early (say, someone else took the port)."""
    port = free_port()
    env = {**os.environ, "STEPUP_OIDC_REDIRECT_URI": REDIRECT_URI, "STEPUP_OIDC_WATCH_STDIN": "1"}
    env.update(extra_env or {})
    if client_jwks is not None:
        env["STEPUP_OIDC_CLIENT_JWKS"] = str(client_jwks)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["node", str(HERE / "provider.mjs"), str(port)],
            cwd=HERE,
            env=env,
            stdin=subprocess.PIPE,  # closed when this process dies: node then exits too
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    provider = Provider(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        try:
            response = httpx.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2)
            if response.status_code == 200 and response.json().get("issuer") == provider.issuer:
                return provider
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.05)
    provider.stop()
    log = log_path.read_text()[-2000:]
    raise RuntimeError(f"oidc-provider did not answer in {STARTUP_SECONDS}s: {log}")


def launch_provider(
    log_path: Path, client_jwks: Path | None = None, extra_env: dict[str, str] | None = None
) -> Provider:
    """Start ``provider.mjs`` on a free loopback port and wait (bounded) for discovery.
    ``extra_env``: options of provider.mjs (e.g. ``STEPUP_OIDC_RESOURCES``)."""
    _node_ready()
    for _ in range(3):
        provider = _spawn(log_path, client_jwks, extra_env)
        if provider is not None:
            return provider
    raise RuntimeError(f"oidc-provider exited: {log_path.read_text()[-2000:]}")


def make_config(provider: Provider, **overrides: Any) -> OIDCProviderConfig:
    settings: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": "stepup-rp",
        "client_secret": "stepup-rp-secret",
        "redirect_uri": REDIRECT_URI,
        "name": "test-op",
    }
    return OIDCProviderConfig(**(settings | overrides))


def oidc_subject(provider: Provider, sub: str, session_id: str = "s1", user: str = "") -> Subject:
    """A session that signed in through the test provider as ``sub``."""
    identity = Identity(LoginMethod.OIDC, issuer=provider.issuer, subject=sub, provider="test-op")
    return Subject(user_id=user or f"user-{sub}", session_id=session_id, identity=identity)
