"""The OIDC re-authentication decisions, written once for sync and async callers.

Each flow is a generator in the style of :mod:`stepup._flow`: it yields
``("put_challenge" | "take_challenge" | "http", args)`` and receives the answers, so
every decision lives here and the clients only carry the calls out. A failed store
call arrives as :class:`StoreUnavailableError`; a failed HTTP call as the same error
wrapping :class:`ProviderUnavailableError`.

A provider failure is logged here, once, at WARNING on ``stepup.oidc`` (a
misconfiguration, such as a discovery document naming another issuer, at ERROR): the
HTTP effect answers a failed request with the error as a value instead of raising, so
the flow driver, which logs on ``stepup.store``, sees store calls only.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from joserfc.jwk import Key

from ...._flow import Flow
from ....errors import MalformedInputError, StepupError, StoreUnavailableError
from ....records import Challenge
from ....redirects import safe_return_path
from ....resume import is_resume_token
from ....subject import LoginMethod, Subject
from ....transactions import is_transaction_digest
from .._freshness import earliest_fresh_login
from .config import OIDCProviderConfig
from .idtoken import IDTokenClaims, TokenFault, TokenRejected, verify_id_token
from .outcome import OIDCOutcome, OIDCReason, ProviderUnavailableError, WrongProviderError
from .protocol import (
    HttpRequest,
    HttpResponse,
    ProviderMetadata,
    TokenReply,
    authorization_url,
    discovery_request,
    jwks_request,
    new_secret,
    oauth_error_code,
    parse_discovery,
    parse_jwks,
    parse_token_reply,
    token_request,
)

__all__ = ["ProviderCache", "complete_flow", "start_flow"]

_KIND: Final = "oidc"
_MAX_PARAM: Final = 4096
#: The challenge id (``state``) of an OIDC trip: this prefix and 256 random bits. No other
#: challenge of stepup's has it, so a callback never takes (and burns) a resume, passkey
#: or transaction challenge whose id it was given.
_STATE_PREFIX: Final = "oidc:"
#: A trip's ``state``: the prefixed form, or the bare ``new_secret()`` of trips started
#: before the prefix (43 URL-safe characters, a shape no other challenge id of stepup's
#: has), accepted until such trips have expired (``challenge_ttl``, at most an hour).
_STATE: Final = re.compile(r"(?:oidc:)?[A-Za-z0-9_-]{43}")
#: An authorization code: printable ASCII (RFC 6749, appendix A.11: ``1*VSCHAR``).
_CODE: Final = re.compile(r"[\x20-\x7e]+")
#: One line per provider failure, for the operator: the outcome (``unavailable``, a 503)
#: carries no cause. Store failures are ``stepup.store``'s (see :mod:`stepup._flow`).
logger = logging.getLogger("stepup.oidc")


class ProviderCache:
    """The discovery document and signing keys of one provider, shared by every request
    of one client. Races only cost a duplicate fetch, never a key trusted too long.

    ``keys_at`` is when the cached keys were fetched (``None``: never); ``keys_tried_at``
    when the latest fetch that has not succeeded started (in flight, or failed); and
    ``keys_fetching`` marks that fetch while it is in flight (one object per attempt:
    plain assignments, so requests racing here can only lose the mark, failing closed).
    """

    __slots__ = ("keys", "keys_at", "keys_fetching", "keys_tried_at", "metadata", "metadata_at")

    def __init__(self) -> None:
        self.metadata: ProviderMetadata | None = None
        self.metadata_at = 0.0
        self.keys: tuple[Key, ...] = ()
        self.keys_at: float | None = None
        self.keys_tried_at: float | None = None
        self.keys_fetching: object | None = None


@dataclass(frozen=True, slots=True)
class _Pending:
    """What ``start`` stored with the challenge (``Challenge.data``)."""

    #: When the trip ends: an answer at or after it is ``expired``. The challenge itself
    #: is kept one ``challenge_ttl`` longer (``Challenge.expires_at``), so that every
    #: store, a Redis key's TTL and a pruned SQL table alike, still holds a late
    #: answer's challenge and it is told apart from an unknown ``state``.
    deadline: float
    subject: str
    nonce: str
    verifier: str
    return_to: str
    action: str
    acr_values: tuple[str, ...]
    #: The transaction digest this trip confirms ("" for none): it rides with the
    #: trip's own single-use state, so two trips in one session cannot swap theirs.
    transaction: str = ""
    #: The token of the form this trip's re-authentication interrupted ("" for none):
    #: it rides with the trip too, so two trips in one session each resume their own.
    resume: str = ""
    #: When a TOTP code was proved for this very trip (``None``: none was), on the
    #: adapter's clock: it rides with the trip's single-use state, so no other answer (a
    #: forged or replayed one) can use it up, and it dates the grant when it is older than
    #: the provider's ``auth_time`` (a grant is never fresher than its parts).
    otp_proved_at: float | None = None

    def data(self, issuer: str) -> dict[str, Any]:
        return {
            "kind": _KIND,
            "issuer": issuer,
            "deadline": self.deadline,
            "subject": self.subject,
            "nonce": self.nonce,
            "verifier": self.verifier,
            "return_to": self.return_to,
            "action": self.action,
            "acr_values": list(self.acr_values),
            "transaction": self.transaction,
            "resume": self.resume,
            "otp_proved": self.otp_proved_at is not None,  # what an earlier version reads
            "otp_proved_at": self.otp_proved_at,
        }

    @classmethod
    def read(cls, challenge: Challenge, issuer: str) -> _Pending | None:
        """``None`` unless the challenge is an OIDC challenge of this provider.

        A challenge stored by an earlier version has no ``deadline``: that version kept
        the challenge until its deadline and no longer, so its ``expires_at`` is the
        deadline. It says only ``otp_proved: true``, too: that version set it solely in
        the start request that checked the code and issued the trip, so the code is read
        as proved at the trip's issue time, which is exactly what this version records
        for such a trip."""
        data = challenge.data
        if data.get("kind") != _KIND or data.get("issuer") != issuer:
            return None
        deadline = data.get("deadline", challenge.expires_at)
        if not _seconds(deadline):
            return None
        fields = ("subject", "nonce", "verifier", "return_to", "action")
        values = [data.get(name) for name in fields]
        strings = [v for v in values if isinstance(v, str)]
        acr_values = data.get("acr_values")
        # A challenge stored before transactions rode with the trip has no key: none.
        transaction = data.get("transaction", "")
        resume = data.get("resume", "")  # likewise for a suspended form's token
        otp_proved = data.get("otp_proved", False)  # and for a code proved at the start
        issued_at = challenge.issued_at
        otp_proved_at = data.get("otp_proved_at", issued_at if otp_proved is True else None)
        if len(strings) != len(fields) or not isinstance(acr_values, list):
            return None
        if transaction != "" and not is_transaction_digest(transaction):
            return None
        if resume != "" and not is_resume_token(resume):
            return None
        if not isinstance(otp_proved, bool) or not _proof_time(otp_proved_at):
            return None
        subject, nonce, verifier, return_to, action = strings
        return cls(
            float(deadline),
            subject,
            nonce,
            verifier,
            return_to,
            action,
            tuple(map(str, acr_values)),
            transaction,
            resume,
            None if otp_proved_at is None else float(otp_proved_at),
        )


def _seconds(value: object) -> bool:
    """A finite number of Unix seconds."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _proof_time(value: object) -> bool:
    """``None`` (no code proved), or a finite number of Unix seconds."""
    return value is None or _seconds(value)


