"""Who is asking: the signed-in user, their session, and how they signed in."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .twofactor import Channel

__all__ = ["Identity", "LoginMethod", "Subject"]


class LoginMethod(StrEnum):
    PASSWORD = "password"  # noqa: S105 (a method name, not a secret)
    OIDC = "oidc"
    SAML = "saml"


@dataclass(frozen=True, slots=True)
class Identity:
    """How the session signed in. For federated logins, ``issuer`` and ``subject`` are the
    provider's identifiers (OIDC ``iss`` + ``sub``; SAML IdP entity id + ``NameID``):
    a re-authentication must come back with exactly these, never matched on email."""

    method: LoginMethod
    issuer: str = ""
    subject: str = ""
    provider: str = ""  # the app's name for the configured provider, e.g. "corp-oidc"


@dataclass(frozen=True, slots=True)
class Subject:
    """The party a decision is about: one user in one session on one channel.

    ``session_id`` must not contain ``#`` (:data:`stepup.ids.SESSION_RECORD_SEPARATOR`):
    stepup keeps a session's own records under its id followed by ``#``, so recording a
    proof for such a subject (or asking what to offer it) raises
    :class:`~stepup.errors.MalformedInputError`, and nothing was ever recorded for it."""

    user_id: str
    session_id: str
    identity: Identity = Identity(LoginMethod.PASSWORD)
    channel: Channel = Channel.WEB
    roles: frozenset[str] = frozenset()
