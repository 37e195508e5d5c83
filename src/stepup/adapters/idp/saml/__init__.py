"""Federated re-authentication over SAML 2.0 (on pysaml2 and xmlsec1).

:class:`SAMLServiceProvider` sends a session that signed in through a SAML IdP back
to that IdP with ``ForceAuthn`` and judges the answer: signed by the IdP, answering
a pending request of this session (consumed once), for this audience, now, about the
same ``NameID``, and with an ``AuthnInstant`` no earlier than the request.
"""

from ...._extras import needs_extra

with needs_extra(__name__, "saml"):
    from .config import SAMLServiceProviderConfig
    from .outcome import SAMLOutcome, SAMLReason, SAMLRedirect, WrongIdentityProviderError
    from .service import AsyncSAMLServiceProvider, SAMLServiceProvider

__all__ = [
    "AsyncSAMLServiceProvider",
    "SAMLOutcome",
    "SAMLReason",
    "SAMLRedirect",
    "SAMLServiceProvider",
    "SAMLServiceProviderConfig",
    "WrongIdentityProviderError",
]