def _word(value: object) -> bool:
    return isinstance(value, str) and bool(value) and not any(c.isspace() for c in value)


def _eligible(config: OIDCProviderConfig, subject: Subject) -> bool:
    identity = subject.identity
    return (
        identity.method is LoginMethod.OIDC
        and identity.issuer == config.issuer
        and bool(identity.subject)
    )


# provider I/O ---------------------------------------------------------------------------


def _cause(exc: BaseException) -> str:
    """What went wrong, fit for a log line: stepup's own message, else only the type
    (a library's message may carry a URL, a token or key material)."""
    return str(exc) if isinstance(exc, StepupError) else type(exc).__name__


def _provider_name(config: OIDCProviderConfig) -> str:
    return config.name or config.issuer  # the issuer URL carries no credentials (config)


def _report(config: OIDCProviderConfig, exc: ProviderUnavailableError) -> None:
    """The one log line of a provider failure: the provider, the error's type and the
    adapter's own message (which names the step: discovery, jwks, token), never a URL's
    secrets, a code, a token, a state or the provider's ``error_description``."""
    level = logging.ERROR if exc.misconfigured else logging.WARNING
    logger.log(
        level,
        "OIDC provider %s %s: %s: %s",
        _provider_name(config),
        "misconfigured" if exc.misconfigured else "unavailable",
        type(exc).__name__,
        exc,
    )


