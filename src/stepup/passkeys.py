"""Passkeys (WebAuthn): registration and assertion ceremonies, sans-IO.

The cryptography and the WebAuthn checks (client data type, origin, challenge, RP id
hash, user presence and verification, signature) are python-fido2's
(:class:`fido2.server.Fido2Server`); see docs/architecture.md for why that library.
What stepup adds is what the library leaves to the relying party, and what others got
wrong (Flask-Security-Too's GHSA-f66q-9rf6-8795 accepted any user's credential):

* a challenge is random, kept in the store like OIDC state, bound to the user, the
  session and the ceremony, claimed atomically (presented twice at once, it succeeds
  once) and short-lived;
* the asserting credential must be registered to the session's user (and the
  authenticator's user handle, when it sends one, must be that user's);
* the user handle (``user.id``) is opaque: an HMAC-SHA256 of the user id under a
  subkey of the integration's secret (``user_handle_key``), never the id itself, which
  may be an e-mail address (WebAuthn §14.6.1);
* the signature counter only moves forward: the store records a use with a
  compare-and-set on the counter it was read at, so a cloned authenticator (or two
  concurrent uses of one assertion) is refused and evented;
* the backup flags are recorded, and decide ``hwk`` (device-bound) against ``swk``
  (synced) in the grant's methods; ``phr`` (phishing-resistant) is always there.

A passkey is also a second factor at sign-in (:meth:`Passkeys.begin_sign_in`): after the
password, before the user is signed in. Its challenge is bound to the pending sign-in
(the user and the integration's random id for that sign-in, never a session's), kept
apart from re-authentication challenges, and each attempt is charged to a throttle
like the TOTP code step. User verification is preferred, not required there: the
password already proved what the user knows, the passkey proves what they hold; a
passkey used alone (re-authentication) requires it.

Like every decision in stepup these are flows (generators of store calls) that
:class:`Passkeys` and :class:`AsyncPasskeys` drive with :func:`stepup._flow.run` /
:func:`~stepup._flow.run_async`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import math
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ._extras import needs_extra

with needs_extra(__name__, "passkeys"):
    from fido2.attestation.base import Attestation
    from fido2.cose import CoseKey
    from fido2.server import Fido2Server
    from fido2.webauthn import (
        AttestationConveyancePreference,
        AttestationObject,
        AttestedCredentialData,
        AuthenticationResponse,
        AuthenticatorData,
        CollectedClientData,
        PublicKeyCredentialDescriptor,
        PublicKeyCredentialParameters,
        PublicKeyCredentialRpEntity,
        PublicKeyCredentialType,
        PublicKeyCredentialUserEntity,
        RegistrationResponse,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

from ._flow import Flow, run, run_async
from ._lost_replies import has_passkey, passkey_removed_after_outage
from .clock import Clock, system_clock
from .errors import ConfigurationError, MalformedInputError, StepupError, StoreUnavailableError
from .events import EventBus, PasskeyRemoved, StepupEvent, Throttled
from .ids import checked_id, checked_subject, is_well_formed_id
from .records import Attempt, AttemptOutcome, Challenge, Passkey
from .strict_json import NotStrictJSONError, strict_json
from .subject import Subject
from .throttle import ThrottlePolicy

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_CREDENTIAL_ID_BYTES",
    "MAX_PAYLOAD_BYTES",
    "AsyncPasskeys",
    "Passkey",
    "PasskeyCounterRegressed",
    "PasskeyLimitError",
    "PasskeyReason",
    "PasskeyRegistered",
    "PasskeyRejected",
    "PasskeyRemoved",
    "PasskeyRenamed",
    "PasskeyResult",
    "PasskeySignInRejected",
    "PasskeySignInVerified",
    "PasskeyVerified",
    "Passkeys",
    "RelyingParty",
]

logger = logging.getLogger("stepup.passkeys")

MAX_PAYLOAD_BYTES: Final = 16 * 1024  # a real assertion is well under 2 KiB
MAX_NAME_LENGTH: Final = 64
_MAX_USER_HANDLE: Final = 64  # bytes, WebAuthn §5.4.3
#: WebAuthn §7.1: a longer credential id is refused (the ids are stored and listed).
MAX_CREDENTIAL_ID_BYTES: Final = 1023
#: The COSE algorithms a passkey may use, in the order offered: ES256, EdDSA
#: (Ed25519), ES384, ES512, PS256, RS256. Not RS1 (SHA-1), not ES256K, not the
#: draft ones; an RSA key has at least :data:`MIN_RSA_BITS`.
ALLOWED_ALGORITHMS: Final = (-7, -8, -35, -36, -37, -257)
MIN_RSA_BITS: Final = 2048
#: The key type (COSE ``kty``: 1 OKP, 2 EC2, 3 RSA) each allowed algorithm needs.
_KEY_TYPES: Final = {-7: 2, -35: 2, -36: 2, -8: 1, -37: 3, -257: 3}
#: The curve each allowed EC/OKP algorithm's key must be on (COSE ``crv``).
_CURVES: Final = {-7: 1, -35: 2, -36: 3, -8: 6}
_EC_CURVES: Final[dict[int, ec.EllipticCurve]] = {
    1: ec.SECP256R1(),
    2: ec.SECP384R1(),
    3: ec.SECP521R1(),
}
_CHALLENGE_PREFIX: Final = "webauthn:"
_CREATE: Final = "webauthn.create"
_GET: Final = "webauthn.get"
#: The ceremony of a second factor at sign-in: its challenges are never a re-auth's.
_SIGN_IN: Final = "webauthn.get:sign-in"
#: A pending sign-in's challenges are bound to this plus the integration's id for it,
#: so they can never match a session id.
_SIGN_IN_BINDING: Final = "sign-in:"
#: The most passkeys a user may be allowed: far beyond need, and inside every store's
#: 64-bit counters (a larger limit would fail each registration at the store).
_MAX_LIMIT: Final = 2**31 - 1
#: The throttle key of a user's passkey attempts at sign-in.
_SIGN_IN_THROTTLE_KEY: Final = "passkey-sign-in:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# settings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the passkeys are for: the RP id (a registrable domain) and the exact
    origins allowed to use them. Checked when built, so a typo fails at start-up: a
    value no browser could match (an IP address or a single label as the RP id, an
    origin with userinfo, ``*``, a non-ASCII host or an invalid port) is a
    :class:`~stepup.errors.ConfigurationError` naming the cause. Origins are kept as a
    browser serialises them: ``https://app.example.com:443`` is kept as
    ``https://app.example.com``."""

    id: str
    name: str
    origins: tuple[str, ...]
    challenge_ttl: float = 300.0
    max_passkeys_per_user: int = 10

    def __post_init__(self) -> None:
        _check_rp_id(self.id)
        if isinstance(self.origins, str) or not self.origins:
            raise ConfigurationError("passkeys: give at least one allowed origin (a list)")
        limit = self.max_passkeys_per_user
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
            raise ConfigurationError(
                f"passkeys: max_passkeys_per_user must be a whole number from 1 to {_MAX_LIMIT}"
            )
        ttl = self.challenge_ttl
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < math.inf:
            raise ConfigurationError("passkeys: challenge_ttl must be a positive number of seconds")
        # As a browser serialises an origin: lower case, no trailing slash, no default port.
        origins = tuple(_browser_origin(origin, self.id) for origin in self.origins)
        object.__setattr__(self, "origins", origins)

    def allows(self, origin: object) -> bool:
        """Whether ``origin`` (the client data's) is one of ours, compared exactly as
        the browser serialises it: no trailing slash, case, default port or
        parent/sub-domain is "close enough"."""
        return isinstance(origin, str) and origin in self.origins


