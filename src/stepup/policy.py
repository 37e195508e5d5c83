"""Which actions are sensitive, for how long a re-authentication counts, and how to prove it.

A :class:`Policy` maps action names (exact, or glob patterns such as ``billing.*``)
to :class:`Rule` objects. Unknown names are errors: a typo must never switch
protection off. Rules are built from presets, the way argon2-cffi names its
parameter profiles.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from ._toml import read_toml
from .assurance import Levels, UnknownLevelError
from .errors import ConfigurationError, UnknownActionError
from .i18n import N_

__all__ = [
    "ACCEPT_TOKENS",
    "CRITICAL",
    "DEFAULT_LIFETIME",
    "LIFETIME_ENV",
    "NOT_SENSITIVE",
    "RECOVERY_REGENERATE",
    "SENSITIVE",
    "TENANT_SETTINGS_RULE",
    "TENANT_SETTINGS_UPDATE",
    "TOTP_DEVICE_ADD",
    "Context",
    "Policy",
    "Rule",
    "Sensitivity",
    "format_duration",
    "is_production_workspace",
    "lifetime_from_env",
    "parse_lifetime",
    "strength",
    "with_device_add_rule",
    "with_disable_rule",
    "with_own_view_rules",
    "with_recovery_rule",
    "with_tenant_settings_rule",
]

Context = Mapping[str, Any]

#: The seed's installation default: a re-authentication counts for six hours.
DEFAULT_LIFETIME: Final = 6 * 3600.0
LIFETIME_ENV: Final = "SENSITIVE_ACTION_AUTH_LIFETIME"
_MAX_LIFETIME: Final = 366 * 24 * 3600.0
_LIFETIME = re.compile(r"([0-9]{1,9})([smh]?)")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600}
_METHODS: Final = frozenset({"pwd", "oidc", "saml"})
#: What an alternative of a rule's ``accept`` may name: ``primary`` (the way the session
#: signed in), a primary method by name, ``otp`` (a TOTP code), and a passkey: ``phr``
#: (any passkey, phishing-resistant), ``hwk`` (a device-bound one), ``swk`` (a synced
#: one), ``user`` (the authenticator verified the user). Recovery codes are absent on
#: purpose: they never satisfy a re-authentication.
ACCEPT_TOKENS: Final = frozenset({"primary", *_METHODS, "otp", "phr", "hwk", "swk", "user"})
_PASSKEY_TOKENS: Final = frozenset({"phr", "hwk", "swk", "user"})
_PRIMARY_TOKENS: Final = frozenset({"primary", *_METHODS})


def askable(alternative: Iterable[str]) -> bool:
    """Can a session be asked for this alternative in one step? Not when it names a
    passkey together with another method: a passkey's ceremony is a step of its own (a
    bearer token may still prove such a pair from its ``amr``)."""
    tokens = set(alternative)
    return not tokens & _PASSKEY_TOKENS or tokens <= _PASSKEY_TOKENS


class Sensitivity(StrEnum):
    NONE = "none"
    SENSITIVE = "sensitive"
    CRITICAL = "critical"


def _is_lifetime(value: object) -> bool:
    """A lifetime given in code: seconds as an ``int`` or ``float`` (never ``True``, which
    would read as one second, nor text), positive, at most 366 days (NaN fails too)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 < value <= _MAX_LIFETIME
    )


def parse_lifetime(value: object, *, name: str = LIFETIME_ENV) -> float:
    """Seconds from ``"21600"``, ``"90s"``, ``"30m"`` or ``"6h"``.

    Anything else, zero, or more than a year is a :class:`ConfigurationError` that
    names the setting; there is no silent fallback.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigurationError(f"{name} must be whole seconds or a number with s, m or h")
    text = str(value)
    match = _LIFETIME.fullmatch(text)
    if match is None:
        raise ConfigurationError(
            f"{name}={text[:40]!r} is not a lifetime: use whole seconds, or 90s, 30m, 6h"
        )
    seconds = float(int(match.group(1)) * _UNITS[match.group(2)])
    if not 0 < seconds <= _MAX_LIFETIME:
        raise ConfigurationError(f"{name} must be more than 0 seconds and at most 366 days")
    return seconds


def strength(alternative: Iterable[str]) -> tuple[int, int, int]:
    """How strong an alternative is, to order a rule's alternatives strongest first: a
    passkey (phishing-resistant) beats anything without one, a device-bound passkey
    beats a synced one, then more independent factors beat fewer."""
    tokens = frozenset(alternative)
    passkey = bool(tokens & _PASSKEY_TOKENS)
    factors = bool(tokens & _PRIMARY_TOKENS) + ("otp" in tokens) + passkey + ("user" in tokens)
    return (int(passkey), int("hwk" in tokens), factors)


def _alternatives(value: object) -> tuple[tuple[str, ...], ...]:
    """``accept`` as tuples, checked: each alternative a non-empty set of known tokens."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigurationError("a rule's accept must be a list of alternatives")
    result: list[tuple[str, ...]] = []
    for alternative in value:
        if isinstance(alternative, str) or not isinstance(alternative, Iterable):
            raise ConfigurationError(
                "each alternative in accept must be a list such as ['primary', 'otp']"
            )
        tokens = tuple(dict.fromkeys(str(t) for t in alternative))
        if "recovery" in tokens:
            raise ConfigurationError("recovery codes never satisfy a re-authentication")
        unknown = set(tokens) - ACCEPT_TOKENS
        if not tokens or unknown:
            raise ConfigurationError(
                f"an alternative in accept must name some of {sorted(ACCEPT_TOKENS)}"
                + (f", not {sorted(unknown)}" if unknown else "")
            )
        if any(set(tokens) == set(seen) for seen in result):
            raise ConfigurationError(f"accept names the alternative {list(tokens)} twice")
        result.append(tokens)
    if not result:
        raise ConfigurationError("a rule's accept needs at least one alternative")
    return tuple(result)