def _fetch(request: HttpRequest) -> Flow[HttpResponse]:
    """Send ``request``; the effect answers a failure with the error as a value (see the
    module's docstring), and an effect that raises anyway reaches here as the driver's
    :class:`StoreUnavailableError` wrapping it."""
    try:
        answer: HttpResponse | ProviderUnavailableError = yield ("http", (request,))
    except StoreUnavailableError as exc:
        cause = exc.__cause__
        if isinstance(cause, ProviderUnavailableError):
            raise cause from None
        # Not chained: the cause is whatever the HTTP call raised, message and all.
        what = f" ({type(cause).__name__})" if cause is not None else ""
        raise ProviderUnavailableError(f"{request.purpose}: request failed{what}") from None
    if isinstance(answer, ProviderUnavailableError):
        raise answer
    return answer


def _metadata(
    config: OIDCProviderConfig, cache: ProviderCache, now: float
) -> Flow[ProviderMetadata]:
    cached = cache.metadata
    if cached is not None and 0 <= now - cache.metadata_at < config.metadata_ttl:
        return cached
    try:
        response = yield from _fetch(discovery_request(config))
        metadata = parse_discovery(config, response)
    except ProviderUnavailableError:
        raise
    except Exception as exc:  # whatever it is, the provider could not be read
        raise ProviderUnavailableError(
            f"discovery: the document could not be read ({_cause(exc)})"
        ) from None
    cache.metadata, cache.metadata_at = metadata, now
    return metadata


def _refresh(
    config: OIDCProviderConfig, cache: ProviderCache, metadata: ProviderMetadata, now: float
) -> Flow[tuple[Key, ...] | None]:
    """Fetch the keys unless an attempt was made within ``jwks_refresh_interval``: the
    new keys, or ``None`` if no attempt was made. A failed fetch counts as an attempt
    too: no retry storm against the provider.

    Whatever goes wrong (the request fails, the set has no usable key, the JOSE library
    raises something unforeseen) is :class:`ProviderUnavailableError` naming the cause,
    and the cached keys are left as they were: a failed fetch never makes them younger."""
    attempts = [at for at in (cache.keys_at, cache.keys_tried_at) if at is not None]
    if attempts and 0 <= now - max(attempts) < config.jwks_refresh_interval:
        return None
    tried_before = cache.keys_tried_at
    cache.keys_tried_at = now
    cache.keys_fetching = attempt = object()
    try:
        response = yield from _fetch(jwks_request(metadata))
        keys = parse_jwks(response)
    except ProviderUnavailableError:
        raise
    except Exception as exc:
        raise ProviderUnavailableError(
            f"jwks: the provider's keys could not be read ({_cause(exc)})"
        ) from None
    except BaseException:
        # Cancelled while the fetch was awaited (GeneratorExit, CancelledError): the
        # provider never answered, so this was no attempt; counting it would refuse
        # every callback for jwks_refresh_interval because one request went away.
        if cache.keys_tried_at == now:
            cache.keys_tried_at = tried_before
        raise
    finally:  # also when an async request is cancelled while the fetch is awaited
        if cache.keys_fetching is attempt:
            cache.keys_fetching = None
    if cache.keys_at is None or now >= cache.keys_at:  # never replaced by an older fetch
        cache.keys, cache.keys_at = keys, now
    if cache.keys_tried_at is not None and cache.keys_tried_at <= now:
        cache.keys_tried_at = None  # no later attempt is pending
    return keys