#: One DNS label as browsers send it in an origin: ASCII letters and digits, inner
#: hyphens (an internationalised name in its A-label form, ``xn--...``), at most 63.
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: The port each scheme has by default: a browser leaves it out of the origin it sends.
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}
_LOCALHOST: Final = "localhost"


def _a_label_hint(name: str) -> str:
    """``name`` in the ASCII form browsers send (``bücher.example`` ->
    ``xn--bcher-kva.example``), for a message; empty when it has none."""
    try:
        return name.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return ""


def _not_ascii(what: str, name: str) -> ConfigurationError:
    hint = _a_label_hint(name)
    suggestion = f" ({hint!r})" if hint else ""
    return ConfigurationError(
        f"passkeys: {what} {name!r} is not ASCII: write an internationalised domain in the"
        f" A-label form browsers send{suggestion}"
    )


def _is_domain(name: str) -> bool:
    return all(_LABEL.fullmatch(label) for label in name.split("."))


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _check_rp_id(rp_id: object) -> None:
    """An RP id browsers accept (WebAuthn §5.1.2, "a valid domain string"): a lower-case
    ASCII domain of dot-separated labels; not an IP address; and not a single label
    such as ``com`` (a top-level domain, a public suffix no site may claim), except
    ``localhost`` for development."""
    if not isinstance(rp_id, str) or not rp_id:
        raise ConfigurationError("passkeys: the RP id must be a domain such as 'example.com'")
    if not rp_id.isascii():
        raise _not_ascii("RP id", rp_id)
    if _is_ip_address(rp_id):
        raise ConfigurationError(
            f"passkeys: RP id {rp_id!r} is an IP address: browsers accept only a domain"
            " (use 'localhost' for development)"
        )
    if rp_id != rp_id.lower() or not _is_domain(rp_id):
        raise ConfigurationError(
            f"passkeys: RP id {rp_id!r} must be a bare lower-case domain such as"
            " 'example.com' (no scheme, port or path; letters, digits, hyphens and dots)"
        )
    if "." not in rp_id and rp_id != _LOCALHOST:
        raise ConfigurationError(
            f"passkeys: RP id {rp_id!r} is a single label (a top-level domain): browsers"
            " refuse it; use the site's own domain such as 'example.com'"
        )


def _browser_origin(origin: object, rp_id: str) -> str:
    """``origin`` as a browser serialises it (``scheme://host[:port]``, lower case, the
    scheme's default port left out), or :class:`ConfigurationError` naming why no
    browser could ever send it: not https (http only for localhost), userinfo, a path,
    query or fragment, a port out of range, a host that is not an ASCII domain (``*``,
    an IP address, an internationalised name not in its A-label form), or a host
    outside the RP id."""
    if not isinstance(origin, str) or not origin:
        raise ConfigurationError("passkeys: each origin must be text such as 'https://example.com'")
    if not origin.isascii():
        raise _not_ascii("origin", origin)
    if any(c.isspace() or not c.isprintable() for c in origin):
        raise ConfigurationError(f"passkeys: origin {origin!r} holds spaces or control characters")
    try:
        parts = urlsplit(origin)
        scheme, host, port = parts.scheme.lower(), parts.hostname or "", parts.port
    except ValueError:  # an unbalanced "[", a port that is no number or out of range
        parts, scheme, host, port = urlsplit(""), "", "", 0
    if port == 0 or "[" in origin or "]" in origin or parts.netloc.endswith(":"):
        raise ConfigurationError(
            f"passkeys: origin {origin!r} has no valid host and port (a domain, and a port"
            " from 1 to 65535)"
        )
    if scheme != "https" and not (scheme == "http" and host == _LOCALHOST):
        raise ConfigurationError(
            f"passkeys: origin {origin!r} must be https (http only for localhost)"
        )
    if "@" in parts.netloc:
        raise ConfigurationError(f"passkeys: origin {origin!r} must have no user name or password")
    if parts.path not in ("", "/") or "?" in origin or "#" in origin:
        raise ConfigurationError(
            f"passkeys: origin {origin!r} must have no path, query or fragment"
        )
    if not host or not _is_domain(host) or _is_ip_address(host):
        raise ConfigurationError(
            f"passkeys: origin {origin!r} must name one host by its domain (no '*', no IP address)"
        )
    if host != rp_id and not host.endswith("." + rp_id):
        raise ConfigurationError(f"passkeys: origin {origin!r} is not within the RP id {rp_id!r}")
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


# records and results --------------------------------------------------------------


class PasskeyReason(StrEnum):
    OK = "ok"
    MALFORMED = "malformed"  # not a WebAuthn response at all, or oversized
    CHALLENGE = "challenge"  # unknown, expired, replayed, or another session's/ceremony's
    UNKNOWN_CREDENTIAL = "unknown_credential"  # not registered to this user
    INVALID = "invalid"  # origin, RP id, signature, type: the library's checks
    USER_VERIFICATION = "user_verification"  # required and not performed
    COUNTER = "counter"  # the signature counter did not move forward: a clone?
    DUPLICATE = "duplicate"  # registering a credential id that is already registered
    LIMIT = "limit"  # the user has as many passkeys as allowed
    THROTTLED = "throttled"  # too many attempts at sign-in: wait until retry_at
    UNAVAILABLE = "unavailable"  # the store could not answer: fail closed
    # The offered alternative needs another kind of passkey than the one used:
    NEEDS_DEVICE_BOUND = "needs_device_bound"  # hwk asked, a synced passkey answered
    NEEDS_SYNCED = "needs_synced"  # swk asked, a device-bound passkey answered


