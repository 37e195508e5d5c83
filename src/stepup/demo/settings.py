"""How the demo is configured: where its database is, and the optional SSO providers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from ..adapters.storage.sql import default_sqlite_path
from ..errors import ConfigurationError

__all__ = ["ENV_PREFIX", "DemoSettings", "OIDCSettings", "default_demo_path"]

ENV_PREFIX: Final = "STEPUP_DEMO_"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
#: The hosts of a ``base_url`` that ``http://localhost`` reaches (as ``urlsplit`` gives
#: them: lower case, an IPv6 address without its brackets).
_LOCALHOST: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def default_demo_path() -> Path:
    """``demo.sqlite3`` next to stepup's default SQLite file."""
    return default_sqlite_path().with_name("demo.sqlite3")


@dataclass(frozen=True, slots=True)
class OIDCSettings:
    """An OpenID provider for SSO users (sign-in and re-authentication)."""

    issuer: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    #: Shown on the buttons: "Sign in with <name>", "Continue with <name>".
    name: str = ""
    #: An account to try the provider with, listed with the demo users on the sign-in
    #: page and printed at start (the tests' provider: ``alice / alice-password``). Only
    #: for a test provider's public account: never a real person's password.
    account_hint: str = field(default="", repr=False)

    @property
    def display_name(self) -> str:
        """``name``, else the issuer's host (``login.example.com``)."""
        return self.name or urlsplit(self.issuer).netloc or self.issuer


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """``base_url`` is where browsers reach the demo (SSO redirect URIs are built on it)."""

    db_path: Path = field(default_factory=default_demo_path)
    base_url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    oidc: OIDCSettings | None = None
    saml_idp_metadata: Path | None = None
    issuer: str = "stepup demo"

    @property
    def passkey_origin(self) -> str:
        """Where passkeys work: ``base_url`` with the host ``localhost``. WebAuthn needs
        a domain for its relying-party id, never an IP address such as 127.0.0.1, so the
        demo's RP id is ``localhost`` and passkeys work at ``http://localhost:<port>``."""
        parts = urlsplit(self.base_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://localhost{port}"

    @property
    def at_localhost(self) -> bool:
        """Is the demo's address ``http://localhost:<port>`` (``stepup demo`` on 127.0.0.1,
        ::1 or every address)? Then it has one address on this machine: a request for it
        by a loopback IP address (``http://127.0.0.1:<port>``), which a browser keeps
        other cookies for, is sent there (:class:`~stepup.demo.address.OneAddressMiddleware`)."""
        return urlsplit(self.base_url).hostname == "localhost"

    @property
    def passkeys_reachable(self) -> bool:
        """Does :attr:`passkey_origin` reach this demo? Only when ``base_url`` is one of
        the addresses ``localhost`` names (``localhost``, ``127.0.0.1``, ``::1``; a demo
        on every address is given ``localhost`` as its ``base_url``). On another
        loopback address (``127.0.0.2``) or a network address, nothing listens at
        ``http://localhost:<port>``."""
        return urlsplit(self.base_url).hostname in _LOCALHOST

    @staticmethod
    def oidc_from(
        issuer: str | None,
        client_id: str | None,
        client_secret: str | None,
        environ: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
        account_hint: str | None = None,
    ) -> OIDCSettings | None:
        """Flags first, then ``STEPUP_DEMO_OIDC_ISSUER`` / ``_CLIENT_ID`` / ``_CLIENT_SECRET``
        / ``_NAME`` / ``_ACCOUNT_HINT``."""
        env = os.environ if environ is None else environ
        issuer = issuer or env.get(f"{ENV_PREFIX}OIDC_ISSUER") or None
        client_id = client_id or env.get(f"{ENV_PREFIX}OIDC_CLIENT_ID") or None
        secret = client_secret or env.get(f"{ENV_PREFIX}OIDC_CLIENT_SECRET") or ""
        label = (name or env.get(f"{ENV_PREFIX}OIDC_NAME") or "").strip()
        hint = (account_hint or env.get(f"{ENV_PREFIX}OIDC_ACCOUNT_HINT") or "").strip()
        if issuer is None and client_id is None:
            return None
        if issuer is None or client_id is None:
            raise ConfigurationError("OIDC needs both an issuer and a client id")
        return OIDCSettings(
            issuer=issuer, client_id=client_id, client_secret=secret, name=label, account_hint=hint
        )

    @staticmethod
    def saml_from(path: str | None, environ: Mapping[str, str] | None = None) -> Path | None:
        """``--saml-idp-metadata`` first, then ``STEPUP_DEMO_SAML_IDP_METADATA``."""
        env = os.environ if environ is None else environ
        given = path or env.get(f"{ENV_PREFIX}SAML_IDP_METADATA") or None
        if given is None:
            return None
        metadata = Path(given)
        if not metadata.is_file():
            raise ConfigurationError(f"SAML IdP metadata: no such file {given!r}")
        return metadata