#: An ID token refused for one of these may verify with the provider's keys fetched again.
_KEY_FAULTS: Final = frozenset({TokenFault.UNKNOWN_KEY, TokenFault.SIGNATURE})


def _current_keys(
    config: OIDCProviderConfig, cache: ProviderCache, metadata: ProviderMetadata, now: float
) -> Flow[tuple[Key, ...]]:
    """Keys younger than ``jwks_max_key_age``, fetched again when older. Old keys serve
    only while another request's fetch is in flight, for at most one more
    ``jwks_refresh_interval``; otherwise (never fetched, or the last attempt within
    ``jwks_refresh_interval`` failed) :class:`ProviderUnavailableError`: a key is never
    trusted longer because the provider could not be asked."""
    loaded, keys = cache.keys_at, cache.keys
    if keys and loaded is not None and 0 <= now - loaded < config.jwks_max_key_age:
        return keys
    fresh = yield from _refresh(config, cache, metadata, now)
    if fresh is not None:
        return fresh
    grace = config.jwks_max_key_age + config.jwks_refresh_interval
    in_flight = cache.keys_fetching is not None
    if keys and loaded is not None and in_flight and 0 <= now - loaded < grace:
        return keys  # another request is fetching them right now
    raise ProviderUnavailableError("jwks: the provider's keys are not available")


# start ----------------------------------------------------------------------------------


def start_flow(
    config: OIDCProviderConfig,
    cache: ProviderCache,
    subject: Subject,
    *,
    return_to: str,
    action: str,
    acr_values: Sequence[str] | None,
    now: float,
    transaction: str = "",
    resume: str = "",
    otp_proved: bool = False,
) -> Flow[str]:
    """Store a challenge for this session and pending action; return the provider URL.

    Raises :class:`WrongProviderError` for a session that did not sign in here,
    :class:`~stepup.redirects.UnsafeRedirectError` for a ``return_to`` that could leave
    the site, :class:`MalformedInputError` for bad ``action``, ``acr_values`` or
    ``transaction`` (empty, or the 64-hex digest of a kept transaction) or ``resume``
    (empty, or a suspended request's token: :func:`stepup.resume.is_resume_token`) or
    an ``otp_proved`` that is not a bool, :class:`ProviderUnavailableError` (logged on
    ``stepup.oidc``) and :class:`StoreUnavailableError`. ``otp_proved``: the caller
    checked a TOTP code for this very trip, just now; the fact and its time (``now``)
    come back on its outcome only.
    """
    if not _eligible(config, subject):
        raise WrongProviderError(
            "this session did not sign in through this OpenID provider"
            + (f" ({config.name})" if config.name else "")
        )
    if not isinstance(action, str):
        raise MalformedInputError("action must be a string")
    if transaction != "" and not is_transaction_digest(transaction):
        raise MalformedInputError("transaction must be empty or a transaction digest")
    if resume != "" and not is_resume_token(resume):
        raise MalformedInputError("resume must be empty or a suspended request's token")
    if not isinstance(otp_proved, bool):
        raise MalformedInputError("otp_proved must be a bool")
    requested = tuple(config.acr_values if acr_values is None else acr_values)
    if isinstance(acr_values, str) or not all(_word(value) for value in requested):
        raise MalformedInputError("acr_values must be a list of strings without spaces")
    deadline = now + config.challenge_ttl
    pending = _Pending(
        deadline=deadline,
        subject=subject.identity.subject,
        nonce=new_secret(),
        verifier=new_secret(),
        return_to=safe_return_path(return_to),
        action=action,
        acr_values=requested,
        transaction=transaction,
        resume=resume,
        otp_proved_at=now if otp_proved else None,
    )
    try:
        metadata = yield from _metadata(config, cache, now)
    except ProviderUnavailableError as exc:
        _report(config, exc)
        raise
    state = _STATE_PREFIX + new_secret()
    challenge = Challenge(
        challenge_id=state,
        user_id=subject.user_id,
        session_id=subject.session_id,
        issued_at=now,
        # Kept one more TTL so that a late answer is reported as EXPIRED, not unknown.
        expires_at=deadline + config.challenge_ttl,
        data=pending.data(config.issuer),
    )
    yield ("put_challenge", (challenge,))
    return authorization_url(
        config,
        metadata,
        state=state,
        nonce=pending.nonce,
        verifier=pending.verifier,
        acr_values=requested,
    )


