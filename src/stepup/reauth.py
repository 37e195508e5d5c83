"""May this session do this action now? The re-authentication decision and its grants.

``check`` answers with a typed :data:`Decision`; ``require`` raises instead. A
successful re-authentication is recorded with ``record`` as a :class:`Grant`
bound to one user and one session. Sync (:class:`Reauth`) and async
(:class:`AsyncReauth`) callers share every decision through :mod:`stepup._flow`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final, Generic, TypeAlias, TypeVar

from ._flow import Flow, run, run_async
from .adapters.storage.base import AsyncStore, Store
from .clock import Clock, system_clock
from .errors import MalformedInputError, StepupError, StoreUnavailableError
from .events import EventBus, ReauthSucceeded
from .policy import Context, Policy, Rule, Sensitivity
from .records import Grant, Tenant
from .subject import LoginMethod, Subject
from .twofactor import Channel

__all__ = [
    "FEATURE_FLAG",
    "AllowReason",
    "Allowed",
    "AsyncReauth",
    "Decision",
    "Reauth",
    "ReauthRequired",
    "ReauthRequiredError",
    "ReauthUnavailable",
    "ReauthUnavailableError",
    "required_methods",
]

#: The tenant feature flag that turns re-authentication for sensitive actions on.
FEATURE_FLAG: Final = "sensitive_actions_reauth"
#: amr-style names a grant may carry. Recovery codes are deliberately absent.
GRANT_METHODS: Final = frozenset({"pwd", "otp", "oidc", "saml"})
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


@dataclass(frozen=True, slots=True)
class Allowed:
    """Go ahead. ``valid_until`` is when the grant stops covering this action (if a grant
    was needed)."""

    action: str
    reason: AllowReason
    valid_until: float | None = None

    ok: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class ReauthRequired:
    """Not until the user proves it is them again.

    ``methods`` must all be satisfied (e.g. ``("pwd",)``, ``("oidc", "otp")``);
    ``provider`` names the SSO provider to send the user to, when there is one.
    """

    action: str
    sensitivity: Sensitivity
    methods: tuple[str, ...]
    lifetime: float
    last_reauth_at: float | None
    provider: str = ""

    ok: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class ReauthUnavailable:
    """The store could not answer, so the action is denied (fail closed)."""

    action: str

    ok: ClassVar[bool] = False


Decision: TypeAlias = Allowed | ReauthRequired | ReauthUnavailable


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
        super().__init__(f"cannot decide {decision.action!r}: the store is unavailable")
        self.decision = decision


def required_methods(subject: Subject, rule: Rule) -> tuple[str, ...]:
    """What proves it is them: the way they signed in (or the rule's methods), plus TOTP
    when the rule asks for a second factor."""
    primary = _PRIMARY_BY_LOGIN[subject.identity.method]
    if rule.methods is not None and primary not in rule.methods:
        primary = sorted(rule.methods)[0]
    return (primary, "otp") if rule.second_factor else (primary,)


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
    ) -> None:
        """``merge_window``: a re-authentication this soon after the session's last one
        adds its methods to that grant (keeping the older time) instead of replacing it."""
        self.store = store
        self.merge_window = merge_window
        self.policy = policy if policy is not None else Policy.default()
        self.clock = clock
        self.events = events or EventBus()
        self.flag = flag
        # A store that answers several reads in one round trip (Redis) gets the tenant
        # and the grant asked together; others are asked one by one, grant last.
        self._batch = callable(getattr(store, "batch", None))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.policy!r}, flag={self.flag!r})"

    def _check(
        self, subject: Subject, action: str, tenant_id: str, context: Context | None
    ) -> Flow[Decision]:
        rule = self.policy.rule_for(action)  # unknown names raise before anything else
        if not rule.applies(context or {}):
            return Allowed(action, AllowReason.NOT_SENSITIVE)
        if subject.channel in _NON_INTERACTIVE and not rule.api_keys:
            return Allowed(action, AllowReason.EXEMPT_CHANNEL)
        now = self.clock()
        who = (subject.user_id, subject.session_id)
        tenant: Tenant | None
        grant: Grant | None
        try:
            if rule.always:
                grant = yield ("get_grant", who)
            elif self._batch:
                reads = (("get_tenant", (tenant_id,)), ("get_grant", who))
                tenant, grant = yield ("batch", (reads,))
                if tenant is None or not tenant.flag(self.flag):
                    return Allowed(action, AllowReason.FLAG_OFF)
            else:
                tenant = yield ("get_tenant", (tenant_id,))
                if tenant is None or not tenant.flag(self.flag):
                    return Allowed(action, AllowReason.FLAG_OFF)
                grant = yield ("get_grant", who)
        except StoreUnavailableError:
            return ReauthUnavailable(action)
        lifetime = self.policy.lifetime_for(rule)
        methods = required_methods(subject, rule)
        if grant is not None and _covers(grant, subject, methods, lifetime, now):
            return Allowed(action, AllowReason.FRESH_GRANT, grant.authenticated_at + lifetime)
        return ReauthRequired(
            action=action,
            sensitivity=rule.sensitivity,
            methods=methods,
            lifetime=lifetime,
            last_reauth_at=grant.authenticated_at if grant is not None else None,
            provider=subject.identity.provider,
        )

    def _require(
        self, subject: Subject, action: str, tenant_id: str, context: Context | None
    ) -> Flow[Allowed]:
        decision = yield from self._check(subject, action, tenant_id, context)
        if isinstance(decision, ReauthRequired):
            raise ReauthRequiredError(decision)
        if isinstance(decision, ReauthUnavailable):
            raise ReauthUnavailableError(decision)
        return decision

    def _record(
        self, subject: Subject, methods: Iterable[str], authenticated_at: float | None
    ) -> Flow[Grant]:
        chosen = frozenset(methods)
        if "recovery" in chosen:
            raise MalformedInputError("recovery codes never satisfy a re-authentication")
        if not chosen or not chosen <= GRANT_METHODS:
            raise MalformedInputError(f"grant methods must be some of {sorted(GRANT_METHODS)}")
        now = self.clock()
        at = now if authenticated_at is None else min(authenticated_at, now)
        previous: Grant | None = yield ("get_grant", (subject.user_id, subject.session_id))
        if (
            previous is not None
            and not previous.methods <= chosen
            and 0 <= at - previous.authenticated_at < self.merge_window
        ):
            # A second step moments after the first (an SSO login, then TOTP): keep both
            # proofs, dated by the older one, so the grant is never fresher than its parts.
            chosen |= previous.methods
            at = previous.authenticated_at
        grant = Grant(subject.user_id, subject.session_id, chosen, at)
        yield ("put_grant", (grant, at + self.policy.longest_lifetime))
        method = ",".join(sorted(chosen))
        self.events.emit(
            ReauthSucceeded(
                at=now, user_id=subject.user_id, session_id=subject.session_id, method=method
            )
        )
        return grant

    def _revoke(self, user_id: str, session_id: str | None) -> Flow[int]:
        count: int = yield ("revoke_grants", (user_id, session_id))
        return count


def _covers(
    grant: Grant, subject: Subject, methods: tuple[str, ...], lifetime: float, now: float
) -> bool:
    """A grant covers a rule when it is this session's, proved every required method, and
    is younger than the rule's lifetime (a grant from the future is not trusted)."""
    if (grant.user_id, grant.session_id) != (subject.user_id, subject.session_id):
        return False
    age = now - grant.authenticated_at
    return set(methods) <= grant.methods and 0 <= age < lifetime


class Reauth(_ReauthFlows[Store]):
    """Re-authentication decisions over a sync store."""

    def check(
        self, subject: Subject, action: str, tenant_id: str, context: Context | None = None
    ) -> Decision:
        return run(self._check(subject, action, tenant_id, context), self.store)

    def require(
        self, subject: Subject, action: str, tenant_id: str, context: Context | None = None
    ) -> Allowed:
        return run(self._require(subject, action, tenant_id, context), self.store)

    def record(
        self, subject: Subject, methods: Iterable[str], *, authenticated_at: float | None = None
    ) -> Grant:
        """Record a successful re-authentication (``methods`` amr-style: pwd, otp, oidc, saml)."""
        return run(self._record(subject, methods, authenticated_at), self.store)

    def sign_out(self, subject: Subject) -> int:
        """Revoke this session's grant."""
        return run(self._revoke(subject.user_id, subject.session_id), self.store)

    def password_changed(self, user_id: str) -> int:
        """Revoke every grant of the user, in every session."""
        return run(self._revoke(user_id, None), self.store)


class AsyncReauth(_ReauthFlows[AsyncStore | Store]):
    """Re-authentication decisions over an async store."""

    async def check(
        self, subject: Subject, action: str, tenant_id: str, context: Context | None = None
    ) -> Decision:
        return await run_async(self._check(subject, action, tenant_id, context), self.store)

    async def require(
        self, subject: Subject, action: str, tenant_id: str, context: Context | None = None
    ) -> Allowed:
        return await run_async(self._require(subject, action, tenant_id, context), self.store)

    async def record(
        self, subject: Subject, methods: Iterable[str], *, authenticated_at: float | None = None
    ) -> Grant:
        return await run_async(self._record(subject, methods, authenticated_at), self.store)

    async def sign_out(self, subject: Subject) -> int:
        return await run_async(self._revoke(subject.user_id, subject.session_id), self.store)

    async def password_changed(self, user_id: str) -> int:
        return await run_async(self._revoke(user_id, None), self.store)