def lifetime_from_env(environ: Mapping[str, str] | None = None) -> float:
    """The installation lifetime: ``SENSITIVE_ACTION_AUTH_LIFETIME`` if set, else 6 hours."""
    env = os.environ if environ is None else environ
    if LIFETIME_ENV not in env:
        return DEFAULT_LIFETIME
    return parse_lifetime(env[LIFETIME_ENV])


#: What a context may say a full (production) workspace is, and how it may say yes, as a
#: form or a JSON body writes it (compared without case or surrounding blanks).
_PRODUCTION_TYPES: Final = frozenset({"full", "production"})
_YES: Final = frozenset({"true", "yes", "on", "1"})


def _says(value: object, words: frozenset[str]) -> bool:
    """Does a context value say one of ``words`` (without case or blanks around)? A list,
    as a parsed query string or form gives every value (``{"workspace_type": ["full"]}``),
    says what any of its items says: failing closed."""
    if isinstance(value, list | tuple):
        return any(isinstance(item, str) and _says(item, words) for item in value)
    return isinstance(value, str) and value.strip().casefold() in words


def is_production_workspace(context: Context) -> bool:
    """True when the context says the workspace is a full (production) one:
    ``{"workspace_type": "full"}`` (or ``"production"``, in any case, as the seed writes
    "Full"), or ``{"production": True}`` (or ``"true"``, ``"yes"``, ``1``). Failing
    closed: a way of saying it that a form or JSON body uses counts."""
    said = context.get("production")
    if _says(said, _YES) or (isinstance(said, int | float) and said == 1):
        return True  # True, "true", "yes", 1, 1.0 (bool is an int: True == 1)
    return _says(context.get("workspace_type"), _PRODUCTION_TYPES)


@dataclass(frozen=True, slots=True)
class Rule:
    """How one action is protected.

    ``lifetime`` of ``None`` means the installation lifetime. ``methods`` of ``None``
    means "the way the user signed in" (password users re-enter it, SSO users go back
    to their provider). ``second_factor`` adds TOTP on top. ``api_keys`` makes the rule
    apply to API-key and message-injection requests too. ``when`` limits the rule to
    some contexts (outside them the action is not sensitive). ``always`` applies the
    rule even while the tenant's feature flag is off.

    ``accept`` names the ways to re-authenticate as alternatives, e.g.
    ``(("phr",), ("primary", "otp"), ("primary",))``; stepup orders them strongest
    first and offers the strongest the user has (see docs/policy.md). ``None``: the one
    alternative ``methods`` and ``second_factor`` describe (plus a passkey first when
    the policy has ``passkeys`` on). ``accept`` replaces ``second_factor``.
    """

    sensitivity: Sensitivity
    lifetime: float | None = None
    methods: frozenset[str] | None = None
    second_factor: bool = False
    api_keys: bool = False
    when: Callable[[Context], bool] | None = field(default=None, compare=False)
    always: bool = False
    description: str = ""
    accept: tuple[tuple[str, ...], ...] | None = None
    #: The minimum level of assurance (a name of the policy's ``levels``), besides
    #: ``methods``/``accept``; alone, the level's own method sets are the alternatives.
    level: str | None = None
    #: Each re-authentication counts once, for one action on one target (the digest of
    #: its parameters, see :mod:`stepup.transactions`): ``check`` needs ``transaction=``.
    bind_transaction: bool = False

    def __post_init__(self) -> None:
        if self.level is not None and (not isinstance(self.level, str) or not self.level):
            raise ConfigurationError("a rule's level must be the name of a declared level")
        if self.lifetime is not None:
            if not _is_lifetime(self.lifetime):
                raise ConfigurationError(
                    "a rule's lifetime must be a number of seconds, positive and at most 366 days"
                )
            object.__setattr__(self, "lifetime", float(self.lifetime))
        if self.methods is not None:
            # A list or tuple of names is read as the set it means; a bare string is not
            # a set of names ("pwd" would be three letters).
            given = self.methods
            if not isinstance(given, list | tuple | set | frozenset) or not all(
                isinstance(name, str) for name in given
            ):
                raise ConfigurationError(
                    f"a rule's methods must be a set of names, some of {sorted(_METHODS)}"
                )
            methods = frozenset(given)
            if not methods or not methods <= _METHODS:
                raise ConfigurationError(f"a rule's methods must be some of {sorted(_METHODS)}")
            object.__setattr__(self, "methods", methods)
        if self.accept is not None:
            if self.second_factor:
                raise ConfigurationError(
                    "give a rule accept or second_factor, not both: name the second"
                    " factor in accept, e.g. ('primary', 'otp')"
                )
            object.__setattr__(self, "accept", _alternatives(self.accept))

    def alternatives(self, passkeys: bool = False) -> tuple[tuple[str, ...], ...]:
        """The ways to satisfy this rule, strongest first (``primary`` still unresolved).
        ``passkeys``: the policy offers a passkey first on rules without ``accept``."""
        if self.accept is not None:
            listed = self.accept
        else:
            legacy = ("primary", "otp") if self.second_factor else ("primary",)
            listed = (("phr",), legacy) if passkeys else (legacy,)
        return tuple(sorted(listed, key=strength, reverse=True))

    def applies(self, context: Context | None) -> bool:
        """Is the action sensitive in this context? A rule with a condition checked
        without a context (a view that passes none) cannot tell, and applies: failing
        closed, a forgotten context asks for a re-authentication it may not need rather
        than letting through the case the condition is there for."""
        if self.sensitivity is Sensitivity.NONE:
            return False
        return self.when is None or context is None or bool(self.when(context))


