"""The OIDC re-authentication clients: thin drivers of :mod:`.flows` over httpx.

:class:`OIDCReauth` works with a sync store and ``httpx.Client``;
:class:`AsyncOIDCReauth` with an async (or sync) store and ``httpx.AsyncClient``.
Both run the same decision code; only ``http`` differs between them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import httpx

from ...._flow import run, run_async
from ....clock import Clock, system_clock
from ....records import Challenge
from ....subject import Subject
from ...storage.base import ChallengeStore
from .config import OIDCProviderConfig
from .flows import ProviderCache, complete_flow, start_flow
from .outcome import OIDCOutcome, ProviderUnavailableError
from .protocol import MAX_PROVIDER_BYTES, HttpRequest, HttpResponse
from .resource import ACCEPT_ENCODING, afetch, fetch

__all__ = ["AsyncChallengeStore", "AsyncOIDCReauth", "OIDCReauth"]

_TIMEOUT = httpx.Timeout(10.0)
#: The pool of :class:`OIDCReauth`'s own client keeps no idle connection: each sync
#: exchange then opens a connection of its own, which it can shut down at its deadline
#: (:func:`~.resource.fetch`), even should the client be used for other requests too.
_OWN_POOL = httpx.Limits(max_connections=100, max_keepalive_connections=0)


class AsyncChallengeStore(Protocol):
    """The two challenge methods of an async store (see ``ChallengeStore``)."""

    def put_challenge(self, challenge: Challenge) -> Awaitable[None]: ...

    def take_challenge(self, challenge_id: str, now: float) -> Awaitable[Challenge | None]: ...


S = TypeVar("S")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)


def _unreachable(request: HttpRequest, exc: Exception) -> ProviderUnavailableError:
    """A failed request as the flow's error: the bounded reader's own refusal as it is,
    anything else by its type only (httpx messages carry URLs, and its exceptions hold
    the request: code, verifier, client credentials), so the cause is not chained."""
    if isinstance(exc, ProviderUnavailableError):
        return exc
    return ProviderUnavailableError(f"{request.purpose}: {type(exc).__name__}")


def _send(request: HttpRequest) -> dict[str, Any]:
    """The request as httpx takes it, asking only for the codings the bounded reader
    decodes. Its answer is read up to :data:`MAX_PROVIDER_BYTES` (decoded), raw chunk by
    raw chunk: a larger one, declared or not, compressed or not, is refused before more
    of it is held (a hostile or broken provider cannot exhaust memory); and the whole
    exchange, connecting and the headers included, must be over within
    :data:`~.resource.MAX_EXCHANGE_SECONDS` (a provider answering a line at a time
    cannot hold the request)."""
    return {
        "method": request.method,
        "url": request.url,
        "data": request.form,
        "headers": {**request.headers, **ACCEPT_ENCODING},
        "follow_redirects": False,  # a redirect would re-send the code and secret
    }


class _Effects:
    """What a flow may ask for: the two challenge calls, and (in subclasses) one HTTP
    request. A sync store's answers are values, an async store's awaitables. The HTTP
    request never raises (but for cancellation): a failure is answered as a
    :class:`ProviderUnavailableError` value, so the flow driver, which logs a raising
    call as a store outage, never mistakes the provider for the store (the flow logs it
    on ``stepup.oidc``)."""

    def __init__(self, store: ChallengeStore | AsyncChallengeStore) -> None:
        self._store = store

    def put_challenge(self, challenge: Challenge) -> object:
        return self._store.put_challenge(challenge)

    def take_challenge(self, challenge_id: str, now: float) -> object:
        return self._store.take_challenge(challenge_id, now)


class _SyncEffects(_Effects):
    def __init__(self, store: ChallengeStore, http: httpx.Client) -> None:
        super().__init__(store)
        self._http = http

    def http(self, request: HttpRequest) -> HttpResponse | ProviderUnavailableError:
        try:
            answer = fetch(
                self._http,
                _send(request),
                MAX_PROVIDER_BYTES,
                request.purpose,
                refuse=ProviderUnavailableError,
            )
        except Exception as exc:  # HTTP_FAILURES, the reader's refusal, or anything else
            return _unreachable(request, exc)
        return HttpResponse(answer.status, answer.content())


class _AsyncEffects(_Effects):
    def __init__(
        self, store: AsyncChallengeStore | ChallengeStore, http: httpx.AsyncClient
    ) -> None:
        super().__init__(store)
        self._http = http

    async def http(self, request: HttpRequest) -> HttpResponse | ProviderUnavailableError:
        try:
            answer = await afetch(
                self._http,
                _send(request),
                MAX_PROVIDER_BYTES,
                request.purpose,
                refuse=ProviderUnavailableError,
            )
        except Exception as exc:  # see _SyncEffects.http
            return _unreachable(request, exc)
        return HttpResponse(answer.status, answer.content())


class _Client(Generic[S, H]):
    def __init__(
        self, config: OIDCProviderConfig, store: S, http: H, clock: Clock, *, owned: bool
    ) -> None:
        if not isinstance(config, OIDCProviderConfig):
            raise TypeError("config must be an OIDCProviderConfig")
        self.config = config
        self.store: S = store
        self.http: H = http
        self.clock = clock
        self._owns_http = owned
        self._cache = ProviderCache()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(issuer={self.config.issuer!r}, "
            f"client_id={self.config.client_id!r})"
        )


class OIDCReauth(_Client[ChallengeStore, httpx.Client]):
    """Send a federated session back to its OpenID provider for a fresh login, and judge
    the answer. The caller records the grant when the outcome is ``ok``."""

    def __init__(
        self,
        config: OIDCProviderConfig,
        store: ChallengeStore,
        *,
        http: httpx.Client | None = None,
        clock: Clock = system_clock,
    ) -> None:
        owned = http is None
        client = httpx.Client(timeout=_TIMEOUT, limits=_OWN_POOL) if http is None else http
        super().__init__(config, store, client, clock, owned=owned)

    def close(self) -> None:
        """Close the HTTP client if this object created it (an injected one is yours)."""
        if self._owns_http:
            self.http.close()

    def start(
        self,
        subject: Subject,
        *,
        return_to: str,
        action: str = "",
        acr_values: Sequence[str] | None = None,
        transaction: str = "",
        resume: str = "",
        otp_proved: bool = False,
    ) -> str:
        """The provider URL to redirect the browser to (``prompt=login``, ``max_age=0``,
        PKCE, a fresh ``state`` and ``nonce`` stored for this session). ``transaction``
        is the digest of the kept transaction this trip confirms and ``resume`` the token
        of the form it interrupted, both handed back on the outcome of this trip only;
        so is ``otp_proved``, which says the caller checked a TOTP code for this trip."""
        flow = start_flow(
            self.config,
            self._cache,
            subject,
            return_to=return_to,
            action=action,
            acr_values=acr_values,
            now=self.clock(),
            transaction=transaction,
            resume=resume,
            otp_proved=otp_proved,
        )
        return run(flow, _SyncEffects(self.store, self.http))

    def complete(self, subject: Subject, callback_params: Mapping[str, str]) -> OIDCOutcome:
        """Judge the provider's redirect back (its query parameters)."""
        flow = complete_flow(self.config, self._cache, subject, callback_params, now=self.clock())
        return run(flow, _SyncEffects(self.store, self.http))


