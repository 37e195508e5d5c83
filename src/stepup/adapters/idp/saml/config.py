"""Service-provider settings, and the pysaml2 client built from them in memory."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor

from ....errors import ConfigurationError

__all__ = ["SAMLServiceProviderConfig", "build_client", "sp_metadata"]

#: The ``NameID`` format that asks for none in particular (SAML core 8.3.1).
NAMEID_FORMAT_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"

#: How this service provider signs (the AuthnRequest, over HTTP-Redirect).
SIGNING_ALGORITHM = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_ALGORITHM = "http://www.w3.org/2001/04/xmlenc#sha256"


@dataclass(frozen=True, slots=True)
class SAMLServiceProviderConfig:
    """How this app appears to one SAML IdP.

    ``idp_metadata`` is the IdP's metadata: a :class:`~pathlib.Path` is read as a file,
    a ``str`` is the XML itself. Its signing certificates are the only keys trusted.
    ``idp_entity_id`` picks the IdP when the metadata describes several.
    ``sp_key_file``/``sp_cert_file`` (PEM) sign the ``AuthnRequest`` when
    ``sign_requests`` is true and are published in :func:`sp_metadata`.
    ``max_skew`` (seconds) tolerates clock differences with the IdP; ``challenge_ttl``
    is how long a request may stay unanswered. ``authn_context`` lists the
    ``AuthnContextClassRef`` values requested by default. ``authn_comparison`` is the
    ``RequestedAuthnContext`` comparison: ``"minimum"`` (the default: the IdP may
    authenticate at least as strongly as one of them, SAML core 3.3.2.2.1, which suits a
    level of assurance: request ``Levels.saml_class_refs(level)``, every reference that
    reaches it) or ``"exact"``. Either way the assertion's ``AuthnContextClassRef`` must
    be one of the requested references, or the answer is ``AUTHN_CONTEXT_NOT_MET``, a
    stronger one that was not requested too: request every reference that may answer.
    """

    sp_entity_id: str
    acs_url: str
    idp_metadata: str | Path = field(repr=False)  # long; public, but noise in logs
    idp_entity_id: str | None = None
    sp_key_file: Path | None = None
    sp_cert_file: Path | None = None
    sign_requests: bool = False
    max_skew: float = 60.0
    challenge_ttl: float = 600.0
    authn_context: tuple[str, ...] = ()
    authn_comparison: str = "minimum"
    name_id_format: str | None = None
    xmlsec_binary: str | None = None

    def __post_init__(self) -> None:
        for name in ("sp_entity_id", "acs_url"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"SAML {name} must be a non-empty string")
        if isinstance(self.idp_metadata, str) and not self.idp_metadata.lstrip().startswith("<"):
            raise ConfigurationError(
                "SAML idp_metadata: a str must be the metadata XML; pass a pathlib.Path for a file"
            )
        if not isinstance(self.idp_metadata, str | Path):
            raise ConfigurationError("SAML idp_metadata must be the XML (str) or a pathlib.Path")
        if not _number_in(self.max_skew, 0, 300):
            raise ConfigurationError("SAML max_skew must be between 0 and 300 seconds")
        if not _number_in(self.challenge_ttl, 1, 86_400):
            raise ConfigurationError("SAML challenge_ttl must be between 1 and 86400 seconds")
        if isinstance(self.authn_context, str) or not all(
            isinstance(ref, str) and ref for ref in self.authn_context
        ):
            raise ConfigurationError("SAML authn_context must be a tuple of non-empty strings")
        if self.authn_comparison not in ("exact", "minimum"):
            raise ConfigurationError("SAML authn_comparison must be 'exact' or 'minimum'")
        if self.name_id_format is not None and (
            not isinstance(self.name_id_format, str) or not self.name_id_format.strip()
        ):
            raise ConfigurationError("SAML name_id_format must be None or a non-empty string")
        if self.sign_requests and (self.sp_key_file is None or self.sp_cert_file is None):
            raise ConfigurationError("SAML sign_requests needs sp_key_file and sp_cert_file")
        if (self.sp_key_file is None) != (self.sp_cert_file is None):
            raise ConfigurationError("SAML sp_key_file and sp_cert_file go together")


def _number_in(value: object, low: float, high: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def _xmlsec_binary(config: SAMLServiceProviderConfig) -> str:
    found = config.xmlsec_binary or shutil.which("xmlsec1")
    if not found or not Path(found).is_file():
        raise ConfigurationError(
            "SAML needs the xmlsec1 program (Debian: apt-get install xmlsec1); "
            "install it or set xmlsec_binary"
        )
    return found


def _pysaml2_settings(config: SAMLServiceProviderConfig) -> dict[str, Any]:
    if isinstance(config.idp_metadata, Path):
        if not config.idp_metadata.is_file():
            raise ConfigurationError(f"SAML idp_metadata file not found: {config.idp_metadata}")
        metadata: dict[str, list[str]] = {"local": [str(config.idp_metadata)]}
    else:
        metadata = {"inline": [config.idp_metadata]}
    sp: dict[str, Any] = {
        "endpoints": {"assertion_consumer_service": [(config.acs_url, BINDING_HTTP_POST)]},
        "authn_requests_signed": config.sign_requests,
        "want_assertions_or_response_signed": True,
        "force_authn": True,
        "allow_unsolicited": False,
        "name_id_policy_format": config.name_id_format,
        "name_id_format_allow_create": False,
        "want_assertions_signed": True,
        "signing_algorithm": SIGNING_ALGORITHM,
        "digest_algorithm": DIGEST_ALGORITHM,
    }
    settings: dict[str, Any] = {
        "entityid": config.sp_entity_id,
        "service": {"sp": sp},
        "metadata": metadata,
        "xmlsec_binary": _xmlsec_binary(config),
        "only_use_keys_in_metadata": True,
        "accepted_time_diff": int(config.max_skew),
    }
    if config.sp_key_file is not None and config.sp_cert_file is not None:
        for path in (config.sp_key_file, config.sp_cert_file):
            if not Path(path).is_file():
                raise ConfigurationError(f"SAML key or certificate file not found: {path}")
        settings["key_file"] = str(config.sp_key_file)
        settings["cert_file"] = str(config.sp_cert_file)
    return settings


def build_client(config: SAMLServiceProviderConfig) -> tuple[Saml2Client, str]:
    """A pysaml2 client for ``config`` and the IdP's entity id. Nothing global is touched."""
    try:
        sp_config = SPConfig().load(_pysaml2_settings(config))
        client = Saml2Client(config=sp_config)
        idps = list(client.metadata.identity_providers())
    except ConfigurationError:
        raise
    except Exception as exc:
        # The type only: pysaml2's messages can quote whole documents.
        raise ConfigurationError(
            f"SAML configuration rejected by pysaml2 ({type(exc).__name__})"
        ) from exc
    if config.idp_entity_id is None:
        if len(idps) != 1:
            raise ConfigurationError(
                f"SAML idp_metadata describes {len(idps)} IdPs; set idp_entity_id to pick one"
            )
        idp = idps[0]
    elif config.idp_entity_id in idps:
        idp = config.idp_entity_id
    else:
        raise ConfigurationError("SAML idp_entity_id is not an IdP in idp_metadata")
    try:
        sso = client.metadata.single_sign_on_service(idp, BINDING_HTTP_REDIRECT)
    except Exception:  # pysaml2 raises UnsupportedBinding, or answers with nothing
        sso = None
    if not sso:
        raise ConfigurationError("SAML IdP metadata has no HTTP-Redirect single sign-on service")
    return client, idp


def sp_metadata(client: Saml2Client) -> str:
    """This service provider's metadata XML, to register with the IdP."""
    descriptor = entity_descriptor(client.config)
    # pysaml2 advertises every algorithm xmlsec1 knows (MD5 and SHA-1 among them);
    # say nothing rather than invite weak ones.
    descriptor.extensions = None
    return str(descriptor)