#: Presets. ``SENSITIVE`` uses the installation lifetime; ``CRITICAL`` asks again after
#: five minutes; ``NOT_SENSITIVE`` names an action on purpose without protecting it.
SENSITIVE: Final = Rule(Sensitivity.SENSITIVE)
CRITICAL: Final = Rule(Sensitivity.CRITICAL, lifetime=300.0)
NOT_SENSITIVE: Final = Rule(Sensitivity.NONE)

_SEED_CATALOG: Final[dict[str, str]] = {
    "api_key.read": N_("Reading user API keys"),
    "api_key.copy": N_("Copying user API keys"),
    "api_key.regenerate": N_("Regenerating user API keys"),
    "user.update": N_("Modifying user details"),
    "2fa.disable": N_("Disabling two-factor authentication"),
    "2fa.device.add": N_("Adding an authenticator app"),
    "contract.member.invite": N_("Inviting members to contracts"),
    "contract.member.remove": N_("Removing members from contracts"),
    "contract.member.role.change": N_("Changing user roles in contracts"),
    "workspace.member.invite": N_("Inviting members to workspaces"),
    "workspace.member.remove": N_("Removing members from workspaces"),
    "workspace.member.role.change": N_("Changing user roles in workspaces"),
    "ssh_key.add": N_("Adding SSH keys"),
    "ssh_key.remove": N_("Removing SSH keys"),
}


#: Adding another authenticator app to an account that already has two-factor on: an
#: intruder with a stolen session who adds their own app gains the second factor, so the
#: ready-made views ask for a fresh re-authentication first (the first enrolment does not:
#: it raises protection).
TOTP_DEVICE_ADD: Final = "2fa.device.add"
#: Regenerating recovery codes (the ready-made views guard it; the seed lacks it).
RECOVERY_REGENERATE: Final = "2fa.recovery.regenerate"
#: Removing two-factor authentication (the ready-made views guard it; in the seed).
TWO_FACTOR_DISABLE: Final = "2fa.disable"


#: Changing a tenant's settings (the JSON:API ``PATCH``, which turns the
#: ``sensitive_actions_reauth`` flag on and off) is itself sensitive, and stays so while the
#: flag is off: otherwise a stale or stolen admin session switches the protection off in
#: one request and every sensitive action goes through after it. And on every channel
#: (``api_keys``): an admin's API key is not a way around it (it is never asked for a
#: second factor, but it needs a fresh re-authentication like the admin's session).
TENANT_SETTINGS_UPDATE: Final = "tenant.settings.update"
TENANT_SETTINGS_RULE: Final = Rule(
    Sensitivity.SENSITIVE,
    always=True,
    api_keys=True,
    description=N_("Changing tenant security settings"),
)


