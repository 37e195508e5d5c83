"""Re-authenticate a SAML-signed-in session at its IdP: start, then complete.

``start`` is a decision flow (see :mod:`stepup._flow`); ``complete`` is one pure step
(:func:`verify_response`: parse and check signatures, no store) and one flow
(:func:`complete_flow`: consume the request, judge). :class:`SAMLServiceProvider`
drives them with a sync store, :class:`AsyncSAMLServiceProvider` with an async one;
both run the same code. Only the ChallengeStore part of a store is used.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from saml2 import BINDING_HTTP_REDIRECT
from saml2.saml import AuthnContextClassRef
from saml2.samlp import RequestedAuthnContext

from ...._flow import Flow, run, run_async
from ....clock import Clock, system_clock
from ....errors import ConfigurationError, MalformedInputError, StoreUnavailableError
from ....records import Challenge
from ....redirects import safe_return_path
from ....resume import is_resume_token
from ....subject import LoginMethod, Subject
from ....transactions import is_transaction_digest
from ...storage.base import AsyncStore, ChallengeStore
from ._judge import Expectation, judge, judge_idp_error
from ._read import IdPStatus, Refusal, SignedResponse, read_response
from .config import SIGNING_ALGORITHM, SAMLServiceProviderConfig, build_client, sp_metadata
from .outcome import SAMLOutcome, SAMLReason, SAMLRedirect, WrongIdentityProviderError

__all__ = [
    "AsyncSAMLServiceProvider",
    "SAMLServiceProvider",
    "complete_flow",
    "start_flow",
    "verify_response",
]


def _is_this_idp(subject: Subject, idp_entity_id: str) -> bool:
    identity = subject.identity
    return (
        identity.method is LoginMethod.SAML
        and identity.issuer == idp_entity_id
        and bool(identity.subject)
    )


def _contexts(requested: str | Sequence[str] | None, default: tuple[str, ...]) -> list[str]:
    if requested is None:
        return list(default)
    refs = [requested] if isinstance(requested, str) else list(requested)
    if not all(isinstance(ref, str) and ref for ref in refs):
        raise MalformedInputError("authn_context must be non-empty strings")
    return refs


#: The shape of the request ids :func:`start` makes. Only such an id is looked up: an
#: ``InResponseTo`` of another shape (an unsigned error answer's is anyone's to write)
#: names no request of ours, so it never reaches the store, where it could be another
#: kind of challenge (a kept form's, a passkey ceremony's) or over the key limit.
_REQUEST_ID = re.compile(r"_[0-9a-f]{40}")


def _ours(request_id: object) -> bool:
    return isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id) is not None


def _redirect_url(
    client: Any,
    idp_entity_id: str,
    request_id: str,
    contexts: list[str],
    sign: bool,
    comparison: str,
) -> str:
    requested = (
        RequestedAuthnContext(
            authn_context_class_ref=[AuthnContextClassRef(ref) for ref in contexts],
            comparison=comparison,
        )
        if contexts
        else None
    )
    try:
        _, info = client.prepare_for_authenticate(
            entityid=idp_entity_id,
            relay_state=request_id,
            binding=BINDING_HTTP_REDIRECT,
            message_id=request_id,
            force_authn="true",
            requested_authn_context=requested,
            sign=sign,
            sigalg=SIGNING_ALGORITHM if sign else None,
        )
    except Exception as exc:
        raise ConfigurationError(
            f"SAML AuthnRequest could not be built ({type(exc).__name__})"
        ) from exc
    return str(dict(info["headers"])["Location"])


def start_flow(
    client: Any,
    config: SAMLServiceProviderConfig,
    idp_entity_id: str,
    subject: Subject,
    *,
    return_to: str,
    action: str,
    authn_context: str | Sequence[str] | None,
    now: float,
    transaction: str = "",
    resume: str = "",
    otp_proved: bool = False,
) -> Flow[SAMLRedirect]:
    """Build a ``ForceAuthn`` request and keep it as a challenge bound to the session.

    ``transaction`` (empty, or the digest of a kept transaction) is stored with this
    request alone, so the answer to it confirms that transaction and no other trip's;
    ``resume`` (empty, or a suspended form's token) likewise, so the answer to it sends
    that form again and no other tab's; ``otp_proved`` (the caller checked a TOTP code
    for this request) likewise, so no other answer can use the proof up.
    """
    if not _is_this_idp(subject, idp_entity_id):
        raise WrongIdentityProviderError("the session did not sign in through this SAML IdP")
    return_to = safe_return_path(return_to)
    if not isinstance(action, str):
        raise MalformedInputError("action must be a string")
    if transaction != "" and not is_transaction_digest(transaction):
        raise MalformedInputError("transaction must be empty or a transaction digest")
    if resume != "" and not is_resume_token(resume):
        raise MalformedInputError("resume must be empty or a suspended request's token")
    if not isinstance(otp_proved, bool):
        raise MalformedInputError("otp_proved must be a bool")
    contexts = _contexts(authn_context, config.authn_context)
    request_id = "_" + secrets.token_hex(20)  # an NCName, 160 random bits (_REQUEST_ID)
    url = _redirect_url(
        client,
        idp_entity_id,
        request_id,
        contexts,
        config.sign_requests,
        config.authn_comparison,
    )
    deadline = now + config.challenge_ttl
    challenge = Challenge(
        challenge_id=request_id,
        user_id=subject.user_id,
        session_id=subject.session_id,
        issued_at=now,
        # Kept one more TTL so that a late answer is reported as EXPIRED, not unknown.
        expires_at=deadline + config.challenge_ttl,
        data={
            "protocol": "saml",
            "deadline": deadline,
            "return_to": return_to,
            "action": action,
            "transaction": transaction,
            "resume": resume,
            "otp_proved": otp_proved,
            "otp_proved_at": now if otp_proved else None,  # the code's time dates the grant
            "authn_context": contexts,
            "name_id": subject.identity.subject,
        },
    )
    yield ("put_challenge", (challenge,))
    return SAMLRedirect(url=url, request_id=request_id, expires_at=deadline)


def verify_response(
    security: Any, expect: Expectation, subject: Subject, saml_response: object
) -> SignedResponse | IdPStatus | SAMLOutcome:
    """Everything that needs no store: may this session complete here, and what does the
    response say under a valid signature (or which error status the IdP answered). CPU
    and xmlsec1 work, no I/O on shared state."""
    if not _is_this_idp(subject, expect.idp_entity_id):
        return SAMLOutcome(SAMLReason.WRONG_SUBJECT, detail="session_login")
    try:
        return read_response(security, saml_response)
    except Refusal as refusal:
        return SAMLOutcome(refusal.reason, idp_status=refusal.idp_status, detail=refusal.detail)


def _idp_error_flow(
    subject: Subject, refused: IdPStatus, relay_state: str | None, now: float
) -> Flow[SAMLOutcome]:
    """The IdP answered with an error status. When its ``InResponseTo`` names a request
    and ``RelayState`` (if the ACS has it) agrees, that request is consumed (once) and,
    if it is this session's, what was stored with it comes back; nothing is granted.
    Otherwise nothing is consumed, and nothing comes back."""
    unmatched = SAMLOutcome(SAMLReason.IDP_ERROR, idp_status=refused.idp_status, detail="status")
    request_id = refused.in_response_to
    if not _ours(request_id) or (relay_state is not None and relay_state != request_id):
        return unmatched
    try:
        challenge: Challenge | None = yield ("take_challenge", (request_id, now))
    except StoreUnavailableError:
        return unmatched  # the IdP's refusal stands; only the kept form is not found
    if challenge is None:
        return unmatched
    return judge_idp_error(challenge, subject, refused.idp_status)


def complete_flow(
    expect: Expectation,
    subject: Subject,
    verified: SignedResponse | IdPStatus | SAMLOutcome,
    relay_state: str | None,
    *,
    now: float,
) -> Flow[SAMLOutcome]:
    """Consume the request a verified response answers, once, then judge it."""
    if isinstance(verified, SAMLOutcome):
        return verified  # refused before the store: nothing is consumed
    if isinstance(verified, IdPStatus):
        return (yield from _idp_error_flow(subject, verified, relay_state, now))
    request_id = verified.in_response_to
    # When only the assertion is signed, the envelope's InResponseTo is the browser's
    # to change: it must agree with the signed one, and is otherwise never used.
    if verified.response_in_response_to not in (None, request_id):
        return SAMLOutcome(SAMLReason.UNKNOWN_REQUEST, detail="in_response_to")
    if relay_state is not None and relay_state != request_id:
        return SAMLOutcome(SAMLReason.UNKNOWN_REQUEST, detail="relay_state")
    if not _ours(request_id):
        return SAMLOutcome(SAMLReason.UNKNOWN_REQUEST, detail="unknown_or_used")
    try:
        challenge: Challenge | None = yield ("take_challenge", (request_id, now))
    except StoreUnavailableError:
        return SAMLOutcome(SAMLReason.UNAVAILABLE, detail="store")
    if challenge is None:
        return SAMLOutcome(SAMLReason.UNKNOWN_REQUEST, detail="unknown_or_used")
    return judge(expect, verified, challenge, subject, now)


S = TypeVar("S")


class _Provider(Generic[S]):
    def __init__(
        self, config: SAMLServiceProviderConfig, store: S, *, clock: Clock = system_clock
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._client, self.idp_entity_id = build_client(config)
        self._expect = Expectation(
            sp_entity_id=config.sp_entity_id,
            acs_url=config.acs_url,
            idp_entity_id=self.idp_entity_id,
            max_skew=float(config.max_skew),
            name_id_format=config.name_id_format,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sp={self.config.sp_entity_id!r}, idp={self.idp_entity_id!r})"

    def metadata(self) -> str:
        """This service provider's metadata XML, to register with the IdP."""
        return sp_metadata(self._client)

    def _start(
        self,
        subject: Subject,
        return_to: str,
        action: str,
        authn_context: str | Sequence[str] | None,
        transaction: str,
        resume: str,
        otp_proved: bool,
    ) -> Flow[SAMLRedirect]:
        return start_flow(
            self._client,
            self.config,
            self.idp_entity_id,
            subject,
            return_to=return_to,
            action=action,
            authn_context=authn_context,
            now=self.clock(),
            transaction=transaction,
            resume=resume,
            otp_proved=otp_proved,
        )

    def _verify(
        self, subject: Subject, saml_response: object
    ) -> SignedResponse | IdPStatus | SAMLOutcome:
        return verify_response(self._client.sec, self._expect, subject, saml_response)

    def _complete(
        self,
        subject: Subject,
        verified: SignedResponse | IdPStatus | SAMLOutcome,
        relay_state: str | None,
    ) -> Flow[SAMLOutcome]:
        return complete_flow(self._expect, subject, verified, relay_state, now=self.clock())


