"""``stepup demo --host 0.0.0.0``: the address printed, and the SSO redirect URIs built on
it, are loopback by name (``http://localhost:PORT``), never ``http://0.0.0.0:PORT``, which
a browser cannot be sent back to."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import stepup.demo
from stepup.cli import main
from stepup.cli.demo import browser_url
from stepup.demo import DemoSettings

ALL_IPV4 = "0.0.0.0"  # noqa: S104 (listening on every address is the case under test)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (ALL_IPV4, "http://localhost:8000"),
        ("::", "http://localhost:8000"),
        ("0:0:0:0:0:0:0:0", "http://localhost:8000"),
        ("", "http://localhost:8000"),
        # Loopback as localhost names it: one address, the one passkeys need too.
        ("127.0.0.1", "http://localhost:8000"),
        ("::1", "http://localhost:8000"),
        ("0:0:0:0:0:0:0:1", "http://localhost:8000"),
        ("localhost", "http://localhost:8000"),
        ("LOCALHOST", "http://localhost:8000"),
        # Another loopback address is not what a browser's localhost reaches.
        ("127.0.0.2", "http://127.0.0.2:8000"),
        ("::ffff:127.0.0.1", "http://[::ffff:127.0.0.1]:8000"),
        ("192.0.2.7", "http://192.0.2.7:8000"),
        ("demo.example", "http://demo.example:8000"),
    ],
)
def test_a_wildcard_host_is_reached_at_localhost(host: str, url: str) -> None:
    assert browser_url(host, 8000) == url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ALL_IPV4, 0))
        port: int = sock.getsockname()[1]
        return port


def test_demo_on_all_addresses_prints_and_uses_localhost(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built: list[DemoSettings] = []
    create_app = stepup.demo.create_app

    def recording_create_app(settings: DemoSettings) -> Any:
        built.append(settings)
        return create_app(settings)

    monkeypatch.setattr(stepup.demo, "create_app", recording_create_app)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    port = _free_port()
    args = ["demo", "--host", ALL_IPV4, "--port", str(port), "--db", str(tmp_path / "d.db")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"open:     http://localhost:{port}/" in out
    assert ALL_IPV4 not in out
    assert "warning:  not a loopback address" in out  # it still listens on every address
    assert "passkeys:" not in out  # localhost is already where passkeys work
    (settings,) = built
    assert settings.base_url == f"http://localhost:{port}"
    assert settings.passkey_origin == settings.base_url
