"""``stepup demo`` prints where passkeys work only where they do: at
``http://localhost:PORT`` when the demo listens where ``localhost`` reaches it
(127.0.0.1, ::1, a wildcard). On another address (127.0.0.2, a network address) nothing
listens there, so it says passkeys need localhost and how to get it (``--host
127.0.0.1``) instead of printing an address that leads nowhere."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import uvicorn

from stepup.cli import main
from stepup.cli.demo import browser_url
from stepup.demo import DemoSettings


@pytest.mark.parametrize(
    ("base_url", "reachable"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://[::1]:8000", True),
        ("http://localhost:8000", True),  # a wildcard host's base_url too
        ("http://LOCALHOST:8000", True),
        ("http://127.0.0.2:18305", False),
        ("http://192.0.2.7:8000", False),
        ("http://demo.example:8000", False),
    ],
)
def test_passkeys_are_reachable_only_where_localhost_reaches(
    base_url: str, reachable: bool
) -> None:
    assert DemoSettings(base_url=base_url).passkeys_reachable is reachable


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _start(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """What ``stepup demo --host HOST`` prints, the server never run."""
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    port = _free_port(host)
    args = ["demo", "--host", host, "--port", str(port), "--db", str(tmp_path / "d.db")]
    assert main(args) == 0
    return port, capsys.readouterr().out


def test_on_another_loopback_address_it_says_how_to_use_passkeys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port, out = _start("127.0.0.2", tmp_path, monkeypatch, capsys)
    assert f"open:     http://127.0.0.2:{port}/" in out
    assert f"localhost:{port}" not in out  # nothing listens there
    assert (
        "  passkeys: only at http://localhost (WebAuthn needs a name, not an IP address),"
        " where this demo does not listen: use --host 127.0.0.1 to try them\n"
    ) in out


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "0.0.0.0", "::", "localhost"])  # noqa: S104
def test_every_loopback_or_wildcard_host_has_the_one_address(host: str) -> None:
    # ::1 is not on every machine (a container without IPv6): the address is decided
    # from the host alone, so no listening is needed to check it.
    assert browser_url(host, 8123) == "http://localhost:8123"
    assert browser_url("127.0.0.2", 8123) == "http://127.0.0.2:8123"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_on_loopback_it_prints_one_address_where_passkeys_work(
    host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "open: http://127.0.0.1" and "passkeys: http://localhost": two addresses are
    two sites to a browser (two cookie jars), and the SSO redirect URIs can be on one."""
    port, out = _start(host, tmp_path, monkeypatch, capsys)
    assert f"  open:     http://localhost:{port}/\n" in out
    assert "passkeys:" not in out
    assert "127.0.0.1" not in out
    assert "[::1]" not in out
