"""May this session do this action now? The re-authentication decision and its grants.

``check`` answers with a typed :data:`Decision`; ``require`` raises instead. A
successful re-authentication is recorded with ``record`` as a :class:`Grant`
bound to one user and one session. Sync (:class:`Reauth`) and async
(:class:`AsyncReauth`) callers share every decision through :mod:`stepup._flow`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import secrets
from collections.abc import Container, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Final, Generic, NamedTuple, TypeAlias, TypeVar

from ._flow import Flow, run, run_async
from .adapters.storage.base import BATCHABLE_READS, AsyncStore, Store
from .clock import Clock, system_clock
from .errors import (
    MalformedInputError,
    StepupError,
    StoreUnavailableError,
    UnknownActionError,
)
from .events import EventBus, GrantsRevoked, ReauthSucceeded, SignInRecorded
from .ids import SESSION_RECORD_SEPARATOR, checked_id, checked_session_id, checked_subject
from .policy import Context, Policy, Rule, Sensitivity, askable
from .records import Challenge, Credential, Grant, Passkey, Tenant
from .subject import Identity, LoginMethod, Subject
from .tokens import AccessToken, InvalidTokenError, TokenFault
from .transactions import is_transaction_digest
from .twofactor import Channel

__all__ = [
    "FEATURE_FLAG",
    "AllowReason",
    "Allowed",
    "AsyncReauth",
    "Decision",
    "Offer",
    "Reauth",
    "ReauthRequired",
    "ReauthRequiredError",
    "ReauthUnavailable",
    "ReauthUnavailableError",
    "SignInCounted",
    "SignInNotCounted",
    "SignInOutcome",
    "SignInReason",
    "UnavailableReason",
    "required_methods",
]

#: The tenant feature flag that turns re-authentication for sensitive actions on.
FEATURE_FLAG: Final = "sensitive_actions_reauth"
#: amr-style names a grant may carry (RFC 8176): a passkey assertion proves ``phr`` and
#: ``hwk`` or ``swk``, with ``user`` and ``mfa`` when the authenticator verified the user
#: (:attr:`stepup.passkeys.PasskeyResult.methods`). Recovery codes are deliberately absent.
GRANT_METHODS: Final = frozenset({"pwd", "otp", "oidc", "saml", "phr", "hwk", "swk", "user", "mfa"})
#: What a passkey can prove, and so what a user with one can offer.
_PASSKEY_PROOFS: Final = frozenset({"phr", "hwk", "swk", "user"})
#: Proofs that need something enrolled (a passkey, TOTP): the second factors that an
#: API-key or message-injection request is never asked for.
_ENROLLED: Final = _PASSKEY_PROOFS | {"otp"}
#: An access token's ``amr`` values (RFC 8176 section 2) read as stepup's methods, only
#: where the meaning is the same: ``pwd`` a password, ``otp`` a one-time password
#: (RFC 4226/6238; not ``sms`` or ``tel``), ``hwk``/``swk`` a hardware/software-secured
#: key, ``mfa`` several factors, and ``phr`` (no RFC 8176 value; the issuer names a
#: phishing-resistant method). Anything else proves nothing here; RFC 8176's ``user``
#: above all: a user *presence* test, where stepup's ``user`` is user *verification*.
_AMR_METHODS: Final = MappingProxyType(
    {"pwd": "pwd", "otp": "otp", "hwk": "hwk", "swk": "swk", "mfa": "mfa", "phr": "phr"}
)
#: RFC 8176 values that verify the user (a PIN that unlocks a key, a biometric): stepup's
#: ``user``, but only next to the key they unlock (``hwk``, ``swk`` or ``phr``).
_AMR_VERIFICATION: Final = frozenset({"pin", "fpt", "face", "iris", "retina", "vbm"})
_KEYS: Final = frozenset({"hwk", "swk", "phr"})
_FEDERATED: Final = frozenset({"oidc", "saml"})
_SIGN_IN_METHODS: Final = frozenset({"pwd", "oidc", "saml"})
_PRIMARY_BY_LOGIN: Final = {
    LoginMethod.PASSWORD: "pwd",
    LoginMethod.OIDC: "oidc",
    LoginMethod.SAML: "saml",
}
_NON_INTERACTIVE: Final = frozenset({Channel.API_KEY, Channel.MESSAGE_INJECTION})


class AllowReason(StrEnum):
    NOT_SENSITIVE = "not_sensitive"
    FLAG_OFF = "flag_off"
    FRESH_GRANT = "fresh_grant"
    EXEMPT_CHANNEL = "exempt_channel"


_NOT_SENSITIVE, _FLAG_OFF = AllowReason.NOT_SENSITIVE, AllowReason.FLAG_OFF
_FRESH_GRANT, _EXEMPT = AllowReason.FRESH_GRANT, AllowReason.EXEMPT_CHANNEL


# The three decisions are named tuples, not frozen dataclasses: as immutable, and built
# in a quarter of the time (a frozen dataclass sets each field through
# ``object.__setattr__``: 1.4 µs for ReauthRequired's thirteen, against 0.3 µs), which
# is most of what a decision costs (docs/architecture.md, "Decisions").


class Allowed(NamedTuple):
    """Go ahead. ``valid_until`` is when the grant stops covering this action (if a grant
    was needed)."""

    action: str
    reason: AllowReason
    valid_until: float | None = None

    @property
    def ok(self) -> bool:
        """``True``: the action may go ahead."""
        return True


class ReauthRequired(NamedTuple):
    """Not until the user proves it is them again.

    ``methods`` must all be satisfied (e.g. ``("pwd",)``, ``("oidc", "otp")``,
    ``("phr",)``): the alternative offered. ``alternatives`` are every way the rule
    accepts, strongest first, with the sign-in method filled in; ``offered`` is the
    index of ``methods`` among them: the strongest the user has (a passkey, TOTP)
    enrolled. ``provider`` names the SSO provider to send the user to, when there is one.

    ``level`` is the minimum level of assurance the rule asks for and the proof does not
    reach (``""``: no level is missing); ``acr_values`` the OIDC ``acr`` values that would
    (RFC 9470 ``acr_values``). ``stale``: a new authentication is needed because there
    is none or it is older than ``lifetime`` (RFC 9470 ``max_age``); ``False`` when the
    proof is recent and only its level or methods fall short.
    """

    action: str
    sensitivity: Sensitivity
    methods: tuple[str, ...]
    lifetime: float
    last_reauth_at: float | None
    provider: str = ""
    alternatives: tuple[tuple[str, ...], ...] = ()
    offered: int = 0
    level: str = ""
    acr_values: tuple[str, ...] = ()
    stale: bool = True
    transaction: str = ""  # the digest a bound rule's proof must name (stepup.transactions)
    #: What the user must add before ``methods`` can be proved (``"phr"``: a passkey,
    #: ``"hwk"``: a device-bound one, ``"otp"``: TOTP): they have none of the rule's
    #: alternatives, and re-entering what they have would not satisfy it. ``()``: the
    #: user can re-authenticate with ``methods`` now.
    enrol: tuple[str, ...] = ()
    #: The channel of the subject asked: only a ``Channel.API`` (bearer-token) subject
    #: gets the RFC 9470 challenge, whatever the request's ``Authorization`` scheme.
    channel: Channel = Channel.WEB

    @property
    def ok(self) -> bool:
        """``False``: not until the user re-authenticates."""
        return False

    @property
    def needs_enrolment(self) -> bool:
        return bool(self.enrol)


class UnavailableReason(StrEnum):
    """Why no re-authentication can allow the action now."""

    STORE = "store"  # the store could not answer: try again
    UNREACHABLE = "unreachable"  # nothing this session can prove reaches the rule's level
    #: A bearer token facing a rule bound to one transaction: a token proves a recent
    #: authentication, never the person's confirmation of this one target, once.
    TRANSACTION_BOUND = "transaction_bound"
    #: An API-key or message-injection request facing a rule (``api_keys=True``) that only
    #: a second factor (TOTP, a passkey) satisfies: those channels are never asked for one.
    NON_INTERACTIVE = "non_interactive"


class ReauthUnavailable(NamedTuple):
    """The action is denied and re-authenticating now would not help (fail closed):
    the store could not answer (``reason`` ``store``), or nothing this session could
    prove, even after enrolling a passkey or TOTP, reaches the rule's minimum ``level``
    (``unreachable``; e.g. a password session facing a level only an SSO provider can
    assert), or an API-key or message-injection request faces a rule only a second
    factor satisfies (``non_interactive``). ``alternatives`` then name what would reach
    it (e.g. ``(("oidc",),)``: sign in through the provider)."""

    action: str
    reason: UnavailableReason = UnavailableReason.STORE
    level: str = ""
    alternatives: tuple[tuple[str, ...], ...] = ()

    @property
    def ok(self) -> bool:
        """``False``: denied, and re-authenticating now would not help."""
        return False


Decision: TypeAlias = Allowed | ReauthRequired | ReauthUnavailable


class SignInReason(StrEnum):
    """Why a sign-in did not count as a re-authentication."""

    POLICY_OFF = "policy_off"  # the policy's sign_in_counts is off (the default)
    NO_PROVIDER_TIME = "no_provider_time"  # an SSO sign-in without auth_time / AuthnInstant
    TOO_OLD = "too_old"  # proved longer ago than any lifetime of the policy
    #: dated later than now by more than a provider's clock may be ahead (300 s): no
    #: time authentication happened at (OIDC Core 2, auth_time), so no proof
    IN_THE_FUTURE = "in_the_future"
    UNAVAILABLE = "unavailable"  # the store failed; the sign-in itself still stands
    #: an integration held the sign-in for its second factor (the user has one): nobody
    #: is signed in yet, and stepup's second step records what a sign-in begun there proved
    SECOND_STEP = "second_step"


@dataclass(frozen=True, slots=True)
class SignInCounted:
    """The sign-in was recorded as this session's first grant."""

    grant: Grant

    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class SignInNotCounted:
    """The sign-in stands, but the first sensitive action still asks (``reason``)."""

    reason: SignInReason

    ok: ClassVar[bool] = False


