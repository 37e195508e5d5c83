"""A real SAML IdP for the tests: pysaml2's own ``Server``, keys made at test time.

The IdP parses the ``AuthnRequest`` the adapter put in the redirect URL (checking its
signature), keeps its own login sessions, and honours ``ForceAuthn`` unless told to
behave like a careless IdP. Its answers are real signed responses built by
``create_authn_response``. Timestamps in them come from pysaml2, i.e. the real clock,
so each test's SettableClock starts at the real time and is then moved by hand.
"""

from __future__ import annotations

import base64
import functools
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server

from stepup.adapters.idp.saml import SAMLServiceProvider, SAMLServiceProviderConfig
from stepup.adapters.storage import MemoryStore
from stepup.subject import Identity, LoginMethod, Subject
from stepup.testing import SettableClock

IDP_ID = "https://idp.example.test/saml/metadata"
SSO_URL = "https://idp.example.test/saml/sso"
SP_ID = "https://app.example.test/saml/metadata"
ACS_URL = "https://app.example.test/saml/acs"
OTHER_SP_ID = "https://other-app.example.test/saml/metadata"
OTHER_ACS_URL = "https://other-app.example.test/saml/acs"

ALICE = "alice-7f3a"  # persistent NameIDs, never emails
BOB = "bob-91c2"

PROTOCOL_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
ASSERTION_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
METADATA_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"


@dataclass(frozen=True)
class KeyPair:
    key: Path
    cert: Path


def make_keypair(directory: Path, name: str) -> KeyPair:
    """An RSA key and a self-signed certificate, as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pair = KeyPair(directory / f"{name}.key", directory / f"{name}.crt")
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def idp_settings(keys: KeyPair, entity_id: str, sp_metadata: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "entityid": entity_id,
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(SSO_URL, BINDING_HTTP_REDIRECT)]},
                "want_authn_requests_signed": True,
                "policy": {"default": {"lifetime": {"minutes": 5}}},
            }
        },
        "key_file": str(keys.key),
        "cert_file": str(keys.cert),
        "xmlsec_binary": shutil.which("xmlsec1"),
    }
    if sp_metadata:
        settings["metadata"] = {"inline": sp_metadata}
    return settings


@functools.cache
def idp_metadata(keys: KeyPair, entity_id: str = IDP_ID) -> str:
    descriptor = entity_descriptor(IdPConfig().load(idp_settings(keys, entity_id, [])))
    descriptor.extensions = None
    return str(descriptor)


def other_sp_metadata(keys: KeyPair) -> str:
    """A second app registered at the same IdP (for responses meant for someone else)."""
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'entityID="{OTHER_SP_ID}"><md:SPSSODescriptor '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{OTHER_ACS_URL}" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>'
    )


@dataclass
class Request:
    """What the IdP understood from the redirect."""

    message: Any  # saml2.samlp.AuthnRequest
    relay_state: str | None

    @property
    def id(self) -> str:
        return str(self.message.id)

    @property
    def force_authn(self) -> bool:
        return str(self.message.force_authn).lower() == "true"

    @property
    def requested_contexts(self) -> list[str]:
        requested = self.message.requested_authn_context
        if requested is None:
            return []
        return [ref.text for ref in requested.authn_context_class_ref]


@dataclass
class TestIdP:
    """A pysaml2 IdP with its own login sessions (NameID -> Unix time of the last login)."""

    server: Server
    sessions: dict[str, float] = field(default_factory=dict)

    __test__ = False  # not a test class

    def receive(self, url: str) -> Request:
        """Parse the AuthnRequest from the redirect URL; pysaml2 checks its signature."""
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == SSO_URL
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        parsed = self.server.parse_authn_request(
            query["SAMLRequest"],
            BINDING_HTTP_REDIRECT,
            relay_state=query.get("RelayState"),
            sigalg=query.get("SigAlg"),
            signature=query.get("Signature"),
        )
        assert parsed is not None
        return Request(parsed.message, query.get("RelayState"))

    def log_in(self, name_id: str, at: float | None = None) -> None:
        self.sessions[name_id] = time.time() if at is None else at

    def answer(
        self,
        request: Request,
        name_id: str,
        *,
        honour_force_authn: bool = True,
        class_ref: str = AUTHN_PASSWORD_PROTECTED,
        sign_response: bool = True,
        sign_assertion: bool = True,
        sign_alg: str = RSA_SHA256,
        digest_alg: str = SHA256,
        in_response_to: str | None = None,
        sp_entity_id: str = SP_ID,
        destination: str | None = None,
    ) -> str:
        """The base64 SAMLResponse the browser would post to the ACS."""
        if (request.force_authn and honour_force_authn) or name_id not in self.sessions:
            self.log_in(name_id)  # the user types their password at the IdP, now
        xml = self.server.create_authn_response(
            {},
            in_response_to=request.id if in_response_to is None else in_response_to,
            destination=destination or request.message.assertion_consumer_service_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
            authn={"class_ref": class_ref, "authn_instant": int(self.sessions[name_id])},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=sign_alg,
            digest_alg=digest_alg,
        )
        return encode(str(xml))

    def error(self, request: Request, status: str) -> str:
        xml = self.server.create_error_response(
            request.id, request.message.assertion_consumer_service_url, (status, "no login")
        )
        return encode(str(xml))


def qname(xml: str, namespace: str, local: str) -> str:
    """``prefix:local`` as written in ``xml``. pysaml2's prefixes vary within a process
    (``ns1`` or ``saml``: it registers prefixes with ElementTree globally)."""
    match = re.search(rf'xmlns:([\w.-]+)="{re.escape(namespace)}"', xml)
    assert match is not None, namespace
    return f"{match.group(1)}:{local}"


def element(xml: str, namespace: str, local: str) -> str:
    """The first ``local`` element of ``namespace`` in ``xml``, as written (not nested)."""
    name = qname(xml, namespace, local)
    match = re.search(rf"<{name}[ >].*?</{name}>", xml, re.DOTALL)
    assert match is not None, name
    return match.group(0)


def encode(xml: str) -> str:
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


def decode(saml_response: str) -> str:
    return base64.b64decode(saml_response).decode("utf-8")


def make_idp(keys: KeyPair, sp_metadata: str, entity_id: str = IDP_ID) -> TestIdP:
    settings = idp_settings(keys, entity_id, [sp_metadata, other_sp_metadata(keys)])
    return TestIdP(Server(config=IdPConfig().load(settings)))


def saml_subject(name_id: str = ALICE, *, user: str = "u-alice", session: str = "s-1") -> Subject:
    return Subject(user, session, Identity(LoginMethod.SAML, IDP_ID, name_id, "corp-saml"))


@dataclass
class World:
    """One test's SP, IdP, store and clock."""

    sp: SAMLServiceProvider
    idp: TestIdP
    store: MemoryStore
    clock: SettableClock
    config: SAMLServiceProviderConfig


def make_config(keys: dict[str, KeyPair], **overrides: Any) -> SAMLServiceProviderConfig:
    settings: dict[str, Any] = {
        "sp_entity_id": SP_ID,
        "acs_url": ACS_URL,
        "idp_metadata": idp_metadata(keys["idp"]),
        "sp_key_file": keys["sp"].key,
        "sp_cert_file": keys["sp"].cert,
        "sign_requests": True,
        **overrides,
    }
    return SAMLServiceProviderConfig(**settings)