class Policy:
    """An immutable action table plus the installation lifetime."""

    def __init__(
        self,
        rules: Mapping[str, Rule] | None = None,
        patterns: Iterable[tuple[str, Rule]] = (),
        *,
        lifetime: float = DEFAULT_LIFETIME,
        sign_in_counts: bool = False,
        sliding_max: float | None = None,
        passkeys: bool = False,
        levels: Levels | None = None,
        protected: Iterable[str] = (),
    ) -> None:
        """``protected``: actions (the ones stepup's own views guard, such as removing
        two-factor) that a pattern which is not sensitive never applies to, wherever it
        stands (see :meth:`rule_for`). ``passkeys``: every rule without its own
        ``accept`` offers a passkey first (``("phr",)``), then what it asked before; off
        by default, so an app without passkeys decides exactly as before.
        ``sign_in_counts``: a sign-in records the
        first grant with the methods it proved (see
        :meth:`stepup.reauth.Reauth.record_sign_in`); off by default.
        ``sliding_max``: when set, each sensitive action a grant allows renews it (its
        lifetime counts from that action) until ``sliding_max`` seconds after the proof
        itself; ``None`` (the default) keeps every lifetime fixed from the proof."""
        self._rules = dict(rules or {})
        self._patterns = tuple(patterns)
        if not _is_lifetime(lifetime):
            raise ConfigurationError(
                "the installation lifetime must be a number of seconds, positive and at most"
                " 366 days"
            )
        self.lifetime = float(lifetime)
        if not isinstance(sign_in_counts, bool):
            raise ConfigurationError("sign_in_counts must be True or False")
        self.sign_in_counts = sign_in_counts
        if sliding_max is not None and not _is_lifetime(sliding_max):
            raise ConfigurationError(
                "sliding_max must be a number of seconds, positive and at most 366 days"
            )
        self.sliding_max = None if sliding_max is None else float(sliding_max)
        if not isinstance(passkeys, bool):
            raise ConfigurationError("passkeys must be True or False")
        self.passkeys = passkeys
        if levels is not None and not isinstance(levels, Levels):
            raise ConfigurationError("levels must be a stepup.assurance.Levels")
        self.levels = levels
        if isinstance(protected, str) or not all(
            isinstance(name, str) and name for name in protected
        ):
            raise ConfigurationError("protected must be a list of action names")
        self.protected: frozenset[str] = frozenset(protected)
        for name, rule in [*self._rules.items(), *self._patterns]:
            self._check_rule(_shown(name), rule)

    def _check_rule(self, name: str, rule: Rule) -> None:
        """What a rule must be under this policy (``name``: how errors name the rule)."""
        self._check_level(name, rule)
        self._check_passkey_alone(name, rule)

    def _check_passkey_alone(self, name: str, rule: Rule) -> None:
        """A rule the pages can never satisfy is refused: one whose every alternative
        names a passkey together with another method (``("primary", "phr")``,
        ``("otp", "hwk")``), in ``accept`` or as the method sets that reach its level.
        The re-authentication pages ask for one alternative in one step and a passkey's
        ceremony is a step of its own; a passkey that verified the user already proves
        two factors. A rule with another way (``("pwd", "otp")`` beside
        ``("pwd", "hwk")``) is kept: bearer tokens prove such a pair from their ``amr``
        (RFC 8176), and the pages offer the other way."""
        alternatives = self.alternatives_for(rule)
        mixed = [alternative for alternative in alternatives if not askable(alternative)]
        if not mixed or any(
            askable(alternative) and self._reaches_level(alternative, rule)
            for alternative in alternatives
        ):
            return
        named = list(mixed[0])
        # Without accept, only the rule's level can name such a set of methods.
        where = (
            f"accept names {named}"
            if rule.accept is not None
            else f"level {rule.level!r} is proved only by sets like {named}"
        )
        raise ConfigurationError(
            f"{name}: {where}, and the pages cannot ask for a passkey together with"
            " another method; a passkey with user verification already proves two"
            " factors: use ('phr',), or add an alternative without a passkey"
        )

    def _reaches_level(self, alternative: tuple[str, ...], rule: Rule) -> bool:
        """Can ``alternative`` reach the rule's level, for some way of signing in (any
        alternative can when the rule has no level)?"""
        levels = self.levels
        if rule.level is None or levels is None or rule.level not in levels:
            return True
        primaries = sorted(rule.methods) if rule.methods else sorted(_METHODS)
        return any(
            levels.reachable({primary if t == "primary" else t for t in alternative}, rule.level)
            for primary in primaries
        )

    def _check_level(self, name: str, rule: Rule) -> None:
        """A rule's level must be declared, and something the rule accepts must reach it
        (``name``: how errors name the rule)."""
        levels = self.levels
        if rule.level is None:
            return
        if levels is None:
            raise ConfigurationError(
                f"{name}: the rule asks for level {rule.level!r} but the policy declares no levels"
            )
        if rule.level not in levels:
            raise UnknownLevelError(rule.level)
        self._check_reachable(name, rule, levels)

    def _check_reachable(self, name: str, rule: Rule, levels: Levels) -> None:
        """A rule whose level no alternative can reach, for any way of signing in, would
        deny everyone: refuse it at start-up, not at the first decision."""
        assert rule.level is not None
        if any(self._reaches_level(a, rule) for a in self.alternatives_for(rule)):
            return
        raise ConfigurationError(
            f"{name}: nothing the rule accepts can reach level {rule.level!r}: accept a"
            " passkey or a second factor that proves it, or map the level to an acr or"
            " SAML value"
        )

    def __repr__(self) -> str:
        sizes = f"actions={len(self._rules)}, patterns={len(self._patterns)}"
        extra = ", sign_in_counts=True" if self.sign_in_counts else ""
        if self.sliding_max is not None:
            extra += f", sliding_max={self.sliding_max:g}s"
        if self.passkeys:
            extra += ", passkeys=True"
        if self.levels is not None:
            extra += f", levels={' < '.join(self.levels.names)}"
        return f"Policy({sizes}, lifetime={self.lifetime:g}s{extra})"

    @classmethod
    def default(cls, *, environ: Mapping[str, str] | None = None) -> Policy:
        """The seed's catalog, with the lifetime from ``SENSITIVE_ACTION_AUTH_LIFETIME``."""
        rules = {name: replace(SENSITIVE, description=text) for name, text in _SEED_CATALOG.items()}
        rules["workspace.delete"] = replace(
            SENSITIVE,
            when=is_production_workspace,
            description=N_("Deleting full (production) workspaces"),
        )
        rules[TENANT_SETTINGS_UPDATE] = TENANT_SETTINGS_RULE
        return cls(rules, lifetime=lifetime_from_env(environ))

    # lookup -------------------------------------------------------------------

    def rule_for(self, action: str) -> Rule:
        """The rule for ``action``: an exact name first, then the first matching pattern
        (patterns added later are tried first: see :meth:`extend`). For a
        :attr:`protected` action, patterns that are not sensitive are passed over: the
        first sensitive one that matches is its rule (and with none, it is unknown)."""
        if not isinstance(action, str):
            raise UnknownActionError(action)
        rule = self._rules.get(action)
        if rule is not None:
            return rule
        protected = action in self.protected
        for pattern, candidate in self._patterns:
            if protected and candidate.sensitivity is Sensitivity.NONE:
                continue
            if fnmatch.fnmatchcase(action, pattern):
                return candidate
        raise UnknownActionError(action)

    def __contains__(self, action: object) -> bool:
        if not isinstance(action, str):
            return False
        try:
            self.rule_for(action)
        except UnknownActionError:
            return False
        return True

    def names(self, action: str) -> bool:
        """Does this policy name ``action`` itself, not merely match it with a pattern?
        (What decides whether stepup adds its own rule for an action it guards, such as
        ``passkey.add``: a catch-all ``*`` pattern must not switch that rule off.)"""
        return isinstance(action, str) and action in self._rules

    def validate(self, actions: Iterable[str]) -> None:
        """Raise :class:`UnknownActionError` for the first unknown name (call at start-up)."""
        for action in actions:
            self.rule_for(action)

    def lifetime_for(self, rule: Rule) -> float:
        return rule.lifetime if rule.lifetime is not None else self.lifetime

    @property
    def shortest_lifetime(self) -> float:
        """The shortest time a re-authentication counts for, over the rules that ask for
        one (the installation lifetime when none does)."""
        rules = [*self._rules.values(), *(rule for _, rule in self._patterns)]
        asking = [self.lifetime_for(r) for r in rules if r.sensitivity is not Sensitivity.NONE]
        return min(asking, default=self.lifetime)

    @property
    def longest_lifetime(self) -> float:
        """How long a grant can matter at all (stores may forget it after that)."""
        rules = [*self._rules.values(), *(rule for _, rule in self._patterns)]
        return max([self.lifetime, *(self.lifetime_for(rule) for rule in rules)])

    @property
    def lifetimes(self) -> tuple[float, ...]:
        """Every lifetime a proof can count for under this policy, shortest first, each
        once: the installation lifetime and that of each rule that asks for a proof. (A
        sliding window keeps one renewal per lifetime: see :meth:`with_sliding_window`.)"""
        rules = [*self._rules.values(), *(rule for _, rule in self._patterns)]
        asking = {self.lifetime_for(r) for r in rules if r.sensitivity is not Sensitivity.NONE}
        return tuple(sorted({self.lifetime, *asking}))

    # building -----------------------------------------------------------------

    def _copy(self, **changes: Any) -> Policy:
        """This policy with some constructor arguments changed (everything else kept)."""
        arguments: dict[str, Any] = {
            "rules": self._rules,
            "patterns": self._patterns,
            "lifetime": self.lifetime,
            "sign_in_counts": self.sign_in_counts,
            "sliding_max": self.sliding_max,
            "passkeys": self.passkeys,
            "levels": self.levels,
            "protected": self.protected,
        }
        arguments.update(changes)
        return Policy(**arguments)

    def extend(
        self, rules: Mapping[str, Rule] | None = None, patterns: Iterable[tuple[str, Rule]] = ()
    ) -> Policy:
        """A new policy with these rules added or overriding, and these patterns tried
        before the ones it has (a later pattern wins over an earlier one that also matches;
        exact names still come before every pattern)."""
        return self._copy(
            rules={**self._rules, **(rules or {})}, patterns=(*patterns, *self._patterns)
        )

    def with_lifetime(self, lifetime: float) -> Policy:
        return self._copy(lifetime=lifetime)

    def with_sign_in_counts(self, on: bool = True) -> Policy:
        """The same table, with a sign-in counting as the first re-authentication (or not)."""
        return self._copy(sign_in_counts=on)

    def with_sliding_window(self, maximum: float | None) -> Policy:
        """The same table, with a sliding window up to ``maximum`` seconds after the proof
        (``None``: off, every lifetime counts from the proof). An action renews the window
        only for rules whose lifetime is at least its own rule's: an ordinary action keeps
        a six-hour rule alive, never a five-minute ``CRITICAL`` one."""
        return self._copy(sliding_max=maximum)

    def with_passkeys(self, on: bool = True) -> Policy:
        """The same table, with a passkey offered first on every rule without its own
        ``accept`` (strongest available: a user with a passkey confirms with it)."""
        return self._copy(passkeys=on)

    def with_levels(self, levels: Levels | None) -> Policy:
        """The same table with these levels of assurance (``None``: none; a rule that
        names a level then fails here, at start-up)."""
        return self._copy(levels=levels)

    def with_protected(self, *actions: str) -> Policy:
        """The same table, with ``actions`` protected as well: a pattern that is not
        sensitive (``("*", NOT_SENSITIVE)``) never applies to them, whether it comes
        before or after (from code or from a policy file). Only a rule that names the
        action itself can make it not sensitive."""
        return self._copy(protected=self.protected | frozenset(actions))

    def alternatives_for(self, rule: Rule) -> tuple[tuple[str, ...], ...]:
        """The rule's alternatives under this policy, strongest first."""
        if (
            rule.level is not None
            and self.levels is not None
            and rule.accept is None
            and rule.methods is None
            and not rule.second_factor
        ):
            # The level alone: every set of methods that proves it, plus the sign-in
            # method (a federated provider proves the level with its acr / class ref).
            listed = (*self.levels.method_sets(rule.level), ("primary",))
            return tuple(sorted(dict.fromkeys(listed), key=strength, reverse=True))
        return rule.alternatives(self.passkeys)

    @property
    def has_alternatives(self) -> bool:
        """Does any rule offer more than one way (so a decision reads what the user has)?"""
        rules = [*self._rules.values(), *(rule for _, rule in self._patterns)]
        return any(len(self.alternatives_for(rule)) > 1 for rule in rules)

    def load_toml(self, path: str | Path) -> Policy:
        """Extend or override from a TOML file (see ``docs/policy.md`` for the format)."""
        source = str(path)
        data = read_toml(path)
        return self.merge_mapping(data, source=source)

    def merge_mapping(self, data: Mapping[str, Any], *, source: str = "<policy>") -> Policy:
        # The installation lifetime is deliberately not settable here: it belongs to
        # SENSITIVE_ACTION_AUTH_LIFETIME alone, so there is one answer to "how long?".
        unknown = set(data) - {
            "actions",
            "patterns",
            "sign_in_counts",
            "sliding_max",
            "passkeys",
            "levels",
        }
        if unknown:
            raise ConfigurationError(f"{source}: unknown keys {sorted(unknown)}")
        policy = self
        if "sign_in_counts" in data:
            if not isinstance(data["sign_in_counts"], bool):
                raise ConfigurationError(f"{source}: sign_in_counts must be true or false")
            policy = policy.with_sign_in_counts(data["sign_in_counts"])
        if "sliding_max" in data:
            maximum = parse_lifetime(data["sliding_max"], name=f"{source}: sliding_max")
            policy = policy.with_sliding_window(maximum)
        if "passkeys" in data:
            if not isinstance(data["passkeys"], bool):
                raise ConfigurationError(f"{source}: passkeys must be true or false")
            policy = policy.with_passkeys(data["passkeys"])
        if "levels" in data:
            where = f"{source}: levels"
            try:
                policy = policy.with_levels(Levels.from_config(data["levels"], source=where))
            except ConfigurationError as exc:  # the code's rules against the file's levels
                raise _naming(exc, where) from None
        rules: dict[str, Rule] = {}
        for name, entry in _table(data, "actions", source).items():
            where = f"{source}: actions.{_shown(name)}"
            rules[name] = policy._file_rule(entry, where, policy._rules.get(name), name)
        patterns = []
        for pattern, entry in _table(data, "patterns", source).items():
            where = f"{source}: patterns.{pattern!r}"
            patterns.append((pattern, policy._file_rule(entry, where, None, pattern)))
        return policy.extend(rules, patterns)

    def _file_rule(self, entry: object, where: str, base: Rule | None, name: str) -> Rule:
        """A rule of the file, its level checked against this policy's levels here, so
        that an error names the file and the entry (``where``)."""
        if not name.strip():  # [actions.""] names no action; [patterns.""] matches none
            raise ConfigurationError(f"{where}: a blank name names no action")
        rule = _rule_from_toml(entry, where, base)
        try:
            self._check_rule(where, rule)
        except ConfigurationError as exc:
            raise _naming(exc, where) from None
        return rule

    # display ------------------------------------------------------------------

    def table(self) -> list[dict[str, str]]:
        """The effective table, one row per action or pattern, for ``stepup policy show``."""
        rows = []
        for name, rule in [*sorted(self._rules.items()), *self._patterns]:
            rows.append(
                {
                    "action": name,
                    "sensitivity": rule.sensitivity.value,
                    "lifetime": format_duration(self.lifetime_for(rule)),
                    "methods": ",".join(sorted(rule.methods)) if rule.methods else "sign-in method",
                    "second factor": "yes" if rule.second_factor else "no",
                    "api keys": "yes" if rule.api_keys else "exempt",
                    "condition": "always" if rule.always else ("when " + _condition_name(rule)),
                    "alternatives": self._alternatives_text(rule),
                    "level": rule.level or "-",
                    "bound": "yes: once, one target" if rule.bind_transaction else "no",
                    "description": rule.description,
                }
            )
        return rows

    def _alternatives_text(self, rule: Rule) -> str:
        """The alternatives as offered, strongest first: with a level, only those that
        can reach it, and the sign-in method marked with the sign-ins for which it does
        (an SSO provider that can assert the level)."""
        levels, shown = self.levels, []
        primaries = sorted(rule.methods) if rule.methods else sorted(_METHODS)
        for alternative in self.alternatives_for(rule):
            text = " + ".join(_TOKEN_NAMES.get(t, t) for t in alternative)
            if rule.level is not None and levels is not None:
                reach = [
                    p
                    for p in primaries
                    if levels.reachable(
                        {p if t == "primary" else t for t in alternative}, rule.level
                    )
                ]
                if not reach:
                    continue  # never offered: it cannot reach the level
                if "primary" in alternative and len(reach) < len(primaries):
                    text += f" ({', '.join(reach)} sign-ins only)"
            shown.append(text)
        return " | ".join(shown)


