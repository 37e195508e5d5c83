"""Optional single sign-on users: OIDC (through authlib) and SAML (through pysaml2).

Signing in through a provider is the app's business, so the demo does it with the
usual libraries; re-authenticating such a user is stepup's (``AsyncOIDCReauth``,
``AsyncSAMLServiceProvider`` and the integration's views). Both share one return
address per protocol, which is what a provider registration usually allows:

- ``/sso/oidc/callback``: the demo's own sign-in answers are recognised by the
  ``state`` it kept in the session; any other answer is passed on (303, same query) to
  stepup's ``/stepup/oidc/callback``.
- ``/sso/saml/acs``: the IdP's cross-site POST brings no session cookie, so every
  answer is re-posted from the browser as a same-site POST, which the ``SameSite=Lax``
  session cookie comes along with: the demo's own sign-ins (a ``RelayState`` starting
  ``_signin_``) to ``/sso/saml/sign-in``, any other answer to stepup's
  ``/stepup/saml/acs``. A sign-in request is kept as a challenge in the store and its
  id in the session of the browser that started it: ``/sso/saml/sign-in`` accepts an
  answer only in that browser (an attacker's own answer, posted from a victim's
  browser, signs nobody in: no login CSRF).

A user is matched on the provider's issuer and subject, never on an email address;
the first sign-in creates a member of the demo tenant.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..adapters.storage.base import AsyncStore
from ..clock import Clock
from ..errors import StoreUnavailableError
from ..records import Challenge
from ..redirects import safe_return_path_or_default
from .data import User
from .seed import TENANT
from .settings import DemoSettings
from .web import Demo

if TYPE_CHECKING:
    import httpx

    from ..adapters.idp.oidc import AsyncOIDCReauth
    from ..adapters.idp.saml import AsyncSAMLServiceProvider

__all__ = ["OIDC_CALLBACK", "SAML_ACS", "SAML_SIGN_IN", "SingleSignOn"]

OIDC_CALLBACK: Final = "/sso/oidc/callback"
SAML_ACS: Final = "/sso/saml/acs"
#: Where the browser re-posts the IdP's answer to a sign-in (same-site: with the session).
SAML_SIGN_IN: Final = "/sso/saml/sign-in"
_OIDC_STATE: Final = "demo.oidc_sign_in"
#: Session key: the id (and RelayState) of the SAML sign-in this browser started.
_SAML_REQUEST: Final = "demo.saml_sign_in"
_SIGN_IN_PREFIX: Final = "_signin_"
_SIGN_IN_TTL: Final = 600.0


class SingleSignOn:
    def __init__(self, settings: DemoSettings, store: AsyncStore, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.oidc_reauth: AsyncOIDCReauth | None = None
        self.saml_reauth: AsyncSAMLServiceProvider | None = None
        self._http: httpx.AsyncClient | None = None
        self._oauth: Any = None
        self._saml: tuple[Any, str] | None = None
        base = settings.base_url
        if settings.oidc is not None:  # the oidc extra (httpx, joserfc) and authlib (demo)
            import httpx
            from authlib.integrations.starlette_client import OAuth

            from ..adapters.idp.oidc import AsyncOIDCReauth, OIDCProviderConfig

            oidc = settings.oidc
            self._http = httpx.AsyncClient(timeout=10.0)
            config = OIDCProviderConfig(
                issuer=oidc.issuer,
                client_id=oidc.client_id,
                client_secret=oidc.client_secret or None,
                redirect_uri=base + OIDC_CALLBACK,
                name=oidc.display_name,
            )
            self.oidc_reauth = AsyncOIDCReauth(config, store, http=self._http, clock=clock)
            self._oauth = OAuth()
            self._oauth.register(
                "demo",
                client_id=oidc.client_id,
                client_secret=oidc.client_secret or None,
                server_metadata_url=f"{oidc.issuer}/.well-known/openid-configuration",
                client_kwargs={"scope": "openid email", "code_challenge_method": "S256"},
            )
        if settings.saml_idp_metadata is not None:  # the saml extra: pysaml2
            from ..adapters.idp.saml import AsyncSAMLServiceProvider, SAMLServiceProviderConfig
            from ..adapters.idp.saml.config import build_client

            saml = SAMLServiceProviderConfig(
                sp_entity_id=base + "/stepup/saml/metadata",
                acs_url=base + SAML_ACS,
                idp_metadata=settings.saml_idp_metadata,
            )
            self.saml_reauth = AsyncSAMLServiceProvider(saml, store, clock=clock)
            self._saml = build_client(saml)

    def buttons(self) -> tuple[tuple[str, str], ...]:
        """The sign-in page's buttons: (label, start path)."""
        found = []
        if self._oauth is not None:
            assert self.settings.oidc is not None
            found.append((self.settings.oidc.display_name, "/sso/oidc/login"))
        if self._saml is not None:
            found.append(("SAML", "/sso/saml/login"))
        return tuple(found)

    def routes(self, demo: Demo) -> list[BaseRoute]:
        views = _Views(self, demo)
        routes: list[BaseRoute] = []
        if self._oauth is not None:
            routes += [
                Route("/sso/oidc/login", views.oidc_login, methods=["POST"]),
                Route(OIDC_CALLBACK, views.oidc_callback),
            ]
        if self._saml is not None:
            routes += [
                Route("/sso/saml/login", views.saml_login, methods=["POST"]),
                Route(SAML_ACS, views.saml_acs, methods=["POST"]),
                Route(SAML_SIGN_IN, views.saml_sign_in, methods=["POST"]),
            ]
        return routes

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()


