"""What the Starlette integration needs of an OIDC or SAML adapter.

A leaf module: the core object (``stepup.py``) takes these adapters as constructor
arguments and the federated views (``federated.py``) drive them, so both import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ...subject import Subject
from ..views import ProviderOutcome

__all__ = ["OIDCAdapter", "SAMLAdapter"]


class _SAMLRedirect(Protocol):
    @property
    def url(self) -> str: ...


class OIDCAdapter(Protocol):
    """What :class:`stepup.adapters.idp.oidc.AsyncOIDCReauth` offers (``start`` takes
    ``acr_values`` too, passed only for a rule with a level, ``transaction``, passed
    only for a transaction-bound rule, and ``resume``, passed only when a suspended form
    waits for this trip; the last two are handed back on the outcome)."""

    async def start(
        self, subject: Subject, *, return_to: str, action: str = "", **level: Any
    ) -> str: ...

    async def complete(
        self, subject: Subject, callback_params: Mapping[str, str]
    ) -> ProviderOutcome: ...


class SAMLAdapter(Protocol):
    """What :class:`stepup.adapters.idp.saml.AsyncSAMLServiceProvider` offers (``start``
    takes ``authn_context`` too, passed only for a rule with a level, ``transaction``,
    passed only for a transaction-bound rule, and ``resume``, passed only when a
    suspended form waits for this trip; the last two are handed back on the outcome)."""

    async def start(
        self, subject: Subject, *, return_to: str, action: str = "", **level: Any
    ) -> _SAMLRedirect: ...

    async def complete(
        self, subject: Subject, saml_response: str, relay_state: str | None = None
    ) -> ProviderOutcome: ...

    def metadata(self) -> str: ...