# complete -------------------------------------------------------------------------------


def _param(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if not isinstance(value, str) or not value or len(value) > _MAX_PARAM:
        return None
    return value


def _take(
    config: OIDCProviderConfig, subject: Subject, state: str | None, now: float
) -> Flow[tuple[Challenge, _Pending] | OIDCOutcome]:
    """Consume the challenge first of all: whatever follows, this state never works twice.
    A ``state`` that cannot name an OIDC trip (another kind of challenge's id, too long,
    not text) is unknown before the store is asked: it takes nothing away. The store
    holds a challenge one ``challenge_ttl`` past the trip's deadline, which the flow
    judges itself: an answer that late is ``expired``, a later one ``unknown_state``."""
    if state is None or _STATE.fullmatch(state) is None:
        return OIDCOutcome(OIDCReason.UNKNOWN_STATE)
    try:
        challenge: Challenge | None = yield ("take_challenge", (state, now))
    except StoreUnavailableError:
        return OIDCOutcome(OIDCReason.UNAVAILABLE, detail="store")
    if challenge is None:
        return OIDCOutcome(OIDCReason.UNKNOWN_STATE)
    pending = _Pending.read(challenge, config.issuer)
    same_session = (challenge.user_id, challenge.session_id) == (
        subject.user_id,
        subject.session_id,
    )
    if pending is None or not same_session:
        return OIDCOutcome(OIDCReason.UNKNOWN_STATE)
    return challenge, pending


def _mixed_up(
    config: OIDCProviderConfig, metadata: ProviderMetadata, params: Mapping[str, str]
) -> bool:
    """Does the authorization response (a success or an error alike) name another
    issuer, or none although the provider announces that it always names itself
    (RFC 9207, 2 and 2.4)? Then it is no answer of this provider's: a mix-up."""
    iss = params.get("iss")
    if iss is None:
        return metadata.iss_parameter_supported
    return iss != config.issuer


def _judge(
    config: OIDCProviderConfig,
    subject: Subject,
    challenge: Challenge,
    pending: _Pending,
    claims: IDTokenClaims,
    now: float,
) -> tuple[OIDCReason, str]:
    """Is this the session's own person, freshly authenticated, at the level asked for?"""
    identity = subject.identity
    expected = (identity.issuer, identity.subject, identity.subject)
    if (claims.issuer, claims.subject, pending.subject) != expected:
        return OIDCReason.WRONG_SUBJECT, ""
    if claims.auth_time is None:
        return OIDCReason.MISSING_AUTH_TIME, ""
    if claims.auth_time < earliest_fresh_login(challenge.issued_at, config.max_skew):
        return OIDCReason.STALE_AUTH_TIME, ""
    if claims.auth_time > now + config.max_skew:
        return OIDCReason.INVALID_TOKEN, "auth_time"
    if pending.acr_values and claims.acr not in pending.acr_values:
        return OIDCReason.ACR_NOT_MET, ""
    return OIDCReason.OK, ""


def complete_flow(
    config: OIDCProviderConfig,
    cache: ProviderCache,
    subject: Subject,
    params: Mapping[str, str],
    *,
    now: float,
) -> Flow[OIDCOutcome]:
    """Judge one callback. Never raises for anything the provider or the browser sent."""
    taken = yield from _take(config, subject, _param(params, "state"), now)
    if isinstance(taken, OIDCOutcome):
        return taken
    challenge, pending = taken

    def outcome(
        reason: OIDCReason,
        *,
        error: str | None = None,
        detail: str = "",
        claims: IDTokenClaims | None = None,
    ) -> OIDCOutcome:
        return OIDCOutcome(
            reason,
            auth_time=claims.auth_time if claims else None,
            acr=claims.acr if claims else None,
            amr=claims.amr if claims else (),
            return_to=pending.return_to,
            action=pending.action,
            transaction=pending.transaction,
            resume=pending.resume,
            otp_proved=pending.otp_proved_at is not None,
            otp_proved_at=pending.otp_proved_at,
            error=error,
            detail=detail,
        )

    if now >= pending.deadline:
        return outcome(OIDCReason.EXPIRED)
    if not _eligible(config, subject):
        return outcome(OIDCReason.WRONG_SUBJECT, detail="session")
    try:
        metadata = yield from _metadata(config, cache, now)
        # The issuer first, on an error response too: another provider's error is not
        # this one's (RFC 9207, 2.4), and nothing else of a mixed-up answer is read.
        if _mixed_up(config, metadata, params):
            return outcome(OIDCReason.INVALID_TOKEN, detail="iss_parameter")
        if "error" in params:
            return outcome(OIDCReason.PROVIDER_ERROR, error=oauth_error_code(params.get("error")))
        code = _param(params, "code")
        if code is None or _CODE.fullmatch(code) is None:
            return outcome(OIDCReason.PROVIDER_ERROR, detail="no_code")
        request = token_request(config, metadata, code=code, verifier=pending.verifier, now=now)
        reply: TokenReply = parse_token_reply((yield from _fetch(request)))
        if reply.unavailable:
            raise ProviderUnavailableError(reply.cause or "token: the answer could not be read")
        if reply.id_token is None:
            return outcome(OIDCReason.TOKEN_ERROR, error=reply.error)
        checked = yield from _checked_token(config, cache, metadata, reply.id_token, pending, now)
    except ProviderUnavailableError as exc:
        _report(config, exc)
        return outcome(OIDCReason.UNAVAILABLE, detail="provider")
    if isinstance(checked, TokenRejected):
        return outcome(OIDCReason.INVALID_TOKEN, detail=checked.fault.value)
    reason, detail = _judge(config, subject, challenge, pending, checked, now)
    return outcome(reason, detail=detail, claims=checked)


def _checked_token(
    config: OIDCProviderConfig,
    cache: ProviderCache,
    metadata: ProviderMetadata,
    id_token: str,
    pending: _Pending,
    now: float,
) -> Flow[IDTokenClaims | TokenRejected]:
    """Verify the ID token with the current keys, refreshing them once if it names an
    unknown one or its signature does not verify (the provider may have rotated them,
    also under the old ``kid``), within the refresh interval's budget."""

    def verify(keys: tuple[Key, ...]) -> IDTokenClaims | TokenRejected:
        return verify_id_token(
            id_token,
            keys,
            issuer=config.issuer,
            client_id=config.client_id,
            nonce=pending.nonce,
            now=now,
            max_skew=config.max_skew,
            algorithms=config.id_token_algorithms,
        )

    result = verify((yield from _current_keys(config, cache, metadata, now)))
    if isinstance(result, TokenRejected) and result.fault in _KEY_FAULTS:
        fresh = yield from _refresh(config, cache, metadata, now)
        if fresh is not None:
            result = verify(fresh)
    return result