class AsyncOIDCReauth(_Client["AsyncChallengeStore | ChallengeStore", httpx.AsyncClient]):
    """:class:`OIDCReauth` for async apps: the same decisions, without blocking the loop."""

    def __init__(
        self,
        config: OIDCProviderConfig,
        store: AsyncChallengeStore | ChallengeStore,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock = system_clock,
    ) -> None:
        owned = http is None
        client = httpx.AsyncClient(timeout=_TIMEOUT) if http is None else http
        super().__init__(config, store, client, clock, owned=owned)

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (an injected one is yours)."""
        if self._owns_http:
            await self.http.aclose()

    async def start(
        self,
        subject: Subject,
        *,
        return_to: str,
        action: str = "",
        acr_values: Sequence[str] | None = None,
        transaction: str = "",
        resume: str = "",
        otp_proved: bool = False,
    ) -> str:
        """See :meth:`OIDCReauth.start`."""
        flow = start_flow(
            self.config,
            self._cache,
            subject,
            return_to=return_to,
            action=action,
            acr_values=acr_values,
            now=self.clock(),
            transaction=transaction,
            resume=resume,
            otp_proved=otp_proved,
        )
        return await run_async(flow, _AsyncEffects(self.store, self.http))

    async def complete(self, subject: Subject, callback_params: Mapping[str, str]) -> OIDCOutcome:
        """See :meth:`OIDCReauth.complete`."""
        flow = complete_flow(self.config, self._cache, subject, callback_params, now=self.clock())
        return await run_async(flow, _AsyncEffects(self.store, self.http))
