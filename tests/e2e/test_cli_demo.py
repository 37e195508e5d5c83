"""``stepup demo``: its options, its refusals, and a real start on a loopback port."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stepup.cli import main

RUN_CLI = "import sys; from stepup.cli import main; sys.exit(main())"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--db", "--reset", "--oidc-issuer", "--saml-idp-metadata"):
        assert option in out


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_bad_port(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--port", port]) == 2
    assert "port" in capsys.readouterr().err


def test_half_an_oidc_configuration_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("ISSUER", "CLIENT_ID", "CLIENT_SECRET"):
        monkeypatch.delenv(f"STEPUP_DEMO_OIDC_{name}", raising=False)
    args = ["demo", "--db", str(tmp_path / "d.sqlite3"), "--oidc-issuer", "https://op.test"]
    assert main(args) == 2
    assert "OIDC needs both an issuer and a client id" in capsys.readouterr().err
    assert not (tmp_path / "d.sqlite3").exists()


def test_missing_saml_metadata_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["demo", "--db", str(tmp_path / "d.sqlite3"), "--saml-idp-metadata", "/no/such.xml"]
    assert main(args) == 2
    assert "no such file" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(db: Path, port: int, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Run the command; return it and what it printed up to its last line ("stop:")."""
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "demo", "--db", str(db), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    fd = process.stdout.fileno()
    printed = ""
    deadline = time.monotonic() + 60
    while "stop:" not in printed:  # unbuffered reads: select() sees all that is left
        ready, _, _ = select.select([fd], [], [], max(0, deadline - time.monotonic()))
        chunk = os.read(fd, 4096).decode() if ready else ""
        if not chunk:
            process.kill()
            pytest.fail(f"stepup demo did not start: {printed}")
        printed += chunk
    return process, printed


def _serving(port: int) -> None:
    """Wait until uvicorn answers: its banner comes before it has bound the port and set
    its signal handlers, and a Ctrl-C in between may be lost on a loaded machine."""
    transport = httpx.HTTPTransport(retries=20)
    with httpx.Client(transport=transport, timeout=10) as client:
        assert client.get(f"http://localhost:{port}/login").status_code == 200


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    finally:
        if process.stdout is not None:
            process.stdout.close()


def test_demo_starts_prints_and_serves(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    port = _free_port()
    process, printed = _start(db, port)
    try:
        assert f"database: {db} (new: demo data created)" in printed
        assert f"open:     http://localhost:{port}/" in printed  # one address on loopback
        assert "127.0.0.1" not in printed
        assert "admin@acme.test / acme-admin-demo" in printed
        assert "member@acme.test / acme-member-demo" in printed
        # uvicorn binds right after the banner: retry the connection, not the request.
        transport = httpx.HTTPTransport(retries=20)
        with httpx.Client(transport=transport, timeout=10) as client:
            page = client.get(f"http://localhost:{port}/login")
            # Under 127.0.0.1 (another site to a browser), the same path at localhost.
            moved = client.get(f"http://127.0.0.1:{port}/login?next=%2Faudit")
        assert page.status_code == 200
        assert "Sign in to Acme" in page.text
        assert moved.status_code == 303
        assert moved.headers["location"] == f"http://localhost:{port}/login?next=%2Faudit"
    finally:
        assert _stop(process) == 0
    assert db.exists()
    assert (db.stat().st_mode & 0o777) == 0o600

    # Again: the data is kept; --reset starts afresh.
    port = _free_port()
    process, printed = _start(db, port)
    _serving(port)
    assert _stop(process) == 0
    assert "(new" not in printed
    port = _free_port()
    process, printed = _start(db, port, "--reset")
    _serving(port)
    assert _stop(process) == 0
    assert "(new: demo data created)" in printed


def test_a_busy_port_is_one_line_before_anything_else(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        status = main(["demo", "--port", str(port), "--db", str(tmp_path / "d.sqlite3")])
    out, err = capsys.readouterr()
    assert status == 1
    assert out == ""  # no "open: http://..." pointing at someone else's server
    assert err.count("\n") == 1
    assert f"cannot listen on http://127.0.0.1:{port}: address already in use" in err
    assert not (tmp_path / "d.sqlite3").exists()  # and no demo data created


@pytest.mark.parametrize("kind", ["directory", "text file"])
def test_a_database_path_that_cannot_be_one_names_the_path_and_why(
    kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path
    if kind == "text file":
        target = tmp_path / "notes.txt"
        target.write_text("not a database\n")
    status = main(["demo", "--port", str(_free_port()), "--db", str(target)])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert str(target) in err
    assert ("is a directory" if kind == "directory" else "is not a SQLite database") in err
    assert "Traceback" not in err