def with_device_add_rule(policy: Policy) -> Policy:
    """``policy``, with :data:`TOTP_DEVICE_ADD` (sensitive) unless it names that action
    itself: an app's own policy never leaves adding an authenticator app unguarded (or
    the ready-made views refusing it) by forgetting the name."""
    if policy.names(TOTP_DEVICE_ADD):
        return policy
    rule = replace(SENSITIVE, description=_SEED_CATALOG[TOTP_DEVICE_ADD])
    return policy.extend({TOTP_DEVICE_ADD: rule})


def _guarded(policy: Policy, action: str, description: str) -> Policy:
    """``policy`` with ``action`` protected (:meth:`Policy.with_protected`: no pattern
    that is not sensitive applies to it, from code or from the policy file, before or
    after), and named sensitive with ``description`` unless the policy names it or a
    sensitive pattern of the app's (``("2fa.*", CRITICAL)``) matches it, which stays its
    rule."""
    policy = policy.with_protected(action)
    if action in policy:  # named, or matched by a sensitive pattern
        return policy
    return policy.extend({action: replace(SENSITIVE, description=description)})


def with_recovery_rule(policy: Policy, action: str = RECOVERY_REGENERATE) -> Policy:
    """``policy``, with ``action`` (regenerating recovery codes) protected: a catch-all
    ``("*", NOT_SENSITIVE)`` never switches it off, wherever it stands (see
    :func:`_guarded`)."""
    return _guarded(policy, action, N_("Regenerating two-factor recovery codes"))