class SAMLServiceProvider(_Provider[ChallengeStore]):
    """SAML re-authentication with a sync challenge store."""

    def start(
        self,
        subject: Subject,
        *,
        return_to: str,
        action: str = "",
        authn_context: str | Sequence[str] | None = None,
        transaction: str = "",
        resume: str = "",
        otp_proved: bool = False,
    ) -> SAMLRedirect:
        """Where to send the browser. Raises :class:`WrongIdentityProviderError` for a
        session that did not sign in through this IdP,
        :class:`~stepup.redirects.UnsafeRedirectError` for a ``return_to`` that is not a
        same-origin path, :class:`~stepup.errors.MalformedInputError` for a
        ``transaction`` that is neither empty nor a transaction digest (or a ``resume``
        that is not a suspended form's token), and
        :class:`~stepup.errors.StoreUnavailableError` if the request cannot be kept.
        ``transaction``, ``resume`` and ``otp_proved`` (the caller checked a TOTP code
        for this request) come back on the outcome of this request only."""
        flow = self._start(
            subject, return_to, action, authn_context, transaction, resume, otp_proved
        )
        return run(flow, self.store)

    def complete(
        self, subject: Subject, saml_response: str, relay_state: str | None = None
    ) -> SAMLOutcome:
        """Judge the ``SAMLResponse`` posted to the ACS (base64, as received) and the
        ``RelayState`` that came with it, if the ACS has it."""
        verified = self._verify(subject, saml_response)
        return run(self._complete(subject, verified, relay_state), self.store)


class AsyncSAMLServiceProvider(_Provider[AsyncStore | ChallengeStore]):
    """SAML re-authentication with an async challenge store. The XML parsing and the
    xmlsec1 signature checks run in a worker thread."""

    async def start(
        self,
        subject: Subject,
        *,
        return_to: str,
        action: str = "",
        authn_context: str | Sequence[str] | None = None,
        transaction: str = "",
        resume: str = "",
        otp_proved: bool = False,
    ) -> SAMLRedirect:
        """See :meth:`SAMLServiceProvider.start`."""
        flow = self._start(
            subject, return_to, action, authn_context, transaction, resume, otp_proved
        )
        return await run_async(flow, self.store)

    async def complete(
        self, subject: Subject, saml_response: str, relay_state: str | None = None
    ) -> SAMLOutcome:
        # Parsing and xmlsec1 take tens of milliseconds: keep them off the event loop.
        verified = await asyncio.to_thread(self._verify, subject, saml_response)
        return await run_async(self._complete(subject, verified, relay_state), self.store)
