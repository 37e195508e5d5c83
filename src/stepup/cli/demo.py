"""``stepup demo``: run the demo web app on the embedded SQLite store."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import re
import socket
import sys
from pathlib import Path
from typing import Any

from .._data_dir import data_dir

__all__ = ["browser_url", "register"]


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the demo web app",
        description=(
            "Run the stepup demo: a small web app (Starlette, SQLite) with a tenant, an admin "
            "and a member, API keys, SSH keys, workspaces, members, two-factor settings and an "
            "audit log. Sensitive actions ask for re-authentication once the admin turns the "
            "tenant flag on. The demo data is created on first start."
        ),
    )
    demo.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (127.0.0.1); on 127.0.0.1, ::1 or every address the demo"
        " is at http://localhost:PORT",
    )
    demo.add_argument("--port", type=_port, default=8000, help="port to listen on (8000)")
    demo.add_argument(
        "--db",
        type=_db_path,
        metavar="PATH",
        help=f"the SQLite file (default: {_default_db()})".replace("%", "%%"),
    )
    demo.add_argument(
        "--reset", action="store_true", help="delete the database first and start afresh"
    )
    sso = demo.add_argument_group(
        "single sign-on (optional; also STEPUP_DEMO_OIDC_ISSUER, STEPUP_DEMO_OIDC_CLIENT_ID, "
        "STEPUP_DEMO_OIDC_CLIENT_SECRET, STEPUP_DEMO_OIDC_NAME, STEPUP_DEMO_OIDC_ACCOUNT_HINT, "
        "STEPUP_DEMO_SAML_IDP_METADATA)"
    )
    sso.add_argument("--oidc-issuer", metavar="URL", help="an OpenID provider's issuer")
    sso.add_argument("--oidc-client-id", metavar="ID", help="this app's client id there")
    sso.add_argument(
        "--oidc-client-secret",
        metavar="SECRET",
        help="its client secret (prefer the environment variable: flags show in ps)",
    )
    sso.add_argument(
        "--oidc-name",
        metavar="NAME",
        help="the provider's name on the buttons, e.g. 'Acme login' (STEPUP_DEMO_OIDC_NAME;"
        " default: the issuer's host)",
    )
    sso.add_argument(
        "--oidc-account-hint",
        metavar="TEXT",
        help="a test provider's account, listed with the demo users, e.g. 'alice / alice-password'"
        " (STEPUP_DEMO_OIDC_ACCOUNT_HINT; never a real person's password)",
    )
    sso.add_argument(
        "--saml-idp-metadata", metavar="FILE", help="a SAML identity provider's metadata XML"
    )
    demo.set_defaults(handler=_demo)


def _default_db() -> Path:
    """Where the demo keeps its database unless ``--db`` says otherwise: the path
    ``stepup.demo.default_demo_path()`` answers, worked out here without importing the
    demo (and SQLAlchemy) on every ``stepup`` command."""
    return data_dir() / "demo.sqlite3"


#: A URL's start (``postgresql://``, ``sqlite:///``); a drive letter (``C://``) is a path.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def _db_path(text: str) -> Path:
    """``--db``: a SQLite file's path. A URL is refused, naming its scheme only: the rest
    may hold a password, and as a path it would make folders named after it."""
    found = _URL.match(text)
    if found is not None:
        raise argparse.ArgumentTypeError(
            f"takes the path of a SQLite file, not a URL ({found.group(0)}...):"
            " the demo keeps its data in SQLite"
        )
    return Path(text)


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError("the port is a whole number from 1 to 65535")
    return int(text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_localhost(host: str) -> bool:
    """Does ``http://localhost`` reach a demo listening on ``host``? ``localhost`` itself,
    127.0.0.1 and ::1 (not 127.0.0.2: a browser's ``localhost`` is never that)."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def _is_wildcard(host: str) -> bool:
    """Every address of the machine (``0.0.0.0``, ``::``, empty): listenable, never a
    place a browser can be sent to."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def browser_url(host: str, port: int | str) -> str:
    """The demo's address, where browsers are sent, for the demo listening on ``host``
    (``scripts/demo.sh`` registers the SSO redirect URI on it too). On 127.0.0.1, ::1 or
    every address, one address by the name passkeys need: ``http://localhost:PORT``, so
    the printed address, the SSO redirect URIs and the passkey origin are one site with
    one cookie jar, and a browser is never sent to ``0.0.0.0``; the demo sends a request
    under 127.0.0.1 there. On any other address (127.0.0.2, a network address), that
    address."""
    name = "localhost" if _is_wildcard(host) or _is_localhost(host) else _url_host(host)
    return f"http://{name}:{port}"


def _demo(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..demo import DEMO_USERS, DemoSettings, create_app, default_demo_path
        from ..demo.seed import remove_database
    except ImportError as exc:
        print(
            f"stepup: error: the demo needs {exc.name}: pip install 'stepup-auth[demo]'",
            file=sys.stderr,
        )
        return 2

    path: Path = args.db or default_demo_path()
    settings = DemoSettings(
        db_path=path,
        base_url=browser_url(args.host, args.port),
        oidc=DemoSettings.oidc_from(
            args.oidc_issuer,
            args.oidc_client_id,
            args.oidc_client_secret,
            name=args.oidc_name,
            account_hint=args.oidc_account_hint,
        ),
        saml_idp_metadata=DemoSettings.saml_from(args.saml_idp_metadata),
    )
    # Listen first: a busy port must not print an address that is someone else's server.
    try:
        listener = _listen(args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = (
                "address already in use (another server is there? choose a free port with --port)"
            )
        else:
            reason = exc.strerror or str(exc)  # e.g. a --host that does not resolve
        where = f"http://{_url_host(args.host)}:{args.port}"  # the address asked for
        print(f"stepup: error: cannot listen on {where}: {reason}", file=sys.stderr)
        return 1
    try:
        if args.reset:
            remove_database(path)
        fresh = not path.exists()
        app = create_app(settings)
    except BaseException:
        listener.close()
        raise
    print("stepup demo")
    print(f"  database: {path}{' (new: demo data created)' if fresh else ''}")
    print(f"  open:     {settings.base_url}/")
    if not settings.passkeys_reachable:  # 127.0.0.2, a network address: not localhost
        print(
            "  passkeys: only at http://localhost (WebAuthn needs a name, not an IP"
            " address), where this demo does not listen: use --host 127.0.0.1 to try them"
        )
    for user in DEMO_USERS:
        print(f"  sign in:  {user.email} / {user.password}  ({user.role})")
    if settings.oidc is not None and settings.oidc.account_hint:
        print(f"  sign in:  {settings.oidc.account_hint}  (at {settings.oidc.display_name})")
    if settings.oidc is not None:
        print(f"  OIDC:     {settings.oidc.issuer} (SSO users are added at first sign-in)")
    if settings.saml_idp_metadata is not None:
        print(f"  SAML:     {settings.saml_idp_metadata}")
    if not _is_loopback(args.host):
        print("  warning:  not a loopback address; anyone who can reach it knows these passwords")
    print("  stop:     Ctrl+C", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C after its graceful shutdown
        pass
    finally:
        listener.close()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, handed to uvicorn (no window in which another
    process could take the port between the check and the start)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        listener.bind(address)
        listener.listen(2048)
        listener.set_inheritable(True)
    except OSError:
        listener.close()
        raise
    return listener