class PasskeyLimitError(StepupError):
    """The user already has as many passkeys as allowed: no registration is begun, so
    no authenticator makes a (discoverable) credential that could never be stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the user has as many passkeys as allowed ({limit}); remove one first")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class PasskeyResult:
    """Only ``reason == ok`` is truthy. ``passkey`` is the credential used or registered;
    ``retry_at`` when a sign-in attempt is throttled, the time it may try again.
    ``transaction``: the digest the authenticator signed as part of the challenge (an
    assertion for a transaction-bound rule); pass it to ``Reauth.record(...,
    transaction=..., signed=result.transaction)`` so the proof recorded is for the
    transaction the person confirmed."""

    reason: PasskeyReason
    passkey: Passkey | None = None
    user_verified: bool = False
    retry_at: float | None = None
    transaction: str | None = None

    def __bool__(self) -> bool:
        return self.reason is PasskeyReason.OK

    @property
    def methods(self) -> frozenset[str]:
        """What the assertion proved, for the grant: ``phr`` plus ``hwk``/``swk``, and
        ``user`` with ``mfa`` when the authenticator verified the user."""
        if self.passkey is None or not self:
            return frozenset()
        extra = {"user", "mfa"} if self.user_verified else set()
        return self.passkey.methods | extra

    def sign_in_methods(self, proved: Sequence[str]) -> tuple[str, ...]:
        """What a sign-in proved with this passkey as its second factor, for
        ``record_sign_in``: the first factor's ``proved`` (``pwd``), the passkey's
        :attr:`methods`, and ``mfa`` (two factors, with or without user verification).
        Empty when the assertion failed."""
        if not self:
            return ()
        return tuple(sorted({*proved, *self.methods, "mfa"}))


# events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyRegistered(StepupEvent):
    user_id: str
    credential_id: str
    passkey_name: str  # the user's label; ``name`` is every event's class name


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyRenamed(StepupEvent):
    """A passkey got another name (only when the store wrote one; the name, the
    user's own text, is left out)."""

    user_id: str
    credential_id: str
    #: Who renamed it: the user, unless the caller named someone else.
    renamed_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyVerified(StepupEvent):
    user_id: str
    credential_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyRejected(StepupEvent):
    user_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeySignInVerified(StepupEvent):
    """A passkey passed as the second factor of a sign-in (the user is signed in next)."""

    user_id: str
    credential_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeySignInRejected(StepupEvent):
    """A passkey was refused as the second factor of a sign-in (``reason``: a
    :class:`PasskeyReason` value)."""

    user_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PasskeyCounterRegressed(StepupEvent):
    """The signature counter went backwards or stood still: possibly a cloned key."""

    user_id: str
    credential_id: str
    stored: int
    presented: int


# the ceremonies -------------------------------------------------------------------


class _RefusedError(Exception):
    def __init__(self, reason: PasskeyReason) -> None:
        self.reason = reason


def _load(payload: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(payload, Mapping):
        return payload
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _RefusedError(PasskeyReason.MALFORMED)
    try:
        data = strict_json(payload)
    except NotStrictJSONError as exc:
        raise _RefusedError(PasskeyReason.MALFORMED) from exc
    if not isinstance(data, dict):
        raise _RefusedError(PasskeyReason.MALFORMED)
    return data


def _load_mapping(payload: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """:func:`_load`, and a mapping handed over already parsed is held to the same
    size: the text fields python-fido2 reads (the ids and the response's) may not
    together exceed :data:`MAX_PAYLOAD_BYTES` (counted, not re-serialised)."""
    data = _load(payload)
    if isinstance(payload, Mapping):
        response = data.get("response")
        inner = response.values() if isinstance(response, Mapping) else ()
        size = sum(len(v) for v in (*data.values(), *inner) if isinstance(v, str))
        if size > MAX_PAYLOAD_BYTES:
            raise _RefusedError(PasskeyReason.MALFORMED)
    return data


def _client_fields(client_data: CollectedClientData) -> dict[str, Any]:
    """The client data JSON as sent, its ``type``, ``origin`` and ``challenge``
    strings (anything else is malformed: python-fido2 does not check their types).
    Strict JSON: with a member named twice (two ``origin``s), which one counts would
    be the parser's choice, and no browser sends that."""
    try:
        fields = strict_json(bytes(client_data))
    except NotStrictJSONError:
        raise _RefusedError(PasskeyReason.MALFORMED) from None
    if not isinstance(fields, dict) or not all(
        isinstance(fields.get(name), str) for name in ("type", "origin", "challenge")
    ):
        raise _RefusedError(PasskeyReason.MALFORMED)
    return fields


def _check_client_data(rp: RelyingParty, fields: Mapping[str, Any], kind: str) -> None:
    """WebAuthn §7.1 steps 7-9 / §7.2 steps 11-13, held exactly: the ceremony's
    type, one of our origins as the browser serialises it, and no cross-origin
    iframe (``crossOrigin`` absent or false, no ``topOrigin``): stepup's pages run the
    ceremonies in their own top-level window, so anything else is a forgery or an
    embedding we never allowed."""
    if (
        fields["type"] != kind
        or not rp.allows(fields["origin"])
        or fields.get("crossOrigin", False) is not False
        or "topOrigin" in fields
        or not _token_binding_ok(fields.get("tokenBinding"))
    ):
        raise _RefusedError(PasskeyReason.INVALID)


def _token_binding_ok(token_binding: object) -> bool:
    """Level 2's ``tokenBinding``: absent, or a status saying none is in use. stepup
    has no Token Binding id to compare, so ``present`` cannot be verified."""
    if token_binding is None:
        return True
    return isinstance(token_binding, dict) and token_binding.get("status") in (
        "supported",
        "not-supported",
    )


def _check_flags(auth_data: AuthenticatorData) -> None:
    """BS (backed up) without BE (backup eligible) is a state no authenticator has
    (WebAuthn §6.1.3): a forged or broken authenticator data."""
    flags = auth_data.flags
    if flags & AuthenticatorData.FLAG.BS and not flags & AuthenticatorData.FLAG.BE:
        raise _RefusedError(PasskeyReason.INVALID)


def _check_attestation(attestation: AttestationObject, client_data_hash: bytes) -> None:
    """The attestation policy (docs/passkeys.md): stepup asks for none and trusts no
    attestation root, but a statement the browser does send must be a correct one of a
    known format (WebAuthn §7.1 steps 19-21): "none" with an empty statement, or a
    statement whose signature verifies under its format's rules (packed self
    attestation, or a certificate's key). An unknown format or a bad signature is
    refused; a valid one is accepted without judging who made the authenticator."""
    if not isinstance(attestation.fmt, str) or not isinstance(attestation.att_stmt, Mapping):
        raise _RefusedError(PasskeyReason.MALFORMED)
    try:
        verifier = Attestation.for_type(attestation.fmt)()
        verifier.verify(attestation.att_stmt, attestation.auth_data, client_data_hash)
    except Exception as exc:
        # python-fido2's verifiers raise InvalidAttestation for the checks they make,
        # and whatever a crafted statement trips on otherwise (an AssertionError for an
        # RSA certificate under ES256, cryptography's ExtensionNotFound, an
        # AttributeError for a field of another type): every failure is a refusal.
        raise _RefusedError(PasskeyReason.INVALID) from exc


def _check_public_key(credential: AttestedCredentialData) -> None:
    """WebAuthn §7.1 step 19/20: an algorithm we offered, and a key that is one:
    an EC point on the curve its algorithm names, an Ed25519 key, an RSA modulus of
    at least :data:`MIN_RSA_BITS` with an odd exponent."""
    key: CoseKey = credential.public_key
    alg = key.get(3)
    if alg not in ALLOWED_ALGORITHMS or key.get(1) != _KEY_TYPES[alg]:
        raise _RefusedError(PasskeyReason.INVALID)
    try:
        if alg in _CURVES and key.get(-1) != _CURVES[alg]:
            raise _RefusedError(PasskeyReason.INVALID)
        if alg == -8:
            ed25519.Ed25519PublicKey.from_public_bytes(key[-2])
        elif alg in (-37, -257):
            n, e = int.from_bytes(key[-1], "big"), int.from_bytes(key[-2], "big")
            if n.bit_length() < MIN_RSA_BITS or e < 3 or e % 2 == 0:
                raise _RefusedError(PasskeyReason.INVALID)
            rsa.RSAPublicNumbers(e, n).public_key()
        else:
            x, y = int.from_bytes(key[-2], "big"), int.from_bytes(key[-3], "big")
            ec.EllipticCurvePublicNumbers(x, y, _EC_CURVES[key[-1]]).public_key()
    except (KeyError, TypeError, ValueError) as exc:
        raise _RefusedError(PasskeyReason.INVALID) from exc


#: What the user-handle subkey is for: the secret it is derived from is never used
#: as it is (it also signs cookies or CSRF tokens).
_HANDLE_PURPOSE: Final = b"stepup passkeys: WebAuthn user handle, v1"

#: A key for :class:`Passkeys`' ``user_handle_key``: the integration's secret (text or
#: bytes), or several (the current one first, then rotated ones still accepted).
UserHandleKey = str | bytes | Sequence[str | bytes]


def _legacy_user_handle(user_id: str) -> bytes:
    """The user handle passkeys registered before opaque handles carry: the user id's
    UTF-8 bytes when they fit WebAuthn's 64, else their SHA-256 (browsers refuse a
    longer ``user.id``, so no passkey of such a user could exist under the plain bytes)."""
    raw = user_id.encode()
    return raw if len(raw) <= _MAX_USER_HANDLE else hashlib.sha256(raw).digest()


def _handle_subkeys(key: UserHandleKey | None) -> tuple[bytes, ...]:
    """The purpose-specific subkeys (HMAC-SHA256 of :data:`_HANDLE_PURPOSE` under each
    secret), current first; a key that is empty or not text or bytes is a
    :class:`~stepup.errors.ConfigurationError` at start-up."""
    if key is None:
        return ()
    if isinstance(key, str | bytes):
        keys: list[object] = [key]
    elif isinstance(key, Sequence):
        keys = list(key)
    else:
        raise ConfigurationError("passkeys: user_handle_key must be text, bytes or a list of them")
    subkeys = []
    for secret in keys:
        if not isinstance(secret, str | bytes) or not secret:
            raise ConfigurationError("passkeys: user_handle_key must be non-empty text or bytes")
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        subkeys.append(hmac.new(raw, _HANDLE_PURPOSE, hashlib.sha256).digest())
    if not subkeys:
        raise ConfigurationError("passkeys: user_handle_key needs at least one key")
    return tuple(subkeys)


def _opaque_user_handle(subkey: bytes, user_id: str) -> bytes:
    """32 bytes that name ``user_id`` to the authenticator and say nothing about it."""
    return hmac.new(subkey, user_id.encode(), hashlib.sha256).digest()


def _transaction_digest(transaction: str | None) -> bytes:
    return b"" if transaction is None else hashlib.sha256(transaction.encode()).digest()


#: What a passkey assertion can prove, so what a caller may ask it for (the offered
#: alternative of a rule): ``phr`` any passkey, ``hwk`` a device-bound one (BE=0),
#: ``swk`` a synced one (BE=1), ``user`` and ``mfa`` with user verification.
_PROVABLE: Final = frozenset({"phr", "hwk", "swk", "user", "mfa"})
_VERIFIED: Final = frozenset({"user", "mfa"})


def _asked(proves: Iterable[str]) -> frozenset[str]:
    """The tokens an assertion must prove, checked: asking a passkey for anything else
    (``pwd``, ``otp``) is :class:`~stepup.errors.MalformedInputError`, never ignored."""
    if isinstance(proves, str | bytes):
        raise MalformedInputError("proves is a list of tokens such as ('hwk', 'user')")
    asked = frozenset(proves)
    if not asked <= _PROVABLE:
        raise MalformedInputError("a passkey proves only phr, hwk, swk, user and mfa")
    return asked


def _kind_refusal(passkey: Passkey, asked: frozenset[str]) -> PasskeyReason | None:
    """Why ``passkey`` cannot prove ``asked`` by its kind (device-bound or synced, fixed
    when it was made), or ``None`` when it can."""
    missing = asked - passkey.methods
    if "hwk" in missing:
        return PasskeyReason.NEEDS_DEVICE_BOUND
    if "swk" in missing:
        return PasskeyReason.NEEDS_SYNCED
    return None


#: The largest ``timeout`` a browser reads as it is (WebIDL ``unsigned long``): a larger
#: number would wrap around to a short one.
_MAX_TIMEOUT_MS: Final = 2**32 - 1


def _timeout_ms(seconds: float) -> int:
    """``seconds`` (a challenge's lifetime) as the ``timeout`` of the options: whole
    milliseconds (rounded down: the browser never waits past the challenge), at least
    one, at most what the browser reads as it is."""
    return min(max(math.floor(seconds * 1000), 1), _MAX_TIMEOUT_MS)


class _Ceremonies:
    """The shared half of :class:`Passkeys` and :class:`AsyncPasskeys`: the flows."""

    def __init__(
        self,
        store: Any,
        rp: RelyingParty,
        *,
        clock: Clock = system_clock,
        events: EventBus | None = None,
        throttle: ThrottlePolicy | None = None,
        user_handle_key: UserHandleKey | None = None,
    ) -> None:
        self.store = store
        self.rp = rp
        #: Subkeys of the user handles: new registrations use the first; an assertion's
        #: handle may be any of them, or the legacy one (see :meth:`_user_handles`).
        self._handle_keys = _handle_subkeys(user_handle_key)
        self.clock = clock
        self.events = events or EventBus()
        #: Charged once per passkey attempt at sign-in, as the TOTP code step is.
        self.throttle = throttle if throttle is not None else ThrottlePolicy()
        self._server = Fido2Server(
            PublicKeyCredentialRpEntity(id=rp.id, name=rp.name),
            # Written out, though "none" is WebAuthn's default: what stepup asks for
            # is then in the options a browser (or an auditor) reads.
            attestation=AttestationConveyancePreference.NONE,
            verify_origin=rp.allows,
        )
        # The ceremony's timeout (WebAuthn's ``timeout``, in milliseconds) is the
        # challenge's lifetime: the browser gives up when the server would, instead of
        # waiting for its own default and then getting only "expired". (python-fido2
        # sets the attribute to None untyped, and passes it on as the options'
        # ``timeout: int | None``.)
        self._server.timeout = _timeout_ms(rp.challenge_ttl)  # type: ignore[assignment]
        self._server.allowed_algorithms = [
            PublicKeyCredentialParameters(type=PublicKeyCredentialType.PUBLIC_KEY, alg=alg)
            for alg in ALLOWED_ALGORITHMS
        ]

    def _emit(self, event: StepupEvent) -> None:
        self.events.emit(event)

    def _user_handle(self, user_id: str) -> bytes:
        """The user handle a new registration of ``user_id`` gets: opaque (32 bytes of
        HMAC-SHA256) under the current ``user_handle_key``; without a key, the legacy
        handle (the id's bytes), as before opaque handles."""
        if not self._handle_keys:
            return _legacy_user_handle(user_id)
        return _opaque_user_handle(self._handle_keys[0], user_id)

    def _user_handles(self, user_id: str) -> tuple[bytes, ...]:
        """Every user handle that names ``user_id``: the opaque one under each key
        (current and rotated) and the legacy one its older passkeys carry. Each is
        derived from this user's id only: no other user's handle is ever among them."""
        opaque = tuple(_opaque_user_handle(k, user_id) for k in self._handle_keys)
        return (*opaque, _legacy_user_handle(user_id))

    def _new_challenge(
        self,
        subject: Subject,
        kind: str,
        uv: UserVerificationRequirement,
        transaction: str | None,
        allow: Sequence[str] = (),
        asked: frozenset[str] = frozenset(),
    ) -> tuple[bytes, Challenge]:
        # 32 random bytes, then the transaction's digest when one is bound, so the
        # authenticator signs over what is being confirmed.
        raw = secrets.token_bytes(32) + _transaction_digest(transaction)
        now = self.clock()
        challenge = Challenge(
            challenge_id=_CHALLENGE_PREFIX + _b64(raw),
            user_id=subject.user_id,
            session_id=subject.session_id,
            issued_at=now,
            expires_at=now + self.rp.challenge_ttl,
            data={
                "kind": kind,
                "uv": uv.value,
                "transaction": transaction is not None,
                # allowCredentials as sent: an assertion by any other credential
                # (one added since) is refused (WebAuthn §7.2 step 5).
                "allow": list(allow),
                # What the assertion must prove (the offered alternative): held at the
                # finish whatever the caller passes then.
                "proves": sorted(asked),
            },
        )
        return raw, challenge

    def _claim(
        self,
        subject: Subject,
        client_data: CollectedClientData,
        fields: Mapping[str, Any],
        kind: str,
        transaction: str | None,
    ) -> Flow[Challenge]:
        raw = client_data.challenge
        encoded = _b64(raw)
        if fields["challenge"] != encoded:
            # Only the encoding we sent (base64url, unpadded) names the challenge:
            # padded, standard-alphabet or decorated variants decode to the same bytes
            # in lenient decoders, and are refused without spending it.
            raise _RefusedError(PasskeyReason.CHALLENGE)
        challenge: Challenge | None = yield (
            "take_challenge",
            (_CHALLENGE_PREFIX + encoded, self.clock()),
        )
        if (
            challenge is None
            or challenge.user_id != subject.user_id
            or not secrets.compare_digest(challenge.session_id, subject.session_id)
            or challenge.data.get("kind") != kind
            or raw[32:] != _transaction_digest(transaction)
        ):
            raise _RefusedError(PasskeyReason.CHALLENGE)
        return challenge

    # registration ---------------------------------------------------------------

    def _begin_registration(
        self, subject: Subject, user_name: str, display_name: str
    ) -> Flow[dict[str, Any]]:
        checked_subject(subject)
        existing: tuple[Passkey, ...] = yield ("list_passkeys", (subject.user_id,))
        if len(existing) >= self.rp.max_passkeys_per_user:
            # Refused before any ceremony: the authenticator would make a discoverable
            # credential (a slot on a key, an entry in a passkey manager) that the finish
            # could only refuse, and the device would keep offering it for this site.
            raise PasskeyLimitError(self.rp.max_passkeys_per_user)
        uv = UserVerificationRequirement.REQUIRED
        raw, challenge = self._new_challenge(subject, _CREATE, uv, None)
        options, _state = self._server.register_begin(
            PublicKeyCredentialUserEntity(
                id=self._user_handle(subject.user_id), name=user_name, display_name=display_name
            ),
            credentials=[
                PublicKeyCredentialDescriptor(
                    type=PublicKeyCredentialType.PUBLIC_KEY, id=_unb64(p.credential_id)
                )
                for p in existing
            ],
            resident_key_requirement=ResidentKeyRequirement.REQUIRED,
            user_verification=uv,
            challenge=raw,
        )
        yield ("put_challenge", (challenge,))
        return dict(options)

    def _finish_registration(
        self, subject: Subject, payload: str | bytes | Mapping[str, Any], name: str
    ) -> Flow[PasskeyResult]:
        checked_subject(subject)
        try:
            try:
                clean_name = _clean_name(name)
                data = _load_mapping(payload)
                response = RegistrationResponse.from_dict(data)
                client_data = response.response.client_data
                fields = _client_fields(client_data)
                attestation = response.response.attestation_object
                _check_shape(data, response.raw_id, attestation.auth_data)
                if attestation.auth_data.credential_data is None:  # AT not set
                    raise _RefusedError(PasskeyReason.MALFORMED)
            except _RefusedError:
                raise
            except Exception as exc:  # the library's parse errors are many types
                raise _RefusedError(PasskeyReason.MALFORMED) from exc
            challenge = yield from self._claim(subject, client_data, fields, _CREATE, None)
            _check_client_data(self.rp, fields, _CREATE)
            state = {
                "challenge": _b64(client_data.challenge),
                "user_verification": challenge.data["uv"],
            }
            try:
                auth_data = self._server.register_complete(state, response)
            except Exception as exc:  # ValueError per check; anything else: fail closed
                raise _RefusedError(_library_reason(exc)) from exc
            _check_flags(auth_data)
            credential = auth_data.credential_data
            if credential is None:
                raise _RefusedError(PasskeyReason.MALFORMED)
            if (
                len(credential.credential_id) > MAX_CREDENTIAL_ID_BYTES
                or credential.credential_id != response.raw_id
            ):
                raise _RefusedError(PasskeyReason.INVALID)
            _check_public_key(credential)
            _check_attestation(attestation, client_data.hash)
            passkey = Passkey(
                user_id=subject.user_id,
                credential_id=_b64(credential.credential_id),
                credential_data=_b64(bytes(credential)),
                name=clean_name,
                sign_count=auth_data.counter,
                backup_eligible=bool(auth_data.flags & AuthenticatorData.FLAG.BE),
                backup_state=bool(auth_data.flags & AuthenticatorData.FLAG.BS),
                user_verified=auth_data.is_user_verified(),
                created_at=self.clock(),
                transports=_transports(data),
            )
            added: bool
            try:
                added = yield ("add_passkey", (passkey, self.rp.max_passkeys_per_user))
            except StoreUnavailableError:
                added = yield from self._stored_after_outage(passkey)
            if not added:  # the store says no; tell the person which rule it was
                mine: tuple[Passkey, ...] = yield ("list_passkeys", (subject.user_id,))
                full = len(mine) >= self.rp.max_passkeys_per_user
                raise _RefusedError(PasskeyReason.LIMIT if full else PasskeyReason.DUPLICATE)
        except _RefusedError as refused:
            self._emit(
                PasskeyRejected(at=self.clock(), user_id=subject.user_id, reason=refused.reason)
            )
            return PasskeyResult(refused.reason)
        except StoreUnavailableError:
            return PasskeyResult(PasskeyReason.UNAVAILABLE)
        # The passkey is stored: the audit says so before anything else can fail.
        self._emit(
            PasskeyRegistered(
                at=self.clock(),
                user_id=subject.user_id,
                credential_id=passkey.credential_id,
                passkey_name=passkey.name,
            )
        )
        # A factor was added: no re-authentication made before counts any more, in any
        # session (OWASP ASVS 5.0 section 7.4.3), as for a TOTP device. A store failure
        # here propagates: the passkey is stored, so this is no clean success.
        yield ("revoke_grants", (subject.user_id,))
        return PasskeyResult(PasskeyReason.OK, passkey, passkey.user_verified)

    def _stored_after_outage(self, passkey: Passkey) -> Flow[bool]:
        """``True`` when ``passkey`` is stored although ``add_passkey`` failed: its answer
        was lost, not its write (a reply that never came, a store's later step that
        failed; Redis's add is three round trips). It was then registered, and is
        answered as such: the event, and every earlier re-authentication revoked.
        Otherwise (not stored, or the store cannot say) earlier re-authentications are
        revoked all the same, as far as the store takes it, since a factor may have been
        added, and the outage is the answer."""
        try:
            mine: tuple[Passkey, ...] = yield ("list_passkeys", (passkey.user_id,))
        except StoreUnavailableError:
            mine = ()
        if any(stored.credential_id == passkey.credential_id for stored in mine):
            return True
        with suppress(StoreUnavailableError):  # the store is down: the answer below says so
            yield ("revoke_grants", (passkey.user_id,))
        raise StoreUnavailableError("add_passkey: no answer, and the passkey is not stored")

    # authentication ---------------------------------------------------------------

    def _begin_authentication(
        self,
        subject: Subject,
        user_verification: bool,
        transaction: str | None,
        kind: str = _GET,
        proves: Iterable[str] = (),
    ) -> Flow[dict[str, Any] | None]:
        """Options for ``navigator.credentials.get``, or ``None`` if the user has no
        passkey that can prove ``proves`` (offer another method, or say which kind to
        add). Only those passkeys are listed in allowCredentials."""
        checked_subject(subject)
        asked = _asked(proves)
        existing: tuple[Passkey, ...] = yield ("list_passkeys", (subject.user_id,))
        suitable = [p for p in existing if _kind_refusal(p, asked) is None]
        if not suitable:
            return None
        uv = (
            UserVerificationRequirement.REQUIRED
            if user_verification or asked & _VERIFIED
            else UserVerificationRequirement.PREFERRED
        )
        allow = [p.credential_id for p in suitable]
        raw, challenge = self._new_challenge(subject, kind, uv, transaction, allow, asked)
        options, _state = self._server.authenticate_begin(
            [
                PublicKeyCredentialDescriptor(
                    type=PublicKeyCredentialType.PUBLIC_KEY, id=_unb64(p.credential_id)
                )
                for p in suitable
            ],
            user_verification=uv,
            challenge=raw,
        )
        yield ("put_challenge", (challenge,))
        return dict(options)

    def _finish_authentication(
        self,
        subject: Subject,
        payload: str | bytes | Mapping[str, Any],
        transaction: str | None,
        kind: str = _GET,
        proves: Iterable[str] = (),
    ) -> Flow[PasskeyResult]:
        checked_subject(subject)
        asked = _asked(proves)
        sign_in = kind == _SIGN_IN
        charge: Attempt | None = None
        try:
            try:
                data = _load_mapping(payload)
                response = AuthenticationResponse.from_dict(data)
                client_data = response.response.client_data
                auth_data = response.response.authenticator_data
                fields = _client_fields(client_data)
                _check_shape(data, response.raw_id, auth_data)
            except _RefusedError:
                raise
            except Exception as exc:
                raise _RefusedError(PasskeyReason.MALFORMED) from exc
            if sign_in:
                # Charge first, refund on success: concurrent attempts are all counted.
                charge = yield (
                    "throttle_charge",
                    (self._throttle_key(subject), self.clock(), self.throttle),
                )
                if charge.outcome is AttemptOutcome.THROTTLED:
                    raise _RefusedError(PasskeyReason.THROTTLED)
            challenge = yield from self._claim(subject, client_data, fields, kind, transaction)
            _check_client_data(self.rp, fields, _GET)
            passkeys: tuple[Passkey, ...] = yield ("list_passkeys", (subject.user_id,))
            credential_id = _b64(response.raw_id)
            passkey = next((p for p in passkeys if p.credential_id == credential_id), None)
            handle = response.response.user_handle
            if passkey is None or (
                handle is not None and handle not in self._user_handles(subject.user_id)
            ):
                raise _RefusedError(PasskeyReason.UNKNOWN_CREDENTIAL)
            asked |= _PROVABLE.intersection(challenge.data.get("proves", ()))
            wrong_kind = _kind_refusal(passkey, asked)
            if wrong_kind is not None:  # the user's, but it cannot prove what was asked
                raise _RefusedError(wrong_kind)
            if credential_id not in challenge.data.get("allow", ()):
                raise _RefusedError(PasskeyReason.UNKNOWN_CREDENTIAL)
            state = {
                "challenge": _b64(client_data.challenge),
                "user_verification": challenge.data["uv"],
            }
            try:
                self._server.authenticate_complete(
                    state, [AttestedCredentialData(_unb64(passkey.credential_data))], response
                )
            except Exception as exc:  # ValueError per check; anything else: fail closed
                raise _RefusedError(_library_reason(exc)) from exc
            _check_flags(auth_data)
            backup_eligible = bool(auth_data.flags & AuthenticatorData.FLAG.BE)
            if backup_eligible != bool(passkey.backup_eligible) or auth_data.credential_data:
                # BE is fixed when the credential is made (§7.2 step 18), and decides
                # hwk against swk; an assertion carries no attested credential.
                raise _RefusedError(PasskeyReason.INVALID)
            if asked & _VERIFIED and not auth_data.is_user_verified():
                raise _RefusedError(PasskeyReason.USER_VERIFICATION)
            presented = auth_data.counter
            if (passkey.sign_count or presented) and presented <= passkey.sign_count:
                self._counter_regressed(passkey, presented)
                raise _RefusedError(PasskeyReason.COUNTER)
            now = self.clock()
            used = replace(
                passkey,
                sign_count=presented,
                backup_state=bool(auth_data.flags & AuthenticatorData.FLAG.BS),
                last_used_at=now,
            )
            recorded: bool = yield ("record_passkey_use", (used, passkey.sign_count))
            if not recorded:  # another assertion moved the counter first
                self._counter_regressed(passkey, presented)
                raise _RefusedError(PasskeyReason.COUNTER)
            if charge is not None:
                # Take back this attempt's charge only (as the code step): a success
                # never clears the failures other attempts earned.
                yield ("throttle_refund", (self._throttle_key(subject), charge, now))
        except _RefusedError as refused:
            retry_at = charge.retry_at if charge is not None else None
            self._rejected(subject, refused.reason, sign_in, retry_at)
            return PasskeyResult(refused.reason, retry_at=retry_at)
        except StoreUnavailableError:
            if sign_in:
                self._rejected(subject, PasskeyReason.UNAVAILABLE, sign_in, None)
            return PasskeyResult(PasskeyReason.UNAVAILABLE)
        if sign_in:
            self._emit(
                PasskeySignInVerified(at=now, user_id=subject.user_id, credential_id=credential_id)
            )
        else:
            self._emit(
                PasskeyVerified(at=now, user_id=subject.user_id, credential_id=credential_id)
            )
        return PasskeyResult(
            PasskeyReason.OK, used, auth_data.is_user_verified(), transaction=transaction
        )

    @staticmethod
    def _throttle_key(subject: Subject) -> str:
        return _SIGN_IN_THROTTLE_KEY + subject.user_id

    def _rejected(
        self, subject: Subject, reason: PasskeyReason, sign_in: bool, retry_at: float | None
    ) -> None:
        now, user_id = self.clock(), subject.user_id
        if not sign_in:
            self._emit(PasskeyRejected(at=now, user_id=user_id, reason=reason))
            return
        self._emit(PasskeySignInRejected(at=now, user_id=user_id, reason=reason))
        if retry_at is not None:
            key = self._throttle_key(subject)
            self._emit(Throttled(at=now, key=key, retry_at=retry_at, user_id=user_id))

    # the second factor at sign-in -------------------------------------------------

    @staticmethod
    def _pending(user_id: str, pending_id: str) -> Subject:
        """The pending sign-in as the subject its challenges are bound to."""
        if not isinstance(user_id, str) or not user_id:
            raise MalformedInputError("a pending sign-in needs the user id")
        if not isinstance(pending_id, str) or len(pending_id) < 16:
            raise MalformedInputError(
                "a pending sign-in needs its random id (at least 16 characters)"
            )
        subject = Subject(user_id, _SIGN_IN_BINDING + pending_id)
        checked_subject(subject)  # begin and finish alike, on every store
        return subject

    def _begin_sign_in(self, user_id: str, pending_id: str) -> Flow[dict[str, Any] | None]:
        subject = self._pending(user_id, pending_id)
        return (yield from self._begin_authentication(subject, False, None, _SIGN_IN))

    def _finish_sign_in(
        self, user_id: str, pending_id: str, payload: str | bytes | Mapping[str, Any]
    ) -> Flow[PasskeyResult]:
        subject = self._pending(user_id, pending_id)
        return (yield from self._finish_authentication(subject, payload, None, _SIGN_IN))

    def _counter_regressed(self, passkey: Passkey, presented: int) -> None:
        self._emit(
            PasskeyCounterRegressed(
                at=self.clock(),
                user_id=passkey.user_id,
                credential_id=passkey.credential_id,
                stored=passkey.sign_count,
                presented=presented,
            )
        )

    # management -------------------------------------------------------------------

    def _remove(self, user_id: str, credential_id: str, removed_by: str) -> Flow[bool]:
        if not _is_credential_id(credential_id) or not is_well_formed_id(user_id):
            return False  # no passkey has that id: not found, before the store
        # Read first so that a removal whose answer is lost can be told from one of a
        # passkey that was never there (see passkey_removed_after_outage).
        if not (yield from has_passkey(user_id, credential_id)):
            return False
        removed: bool
        try:
            removed = yield ("remove_passkey", (user_id, credential_id))
        except StoreUnavailableError:
            removed = yield from passkey_removed_after_outage(user_id, credential_id)
        if removed:  # the event first: a failing revocation below leaves it in the audit
            self._emit(
                PasskeyRemoved(
                    at=self.clock(),
                    user_id=user_id,
                    credential_id=credential_id,
                    removed_by=removed_by,
                )
            )
            yield ("revoke_grants", (user_id,))  # a factor changed: ASVS 5.0 §7.4.3
        return removed

    def _rename(
        self, user_id: str, credential_id: str, name: str, renamed_by: str | None
    ) -> Flow[bool]:
        cleaned = _clean_name(name)
        if not _is_credential_id(credential_id) or not is_well_formed_id(user_id):
            return False  # no passkey has that id: not found, before the store
        renamed: bool = yield ("rename_passkey", (user_id, credential_id, cleaned))
        if renamed:
            self._emit(
                PasskeyRenamed(
                    at=self.clock(),
                    user_id=user_id,
                    credential_id=credential_id,
                    renamed_by=user_id if renamed_by is None else renamed_by,
                )
            )
        return renamed


def _library_reason(exc: Exception) -> PasskeyReason:
    """python-fido2 raises ValueError with a message for each failed check (anything
    else it raises is a refusal too, never an error page)."""
    if isinstance(exc, ValueError) and "verif" in str(exc).lower() and "flag" in str(exc).lower():
        return PasskeyReason.USER_VERIFICATION
    return PasskeyReason.INVALID


class Passkeys(_Ceremonies):
    """Passkey ceremonies over a sync store (see the module docstring)."""

    def begin_registration(
        self, subject: Subject, user_name: str, display_name: str = ""
    ) -> dict[str, Any]:
        """Options for ``navigator.credentials.create`` (JSON-ready);
        :class:`PasskeyLimitError` when the user already has as many passkeys as allowed."""
        return run(
            self._begin_registration(subject, user_name, display_name or user_name), self.store
        )

    def finish_registration(
        self, subject: Subject, payload: str | bytes | Mapping[str, Any], name: str = "Passkey"
    ) -> PasskeyResult:
        return run(self._finish_registration(subject, payload, name), self.store)

    def begin_authentication(
        self,
        subject: Subject,
        *,
        user_verification: bool = True,
        transaction: str | None = None,
        proves: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """Options for ``navigator.credentials.get``, or ``None`` when the user has no
        passkey that can prove ``proves``: the alternative offered to them (a rule's
        ``("hwk", "user")`` lists only device-bound passkeys, ``swk`` only synced ones;
        ``user``/``mfa`` require user verification)."""
        flow = self._begin_authentication(subject, user_verification, transaction, _GET, proves)
        return run(flow, self.store)

    def finish_authentication(
        self,
        subject: Subject,
        payload: str | bytes | Mapping[str, Any],
        *,
        transaction: str | None = None,
        proves: Iterable[str] = (),
    ) -> PasskeyResult:
        """Check the browser's answer. An assertion that cannot prove ``proves`` (or what
        the begin was asked for) is refused: ``needs_device_bound``, ``needs_synced`` or
        ``user_verification``, and nothing is to be recorded."""
        flow = self._finish_authentication(subject, payload, transaction, _GET, proves)
        return run(flow, self.store)

    def begin_sign_in(self, user_id: str, pending_id: str) -> dict[str, Any] | None:
        """Options for ``navigator.credentials.get`` as the second factor of the pending
        sign-in ``pending_id`` (a random id the integration keeps with it, at least 16
        characters), or ``None`` when the user has no passkey. User verification is
        preferred, not required: the password was the first factor."""
        return run(self._begin_sign_in(user_id, pending_id), self.store)

    def finish_sign_in(
        self, user_id: str, pending_id: str, payload: str | bytes | Mapping[str, Any]
    ) -> PasskeyResult:
        """Check the browser's answer for that pending sign-in: a challenge issued for
        it (not for another sign-in or a re-authentication), once, in time, signed by a
        passkey registered to ``user_id``; throttled like the code step. On success,
        record :meth:`PasskeyResult.sign_in_methods` when the sign-in counts."""
        return run(self._finish_sign_in(user_id, pending_id, payload), self.store)

    def registered(self, user_id: str) -> Sequence[Passkey]:
        return run(_list(user_id), self.store)

    def remove(self, user_id: str, credential_id: str, *, removed_by: str) -> bool:
        """Remove one passkey and revoke the user's grants. Removal lowers protection:
        guard it as a sensitive action in the app (the catalog's ``passkey.remove``)."""
        return run(self._remove(user_id, credential_id, removed_by), self.store)

    def rename(
        self, user_id: str, credential_id: str, name: str, *, renamed_by: str | None = None
    ) -> bool:
        """Rename one passkey; :class:`PasskeyRenamed` when the store wrote it
        (``renamed_by``: who did, else the user)."""
        return run(self._rename(user_id, credential_id, name, renamed_by), self.store)


class AsyncPasskeys(_Ceremonies):
    """The same ceremonies over an async store."""

    async def begin_registration(
        self, subject: Subject, user_name: str, display_name: str = ""
    ) -> dict[str, Any]:
        flow = self._begin_registration(subject, user_name, display_name or user_name)
        return await run_async(flow, self.store)

    async def finish_registration(
        self, subject: Subject, payload: str | bytes | Mapping[str, Any], name: str = "Passkey"
    ) -> PasskeyResult:
        return await run_async(self._finish_registration(subject, payload, name), self.store)

    async def begin_authentication(
        self,
        subject: Subject,
        *,
        user_verification: bool = True,
        transaction: str | None = None,
        proves: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        flow = self._begin_authentication(subject, user_verification, transaction, _GET, proves)
        return await run_async(flow, self.store)

    async def finish_authentication(
        self,
        subject: Subject,
        payload: str | bytes | Mapping[str, Any],
        *,
        transaction: str | None = None,
        proves: Iterable[str] = (),
    ) -> PasskeyResult:
        flow = self._finish_authentication(subject, payload, transaction, _GET, proves)
        return await run_async(flow, self.store)

    async def begin_sign_in(self, user_id: str, pending_id: str) -> dict[str, Any] | None:
        return await run_async(self._begin_sign_in(user_id, pending_id), self.store)

    async def finish_sign_in(
        self, user_id: str, pending_id: str, payload: str | bytes | Mapping[str, Any]
    ) -> PasskeyResult:
        flow = self._finish_sign_in(user_id, pending_id, payload)
        return await run_async(flow, self.store)

    async def registered(self, user_id: str) -> Sequence[Passkey]:
        return await run_async(_list(user_id), self.store)

    async def remove(self, user_id: str, credential_id: str, *, removed_by: str) -> bool:
        return await run_async(self._remove(user_id, credential_id, removed_by), self.store)

    async def rename(
        self, user_id: str, credential_id: str, name: str, *, renamed_by: str | None = None
    ) -> bool:
        return await run_async(self._rename(user_id, credential_id, name, renamed_by), self.store)


def _list(user_id: str) -> Flow[tuple[Passkey, ...]]:
    checked_id(user_id, "user_id")
    passkeys: tuple[Passkey, ...] = yield ("list_passkeys", (user_id,))
    return passkeys


#: A credential id as :func:`_b64` writes it: unpadded base64url of at most
#: :data:`MAX_CREDENTIAL_ID_BYTES` bytes.
_CREDENTIAL_ID: Final = re.compile(rf"[A-Za-z0-9_-]{{1,{-(-MAX_CREDENTIAL_ID_BYTES * 4 // 3)}}}")


def _is_credential_id(value: object) -> bool:
    """Could ``value`` name a stored passkey? Anything but base64url text (a NUL, a lone
    surrogate, padding, another alphabet) is no passkey's id."""
    return isinstance(value, str) and _CREDENTIAL_ID.fullmatch(value) is not None


#: Unicode categories dropped from names: controls, format characters (bidi
#: overrides, zero-width), surrogates, private use, unassigned.
_DROPPED: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def _clean_name(name: str) -> str:
    """One printable line of at most 64 characters (whitespace runs become one
    space; control, bidi and zero-width characters are dropped, so a name cannot
    reorder or hide text on a page); empty becomes "Passkey". A name that is not text
    is :class:`~stepup.errors.MalformedInputError`."""
    if not isinstance(name, str):
        raise MalformedInputError("a passkey name must be text")
    kept = "".join(
        " " if c.isspace() else c
        for c in name
        if c.isspace() or unicodedata.category(c) not in _DROPPED
    )
    return " ".join(kept.split())[:MAX_NAME_LENGTH].rstrip() or "Passkey"


def _check_shape(data: Mapping[str, Any], raw_id: bytes, auth_data: AuthenticatorData) -> None:
    """What python-fido2's parser lets through: ``type`` must be ``public-key``,
    ``id`` must be ``rawId`` in base64url (as the browser sends them), and the
    authenticator's extension output, when ED says there is one, a CBOR map."""
    if data.get("type") != "public-key" or data.get("id") != _b64(raw_id):
        raise _RefusedError(PasskeyReason.MALFORMED)
    if auth_data.flags & AuthenticatorData.FLAG.ED and not isinstance(
        auth_data.extensions, Mapping
    ):
        raise _RefusedError(PasskeyReason.MALFORMED)


def _transports(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The hints the browser reported (``usb``, ``smart-card``, ``internal``, ...), kept
    for the UI; python-fido2 does not parse them, and nothing relies on them."""
    inner = data.get("response")
    reported = inner.get("transports") if isinstance(inner, Mapping) else None
    if not isinstance(reported, list):
        return ()
    return tuple(
        t for t in reported[:8] if isinstance(t, str) and len(t) < 32 and _TRANSPORT.fullmatch(t)
    )


#: A transport as WebAuthn's AuthenticatorTransport names them (``usb``, ``nfc``,
#: ``ble``, ``smart-card``, ``hybrid``, ``internal``) and any later one of that shape.
_TRANSPORT: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