SignInOutcome: TypeAlias = SignInCounted | SignInNotCounted

#: The records a sliding window keeps next to the proof: the same user, under the
#: session id with this suffix, the proof's time and a lifetime, each dated by the last
#: action that renewed the window for rules of that lifetime. They are bound to that one
#: proof (a new proof starts a new window) and to the session, and prove no method: read
#: as a grant, one satisfies no rule. The suffix starts with the separator no session id
#: may contain (:data:`stepup.ids.SESSION_RECORD_SEPARATOR`), so no session's id names one.
_SLIDE: Final = SESSION_RECORD_SEPARATOR + "slide@"


def _unknown_tenant(off: Decision, tenant_id: object) -> Decision:
    """A tenant no store knows has its flag off, if its id is one a store could hold: a
    malformed id (a tenant loader gone wrong) is refused, never read as "off" (checked
    only here, off the path of a tenant that exists)."""
    checked_id(tenant_id, "tenant_id")
    return off


def _sign_in_time(value: object) -> float | None:
    """A sign-in's ``authenticated_at``: ``None`` (now), or finite Unix seconds (NaN or
    an infinity is no time at all, nor a whole number no float holds), else
    :class:`MalformedInputError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedInputError("authenticated_at must be Unix seconds")
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        raise MalformedInputError("authenticated_at must be a finite number of Unix seconds")
    return seconds


#: What a sliding window's renewal proves: nothing (see _SLIDE).
_NONE: Final[frozenset[str]] = frozenset()


def _slide_id(session_id: str, authenticated_at: float, lifetime: float) -> str:
    """The key of the renewal that rules of ``lifetime`` read (see _slide)."""
    return f"{session_id}{_SLIDE}{authenticated_at!r}/{lifetime!r}"


def _required(
    action: str,
    sensitivity: Sensitivity,
    methods: tuple[str, ...],
    lifetime: float,
    last_reauth_at: float | None,
    provider: str,
    alternatives: tuple[tuple[str, ...], ...] | None = None,
    offered: int = 0,
    missing: _Missing | None = None,
    enrol: tuple[str, ...] = (),
    channel: Channel = Channel.WEB,
) -> ReauthRequired:
    level, acr_values, stale = missing or _NOTHING_MISSING
    return ReauthRequired(
        action,
        sensitivity,
        methods,
        lifetime,
        last_reauth_at,
        provider,
        (methods,) if alternatives is None else alternatives,
        offered,
        level,
        acr_values,
        stale,
        "",
        enrol,
        channel,
    )


class _Missing(NamedTuple):
    """What a proof lacks besides methods: a level (with the acr values that reach it),
    and whether it is too old (or absent)."""

    level: str
    acr_values: tuple[str, ...]
    stale: bool


_NOTHING_MISSING: Final = _Missing("", (), True)


#: How far ahead of this clock a token's ``auth_time`` may be (the issuer's clock; the
#: most leeway a validator allows): further is no proof at all.
_TOKEN_SKEW: Final = 300.0
#: A token's proof is judged as an OIDC sign-in of its own (the validator checked who
#: issued it and for whom); it is no session, so it has one fixed session id.
_TOKEN_IDENTITY: Final = Identity(LoginMethod.OIDC)
_TOKEN_SESSION: Final = "bearer-token"  # noqa: S105 (a fixed session id, not a secret)
#: How far ahead of this clock a sign-in's provider time may be: as far as a token's.
_SIGN_IN_SKEW: Final = _TOKEN_SKEW
_TRANSACTION: Final = "tx:"


def _transaction_id(subject: Subject, digest: str) -> str:
    """The challenge id of a transaction proof: this user, this session, this digest,
    hashed from an unambiguous encoding (user ``a:b`` in session ``c`` and user ``a`` in
    session ``b:c`` must not share a proof id, or one could spend the other's)."""
    who = json.dumps([subject.user_id, subject.session_id, digest], ensure_ascii=True)
    return _TRANSACTION + hashlib.sha256(who.encode("ascii")).hexdigest()


#: The grant row that anchors a session's transaction proofs, under the session id with
#: this suffix. It names an epoch (a random token, in the row's ``level``; its methods
#: are empty, so it satisfies no rule even if read as a grant), and every proof records
#: the epoch it was recorded in. Revoking grants (sign-out, a password change, a factor
#: change) removes the row, and with it every proof of that epoch: the next proof starts
#: a new one. An epoch is never written back once read, so a revocation racing a record
#: cannot bring an old epoch back; and no clock is compared, so a coarse clock or two
#: servers' skew cannot either.
_TX_ANCHOR: Final = "#tx-anchor"


def _anchor_id(session_id: str) -> str:
    return session_id + _TX_ANCHOR


_R = TypeVar("_R")


def _revoking_on_failure(user_id: str, session_id: str, flow: Flow[_R]) -> Flow[_R]:
    """``flow``; if it fails in any way (a store outage, a refusal, or the caller's
    cancellation or timeout while a store call was in flight, which :func:`run_async`
    hands to the flow), ``session_id``'s grant is revoked first, as far as the store
    takes it, then the failure is raised as it was: a grant that must not stay where it
    is never stays behind a request that did not finish. A flow closed from outside
    (``GeneratorExit``) can make no store call, and just closes."""
    try:
        return (yield from flow)
    except GeneratorExit:
        raise
    except BaseException:
        with contextlib.suppress(StoreUnavailableError):
            yield ("revoke_grants", (user_id, session_id))
        raise


def _call(method: str, args: tuple[Any, ...]) -> Flow[Any]:
    """One store call as a flow (to hand to :func:`_revoking_on_failure`)."""
    return (yield (method, args))


def _bound_grant(subject: Subject, taken: Challenge | None, anchor: Grant | None) -> Grant | None:
    """The proof a taken transaction challenge holds, if it is this session's and of
    the session's current epoch (``anchor``: not revoked since it was recorded)."""
    if (
        taken is None
        or anchor is None
        or anchor.methods
        or taken.user_id != subject.user_id
        or taken.session_id != subject.session_id
        or taken.data.get("kind") != "transaction"
    ):
        return None
    epoch = taken.data.get("epoch")
    if not isinstance(epoch, str) or not epoch or epoch != anchor.level:
        return None  # recorded before a revocation (or by a version without epochs)
    methods, level = taken.data.get("methods"), taken.data.get("level")
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        return None
    return Grant(
        subject.user_id,
        subject.session_id,
        frozenset(methods),
        taken.issued_at,
        level if isinstance(level, str) else None,
    )


#: Plans (an action's rule, lifetime and methods per way of signing in) are kept per
#: ``Reauth``, up to this many.
_MAX_KEPT: Final = 1024


class ReauthRequiredError(StepupError):
    """Raised by ``require``; carries the :class:`ReauthRequired` decision."""

    def __init__(self, decision: ReauthRequired) -> None:
        super().__init__(
            f"re-authentication required for {decision.action!r} ({', '.join(decision.methods)})"
        )
        self.decision = decision


class ReauthUnavailableError(StoreUnavailableError):
    """Raised by ``require`` when the store failed; the action is denied."""

    def __init__(self, decision: ReauthUnavailable) -> None:
        if decision.reason is UnavailableReason.UNREACHABLE:
            message = (
                f"cannot allow {decision.action!r}: nothing this session can prove reaches"
                f" level {decision.level!r}"
            )
        elif decision.reason is UnavailableReason.NON_INTERACTIVE:
            message = (
                f"cannot allow {decision.action!r}: only a second factor satisfies it, and"
                " an API key or message injection is never asked for one"
            )
        else:
            message = f"cannot decide {decision.action!r}: the store is unavailable"
        super().__init__(message)
        self.decision = decision


def required_methods(subject: Subject, rule: Rule, policy: Policy | None = None) -> tuple[str, ...]:
    """What proves it is them: the way they signed in (or the rule's methods), plus TOTP
    when the rule asks for a second factor. With ``policy``, the strongest of the rule's
    alternatives that reaches its level of assurance (what the user has enrolled is not
    known here: :meth:`Reauth.offer` reads it)."""
    if policy is None:
        return _methods_for(subject.identity.method, rule)
    login = subject.identity.method
    every = _resolved(login, rule, policy.alternatives_for(rule))
    usable = _usable(login, rule, policy)
    if subject.channel in _NON_INTERACTIVE:
        usable = _keyless(usable) or usable  # none: the decision is ReauthUnavailable
    return (usable or every)[0]


def _methods_for(login: LoginMethod, rule: Rule) -> tuple[str, ...]:
    return (
        (_primary_for(login, rule), "otp") if rule.second_factor else (_primary_for(login, rule),)
    )


def _primary_for(login: LoginMethod, rule: Rule) -> str:
    primary = _PRIMARY_BY_LOGIN[login]
    if rule.methods is not None and primary not in rule.methods:
        primary = sorted(rule.methods)[0]
    return primary


def _resolved(
    login: LoginMethod, rule: Rule, alternatives: tuple[tuple[str, ...], ...]
) -> tuple[tuple[str, ...], ...]:
    """The alternatives with ``primary`` replaced by this session's sign-in method."""
    primary = _primary_for(login, rule)
    resolved: list[tuple[str, ...]] = []
    for alternative in alternatives:
        tokens = tuple(dict.fromkeys(primary if t == "primary" else t for t in alternative))
        if tokens not in resolved:
            resolved.append(tokens)
    return tuple(resolved)


def _reaching(
    alternatives: tuple[tuple[str, ...], ...], rule: Rule, policy: Policy
) -> tuple[tuple[str, ...], ...]:
    """The alternatives whose proof can reach the rule's level (all of them without a
    level): a password alone never reaches a multi-factor level, so it is never offered
    for one (the grant it recorded would be asked again, forever)."""
    levels = policy.levels
    if rule.level is None or levels is None:
        return alternatives
    return tuple(a for a in alternatives if levels.reachable(a, rule.level))


def _token_methods(amr: Iterable[str]) -> frozenset[str]:
    """What a token's ``amr`` proves in stepup's words (:data:`_AMR_METHODS`), plus
    ``oidc``: the issuer authenticated the user. ``user`` (user verification) only from a
    PIN or a biometric next to a key, never from RFC 8176's ``user`` (presence)."""
    values = frozenset(amr)
    proved = {_AMR_METHODS[value] for value in values if value in _AMR_METHODS}
    if not _KEYS.isdisjoint(proved) and not _AMR_VERIFICATION.isdisjoint(values):
        proved.add("user")
    proved.add("oidc")
    return frozenset(proved)


def _as_primary(methods: Iterable[str]) -> frozenset[str]:
    """``methods`` with a provider's sign-in (``oidc``, ``saml``) read as the primary
    factor, a password: the weakest sign-in method."""
    tokens = frozenset(methods)
    if tokens.isdisjoint(_FEDERATED):
        return tokens
    return (tokens - _FEDERATED) | {"pwd"}


def _keyless(alternatives: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """The alternatives that need nothing enrolled: what an API-key or message-injection
    request may be asked for (never TOTP, never a passkey)."""
    return tuple(a for a in alternatives if not _ENROLLED.intersection(a))


def _usable(login: LoginMethod, rule: Rule, policy: Policy) -> tuple[tuple[str, ...], ...]:
    """The alternatives a session that signed in this way can be offered: those that
    reach the rule's level, naming no sign-in method the user cannot use (the ``pwd`` of
    a level's ``pwd + otp``, for an SSO user), and no passkey paired with another method.
    Empty: nothing a session can be asked for reaches the level."""
    resolved = _resolved(login, rule, policy.alternatives_for(rule))
    # A passkey paired with another method is a token's (its amr proves the pair); a
    # session is never asked for it: the pages ask for a passkey in a step of its own.
    reaching = tuple(a for a in _reaching(resolved, rule, policy) if askable(a))
    if rule.level is None:
        return reaching
    primaries = _primaries(login, rule)
    return tuple(a for a in reaching if set(a) & _SIGN_IN_METHODS <= primaries)


@dataclass(frozen=True, slots=True)
class Offer:
    """How the user can re-authenticate for an action now: every alternative the rule
    accepts that can reach its level (strongest first), the index of the one offered
    (the strongest the user has enrolled), and ``needs_enrolment`` when the user has
    none of them (the weakest is then offered, and the page asks to enrol ``enrol``
    first: ``"phr"`` a passkey, ``"otp"`` TOTP). ``unreachable``: nothing this session
    could prove reaches the rule's level (the decision is
    :class:`ReauthUnavailable`); ``alternatives`` are then the rule's, unfiltered."""

    alternatives: tuple[tuple[str, ...], ...]
    offered: int
    needs_enrolment: bool = False
    enrol: tuple[str, ...] = ()
    unreachable: bool = False

    @property
    def methods(self) -> tuple[str, ...]:
        return self.alternatives[self.offered]


def _primaries(login: LoginMethod, rule: Rule) -> frozenset[str]:
    """The sign-in methods a user can re-authenticate with: theirs (as the rule resolves
    it), and those the rule names itself (the app says its users have them). A method
    only a level's method sets name (``pwd`` in ``pwd + otp``) is not one of them for an
    SSO user, who has no password here."""
    named = set(rule.methods or ())
    for alternative in rule.accept or ():
        named.update(t for t in alternative if t in _PRIMARY_BY_LOGIN.values())
    return frozenset({_primary_for(login, rule), *named})


def _provable(
    passkeys: tuple[Passkey, ...] | None, totp: bool, primaries: frozenset[str]
) -> frozenset[str]:
    """What this user can prove now: their sign-in methods, TOTP when confirmed, and
    what their passkeys prove."""
    proofs: set[str] = set(primaries)
    if totp:
        proofs.add("otp")
    for passkey in passkeys or ():
        proofs |= passkey.methods | {"user"}
    return frozenset(proofs)


def _offer(alternatives: tuple[tuple[str, ...], ...], provable: frozenset[str]) -> Offer:
    """The strongest alternative the user can prove and can be asked for (a passkey
    paired with another method cannot be asked for in one step: the policy keeps such a
    rule only beside another way); else what to enrol for the weakest."""
    for index, alternative in enumerate(alternatives):
        if provable.issuperset(alternative) and askable(alternative):
            return Offer(alternatives, index)
    asked = [index for index, alternative in enumerate(alternatives) if askable(alternative)]
    last = asked[-1] if asked else len(alternatives) - 1
    weakest = alternatives[last]
    enrol = tuple(t for t in weakest if t not in provable)
    if "user" in enrol and set(enrol) & {"phr", "hwk", "swk"}:
        enrol = tuple(t for t in enrol if t != "user")  # a new passkey verifies the user
    return Offer(alternatives, last, needs_enrolment=True, enrol=enrol)


class _Plan(NamedTuple):
    """What a check needs of an action's rule, worked out once per way of signing in."""

    rule: Rule
    lifetime: float
    methods: tuple[str, ...]  # the strongest alternative (the only one, usually)
    sensitive_everywhere: bool  # no context can make it not sensitive
    alternatives: tuple[tuple[str, ...], ...]  # those that can reach ``level``
    level: str | None = None  # the rule's minimum level of assurance
    primaries: frozenset[str] = frozenset({"pwd"})  # the sign-in methods the user can use
    #: ``None``: some alternative can be asked for; else why none can (``alternatives``
    #: are then every one, to judge a grant that exists already).
    refusal: UnavailableReason | None = None
    choose: bool = False  # the offer depends on what the user has enrolled
    #: Every alternative that can reach ``level``, whoever proves it (a token's amr may
    #: prove a password where a session could not).
    reaching: tuple[tuple[str, ...], ...] = ()
    keyless: bool = False  # an API-key or message-injection subject: no second factor


S = TypeVar("S")


class _ReauthFlows(Generic[S]):
    def __init__(
        self,
        store: S,
        policy: Policy | None = None,
        *,
        clock: Clock = system_clock,
        events: EventBus | None = None,
        flag: str = FEATURE_FLAG,
        merge_window: float = 600.0,
        totp_users: Container[str] | None = None,
    ) -> None:
        """``merge_window``: a re-authentication this soon after the session's last one
        adds its methods to that grant (keeping the older time) instead of replacing it,
        while that grant is younger than every rule's lifetime too (merged later, it
        would be stale for the rule that asked; the new proof then stands alone).
        ``totp_users``: with TOTP secrets in a configuration file (``ConfigUsers``), who
        has TOTP; otherwise the store's credential says."""
        self.store = store
        self.totp_users = totp_users
        self.merge_window = merge_window
        self.policy = policy if policy is not None else Policy.default()
        self.clock = clock
        self.events = events or EventBus()
        self.flag = flag
        # A store that answers several reads in one round trip (Redis) gets the tenant
        # and the grant asked together; others are asked one by one, grant last.
        self._batch = callable(getattr(store, "batch", None))
        # An async caller over a sync store class (the memory store in an ASGI app): the
        # same flow, driven by ``run``, which skips an awaitable check per store call and
        # a coroutine (a fifth of a memory-store check). Proxies that answer through
        # ``__getattr__`` keep ``run_async``, which takes either kind of answer.
        method = getattr(type(store), "get_grant", None)
        self._sync_store = callable(method) and not inspect.iscoroutinefunction(method)
        # Keyed by channel too: an API key's plan (no second factor) is never a session's.
        self._plans: dict[tuple[str, LoginMethod, Channel], _Plan] = {}
        # The lifetimes a sliding window keeps a renewal for (see _slide), shortest first.
        maximum = self.policy.sliding_max
        self._slide_lifetimes: tuple[float, ...] = (
            ()
            if maximum is None
            else tuple(sorted({min(lifetime, maximum) for lifetime in self.policy.lifetimes}))
        )

    def _plan(self, action: str, login: LoginMethod, channel: Channel) -> _Plan:
        """The action's rule, lifetime and required methods for this way of signing in,
        worked out once (unknown names raise and are never kept)."""
        plan = self._plan_of(self.policy.rule_for(action), login, channel in _NON_INTERACTIVE)
        if len(self._plans) < _MAX_KEPT:
            self._plans[(action, login, channel)] = plan
        return plan

    def _merge_within(self) -> float:
        """A proof joins the session's grant while that grant is younger than this: the
        merge window, and every rule's lifetime (see _record)."""
        maximum = self.policy.sliding_max
        shortest = self.policy.shortest_lifetime
        return min(self.merge_window, shortest if maximum is None else min(shortest, maximum))

    def _lifetime(self, rule: Rule) -> float:
        """How long a proof counts for ``rule``: its lifetime, and never past the sliding
        window's maximum (which is absolute, for a rule whose own lifetime is longer too)."""
        lifetime = self.policy.lifetime_for(rule)
        maximum = self.policy.sliding_max
        return lifetime if maximum is None else min(lifetime, maximum)

    def _plan_of(self, rule: Rule, login: LoginMethod, keyless: bool = False) -> _Plan:
        every = _resolved(login, rule, self.policy.alternatives_for(rule))
        reaching = _reaching(every, rule, self.policy)
        usable = _usable(login, rule, self.policy)
        refusal = None if usable else UnavailableReason.UNREACHABLE
        if keyless:
            # Never a second factor, never an enrolment: only what needs nothing enrolled.
            usable = _keyless(usable)
            if refusal is None and not usable:
                refusal = UnavailableReason.NON_INTERACTIVE
        alternatives = usable or reaching or every
        return _Plan(
            rule,
            self._lifetime(rule),
            alternatives[0],
            rule.sensitivity is not Sensitivity.NONE and rule.when is None,
            alternatives,
            rule.level,
            _primaries(login, rule),
            refusal,
            # Several ways, or one that needs an enrolled factor: the offer (and the
            # decision's enrol) reads what the user has, as Reauth.offer does.
            not keyless and (len(alternatives) > 1 or bool(set(alternatives[0]) & _ENROLLED)),
            reaching or every,
            keyless,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.policy!r}, flag={self.flag!r})"

    # The decision, in pure halves around the store reads --------------------------

    def _before(self, subject: Subject, action: str, context: Context | None) -> Decision | _Plan:
        """The decision when no store is needed (not sensitive here, exempt channel);
        otherwise the action's plan. Unknown names raise before anything else."""
        login, channel = subject.identity.method, subject.channel
        try:
            plan = self._plans.get((action, login, channel))
        except TypeError:  # an unhashable action (a JSON list, say) names no rule
            raise UnknownActionError(action) from None
        plan = plan or self._plan(action, login, channel)
        rule = plan.rule
        if not (plan.sensitive_everywhere or rule.applies(context)):
            return Allowed(action, _NOT_SENSITIVE, None)
        if plan.keyless and not rule.api_keys:
            return Allowed(action, _EXEMPT, None)
        return plan

    def _flag_off(self, action: str, tenant: Tenant | None) -> Decision | None:
        """Allowed when the tenant's flag is not on (for rules that follow the flag)."""
        if tenant is not None and tenant.flag(self.flag):
            return None
        return Allowed(action, _FLAG_OFF, None)

    def _after(
        self, subject: Subject, action: str, plan: _Plan, grant: Grant | None, now: float
    ) -> Decision:
        """Allowed by a fresh grant of this session, or re-authentication required."""
        rule, lifetime, methods = plan.rule, plan.lifetime, plan.methods
        # A grant covers the rule when it is this session's, proved every required
        # method, and is younger than the rule's lifetime (one from the future is not
        # trusted).
        if (
            grant is not None
            and grant.user_id == subject.user_id
            and grant.session_id == subject.session_id
            and 0 <= now - grant.authenticated_at < lifetime
            and grant.methods.issuperset(methods)
            and (plan.level is None or self._meets(grant, plan.level))
        ):
            return Allowed(action, _FRESH_GRANT, grant.authenticated_at + lifetime)
        return _required(
            action,
            rule.sensitivity,
            methods,
            lifetime,
            None if grant is None else grant.authenticated_at,
            subject.identity.provider,
            missing=self._missing(subject, plan, grant, now),
            channel=subject.channel,
        )

    def level_of(self, grant: Grant) -> str | None:
        """The level of assurance ``grant`` proves under the policy's levels: the stronger
        of the level a provider signed (``grant.level``) and what its methods prove; a
        grant stored before levels existed has no ``level`` and is judged by its methods."""
        levels = self.policy.levels
        if levels is None:
            return None
        return levels.highest(grant.level, levels.for_methods(grant.methods))

    def _meets(self, grant: Grant, minimum: str) -> bool:
        levels = self.policy.levels
        if levels is None:
            return False
        if grant.level is not None and levels.meets(grant.level, minimum):
            return True  # the signed level suffices: no need to read the methods
        return levels.meets(levels.for_methods(grant.methods), minimum)

    def _missing(
        self, subject: Subject, plan: _Plan, grant: Grant | None, now: float
    ) -> _Missing | None:
        """What the decision says is missing besides methods (see ReauthRequired)."""
        stale = not (
            grant is not None
            and grant.user_id == subject.user_id
            and grant.session_id == subject.session_id
            and 0 <= now - grant.authenticated_at < plan.lifetime
        )
        if plan.level is None:
            return None if stale else _Missing("", (), False)
        levels = self.policy.levels
        assert levels is not None  # the policy checked every rule's level at construction
        # What to ask a provider for, even when only the time is missing: a federated
        # re-authentication that asked for no level could come back below it.
        acr_values = levels.acr_values(plan.level)
        if grant is not None and self._meets(grant, plan.level):
            return _Missing("", acr_values, stale)
        return _Missing(plan.level, acr_values, stale)

    @staticmethod
    def _held_ways(plan: _Plan, grant: Grant | None) -> tuple[_Plan, ...]:
        """The plan judged by each other way of the rule that ``grant`` proves. For a
        session nothing can be asked of (an API key, ``plan.refusal``): its plan judges
        the first way, which may need something enrolled (a passkey), while the grant it
        holds proves another (a password and a code): that grant still counts."""
        if grant is None:
            return ()
        held = grant.methods
        return tuple(
            plan._replace(methods=way) for way in plan.alternatives[1:] if held.issuperset(way)
        )

    def _refused(self, action: str, plan: _Plan) -> ReauthUnavailable:
        """Nothing this session can be asked for satisfies the rule (``plan.refusal``):
        deny, naming the level and the alternatives that would do after signing in
        another way (for an API key or message injection, only those without a second
        factor: often none)."""
        assert plan.refusal is not None
        rule = plan.rule
        elsewhere: list[tuple[str, ...]] = []
        for login in LoginMethod:
            usable = _usable(login, rule, self.policy)
            for alternative in _keyless(usable) if plan.keyless else usable:
                if alternative not in elsewhere:
                    elsewhere.append(alternative)
        return ReauthUnavailable(action, plan.refusal, plan.level or "", tuple(elsewhere))

    def _check(
        self,
        subject: Subject,
        action: str,
        tenant_id: str,
        context: Context | None,
        transaction: str | None = None,
        renew: bool = True,
    ) -> Flow[Decision]:
        plan = self._before(subject, action, context)
        if not isinstance(plan, _Plan):
            return plan
        if plan.rule.bind_transaction:
            if not renew:  # a look spends no proof: only the check before the action does
                return ReauthUnavailable(
                    action, UnavailableReason.TRANSACTION_BOUND, plan.level or ""
                )
            return (yield from self._check_bound(subject, action, tenant_id, plan, transaction))
        now = self.clock()
        who = (subject.user_id, subject.session_id)
        tenant: Tenant | None
        grant: Grant | None
        always = plan.rule.always
        try:
            if always:
                grant = yield ("get_grant", who)
            elif self._batch:
                reads = (("get_tenant", (tenant_id,)), ("get_grant", who))
                tenant, grant = yield ("batch", (reads,))
                if (off := self._flag_off(action, tenant)) is not None:
                    return off if tenant is not None else _unknown_tenant(off, tenant_id)
            else:
                tenant = yield ("get_tenant", (tenant_id,))
                if (off := self._flag_off(action, tenant)) is not None:
                    return off if tenant is not None else _unknown_tenant(off, tenant_id)
                grant = yield ("get_grant", who)
        except StoreUnavailableError:
            return ReauthUnavailable(action)
        if self.policy.sliding_max is not None and grant is not None:
            slid = plan
            if len(plan.alternatives) > 1 and not grant.methods.issuperset(plan.methods):
                # The window slides for the alternative the grant proves, when that is
                # the one offered to this user (or a stronger one).
                try:
                    offer = yield from self._enrolment(subject.user_id, plan)
                except StoreUnavailableError:
                    return ReauthUnavailable(action)
                accepted = plan.alternatives[: offer.offered + 1]
                proved = next((a for a in accepted if grant.methods.issuperset(a)), None)
                if proved is not None:
                    slid = plan._replace(methods=proved)
            decision = yield from self._slide(subject, action, slid, grant, now, renew)
        else:
            decision = self._after(subject, action, plan, grant, now)
        if isinstance(decision, ReauthRequired):
            if plan.refusal is not None:
                # Nothing can be asked of this session, but a grant it already holds that
                # proves another of the rule's ways still counts (see _held_ways).
                for other in self._held_ways(plan, grant):
                    if self.policy.sliding_max is None or grant is None:
                        held = self._after(subject, action, other, grant, now)
                    else:
                        held = yield from self._slide(subject, action, other, grant, now, renew)
                    if held.ok:
                        return held
                return self._refused(action, plan)
            if plan.choose:
                # The grant does not prove the strongest way: what does the user have?
                return (yield from self._choose(subject, action, plan, grant, now))
        return decision

    def _kept_for(self) -> float:
        """How long a store must keep a session's grant: the longest lifetime, or with a
        sliding window the window's maximum, until which renewals still read the proof
        (a store may drop a grant once its time has passed)."""
        return max(self.policy.longest_lifetime, self.policy.sliding_max or 0.0)

    def _tx_epoch(self, subject: Subject, now: float) -> Flow[str]:
        """The session's transaction epoch for a proof recorded now: the anchor's, when
        it was begun less than one longest lifetime ago (it lives two, so it outlives
        every proof of its epoch), else a new one. Two records racing to begin one keep
        the later; the other's proof then counts for nothing (fail closed)."""
        anchor_id = _anchor_id(subject.session_id)
        longest = self.policy.longest_lifetime
        anchor: Grant | None = yield ("get_grant", (subject.user_id, anchor_id))
        if (
            anchor is not None
            and not anchor.methods
            and isinstance(anchor.level, str)
            and 0 <= now - anchor.authenticated_at < longest
        ):
            return anchor.level
        epoch = secrets.token_hex(16)
        kept = Grant(subject.user_id, anchor_id, frozenset(), now, epoch)
        yield ("put_grant", (kept, now + 2 * longest))
        return epoch

    def _check_bound(
        self,
        subject: Subject,
        action: str,
        tenant_id: str,
        plan: _Plan,
        transaction: str | None,
    ) -> Flow[Decision]:
        """A rule bound to one transaction: only a proof recorded for this session and this
        digest counts, and checking spends it (the store's atomic ``take_challenge``)."""
        if not is_transaction_digest(transaction):
            raise MalformedInputError(
                f"{action!r} is bound to one transaction: pass"
                " transaction=stepup.transactions.transaction_digest(action, params, tenant_id=...)"
            )
        assert transaction is not None
        now = self.clock()
        try:
            if not plan.rule.always:
                tenant = yield ("get_tenant", (tenant_id,))
                if (off := self._flag_off(action, tenant)) is not None:
                    return off if tenant is not None else _unknown_tenant(off, tenant_id)
            taken = yield ("take_challenge", (_transaction_id(subject, transaction), now))
            anchor: Grant | None = None
            if taken is not None:
                who = (subject.user_id, _anchor_id(subject.session_id))
                anchor = yield ("get_grant", who)
        except StoreUnavailableError:
            return ReauthUnavailable(action)
        grant = _bound_grant(subject, taken, anchor)
        decision = self._after(subject, action, plan, grant, now)
        if isinstance(decision, ReauthRequired):
            if plan.refusal is not None:
                # As in _check: a proof of another of the rule's ways still counts.
                for other in self._held_ways(plan, grant):
                    held = self._after(subject, action, other, grant, now)
                    if held.ok:
                        return held
                return self._refused(action, plan)
            if plan.choose:
                # Strongest available, as for unbound rules: the proof counts when it
                # proves the alternative offered to this user or a stronger one.
                decision = yield from self._choose(subject, action, plan, grant, now)
        if isinstance(decision, ReauthRequired):
            return decision._replace(transaction=transaction)
        return decision

    def _enrolment(self, user_id: str, plan: _Plan) -> Flow[Offer]:
        """Which alternative to offer: read the user's passkeys and TOTP credential
        (together where the store batches them), only those the alternatives name."""
        alternatives = plan.alternatives
        named = {token for alternative in alternatives for token in alternative}
        reads: list[tuple[str, tuple[Any, ...]]] = []
        if named & _PASSKEY_PROOFS:
            reads.append(("list_passkeys", (user_id,)))
        if "otp" in named and self.totp_users is None:
            reads.append(("get_credential", (user_id,)))
        batchable = getattr(self.store, "batchable", BATCHABLE_READS)
        answers: dict[str, Any] = {}
        if self._batch and len(reads) > 1 and all(m in batchable for m, _ in reads):
            replies = yield ("batch", (tuple(reads),))
            answers = {method: reply for (method, _), reply in zip(reads, replies, strict=True)}
        else:
            for method, args in reads:
                answers[method] = yield (method, args)
        credential: Credential | None = answers.get("get_credential")
        if self.totp_users is not None:
            totp = user_id in self.totp_users
        else:
            totp = credential is not None and credential.confirmed
        return _offer(alternatives, _provable(answers.get("list_passkeys"), totp, plan.primaries))

    def _choose(
        self, subject: Subject, action: str, plan: _Plan, grant: Grant | None, now: float
    ) -> Flow[Decision]:
        """Strongest available: the grant covers the rule when it proves the offered
        alternative or a stronger one; otherwise ask for the offered one."""
        try:
            offer = yield from self._enrolment(subject.user_id, plan)
        except StoreUnavailableError:
            return ReauthUnavailable(action)
        lifetime = plan.lifetime
        if (
            grant is not None
            and grant.user_id == subject.user_id
            and grant.session_id == subject.session_id
            and 0 <= now - grant.authenticated_at < lifetime
            and any(grant.methods.issuperset(a) for a in plan.alternatives[: offer.offered + 1])
            and (plan.level is None or self._meets(grant, plan.level))
        ):
            return Allowed(action, _FRESH_GRANT, grant.authenticated_at + lifetime)
        return _required(
            action,
            plan.rule.sensitivity,
            offer.methods,
            lifetime,
            None if grant is None else grant.authenticated_at,
            subject.identity.provider,
            plan.alternatives,
            offer.offered,
            self._missing(subject, plan, grant, now),
            offer.enrol,
            subject.channel,
        )

    def check_token(
        self, token: AccessToken, action: str, context: Context | None = None
    ) -> Decision:
        """May the bearer of this validated access token do ``action`` now?

        The same policy, rule, lifetime and :data:`Decision` as :meth:`check` for a
        session (a ``Channel.API`` subject): the token's ``auth_time`` is the proof's
        time, its ``amr`` read as stepup's methods (RFC 8176 values with the same meaning
        only: ``user``, a presence test, is not stepup's user verification; see
        docs/step-up-apis.md) plus ``oidc`` (the issuer authenticated the user) the proved
        methods, and its ``acr`` the level of assurance (through the policy's levels). No
        store is read: the token carries everything, and the tenant feature flag does not
        apply (a token client has no tenant session). A token without ``auth_time``
        proves nothing recent; one slightly ahead of this clock (the validator's leeway)
        counts as proved now. A token more than 300 s past its ``exp`` raises
        :class:`InvalidTokenError` (``EXPIRED``), whatever the rule: a kept token cannot
        outlive its expiry. A rule with ``bind_transaction`` is :class:`ReauthUnavailable`
        (``transaction_bound``): a token cannot confirm one target once.

        Any of the rule's alternatives counts (the client cannot be offered one), proved
        by the token's ``amr`` or by its ``acr``: an ``acr`` stands for an alternative only
        when its level accounts for every method the alternative names (a method set of
        that level, or of a weaker one, covers the alternative, the issuer's sign-in
        read as the primary method); a ``password`` ``acr`` never stands for ``otp``. A
        token that falls short gets ``ReauthRequired.level``: the weakest level whose
        ``acr`` would satisfy the rule, and ``acr_values``: every ``acr`` value that would,
        strongest first (RFC 9470 section 3's order of preference); none when no ``acr``
        would (then only a new authentication, ``max_age``, is asked for). A token that
        satisfied the rule through a level (the rule's, or its ``acr`` standing for an
        alternative) but is too old gets that ``level`` and its ``acr_values`` too, its
        own ``acr`` included, next to ``stale``: the new authentication is asked for the
        level again, as a session's federated re-authentication is.
        """
        subject = Subject(token.subject, _TOKEN_SESSION, _TOKEN_IDENTITY, Channel.API)
        if not self.clock() < token.expires_at + _TOKEN_SKEW:
            # Kept past its expiry (a cache, a custom token source): it proves nothing,
            # not even for an action that needs no proof. NaN fails this too.
            raise InvalidTokenError(TokenFault.EXPIRED)
        plan = self._before(subject, action, context)
        if not isinstance(plan, _Plan):
            return plan
        if plan.rule.bind_transaction:
            # However fresh, a token would allow every target, again and again: only a
            # session's single-use proof confirms one transaction (fail closed, typed).
            return ReauthUnavailable(action, UnavailableReason.TRANSACTION_BOUND, plan.level or "")
        now = self.clock()
        levels = self.policy.levels
        level = levels.for_acr(token.acr) if levels is not None else None
        # What the token says was proved, whenever: it decides what to ask for.
        claims = Grant(token.subject, _TOKEN_SESSION, _token_methods(token.amr), now, level)
        grant: Grant | None = None
        if token.auth_time is not None and token.auth_time <= now + _TOKEN_SKEW:
            # The issuer's clock, not ours: the validator allowed it a little skew ahead.
            grant = replace(claims, authenticated_at=min(token.auth_time, now))
        decision = self._after(subject, action, plan, grant, now)
        if not isinstance(decision, ReauthRequired):
            return decision
        proved = self._token_proves(claims, plan)
        if proved and not decision.stale:
            assert grant is not None
            return Allowed(action, _FRESH_GRANT, grant.authenticated_at + plan.lifetime)
        # (No ReauthUnavailable for a token: its amr may prove more than the
        # alternatives name, and the client can only ask its issuer again.)
        level_missing = ""
        acr_values: tuple[str, ...] = ()
        if proved:
            # Only its time is missing: ask for the level again (its own acr included,
            # it satisfied), so the new authentication cannot come back below it.
            need = self._token_level_again(claims, plan)
            if need is not None and levels is not None:
                acr_values = levels.acr_values(need)
                level_missing = need if acr_values else ""
        else:
            need = self._token_need(claims, plan)
            if need is not None and levels is not None:
                # RFC 9470 section 3: values that would satisfy, never the one that did not.
                level_missing = need
                acr_values = tuple(v for v in levels.acr_values(need) if v != token.acr)
            elif plan.level is not None and not self._meets(claims, plan.level):
                level_missing = plan.level  # and no acr value would do: max_age only
        return decision._replace(
            alternatives=plan.reaching,  # every way counts: the strongest is named
            level=level_missing,
            acr_values=acr_values,
        )

    def _alternative_level(self, alternative: tuple[str, ...]) -> str | None:
        """The weakest level whose ``acr`` accounts for every method of ``alternative``:
        each of its method sets covers it (an ``acr`` says one of them was proved, not
        which), a provider's sign-in read as the primary method; a stronger ``acr``
        counts too (levels are ordered). ``None``: no ``acr`` does, so only the token's
        ``amr`` can prove it (a password level never stands for ``otp``, nor a level of
        "password and TOTP, or a passkey" for a passkey)."""
        levels = self.policy.levels
        if levels is None:
            return None
        wanted = _as_primary(alternative)
        for name in levels.names:  # weakest first
            sets = levels.level(name).methods
            if sets and all(wanted <= _as_primary(methods) for methods in sets):
                return name
        return None

    def _token_proves(self, grant: Grant, plan: _Plan) -> bool:
        """Does a token's proof (fresh or not) satisfy the rule: its level, and one
        alternative by ``amr`` or by ``acr``? Only a signed ``acr`` stands for an
        alternative through its level: a level worked out from ``amr`` would let methods
        the alternative does not name (a passkey) stand for one it does (a code), which
        a session's grant never may."""
        if plan.level is not None and not self._meets(grant, plan.level):
            return False
        levels = self.policy.levels
        for alternative in plan.reaching:
            if grant.methods.issuperset(alternative):
                return True
            need = self._alternative_level(alternative)
            if (
                need is not None
                and levels is not None
                and grant.level is not None
                and levels.meets(grant.level, need)
            ):
                return True
        return False

    def _token_level_again(self, grant: Grant, plan: _Plan) -> str | None:
        """For a token that satisfied the rule but is too old: the weakest level whose
        ``acr`` satisfies it (as :meth:`_token_need`), or ``None`` when the rule has no
        level and the token's ``amr`` alone proved an alternative (no level to ask)."""
        if plan.level is None and any(grant.methods.issuperset(a) for a in plan.reaching):
            return None
        return self._token_need(grant, plan)

    def _token_need(self, grant: Grant, plan: _Plan) -> str | None:
        """The weakest level whose ``acr`` would satisfy the rule, the token's ``amr``
        kept (``None``: no ``acr`` would; then only a new authentication, ``max_age``,
        is asked for)."""
        levels = self.policy.levels
        if levels is None:
            return None
        needs: list[str] = []
        for alternative in plan.reaching:
            if grant.methods.issuperset(alternative):
                need = plan.level  # proved by amr: only the rule's own level is missing
            else:
                need = self._alternative_level(alternative)
                need = None if need is None else levels.highest(need, plan.level)
            if need is not None:
                needs.append(need)
        return min(needs, key=levels.rank) if needs else None

    def _offer_for(self, subject: Subject, action: str) -> Flow[Offer]:
        """What the re-authentication page for ``action`` asks (``""``: as for a
        sensitive action): the same choice as the decision's."""
        checked_subject(subject)
        login, channel = subject.identity.method, subject.channel
        if not isinstance(action, str):  # a JSON list or number an endpoint passed on
            raise UnknownActionError(action)
        if action:
            plan = self._plans.get((action, login, channel)) or self._plan(action, login, channel)
        else:
            plan = self._plan_of(Rule(Sensitivity.SENSITIVE), login, channel in _NON_INTERACTIVE)
        alternatives = plan.alternatives
        if plan.refusal is not None:
            # Nothing to offer; and nothing to enrol for an API key or message injection.
            last = len(alternatives) - 1
            return Offer(alternatives, last, needs_enrolment=not plan.keyless, unreachable=True)
        if len(alternatives) == 1 and not set(alternatives[0]) & _ENROLLED:
            return Offer(alternatives, 0)  # nothing to choose, nothing to enrol
        return (yield from self._enrolment(subject.user_id, plan))

    def _slide(
        self,
        subject: Subject,
        action: str,
        plan: _Plan,
        grant: Grant,
        now: float,
        renew: bool = True,
    ) -> Flow[Decision]:
        """The sliding window (the policy's ``sliding_max``): the grant counts for a rule
        from the later of its proof and the last sensitive action it allowed whose rule's
        lifetime is at most this rule's, never past ``sliding_max`` after the proof; each
        action it allows renews it (not a look: ``renew=False``). A renewal never lends
        freshness to a stricter rule: an action of a six-hour rule a minute ago says
        nothing of a five-minute rule, whose proof is hours old. So the window keeps one
        renewal per lifetime, each its own record (one atomic write, and no read of
        another's): an action renews the one of its rule's lifetime and those of every
        longer lifetime, and a rule reads only the one of its own."""
        maximum = self.policy.sliding_max
        assert maximum is not None  # and the plan's lifetime is at most it (_lifetime)
        lifetime = plan.lifetime
        proved = grant.authenticated_at
        if (
            grant.user_id != subject.user_id
            or grant.session_id != subject.session_id
            or not 0 <= now - proved < maximum
            or not grant.methods.issuperset(plan.methods)
            or (plan.level is not None and not self._meets(grant, plan.level))
        ):
            return self._after(subject, action, plan, grant, now)
        slide_id = _slide_id(subject.session_id, proved, lifetime)
        try:
            last: Grant | None = yield ("get_grant", (subject.user_id, slide_id))
        except StoreUnavailableError:
            last = None  # no renewal known: the proof's own time decides
        since = proved
        if (
            last is not None
            and last.user_id == subject.user_id
            and proved <= last.authenticated_at <= now
        ):
            since = last.authenticated_at
        if not 0 <= now - since < lifetime:
            return self._after(subject, action, plan, grant, now)
        end = proved + maximum
        if not renew:  # allowed until the window's current end, which a look leaves alone
            return Allowed(action, _FRESH_GRANT, min(since + lifetime, end))
        # This rule's lifetime first, then each longer one (never a shorter one). A
        # renewal proves no method: the proof's own grant says what was proved.
        # The action was allowed by what was read: a failed write only loses the renewals
        # from there on (which then count from an earlier action, or the proof: stricter).
        with contextlib.suppress(StoreUnavailableError):
            for renewed in (lifetime, *(t for t in self._slide_lifetimes if t > lifetime)):
                renewal = Grant(
                    subject.user_id, _slide_id(subject.session_id, proved, renewed), _NONE, now
                )
                yield ("put_grant", (renewal, min(now + renewed, end)))
        return Allowed(action, _FRESH_GRANT, min(now + lifetime, end))

    def _require(
        self,
        subject: Subject,
        action: str,
        tenant_id: str,
        context: Context | None,
        transaction: str | None = None,
    ) -> Flow[Allowed]:
        decision = yield from self._check(subject, action, tenant_id, context, transaction)
        if isinstance(decision, ReauthRequired):
            raise ReauthRequiredError(decision)
        if isinstance(decision, ReauthUnavailable):
            raise ReauthUnavailableError(decision)
        return decision

    def _record(
        self,
        subject: Subject,
        methods: Iterable[str],
        authenticated_at: float | None,
        renewed_from: str | None = None,
        level: str | None = None,
        transaction: str | None = None,
        signed: str | None = None,
    ) -> Flow[Grant]:
        checked_subject(subject)
        if renewed_from is not None:
            checked_session_id(renewed_from, "renewed_from")
        chosen = proved = frozenset(methods)
        if transaction is not None and not is_transaction_digest(transaction):
            raise MalformedInputError("transaction must be a stepup.transactions digest")
        if signed is not None and signed != transaction:
            # The passkey signed another transaction (or none is being recorded): the
            # person did not confirm this one.
            raise MalformedInputError("the passkey signed another transaction than this one")
        if transaction is not None and signed is None and chosen & _PASSKEY_PROOFS:
            # A passkey confirms a transaction only by signing its digest: a proof from an
            # assertion over a plain challenge would bind what the person never saw.
            raise MalformedInputError(
                "a passkey confirms a transaction only through the digest it signed:"
                " pass signed=PasskeyResult.transaction"
            )
        if level is not None and (self.policy.levels is None or level not in self.policy.levels):
            raise MalformedInputError("a grant's level must be one of the policy's levels")
        if "recovery" in chosen:
            raise MalformedInputError("recovery codes never satisfy a re-authentication")
        if not chosen or not chosen <= GRANT_METHODS:
            raise MalformedInputError(f"grant methods must be some of {sorted(GRANT_METHODS)}")
        if renewed_from == subject.session_id:
            raise MalformedInputError("a renewed session needs a new session id")
        given = _sign_in_time(authenticated_at)
        now = self.clock()
        if given is not None and given > now + _SIGN_IN_SKEW:
            # No time the person proved anything at (a wrong clock, or milliseconds):
            # dated now, it would be a fresh grant for a proof of nothing.
            raise MalformedInputError(
                f"authenticated_at is more than {_SIGN_IN_SKEW:g} seconds in the future"
            )
        at = now if given is None else min(given, now)  # a provider's clock a little ahead
        # The new proof standing alone: what is stored if the earlier grant is gone by
        # the time the merged one is written (see _store_grant).
        alone = Grant(subject.user_id, subject.session_id, proved, at, level)
        # The session id was renewed at this re-authentication (ASVS 5.0 section 7.2.4): the
        # earlier proofs are read from the old id, and the old id keeps no grant.
        earlier = subject.session_id if renewed_from is None else renewed_from
        previous: Grant | None = yield ("get_grant", (subject.user_id, earlier))
        earlier_methods = frozenset[str]() if previous is None else previous.methods
        earlier_level = None if previous is None else previous.level
        if transaction is not None:
            # A transaction's proof is what was proved for this transaction, and nothing
            # else: the session's earlier grant confirmed no digest (a passkey signed
            # none; a provider's login, however strong its level, was for no target),
            # so neither its proofs nor its level join. The pages ask for every proof a
            # bound rule needs in one step (password and code in one form; a code
            # proved before a provider's trip rides with it).
            earlier_methods = frozenset()
            earlier_level = None
        merged_from: Grant | None = None  # the grant the proofs were merged with
        if (
            previous is not None
            and not earlier_methods <= chosen
            and 0 <= at - previous.authenticated_at < self._merge_within()
        ):
            # A second step moments after the first (an SSO login, then TOTP; or the code
            # first): keep both proofs, dated by the older one, so the grant is never
            # fresher than its parts. Only while the older proof is younger than every
            # rule's lifetime: merged later, the grant would be as stale as the one the
            # rule just refused, and the person asked again for what they just did; the
            # new proof then stands alone, dated now. Never an expired grant.
            chosen |= earlier_methods
            at = previous.authenticated_at
            if self.policy.levels is not None:
                level = self.policy.levels.highest(level, earlier_level)
            merged_from = previous
        grant = Grant(subject.user_id, subject.session_id, chosen, at, level)
        if transaction is None:
            grant = yield from self._store_grant(grant, alone, merged_from, renewed_from)
            chosen, level = grant.methods, grant.level
        else:
            carried = False
            if renewed_from is not None:
                # The old id keeps nothing: its transaction epoch goes first, its grant
                # moves to the new id (or is revoked) before the proof is written.
                yield ("revoke_grants", (subject.user_id, _anchor_id(renewed_from)))
                carried = yield from self._carry_grant(subject, previous, renewed_from)
            proof = self._store_transaction_proof(
                subject, transaction, chosen, level, at, now, signed is not None
            )
            if carried:
                # Nothing is granted behind a "try again" (or a request cut short): not
                # the proof, nor the session's grant under the new id.
                proof = _revoking_on_failure(subject.user_id, subject.session_id, proof)
            yield from proof
        self.events.emit(
            ReauthSucceeded(
                at=now,
                user_id=subject.user_id,
                session_id=subject.session_id,
                method=",".join(sorted(chosen)),
                level=level,
                transaction=transaction,
                proved=",".join(sorted(proved)),
            )
        )
        return grant

    def _carry_grant(
        self, subject: Subject, previous: Grant | None, renewed_from: str
    ) -> Flow[bool]:
        """Move a renewed session's ordinary grant to the new id as it was (its methods
        and its time, never fresher), and answer whether it moved. It moves only while
        it is still the grant read (``replace_grant``): a revocation after the read (a
        password change, a removed device: every grant of the user, ASVS 5.0 section
        7.4.3) is never undone by carrying it. Otherwise nothing is carried, and the old
        id's grant is revoked (also before a failure of the move, or the caller's
        cancellation while it was in flight, is raised)."""
        user_id = subject.user_id
        if previous is not None:
            carried = replace(previous, session_id=subject.session_id)
            expires = previous.authenticated_at + self._kept_for()
            move = _call("replace_grant", (carried, expires, previous, renewed_from))
            if (yield from _revoking_on_failure(user_id, renewed_from, move)):
                return True
        yield ("revoke_grants", (user_id, renewed_from))
        return False

    def _store_transaction_proof(
        self,
        subject: Subject,
        transaction: str,
        methods: frozenset[str],
        level: str | None,
        at: float,
        now: float,
        signed: bool,
    ) -> Flow[None]:
        """The single-use proof for one transaction, spent by the check that uses it,
        and nothing else: confirming one action is no re-authentication for others.
        The session's epoch first: the current one while it is young enough to outlive
        this proof, else a new one (never an old one written back)."""
        epoch = yield from self._tx_epoch(subject, now)
        proof = Challenge(
            challenge_id=_transaction_id(subject, transaction),
            user_id=subject.user_id,
            session_id=subject.session_id,
            issued_at=at,
            expires_at=at + self.policy.longest_lifetime,
            data={
                "kind": "transaction",
                "methods": sorted(methods),
                "level": level,
                "signed": signed,
                "epoch": epoch,
            },
        )
        yield ("put_challenge", (proof,))

    def _store_grant(
        self,
        grant: Grant,
        alone: Grant,
        merged_from: Grant | None,
        renewed_from: str | None,
    ) -> Flow[Grant]:
        """Store the session's grant, and answer the one stored. A grant merged with
        ``merged_from`` (the earlier grant read) is written only while that grant is
        still stored, and moves it in the same step (``replace_grant``): a revocation
        after the read (a password change, a removed device: every grant of the user,
        ASVS 5.0 section 7.4.3) is never undone by writing back what it revoked. Then
        the new proof is stored alone, dated as if there had been no earlier grant.

        A renewed session's old id keeps nothing: its transaction epoch goes first, its
        grant with the move (or before the write of a grant alone). If anything fails
        (the store, or the caller cancelled while a call was in flight), the old id's
        grant is revoked before the failure is raised."""
        written = self._write_grant(grant, alone, merged_from, renewed_from)
        if renewed_from is not None:
            written = _revoking_on_failure(grant.user_id, renewed_from, written)
        return (yield from written)

    def _write_grant(
        self,
        grant: Grant,
        alone: Grant,
        merged_from: Grant | None,
        renewed_from: str | None,
    ) -> Flow[Grant]:
        """:meth:`_store_grant`'s writes, in order."""
        user_id = grant.user_id
        if renewed_from is not None:
            yield ("revoke_grants", (user_id, _anchor_id(renewed_from)))
        if merged_from is not None:
            earlier = grant.session_id if renewed_from is None else renewed_from
            expires = grant.authenticated_at + self._kept_for()
            if (yield ("replace_grant", (grant, expires, merged_from, earlier))):
                return grant
            grant = alone  # the earlier grant was revoked (or replaced) meanwhile
        if renewed_from is not None:
            yield ("revoke_grants", (user_id, renewed_from))
        yield ("put_grant", (grant, grant.authenticated_at + self._kept_for()))
        return grant

    def _record_sign_in(
        self,
        subject: Subject,
        methods: Iterable[str],
        authenticated_at: float | None,
        level: str | None = None,
    ) -> Flow[SignInOutcome]:
        checked_subject(subject)
        chosen = frozenset(methods)
        if "recovery" in chosen:
            raise MalformedInputError("recovery codes never satisfy a re-authentication")
        if not chosen or not chosen <= GRANT_METHODS:
            raise MalformedInputError(f"grant methods must be some of {sorted(GRANT_METHODS)}")
        primary = _PRIMARY_BY_LOGIN[subject.identity.method]
        if primary not in chosen:
            raise MalformedInputError(
                f"a sign-in through {subject.identity.method.value} proves {primary!r}:"
                " note how the user signed in before recording the sign-in"
            )
        given = _sign_in_time(authenticated_at)
        if level is not None and (self.policy.levels is None or level not in self.policy.levels):
            raise MalformedInputError("a grant's level must be one of the policy's levels")
        if not self.policy.sign_in_counts:
            return SignInNotCounted(SignInReason.POLICY_OFF)
        if chosen & {"oidc", "saml"} and given is None:
            # Without the provider's own time, the login may be days old (an SSO session).
            return SignInNotCounted(SignInReason.NO_PROVIDER_TIME)
        now = self.clock()
        if given is not None and given > now + _SIGN_IN_SKEW:
            # Not a time the sign-in happened at: a wrong clock or a wrong unit
            # (milliseconds). Counted as now, it would be a fresh proof of nothing.
            return SignInNotCounted(SignInReason.IN_THE_FUTURE)
        at = now if given is None else min(given, now)  # a provider's clock a little ahead
        longest = self.policy.longest_lifetime
        if now - at >= longest:
            return SignInNotCounted(SignInReason.TOO_OLD)
        grant = Grant(subject.user_id, subject.session_id, chosen, at, level)
        try:
            yield ("put_grant", (grant, at + self._kept_for()))
        except StoreUnavailableError:
            return SignInNotCounted(SignInReason.UNAVAILABLE)
        self.events.emit(
            SignInRecorded(
                at=now,
                user_id=subject.user_id,
                session_id=subject.session_id,
                method=",".join(sorted(chosen)),
                authenticated_at=at,
            )
        )
        return SignInCounted(grant)

    def _revoke(self, user_id: str, session_id: str | None, reason: str) -> Flow[int]:
        """Revoke, then say so (``reason``: ``sign_out`` or ``password_changed``), also
        when there was nothing to revoke: the audit trail shows the sign-out or the
        password change itself. A store failure propagates, with no event."""
        checked_id(user_id, "user_id")
        if session_id is not None:
            checked_id(session_id, "session_id")
        count: int = yield ("revoke_grants", (user_id, session_id))
        if session_id is not None:  # all of the user's: the anchors went with them
            yield ("revoke_grants", (user_id, _anchor_id(session_id)))
        self.events.emit(
            GrantsRevoked(
                at=self.clock(), user_id=user_id, session_id=session_id, count=count, reason=reason
            )
        )
        return count


class Reauth(_ReauthFlows[Store]):
    """Re-authentication decisions over a sync store."""

    def check(
        self,
        subject: Subject,
        action: str,
        tenant_id: str,
        context: Context | None = None,
        *,
        transaction: str | None = None,
    ) -> Decision:
        """``transaction``: for a rule with ``bind_transaction``, the digest of this action
        and its target (:func:`stepup.transactions.transaction_digest`); the proof recorded
        for it is spent by this check."""
        return run(self._check(subject, action, tenant_id, context, transaction), self.store)

    def peek(
        self, subject: Subject, action: str, tenant_id: str, context: Context | None = None
    ) -> Decision:
        """The decision :meth:`check` would give now, performing nothing: a sliding window
        is not renewed (only a sensitive action renews it), and a transaction-bound rule
        is :class:`ReauthUnavailable` (``transaction_bound``): only the check before the
        action spends its proof. For a page that asks whether to prompt (the status
        endpoint), never before the action itself."""
        return run(self._check(subject, action, tenant_id, context, None, False), self.store)

    def require(
        self,
        subject: Subject,
        action: str,
        tenant_id: str,
        context: Context | None = None,
        *,
        transaction: str | None = None,
    ) -> Allowed:
        flow = self._require(subject, action, tenant_id, context, transaction)
        return run(flow, self.store)

    def record(
        self,
        subject: Subject,
        methods: Iterable[str],
        *,
        authenticated_at: float | None = None,
        renewed_from: str | None = None,
        level: str | None = None,
        transaction: str | None = None,
        signed: str | None = None,
    ) -> Grant:
        """Record a successful re-authentication (``methods`` amr-style: pwd, otp, oidc,
        saml, and a passkey's ``PasskeyResult.methods``: phr, hwk or swk, user, mfa).

        ``renewed_from``: the session id the session had before the re-authentication
        renewed it; the grant is bound to ``subject.session_id`` and the old id's grant is
        revoked. ``level``: the level of assurance a provider's verified ``acr`` or
        ``AuthnContextClassRef`` proved (one of the policy's levels). ``transaction``: the
        digest of the one action this re-authentication confirms, for rules with
        ``bind_transaction``: only a single-use proof for it is stored, not the session's
        grant (the person confirmed this one action, nothing else).
        ``signed``: for a passkey, the transaction its authenticator signed
        (``PasskeyResult.transaction``); it must be ``transaction`` (and is required
        when a passkey proof is recorded for a transaction), else
        :class:`~stepup.errors.MalformedInputError` and nothing is recorded.
        ``authenticated_at``: when the proof was made (a provider's ``auth_time`` or
        ``AuthnInstant``; ``None``: now). Up to 300 seconds ahead of this clock (the
        provider's clock may run ahead) it is dated now; further ahead, or NaN or an
        infinity, is :class:`~stepup.errors.MalformedInputError` and nothing is
        recorded."""
        flow = self._record(
            subject, methods, authenticated_at, renewed_from, level, transaction, signed
        )
        return run(flow, self.store)

    def record_sign_in(
        self,
        subject: Subject,
        methods: Iterable[str],
        authenticated_at: float | None = None,
        *,
        level: str | None = None,
    ) -> SignInOutcome:
        """Let a sign-in count as the session's first re-authentication, when the policy
        says so (``Policy(sign_in_counts=True)``; off by default).

        Call right after the sign-in, with the new session's ``subject`` and what the
        sign-in proved: ``("pwd",)``, ``("pwd", "otp")``, ``("oidc",)`` with the ID
        token's verified ``auth_time``, ``("saml",)`` with the assertion's
        ``AuthnInstant``. The grant is dated ``authenticated_at`` (the provider's time),
        so an SSO session that logged in hours ago counts as hours old; a time up to 300
        seconds ahead of this clock (the provider's clock may run ahead) is dated now,
        one further ahead is :class:`SignInNotCounted` (``in_the_future``). ``level``:
        the level of assurance the provider's signed ``acr`` / ``AuthnContextClassRef``
        proved (``Levels.for_acr``, ``Levels.for_saml``), as for :meth:`record`. Bad
        input (an ``authenticated_at`` that is NaN or infinite too) raises
        :class:`MalformedInputError`; otherwise the answer is :class:`SignInCounted` or
        :class:`SignInNotCounted` with its reason."""
        return run(self._record_sign_in(subject, methods, authenticated_at, level), self.store)

    def offer(self, subject: Subject, action: str) -> Offer:
        """How the re-authentication page asks for ``action`` now: the strongest way the
        user has enrolled (the same choice :meth:`check` makes). Store failure raises
        :class:`~stepup.errors.StoreUnavailableError`."""
        return run(self._offer_for(subject, action), self.store)

    def sign_out(self, subject: Subject) -> int:
        """Revoke this session's grant (event :class:`~stepup.events.GrantsRevoked`,
        reason ``sign_out``)."""
        return run(self._revoke(subject.user_id, subject.session_id, "sign_out"), self.store)

    def password_changed(self, user_id: str) -> int:
        """Revoke every grant of the user, in every session (event
        :class:`~stepup.events.GrantsRevoked`, reason ``password_changed``)."""
        return run(self._revoke(user_id, None, "password_changed"), self.store)


class AsyncReauth(_ReauthFlows[AsyncStore | Store]):
    """Re-authentication decisions over an async store."""

    async def check(
        self,
        subject: Subject,
        action: str,
        tenant_id: str,
        context: Context | None = None,
        *,
        transaction: str | None = None,
    ) -> Decision:
        flow = self._check(subject, action, tenant_id, context, transaction)
        if self._sync_store:
            return run(flow, self.store)
        return await run_async(flow, self.store)

    async def peek(
        self, subject: Subject, action: str, tenant_id: str, context: Context | None = None
    ) -> Decision:
        """See :meth:`Reauth.peek`: the decision, performing nothing."""
        return await run_async(
            self._check(subject, action, tenant_id, context, None, False), self.store
        )

    async def require(
        self,
        subject: Subject,
        action: str,
        tenant_id: str,
        context: Context | None = None,
        *,
        transaction: str | None = None,
    ) -> Allowed:
        flow = self._require(subject, action, tenant_id, context, transaction)
        if self._sync_store:
            return run(flow, self.store)
        return await run_async(flow, self.store)

    async def record(
        self,
        subject: Subject,
        methods: Iterable[str],
        *,
        authenticated_at: float | None = None,
        renewed_from: str | None = None,
        level: str | None = None,
        transaction: str | None = None,
        signed: str | None = None,
    ) -> Grant:
        flow = self._record(
            subject, methods, authenticated_at, renewed_from, level, transaction, signed
        )
        return await run_async(flow, self.store)

    async def record_sign_in(
        self,
        subject: Subject,
        methods: Iterable[str],
        authenticated_at: float | None = None,
        *,
        level: str | None = None,
    ) -> SignInOutcome:
        flow = self._record_sign_in(subject, methods, authenticated_at, level)
        return await run_async(flow, self.store)

    async def offer(self, subject: Subject, action: str) -> Offer:
        return await run_async(self._offer_for(subject, action), self.store)

    async def sign_out(self, subject: Subject) -> int:
        flow = self._revoke(subject.user_id, subject.session_id, "sign_out")
        return await run_async(flow, self.store)

    async def password_changed(self, user_id: str) -> int:
        return await run_async(self._revoke(user_id, None, "password_changed"), self.store)