def with_disable_rule(policy: Policy, action: str = TWO_FACTOR_DISABLE) -> Policy:
    """``policy``, with ``action`` (removing two-factor) protected: a catch-all
    ``("*", NOT_SENSITIVE)`` never switches the removal off, wherever it stands, and a
    sensitive pattern of the app's (``("2fa.*", CRITICAL)``) stays its rule (see
    :func:`_guarded`)."""
    return _guarded(policy, action, _SEED_CATALOG[TWO_FACTOR_DISABLE])


def with_own_view_rules(policy: Policy) -> Policy:
    """``policy`` with the rules of the actions stepup's own views guard (removing
    two-factor, recovery codes, another authenticator app, tenant settings) wherever it
    does not name them:
    the table ``stepup policy show`` prints is the one the integrations build. The
    passkey actions come with a relying party (:func:`stepup.passkeys.passkey_policy`)."""
    own = with_disable_rule(with_recovery_rule(policy))
    return with_device_add_rule(with_tenant_settings_rule(own))


def with_tenant_settings_rule(policy: Policy) -> Policy:
    """``policy``, with :data:`TENANT_SETTINGS_RULE` for ``tenant.settings.update`` unless
    it names that action itself: an app's own policy never leaves the tenant settings
    endpoint unguarded by forgetting the name."""
    if policy.names(TENANT_SETTINGS_UPDATE):
        return policy
    return policy.extend({TENANT_SETTINGS_UPDATE: TENANT_SETTINGS_RULE})