class _Views:
    def __init__(self, sso: SingleSignOn, demo: Demo) -> None:
        self.sso = sso
        self.demo = demo

    def refused(self, request: Request) -> Response:
        text = "Your identity provider did not sign you in. Please try again."
        return self.demo.render(
            request, "message.html", status=400, title="Not signed in", text=text
        )

    async def user_for(self, login: str, issuer: str, subject: str, email: str) -> User:
        """The demo user of this provider identity, created at the first sign-in."""
        data = self.demo.data
        user = await data.user_by_identity(login, issuer, subject)
        if user is not None:
            return user
        digest = hashlib.sha256(f"{login}\0{issuer}\0{subject}".encode()).hexdigest()[:12]
        user_id = f"{login}-{digest}"
        if "@" not in email or await data.user_by_email(email) is not None:
            email = f"{user_id}@sso.acme.test"
        user = User(user_id, email, email.split("@")[0], "member", TENANT, login, issuer, subject)
        await data.add_user(user)
        self.demo.audit.app_event("SsoUserCreated", user_id, login=login, issuer=issuer)
        return user

    # OIDC -----------------------------------------------------------------------

    async def oidc_login(self, request: Request) -> Response:
        demo = self.demo
        form = await demo.form(request)
        if isinstance(form, Response):
            return form
        import httpx
        from authlib.integrations.starlette_client import OAuthError

        client = self.sso._oauth.demo
        try:
            redirect = await client.authorize_redirect(
                request, self.sso.settings.base_url + OIDC_CALLBACK
            )
        except (OAuthError, httpx.HTTPError):
            return self.refused(request)
        state = parse_qs(urlsplit(redirect.headers["location"]).query).get("state", [""])[0]
        request.session[_OIDC_STATE] = {
            "state": state,
            "next": safe_return_path_or_default(form.get("next"), "/account"),
        }
        return RedirectResponse(redirect.headers["location"], status_code=303)

    async def oidc_callback(self, request: Request) -> Response:
        pending = request.session.get(_OIDC_STATE)
        state = request.query_params.get("state")
        if not isinstance(pending, dict) or not state or pending.get("state") != state:
            # Not our sign-in: a re-authentication answer for stepup's view.
            target = self.demo.stepup.url(request, "oidc_callback")
            return RedirectResponse(f"{target}?{request.url.query}", status_code=303)
        request.session.pop(_OIDC_STATE, None)
        import httpx
        from authlib.integrations.starlette_client import OAuthError

        try:
            token = await self.sso._oauth.demo.authorize_access_token(request)
        except (OAuthError, httpx.HTTPError, ValueError):
            return self.refused(request)
        claims = token.get("userinfo") or {}
        issuer, subject = claims.get("iss"), claims.get("sub")
        oidc = self.sso.settings.oidc
        if oidc is None or issuer != oidc.issuer or not isinstance(subject, str) or not subject:
            return self.refused(request)
        email = await self.verified_email(token, claims, subject)
        user = await self.user_for("oidc", issuer, subject, email)
        return await self.demo.finish_sign_in(
            request, user.id, str(pending.get("next") or "/account")
        )

    async def verified_email(self, token: Any, claims: Any, subject: str) -> str:
        """A verified email from the ID token, else from the userinfo endpoint (only a
        display name here: users are matched on issuer and subject)."""
        import httpx
        from authlib.integrations.starlette_client import OAuthError

        if not claims.get("email"):
            try:
                claims = await self.sso._oauth.demo.userinfo(token=token)
            except (OAuthError, httpx.HTTPError, ValueError):
                return ""
            if claims.get("sub") != subject:
                return ""
        email = claims.get("email")
        return email if claims.get("email_verified") is True and isinstance(email, str) else ""

    # SAML -----------------------------------------------------------------------

    async def saml_login(self, request: Request) -> Response:
        demo = self.demo
        form = await demo.form(request)
        if isinstance(form, Response):
            return form
        from saml2 import BINDING_HTTP_REDIRECT

        assert self.sso._saml is not None
        client, idp = self.sso._saml
        request_id = _SIGN_IN_PREFIX + secrets.token_hex(20)
        _, info = client.prepare_for_authenticate(
            entityid=idp,
            relay_state=request_id,
            binding=BINDING_HTTP_REDIRECT,
            message_id=request_id,
        )
        now = self.sso.clock()
        next_path = safe_return_path_or_default(form.get("next"), "/account")
        challenge = Challenge(
            challenge_id=request_id,
            user_id="",
            session_id="",
            issued_at=now,
            expires_at=now + _SIGN_IN_TTL,
            data={"protocol": "saml-sign-in", "next": next_path},
        )
        try:
            await self.sso.store.put_challenge(challenge)
        except StoreUnavailableError:  # an outage, not the provider's refusal
            return await self.demo.unavailable(request)
        # Only this browser may complete it (see saml_sign_in).
        request.session[_SAML_REQUEST] = request_id
        return RedirectResponse(str(dict(info["headers"])["Location"]), status_code=303)

    async def saml_acs(self, request: Request) -> Response:
        """The IdP's cross-site POST: no session cookie comes with it, so nothing is
        decided here. The browser posts the answer again, same-site: a sign-in to
        :meth:`saml_sign_in`, a re-authentication to stepup's ACS."""
        form = await request.form()
        relay, answer = form.get("RelayState"), form.get("SAMLResponse")
        if not isinstance(answer, str) or not answer:
            return self.refused(request)
        relay = relay if isinstance(relay, str) else ""
        sign_in = relay.startswith(_SIGN_IN_PREFIX)
        action = SAML_SIGN_IN if sign_in else self.demo.stepup.url(request, "saml_acs")
        return self.demo.render(
            request,
            "saml_forward.html",
            action=action,
            saml_response=answer,
            relay_state=relay,
        )

    async def saml_sign_in(self, request: Request) -> Response:
        """The IdP's answer to a sign-in, re-posted by the browser with its session:
        accepted only if this browser started that very request (login CSRF)."""
        form = await request.form()
        relay, answer = form.get("RelayState"), form.get("SAMLResponse")
        started = request.session.get(_SAML_REQUEST)
        if (
            not isinstance(answer, str)
            or not answer
            or not isinstance(relay, str)
            or not relay.startswith(_SIGN_IN_PREFIX)
            or not isinstance(started, str)
            or not secrets.compare_digest(started.encode(), relay.encode())
        ):
            return self.refused(request)
        request.session.pop(_SAML_REQUEST, None)
        from saml2 import BINDING_HTTP_POST

        assert self.sso._saml is not None
        client, idp = self.sso._saml
        try:
            challenge = await self.sso.store.take_challenge(relay, self.sso.clock())
        except StoreUnavailableError:  # an outage, not the provider's refusal
            return await self.demo.unavailable(request)
        if challenge is None or challenge.data.get("protocol") != "saml-sign-in":
            return self.refused(request)
        next_path = str(challenge.data.get("next") or "/account")
        try:  # signature (xmlsec1), audience, destination, InResponseTo, time
            parsed = await asyncio.to_thread(
                client.parse_authn_request_response,
                answer,
                BINDING_HTTP_POST,
                {relay: next_path},
            )
        except Exception:  # pysaml2 raises many types; every one means "not signed in"
            parsed = None
        name_id = getattr(getattr(parsed, "name_id", None), "text", None)
        if parsed is None or parsed.issuer() != idp or not isinstance(name_id, str):
            return self.refused(request)
        attributes = getattr(parsed, "ava", {}) or {}
        email = next(iter(attributes.get("email", []) or attributes.get("mail", []) or []), "")
        user = await self.user_for("saml", idp, name_id.strip(), str(email))
        return await self.demo.finish_sign_in(request, user.id, next_path)
