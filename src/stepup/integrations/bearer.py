"""Step-up for APIs: guard an endpoint with a bearer access token (RFC 9470), the same
way in every framework.

:class:`BearerGuard` reads the ``Authorization: Bearer`` token of a request, validates it
(a JWT access token with :class:`~stepup.adapters.idp.oidc.AccessTokenValidator`, or an
opaque one with an :class:`~stepup.adapters.idp.oidc.Introspector`), asks the core
(:meth:`stepup.reauth.Reauth.check_token`: the same policy and lifetimes as for
sessions) and returns either the validated :class:`~stepup.tokens.AccessToken` or the
:class:`~stepup.integrations.http.HttpResponse` to send:

- no token (or another scheme; a token in the query string is never read): ``401``
  ``WWW-Authenticate: Bearer realm="api"`` (RFC 6750 section 3.1; the realm is
  ``BearerGuard(..., realm=...)``);
- malformed or repeated credentials: ``400`` ``Bearer error="invalid_request"``;
- an invalid token: ``401`` ``Bearer error="invalid_token"``;
- a valid token without a scope the endpoint requires: ``403``
  ``Bearer error="insufficient_scope"`` (a new authentication would not help);
- a valid token whose authentication is too old or too weak: ``401``
  ``Bearer error="insufficient_user_authentication"`` with ``acr_values`` and/or
  ``max_age`` (RFC 9470 section 3; ``max_age="0"`` when it is recent and only a new
  authentication can prove what is missing);
- a valid token no new one would help (a rule bound to one transaction): ``403``
  ``reauth_unreachable``, with the same ``Bearer`` error and why (RFC 6750 section 3);
- keys or introspection unreachable: ``503`` (fail closed).

:meth:`BearerGuard.check` is :meth:`~BearerGuard.authenticate` then
:meth:`~BearerGuard.decide`: the framework decorators read the rule's context between
the two, so a request without a valid token never reaches the app's context hook.

Nothing here decides: the decision is the core's. The framework modules wrap this in one
line each (``stepup.integrations.flask.bearer``, ``...django.bearer``,
``...starlette.bearer``, and :func:`stepup.integrations.fastapi.require_token`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Collection
from typing import Any, Protocol

from ..errors import ConfigurationError
from ..policy import Context
from ..reauth import Decision, ReauthRequired, ReauthUnavailable
from ..tokens import AccessToken, InvalidTokenError, TokenUnavailableError, is_scope_token
from .http import (
    BEARER_REALM,
    FOR_GOOD,
    HttpResponse,
    RequestInfo,
    bearer_challenge,
    bearer_credentials,
    insufficient_scope,
    invalid_token,
    reauth_required,
    token_unavailable,
    token_unreachable_response,
)

__all__ = ["BearerGuard", "TokenDecider", "required_scope", "token_decision_response"]


def required_scope(scope: str | Collection[str]) -> tuple[str, ...]:
    """The scopes an endpoint requires, checked once (RFC 6749 section 3.3 scope-tokens):
    a space-separated string or a list of tokens; bad ones raise
    :class:`ConfigurationError`."""
    tokens = scope.split(" ") if isinstance(scope, str) else tuple(scope)
    if isinstance(scope, str) and not scope:
        tokens = ()
    for token in tokens:
        if not is_scope_token(token):
            raise ConfigurationError(f"{token!r:.40} is not a scope token (RFC 6749)")
    return tuple(dict.fromkeys(tokens))


class TokenDecider(Protocol):
    """What decides for a token: :class:`~stepup.reauth.Reauth` or ``AsyncReauth``."""

    def check_token(
        self, token: AccessToken, action: str, context: Context | None = None
    ) -> Decision: ...


def token_decision_response(decision: Decision, request: RequestInfo) -> HttpResponse | None:
    """``None`` when the decision allows the request; else the RFC 9470 answer: the 401
    :func:`~stepup.integrations.http.reauth_required` builds for a bearer client (its
    challenge, and the members of :func:`~stepup.integrations.http.reauth_members`), the
    403 for good, or the 503."""
    if decision.ok:
        return None
    if isinstance(decision, ReauthUnavailable) and decision.reason in FOR_GOOD:
        return token_unreachable_response(decision, request)  # no new token would help
    if not isinstance(decision, ReauthRequired):
        return token_unavailable(request)
    # The RFC 9470 challenge, and how to re-authenticate in the members every 401
    # reauth_required carries (a token's client has no re-auth page to open).
    return reauth_required(decision, request, bearer=True)


class BearerGuard:
    """Validate the bearer token and decide, for one resource server."""

    def __init__(self, reauth: TokenDecider, tokens: object, *, realm: str = BEARER_REALM) -> None:
        """``tokens``: an ``AccessTokenValidator`` (``validate``/``avalidate``), an
        ``Introspector`` or ``AsyncIntrospector`` (``introspect``), or any object with
        one of those methods returning an :class:`AccessToken`. ``realm``: what the
        challenge to a request without a token names (``Bearer realm="api"``), printable
        ASCII (else :class:`ConfigurationError`, now)."""
        if not callable(getattr(reauth, "check_token", None)):
            raise ConfigurationError("BearerGuard needs a Reauth (or AsyncReauth)")
        sync = getattr(tokens, "validate", None) or getattr(tokens, "introspect", None)
        asynchronous = getattr(tokens, "avalidate", None) or getattr(tokens, "introspect", None)
        if not callable(sync) and not callable(asynchronous):
            raise ConfigurationError(
                "BearerGuard needs an AccessTokenValidator or an Introspector as tokens"
            )
        bearer_challenge(realm)  # refuses a realm that cannot be sent
        self.reauth = reauth
        self.tokens = tokens
        self.realm = realm
        self._sync: Callable[[str], Any] | None = sync if callable(sync) else None
        self._async: Callable[[str], Any] | None = asynchronous if callable(asynchronous) else None
        # What acheck runs, and whether on the loop (an async source) or in a worker
        # thread (a sync one): decided once, not on every request.
        averify = self._async or self._sync
        assert averify is not None
        self._averify: Callable[[str], Any] = averify
        self._averify_on_loop = inspect.iscoroutinefunction(averify)

    def __repr__(self) -> str:
        return f"BearerGuard({self.tokens!r})"

    def check(
        self,
        request: RequestInfo,
        action: str,
        context: Context | None = None,
        *,
        scope: str | Collection[str] = (),
    ) -> AccessToken | HttpResponse:
        """The validated token when ``action`` is allowed, else the response to send.
        ``scope``: what the token must have been granted (all of it), checked before
        the step-up decision. A rule's context that costs a look-up is better read
        between :meth:`authenticate` and :meth:`decide`, as the framework wrappers do:
        a request without a valid token then never reaches it."""
        token = self.authenticate(request)
        if isinstance(token, HttpResponse):
            return token
        return self.decide(token, request, action, context, scope=scope)

    async def acheck(
        self,
        request: RequestInfo,
        action: str,
        context: Context | None = None,
        *,
        scope: str | Collection[str] = (),
    ) -> AccessToken | HttpResponse:
        """:meth:`check` for async code (:meth:`aauthenticate`, then :meth:`decide`)."""
        token = await self.aauthenticate(request)
        if isinstance(token, HttpResponse):
            return token
        return self.decide(token, request, action, context, scope=scope)

    def authenticate(self, request: RequestInfo) -> AccessToken | HttpResponse:
        """The request's validated token, else the answer (RFC 6750 section 3: 401
        without a token, 400 for malformed credentials, 401 ``invalid_token``, 503):
        the first half of :meth:`check`, which needs nothing of the resource."""
        raw = bearer_credentials(request, realm=self.realm)
        if isinstance(raw, HttpResponse):
            return raw
        if self._sync is None:
            raise ConfigurationError("this token source is async: use acheck")
        try:
            token = self._sync(raw)
        except InvalidTokenError as exc:
            return invalid_token(exc, request)
        except TokenUnavailableError:
            return token_unavailable(request)
        if inspect.isawaitable(token):
            if inspect.iscoroutine(token):
                token.close()  # never awaited: say so once, not as a RuntimeWarning
            raise ConfigurationError("this token source is async: use acheck")
        return _access_token(token)

    async def aauthenticate(self, request: RequestInfo) -> AccessToken | HttpResponse:
        """:meth:`authenticate` for async code: an async token source is awaited; a sync
        one (an ``Introspector`` over ``httpx.Client``, which asks the issuer on every
        request) runs in a worker thread, so it never stalls the event loop."""
        raw = bearer_credentials(request, realm=self.realm)
        if isinstance(raw, HttpResponse):
            return raw
        verify = self._averify
        try:
            if self._averify_on_loop:
                token = await verify(raw)
            else:
                result = await asyncio.to_thread(verify, raw)
                token = await result if inspect.isawaitable(result) else result
        except InvalidTokenError as exc:
            return invalid_token(exc, request)
        except TokenUnavailableError:
            return token_unavailable(request)
        return _access_token(token)

    def decide(
        self,
        token: AccessToken,
        request: RequestInfo,
        action: str,
        context: Context | None = None,
        *,
        scope: str | Collection[str] = (),
    ) -> AccessToken | HttpResponse:
        """The second half of :meth:`check`, for a token :meth:`authenticate` returned:
        ``token`` when ``action`` is allowed in ``context``, else the answer (403
        ``insufficient_scope``, the RFC 9470 challenge, 403 for good, 503)."""
        if scope:
            needed = required_scope(scope)
            if not set(needed).issubset(token.scope):
                return insufficient_scope(request, needed)
        try:
            decision = self.reauth.check_token(token, action, context)
        except InvalidTokenError as exc:  # expired since it was read
            return invalid_token(exc, request)
        response = token_decision_response(decision, request)
        return token if response is None else response


def _access_token(token: object) -> AccessToken:
    """What the token source returned, which must be an :class:`AccessToken`."""
    if not isinstance(token, AccessToken):
        raise ConfigurationError("the token source must return a stepup.tokens.AccessToken")
    return token