#: How ``stepup policy show`` names the tokens of an alternative.
_TOKEN_NAMES: Final = {
    "primary": "sign-in method",
    "phr": "passkey",
    "hwk": "device-bound passkey",
    "swk": "synced passkey",
    "user": "user verification",
}


def _condition_name(rule: Rule) -> str:
    if rule.when is None:
        return "flag on"
    return f"flag on and {getattr(rule.when, '__name__', 'condition')}"


def format_duration(seconds: float) -> str:
    """Exact, never rounded: ``"6 h"``, ``"1 min 30 s"``, ``"45 s"``, ``"1.5 s"``."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts)


def _sensitivity(value: object) -> Sensitivity:
    try:
        return Sensitivity(str(value) if isinstance(value, str) else "")
    except ValueError:
        valid = ", ".join(repr(s.value) for s in Sensitivity)
        raise ValueError(f"sensitivity must be one of {valid}, not {value!r:.40}") from None


def _shown(name: object) -> str:
    """A name from code or a policy file as messages print it: as it is when it is
    plain (printable, no blanks), else quoted with control characters escaped
    (``'x\\x1b[2J'``), so that a name can never move the cursor or recolour a terminal."""
    if not isinstance(name, str):
        return f"<{type(name).__name__}>"
    plain = name.isprintable() and name != "" and not any(c.isspace() for c in name)
    return name if plain else repr(name)


def _naming(exc: ConfigurationError, where: str) -> ConfigurationError:
    """``exc``, of the same type, with its message starting with ``where`` (the file and
    the entry) unless it already names them."""
    message = str(exc)
    if message.startswith(where):
        return exc
    named = type(exc).__new__(type(exc))
    named.__dict__.update(exc.__dict__)  # UnknownLevelError keeps its ``level``
    named.args = (f"{where}: {message}",)
    return named


def _table(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigurationError(f"{source}: '{key}' must be a table")
    return value


_RULE_KEYS: Final = frozenset(
    {
        "sensitivity",
        "lifetime",
        "methods",
        "second_factor",
        "api_keys",
        "always",
        "description",
        "accept",
        "level",
        "bind_transaction",
    }
)


def _rule_from_toml(entry: object, where: str, base: Rule | None) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} must be a table")
    extra = set(entry) - _RULE_KEYS
    if extra:
        raise ConfigurationError(f"{where}: unknown keys {sorted(extra)}")
    rule = base or SENSITIVE
    changes: dict[str, Any] = {}
    try:
        if "sensitivity" in entry:
            changes["sensitivity"] = _sensitivity(entry["sensitivity"])
        if "lifetime" in entry:
            changes["lifetime"] = parse_lifetime(entry["lifetime"], name=f"{where}: lifetime")
        if "methods" in entry:
            changes["methods"] = frozenset(entry["methods"])
        for flag in ("second_factor", "api_keys", "always", "bind_transaction"):
            if flag in entry:
                if not isinstance(entry[flag], bool):
                    raise ConfigurationError(f"{where}: {flag} must be true or false")
                changes[flag] = entry[flag]
        if "description" in entry:
            if not isinstance(entry["description"], str):
                raise ConfigurationError(f"{where}: description must be text")
            changes["description"] = entry["description"]
        if "level" in entry:
            if not isinstance(entry["level"], str):
                raise ConfigurationError(f"{where}: level must be the name of a level")
            changes["level"] = entry["level"]
        if "accept" in entry:
            changes["accept"] = _alternatives(entry["accept"])
            if "second_factor" not in entry:
                changes["second_factor"] = False  # accept names the second factor itself
        if (
            changes.get("sensitivity") is Sensitivity.CRITICAL
            and "lifetime" not in entry
            and rule.lifetime is None
        ):
            # "critical" in the file is the CRITICAL preset, as in code: it asks again
            # after five minutes unless the entry (or the rule it overrides) gives a time.
            changes["lifetime"] = CRITICAL.lifetime
        return replace(rule, **changes)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if isinstance(exc, ConfigurationError) and message.startswith(where):
            raise
        raise ConfigurationError(f"{where}: {message}") from None
